"""`reconcile validate` end to end: every bad input of spec section 7, every output format.

Each row of `BAD_INPUT` is one bad input: the files below `campaigns/` and every problem it
must produce as `(file, line, col, path, fragment of the message)`. Each row is run through the
CLI twice (text and JSON); the run must exit 1, print `FILE:LINE:COL: error:` lines, report
exactly the expected problems, and leave every file as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import LENIENT_POLICY, VALID_CAMPAIGN, WriteFiles, edit, snapshot

from reconciler.cli.main import cli, main

A = "campaigns/a.yaml"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Expect:
    file: str
    line: int
    col: int
    path: str
    fragment: str


@dataclass(frozen=True)
class Case:
    id: str
    files: dict[str, str | bytes] | None  # None: no campaigns folder at all
    problems: tuple[Expect, ...]


def case(id: str, files: dict[str, str | bytes] | str | bytes | None, *problems: Expect) -> Case:
    """A row; a bare text or bytes is the content of `campaigns/a.yaml`."""
    if isinstance(files, str | bytes):
        files = {"a.yaml": files}
    return Case(id, files, problems)


def at(line: int, col: int, path: str, fragment: str, file: str = A) -> Expect:
    return Expect(file, line, col, path, fragment)


NO_CID = edit("cidType: default\n", "")
USE_TR = "  recordCall: false\n  useTr: true\n"
CPS_NUMBER = "cannot be encoded"
CPS_TEXT = "is not an encodable rate"

BAD_INPUT = [
    # --- YAML ---------------------------------------------------------------------------
    case("malformed-flow", "name: [Spring\ncps: 1.03\n", at(2, 4, "(file)", "invalid YAML")),
    case(
        "malformed-indent",
        "name: Spring\n  cps: : 1.03\n",
        at(2, 6, "(file)", "invalid YAML: mapping values are not allowed"),
    ),
    case(
        "several-documents",
        "name: a\n---\nname: b\n",
        at(2, 1, "(file)", "several YAML documents in one file"),
    ),
    case("root-list", "- name: a\n", at(1, 1, "(file)", "file must hold one mapping")),
    case("root-text", "just some words\n", at(1, 1, "(file)", "file must hold one mapping")),
    case("empty-file", "", at(1, 1, "(file)", "file is empty")),
    case("comment-only", "# nothing here yet\n# really\n", at(1, 1, "(file)", "file is empty")),
    case(
        "duplicate-key",
        VALID_CAMPAIGN + "name: Spring promo again\n",
        at(19, 1, "(file)", "duplicate key 'name' (first at line 1)"),
    ),
    case(
        "duplicate-nested-key",
        edit("  fullListTime: 30\n", "  fullListTime: 30\n  fullListTime: 40\n"),
        at(11, 3, "(file)", "duplicate key 'fullListTime' (first at line 10)"),
    ),
    case(
        "anchor",
        edit("cidType: default", "cidType: &cid default"),
        at(5, 10, "(file)", "anchor &cid is not allowed"),
    ),
    case(
        "alias",
        edit("cidType: default", "cidType: *cid"),
        at(5, 10, "(file)", "alias *cid is not allowed"),
    ),
    case(
        "tag-python-object",
        edit("name: Spring promo", "name: !!python/object:os.system echo"),
        at(1, 7, "(file)", "explicit tag !!python/object:os.system is not allowed"),
    ),
    case(
        "tag-binary",
        edit("name: Spring promo", "name: !!binary U3ByaW5n"),
        at(1, 7, "(file)", "explicit tag !!binary is not allowed"),
    ),
    case(
        "tag-custom",
        edit("name: Spring promo", "name: !campaign Spring promo"),
        at(1, 7, "(file)", "explicit tag !campaign is not allowed"),
    ),
    case(
        "tag-str",
        edit("cps: 1.03", "cps: !!str 1.03"),
        at(7, 6, "(file)", "explicit tag !!str is not allowed"),
    ),
    case(
        "yaml-1.1-directive",
        "%YAML 1.1\n---\n" + VALID_CAMPAIGN,
        at(1, 1, "(file)", "%YAML 1.1 directive is not supported"),
    ),
    case(
        # A syntax error first: it is never seen, since the file is refused before parsing.
        "over-1-mib",
        "name: [\n#" + "x" * MIB + "\n",
        at(1, 1, "(file)", "over the 1 MiB limit; not parsed"),
    ),
    case(
        "not-utf8",
        VALID_CAMPAIGN.encode().replace(b"Spring promo", b"Spring promo caf\xe9"),
        at(1, 23, "(file)", "not UTF-8"),
    ),
    case(
        # BOM not counted, columns in characters (Cyrillic letters are two bytes each).
        "not-utf8-after-bom-and-cyrillic",
        b"\xef\xbb\xbf" + "name: Весна\ntaskComment: привет ".encode() + b"\xff\n",
        at(2, 21, "(file)", "not UTF-8"),
    ),
    # --- YAML 1.1 surprises, read as YAML 1.2 reads them, then checked --------------------
    case(
        "yaml11-no",
        edit("  recordCall: false\n", "  recordCall: false\n  detectRobot: no\n"),
        at(12, 16, "additionalOptions.detectRobot", "expected true or false, got text 'no'"),
    ),
    case(
        "yaml11-on",
        edit("  recordCall: false\n", "  recordCall: on\n"),
        at(11, 15, "additionalOptions.recordCall", "expected true or false, got text 'on'"),
    ),
    case(
        "yaml11-sexagesimal",
        edit(
            "  recordCall: false\n",
            USE_TR + "  allowCallTimeFrom: 1:30\n  allowCallTimeTo: 72000\n",
        ),
        at(13, 22, "additionalOptions.allowCallTimeFrom", "'1:30' is not a time of day"),
    ),
    # --- unknown fields -----------------------------------------------------------------
    case(
        "unknown-top",
        edit("cps: 1.03\n", "cps: 1.03\ncsp: 1.03\n"),
        at(8, 1, "csp", "unknown field csp (did you mean cps?)"),
    ),
    case(
        "unknown-nested",
        edit("  recordCall: false\n", "  recordCall: false\n  detectRobotMod: back\n"),
        at(
            12,
            3,
            "additionalOptions.detectRobotMod",
            "unknown field additionalOptions.detectRobotMod (did you mean detectRobotMode?)",
        ),
    ),
    case(
        "unknown-in-flow-rule",
        edit("busy: {redial: false}", "busy: {redial: false, tme: 3}"),
        at(14, 25, "redialStrategyOptions.busy.tme", "(did you mean time?)"),
    ),
    # --- wrong types --------------------------------------------------------------------
    case(
        "type-int",
        edit("fullListTime: 30", "fullListTime: thirty"),
        at(10, 17, "additionalOptions.fullListTime", "expected an integer, got text 'thirty'"),
    ),
    case("type-text", edit("name: Spring promo", "name: 12"), at(1, 7, "name", "expected text")),
    case(
        "type-mapping",
        edit("busy: {redial: false}", "busy: yes"),
        at(14, 9, "redialStrategyOptions.busy", "expected a mapping"),
    ),
    case("type-cps", edit("cps: 1.03", "cps: true"), at(7, 6, "cps", "expected a number")),
    # --- missing required fields --------------------------------------------------------
    case(
        "missing-top",
        NO_CID,
        at(1, 1, "cidType", "required field cidType is missing: campaigns/a.yaml does not set"),
    ),
    case(
        "missing-with-defaults",
        {"_defaults.yaml": "cps: 1.03\n", "a.yaml": NO_CID},
        at(
            1,
            1,
            "cidType",
            "neither campaigns/a.yaml nor any _defaults.yaml above it sets it",
        ),
    ),
    case(
        "missing-nested",
        edit("  recordCall: false\n", ""),
        at(8, 1, "additionalOptions.recordCall", "required field additionalOptions.recordCall"),
    ),
    case(
        # The mapping comes from the defaults; the problem still points at the campaign.
        "missing-nested-defaults-mapping",
        {
            "_defaults.yaml": "additionalOptions:\n  fullListMethod: reject\n",
            "a.yaml": edit(
                "additionalOptions:\n  fullListMethod: reject\n  fullListTime: 30\n"
                "  recordCall: false\n",
                "",
            ),
        },
        at(1, 1, "additionalOptions.fullListTime", "neither campaigns/a.yaml nor any"),
        at(1, 1, "additionalOptions.recordCall", "neither campaigns/a.yaml nor any"),
    ),
    # --- conditionally required: located at the trigger's value --------------------------
    case(
        "cond-secondExec-ch",
        edit("secondExec: end", "secondExec: ch"),
        at(4, 13, "secondExecData", "secondExecData is required when secondExec is ch"),
    ),
    case(
        "cond-cidType-pool",
        edit("cidType: default", "cidType: pool"),
        at(5, 10, "cidData", "cidData is required when cidType is gornum or pool"),
    ),
    case(
        "cond-cidType-gornum",
        edit("cidType: default", "cidType: gornum"),
        at(5, 10, "cidData", "cidData is required when cidType is gornum or pool"),
    ),
    case(
        "cond-startType-time",
        edit("startType: manual", "startType: time"),
        at(6, 12, "startMoment", "startMoment is required when startType is time"),
    ),
    case(
        "cond-useTr",
        edit("  recordCall: false\n", USE_TR),
        at(12, 10, "additionalOptions.allowCallTimeFrom", "required when useTr is true"),
        at(12, 10, "additionalOptions.allowCallTimeTo", "required when useTr is true"),
    ),
    case(
        "cond-recordCall",
        edit("recordCall: false", "recordCall: true"),
        at(11, 15, "additionalOptions.recTrimLeft", "required when recordCall is true"),
    ),
    case(
        "cond-detectRobot",
        edit("  recordCall: false\n", "  recordCall: false\n  detectRobot: true\n"),
        at(12, 16, "additionalOptions.detectRobotMode", "required when detectRobot is true"),
    ),
    case(
        "cond-redial",
        edit("busy: {redial: false}", "busy: {redial: true}"),
        at(14, 18, "redialStrategyOptions.busy.time", "time is required when redial is true"),
        at(14, 18, "redialStrategyOptions.busy.count", "count is required when redial is true"),
    ),
    case(
        "cond-redial-count-only",
        edit("noAnswer: {redial: false}", "noAnswer: {redial: true, time: 60}"),
        at(15, 22, "redialStrategyOptions.noAnswer.count", "count is required when redial"),
    ),
    case(
        "cond-trigger-in-defaults",
        {"_defaults.yaml": "# shared\nsecondExec: ch\n", "a.yaml": edit("secondExec: end\n", "")},
        at(2, 13, "secondExecData", "required when secondExec is ch", "campaigns/_defaults.yaml"),
    ),
    # --- enums, uuids, dates, times, URLs -----------------------------------------------
    case(
        "enum-top",
        edit("secondExec: end", "secondExec: transfer"),
        at(4, 13, "secondExec", "expected one of 'end', 'ignore' or 'ch', got text 'transfer'"),
    ),
    case(
        "enum-nested",
        edit(
            "  recordCall: false\n",
            "  recordCall: false\n  detectRobot: true\n  detectRobotMode: front\n",
        ),
        at(13, 20, "additionalOptions.detectRobotMode", "expected one of 'back' or 'block'"),
    ),
    case(
        "enum-fixed",
        edit("fullListMethod: reject", "fullListMethod: accept"),
        at(9, 19, "additionalOptions.fullListMethod", "expected one of 'reject'"),
    ),
    case(
        "bad-uuid",
        edit("defaultExecData: 3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70", "defaultExecData: 42-x"),
        at(3, 18, "defaultExecData", "expected a uuid"),
    ),
    case(
        "bad-date",
        edit("startType: manual\n", 'startType: time\nstartMoment: "2030-02-31 10:00"\n'),
        at(7, 14, "startMoment", "2030-02-31 10:00 is not a real date"),
    ),
    case(
        "bad-date-format",
        edit("startType: manual\n", "startType: time\nstartMoment: 2030-06-02T10:00\n"),
        at(7, 14, "startMoment", 'expected a date and time "YYYY-MM-DD hh:mm"'),
    ),
    case(
        "bad-time-of-day",
        edit(
            "  recordCall: false\n",
            USE_TR + '  allowCallTimeFrom: "24:00"\n  allowCallTimeTo: 86400\n',
        ),
        at(13, 22, "additionalOptions.allowCallTimeFrom", "'24:00' is not a time of day"),
        at(14, 20, "additionalOptions.allowCallTimeTo", "must be at most 86399, got 86400"),
    ),
    case(
        "bad-url",
        edit("cps: 1.03\n", "cps: 1.03\nwebhookUrls:\n  - ftp://hooks.example.com/x\n"),
        at(9, 5, "webhookUrls[0]", "expected an http:// or https:// URL"),
    ),
    case(
        "bad-url-object",
        edit("cps: 1.03\n", "cps: 1.03\nwebhookUrls:\n  - url: hooks.example.com\n"),
        at(9, 10, "webhookUrls[0].url", "expected an http:// or https:// URL"),
    ),
    # --- cps out of range ---------------------------------------------------------------
    case("cps-3", edit("cps: 1.03", "cps: 3"), at(7, 6, "cps", CPS_NUMBER)),
    case("cps-1.0", edit("cps: 1.03", "cps: 1.0"), at(7, 6, "cps", CPS_NUMBER)),
    case("cps-1.005", edit("cps: 1.03", "cps: 1.005"), at(7, 6, "cps", CPS_NUMBER)),
    case("cps-100/s", edit("cps: 1.03", 'cps: "100/s"'), at(7, 6, "cps", CPS_TEXT)),
    case("cps-2/60s", edit("cps: 1.03", 'cps: "2/60s"'), at(7, 6, "cps", CPS_TEXT)),
    case("cps-0/s", edit("cps: 1.03", 'cps: "0/s"'), at(7, 6, "cps", CPS_TEXT)),
    case("cps-1/100s", edit("cps: 1.03", "cps: 1/100s"), at(7, 6, "cps", CPS_TEXT)),
    # --- across files -------------------------------------------------------------------
    case(
        "duplicate-name",
        {"a.yaml": VALID_CAMPAIGN, "b/c.yaml": VALID_CAMPAIGN},
        at(1, 7, "name", "also used by campaigns/b/c.yaml"),
        at(1, 7, "name", "also used by campaigns/a.yaml", "campaigns/b/c.yaml"),
    ),
    case(
        # Only the defaults file is reported: the campaign below it, which relies on it for
        # cidType, is not reported as missing a field.
        "broken-defaults",
        {"_defaults.yaml": "cidType: [\n", "a.yaml": NO_CID},
        at(1, 11, "(file)", "invalid YAML", "campaigns/_defaults.yaml"),
    ),
    case(
        "broken-defaults-in-subfolder",
        {"sub/_defaults.yaml": "- a list\n", "sub/a.yaml": NO_CID, "b.yaml": VALID_CAMPAIGN},
        at(1, 1, "(file)", "file must hold one mapping", "campaigns/sub/_defaults.yaml"),
    ),
    case(
        "wrong-value-from-defaults",
        {
            "_defaults.yaml": (
                "# shared\ncidType: defualt\nadditionalOptions:\n  fullListTime: -1\n"
            ),
            "a.yaml": edit("  fullListTime: 30\n", "", NO_CID),
        },
        at(2, 10, "cidType", "got text 'defualt'", "campaigns/_defaults.yaml"),
        at(
            4,
            17,
            "additionalOptions.fullListTime",
            "must be at least 0, got -1",
            "campaigns/_defaults.yaml",
        ),
    ),
    case(
        "moved-not-a-list",
        {"a.yaml": VALID_CAMPAIGN, "_moved.yaml": "from: old\nto: a\n"},
        at(1, 1, "(file)", "file must hold one list", "campaigns/_moved.yaml"),
    ),
    case(
        "moved-item-without-to",
        {"a.yaml": VALID_CAMPAIGN, "_moved.yaml": "- from: old\n"},
        at(1, 3, "[0]", "exactly `from` and `to` keys", "campaigns/_moved.yaml"),
    ),
    case(
        "moved-to-no-file",
        {"a.yaml": VALID_CAMPAIGN, "_moved.yaml": "- from: old\n  to: gone\n"},
        at(2, 7, "[0].to", "no campaign file has the key 'gone'", "campaigns/_moved.yaml"),
    ),
    case(
        "same-key-yaml-and-yml",
        {"a.yaml": VALID_CAMPAIGN, "a.yml": edit("Spring promo", "Other")},
        at(
            1,
            1,
            "(file)",
            "campaign key 'a' is also defined by campaigns/a.yaml",
            "campaigns/a.yml",
        ),
    ),
    case(
        "no-campaigns-folder",
        None,
        at(1, 1, "(folder)", "campaigns folder not found", "campaigns"),
    ),
]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["validate", *args], catch_exceptions=False)


def text_line(e: Expect) -> str:
    path = "" if e.path.startswith("(") else f"{e.path}: "
    return f"{e.file}:{e.line}:{e.col}: error: {path}"


@pytest.mark.parametrize("bad", BAD_INPUT, ids=[c.id for c in BAD_INPUT])
def test_bad_input_is_reported_at_its_line(
    bad: Case, workdir: Path, write_campaigns: WriteFiles
) -> None:
    if bad.files is not None:
        write_campaigns(bad.files)
    before = snapshot(workdir)

    result = run()

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    for expected in bad.problems:
        matching = [line for line in lines if line.startswith(text_line(expected))]
        assert len(matching) == 1, f"no {text_line(expected)!r} line in:\n{result.stderr}"
        assert expected.fragment in matching[0]
    files = len({e.file for e in bad.problems})
    assert lines[-1] == f"error: {len(bad.problems)} problem(s) in {files} file(s)."

    result = run("--format", "json")

    assert result.exit_code == 1
    reported = json.loads(result.stdout)
    assert sorted((p["file"], p["line"], p["column"], p["path"]) for p in reported) == sorted(
        (e.file, e.line, e.col, e.path) for e in bad.problems
    )
    for problem, expected in zip(
        sorted(reported, key=lambda p: (p["file"], p["line"], p["column"], p["path"])),
        sorted(bad.problems, key=lambda e: (e.file, e.line, e.col, e.path)),
        strict=True,
    ):
        assert problem["level"] == "error"
        assert expected.fragment in problem["message"]
    assert snapshot(workdir) == before


ACCEPTED = {
    "bom": b"\xef\xbb\xbf" + VALID_CAMPAIGN.encode(),
    "yaml-1.2-directive": "%YAML 1.2\n---\n" + VALID_CAMPAIGN,
    "octal-looking-int": edit("fullListTime: 30", "fullListTime: 0777"),
    "unquoted-start-moment": edit(
        "startType: manual", "startType: time\nstartMoment: 2030-06-02 10:00"
    ),
    "cps-14/s": edit("cps: 1.03", 'cps: "14/s"'),
    "cps-1/60s": edit("cps: 1.03", "cps: 1/60s"),
    "cps-99/s": edit("cps: 1.03", "cps: 99/s"),
    "cps-1/99s": edit("cps: 1.03", "cps: 1/99s"),
    "cps-0.4": edit("cps: 1.03", "cps: 0.4"),
    "cps-1.99": edit("cps: 1.03", "cps: 1.99"),
    "time-of-day-texts": edit(
        "  recordCall: false\n",
        USE_TR + '  allowCallTimeFrom: "09:00"\n  allowCallTimeTo: "20:30:15"\n',
    ),
    "yaml-1.2-document-markers": "---\n" + VALID_CAMPAIGN + "...\n",
}


@pytest.mark.parametrize("content", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_input(content: str | bytes, write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": content, "_policy.yaml": LENIENT_POLICY})  # 99/s is a policy matter

    result = run()

    assert (result.exit_code, result.stdout, result.stderr) == (0, "1 campaign(s) valid.\n", "")


def test_every_problem_in_every_file(write_campaigns: WriteFiles) -> None:
    write_campaigns(
        {
            "a.yaml": "name: [\n",
            "b.yaml": edit("secondExec: end", "secondExec: transfer"),
            "c/d.yaml": edit("cps: 1.03", "cps: 7").replace("Spring promo", "Other"),
            "ok.yaml": edit("Spring promo", "Fine"),
        }
    )

    result = run()

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert [line.split(": error:")[0] for line in lines[:-1]] == [
        "campaigns/a.yaml:1:8",
        "campaigns/b.yaml:4:13",
        "campaigns/c/d.yaml:7:6",
    ]
    assert lines[-1] == "error: 3 problem(s) in 3 file(s)."


def test_several_problems_in_one_file_are_all_reported(write_campaigns: WriteFiles) -> None:
    content = edit("secondExec: end", "secondExec: ch", edit("cps: 1.03", "cps: 5"))
    write_campaigns({"a.yaml": edit("fullListTime: 30", "fullListTime: x", content)})

    result = run("--format", "json")

    assert result.exit_code == 1
    assert [(p["line"], p["path"]) for p in json.loads(result.stdout)] == [
        (4, "secondExecData"),
        (7, "cps"),
        (10, "additionalOptions.fullListTime"),
    ]


def test_json_format(write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": edit("secondExec: end", "secondExec: ch")})

    result = run("--format", "json")

    assert result.exit_code == 1
    assert result.stderr == ""
    assert json.loads(result.stdout) == [
        {
            "file": A,
            "line": 4,
            "column": 13,
            "path": "secondExecData",
            "level": "error",
            "message": "secondExecData is required when secondExec is ch; set secondExecData",
        }
    ]


def test_json_format_clean_run_prints_an_empty_list(write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": VALID_CAMPAIGN})

    result = run("--format", "json")

    assert (result.exit_code, json.loads(result.stdout), result.stderr) == (0, [], "")


def test_github_format(write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": edit("secondExec: end", "secondExec: ch"), "b.yaml": "name: [\n"})

    result = run("--format", "github")

    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"::error file={A},line=4,col=13::secondExecData: secondExecData is required when "
        "secondExec is ch; set secondExecData",
        "::error file=campaigns/b.yaml,line=1,col=8::invalid YAML: did not find expected node "
        "content (while parsing a flow node)",
    ]
    assert result.stderr == ""


def test_text_run_under_github_actions_also_prints_annotations(
    write_campaigns: WriteFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_campaigns({"a.yaml": edit("secondExec: end", "secondExec: ch")})
    monkeypatch.setenv("GITHUB_ACTIONS", "true")

    result = run()

    assert result.exit_code == 1
    assert result.stderr.startswith(f"{A}:4:13: error: secondExecData: ")
    assert result.stdout.startswith(f"::error file={A},line=4,col=13::secondExecData: ")


def test_no_annotations_outside_github_actions(write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": edit("secondExec: end", "secondExec: ch")})

    result = run()

    assert "::error" not in result.output


WITH_SECRETS = edit(
    "cps: 1.03\n",
    "cps: 1.03\nwebhookUrls:\n  - https://hooks.example.com/plain\n"
    "  - https://ops:hunter2@hooks.example.com/x\n"
    "  - url: https://hooks.example.com/y?token=tok123\n",
)


def test_credentials_in_webhook_urls_warn_but_pass(write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": WITH_SECRETS})

    result = run()

    assert result.exit_code == 0
    assert result.stdout == "1 campaign(s) valid.\n"
    lines = result.stderr.splitlines()
    assert [line.split(": this URL")[0] for line in lines] == [
        f"{A}:10:5: warning: webhookUrls[1]",
        f"{A}:11:10: warning: webhookUrls[2].url",
    ]
    assert all("carries a credential" in line for line in lines)
    assert "hunter2" not in result.output
    assert "tok123" not in result.output


def test_secrets_after_a_semicolon_or_in_the_fragment_warn_and_are_masked_in_the_plan(
    write_campaigns: WriteFiles,
) -> None:
    urls = (
        "cps: 1.03\nwebhookUrls:\n  - https://h.example/a?q=1;token=tok123\n"
        "  - https://h.example/b#access_token=tok456&state=1\n"
        "  - https://h.example/c?q=a%26token%3Dabc\n"
    )
    write_campaigns({"a.yaml": edit("cps: 1.03\n", urls)})

    checked = run()
    planned = CliRunner().invoke(cli, ["plan", "--format", "markdown"], catch_exceptions=False)

    assert checked.exit_code == 0
    assert [line.split(": this URL")[0] for line in checked.stderr.splitlines()] == [
        f"{A}:9:5: warning: webhookUrls[0]",
        f"{A}:10:5: warning: webhookUrls[1]",
    ]
    assert planned.exit_code == 0
    assert "https://h.example/a?q=1;token=***" in planned.stdout
    assert "https://h.example/b#access_token=***&state=1" in planned.stdout
    assert "https://h.example/c?q=a%26token%3Dabc" in planned.stdout  # as written
    assert "tok123" not in planned.output and "tok456" not in planned.output


def test_warnings_in_json_and_github(write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": WITH_SECRETS})

    as_json = run("--format", "json")
    as_github = run("--format", "github")

    assert as_json.exit_code == as_github.exit_code == 0
    assert [(p["level"], p["line"]) for p in json.loads(as_json.stdout)] == [
        ("warning", 10),
        ("warning", 11),
    ]
    assert as_github.stdout.startswith(f"::warning file={A},line=10,col=5::webhookUrls[1]: ")


def test_warnings_do_not_hide_errors(write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": edit("cps: 1.03\n", "cps: 0\n", WITH_SECRETS)})

    result = run()

    assert result.exit_code == 1
    assert "warning: webhookUrls[1]" in result.stderr
    assert f"{A}:7:6: error: cps: " in result.stderr
    assert result.stderr.splitlines()[-1] == "error: 1 problem(s) in 1 file(s)."


def test_clean_run(write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": VALID_CAMPAIGN, "b/c.yaml": edit("Spring promo", "Autumn")})

    result = run()

    assert (result.exit_code, result.stdout, result.stderr) == (0, "2 campaign(s) valid.\n", "")


def test_campaigns_option_and_env(
    workdir: Path, write_campaigns: WriteFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_campaigns({"a.yaml": VALID_CAMPAIGN})
    root.rename(workdir / "elsewhere")

    assert run().exit_code == 1
    assert run("--campaigns", "elsewhere").exit_code == 0
    monkeypatch.setenv("RECONCILE_CAMPAIGNS", "elsewhere")
    assert run().exit_code == 0


def test_example_campaigns_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).parent.parent)

    result = run()

    assert (result.exit_code, result.stdout, result.stderr) == (0, "5 campaign(s) valid.\n", "")


def exit_code_of_main(argv: list[str]) -> int | str | None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return exited.value.code


@pytest.mark.parametrize(
    "argv",
    [["validate", "--format", "xml"], ["validate", "--no-such-option"], ["no-such-command"]],
    ids=["bad-choice", "unknown-option", "unknown-command"],
)
def test_usage_errors_exit_1(
    argv: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert exit_code_of_main(argv) == 1
    err = capsys.readouterr().err
    assert "Usage:" in err or "Error:" in err


def test_main_exit_codes(write_campaigns: WriteFiles) -> None:
    root = write_campaigns({"a.yaml": VALID_CAMPAIGN})
    assert exit_code_of_main(["validate"]) == 0
    (root / "b.yaml").write_text("name: [\n", encoding="utf-8")
    assert exit_code_of_main(["validate"]) == 1


# --- files named on the command line (pre-commit passes the staged ones; issue 15) ---------

DEFAULTS_FIELDS = (
    "defaultExec: robot\ndefaultExecData: 3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70\n"
    "secondExec: end\ncidType: default\nstartType: manual\n"
)
SHORT = VALID_CAMPAIGN.replace(DEFAULTS_FIELDS, "")  # the rest comes from _defaults.yaml


@pytest.fixture
def named_repo(write_campaigns: WriteFiles) -> Path:
    """`ok.yaml`, a broken `bad.yaml`, and `team/` whose two campaigns use its defaults."""
    return write_campaigns(
        {
            "ok.yaml": edit("name: Spring promo", "name: OK"),
            "bad.yaml": edit("name: Spring promo", "name: Bad") + "cpss: 3\n",
            "team/_defaults.yaml": DEFAULTS_FIELDS,
            "team/one.yaml": SHORT.replace("Spring promo", "One"),
            "team/two.yaml": SHORT.replace("Spring promo", "Two"),
        }
    )


def test_named_files_are_checked_and_others_are_not_reported(named_repo: Path) -> None:
    result = run("campaigns/ok.yaml", "campaigns/team/one.yaml")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "2 file(s) checked: 2 campaign(s) valid.\n",
        "",
    )
    bad = run("campaigns/bad.yaml", "campaigns/ok.yaml")
    assert bad.exit_code == 1
    assert bad.stderr.splitlines() == [
        "campaigns/bad.yaml:19:1: error: cpss: unknown field cpss (did you mean cps?); unknown "
        "fields are never dropped silently",
        "error: 1 problem(s) in 1 file(s).",
    ]


def test_a_named_defaults_file_checks_every_campaign_below_it(named_repo: Path) -> None:
    two = named_repo / "team" / "two.yaml"
    two.write_text(two.read_text("utf-8") + "cpss: 3\n", "utf-8")
    result = run("campaigns/team/_defaults.yaml")
    assert result.exit_code == 1
    assert result.stderr.startswith("campaigns/team/two.yaml:14:1: error: cpss: unknown field")
    assert run("campaigns/team/one.yaml").exit_code == 0  # two.yaml is not one.yaml's concern
    # A campaign named alone is checked with the defaults it uses.
    (named_repo / "team" / "_defaults.yaml").write_text(
        DEFAULTS_FIELDS.replace("secondExec: end", "secondExec: ch"), encoding="utf-8"
    )
    one = run("campaigns/team/one.yaml")
    assert one.exit_code == 1
    assert one.stderr.splitlines() == [
        "campaigns/team/_defaults.yaml:3:13: error: secondExecData: secondExecData is required "
        "when secondExec is ch; set secondExecData",
        "error: 1 problem(s) in 1 file(s).",
    ]


def test_names_stay_unique_across_all_campaigns(named_repo: Path) -> None:
    (named_repo / "team" / "two.yaml").write_text(SHORT.replace("Spring promo", "OK"), "utf-8")
    result = run("campaigns/team/two.yaml")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "campaigns/team/two.yaml:1:7: error: name: name 'OK' is also used by campaigns/ok.yaml; "
        "names must be unique (they find an in-doubt create again on the platform)",
        "error: 1 problem(s) in 1 file(s).",
    ]


def test_a_named_policy_checks_every_campaign(named_repo: Path) -> None:
    (named_repo / "_policy.yaml").write_text('maxRate: "1/s"\nlevel: error\n', "utf-8")
    result = run("campaigns/_policy.yaml")
    assert result.exit_code == 1
    flagged = {line.split(":")[0] for line in result.stderr.splitlines()[:-1]}
    assert {
        "campaigns/ok.yaml",
        "campaigns/team/one.yaml",
        "campaigns/team/two.yaml",
    } <= flagged  # cps 3/s everywhere; bad.yaml's own error is reported too
    assert run("campaigns/_policy.yaml", "--format", "json").exit_code == 1


def test_paths_that_name_nothing_to_check_are_errors(named_repo: Path, workdir: Path) -> None:
    (workdir / "README.md").write_text("x\n", encoding="utf-8")
    (named_repo / "team" / "_moved.yaml").write_text("- {from: a, to: b}\n", "utf-8")
    result = run("README.md", "campaigns/team/_moved.yaml", "campaigns/team", "campaigns/x.yml")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "README.md:1:1: error: not below the campaigns folder campaigns/, so it is not checked; "
        "pass that folder with --campaigns DIR",
        "campaigns/team:1:1: error: a folder: name the files in it, or name none to check the "
        "whole campaigns folder",
        "campaigns/team/_moved.yaml:1:1: error: not read by reconcile, so not checked: it is "
        "not a campaign file, _defaults.yaml, _moved.yaml or _policy.yaml (names and folders "
        "starting with _ or . are skipped)",
        "campaigns/x.yml:1:1: error: no such file",
        "error: 4 problem(s) in 4 file(s).",
    ]


def test_a_named_moves_file_and_a_file_of_another_campaigns_folder(
    named_repo: Path, workdir: Path
) -> None:
    (named_repo / "_moved.yaml").write_text("- {from: gone, to: nowhere}\n", "utf-8")
    moved = run("campaigns/_moved.yaml")
    assert moved.exit_code == 1
    assert moved.stderr.startswith("campaigns/_moved.yaml:1:20: error: [0].to: no campaign file")
    other = workdir / "other"
    other.mkdir()
    (other / "x.yaml").write_text(edit("name: Spring promo", "name: X"), "utf-8")
    assert run("--campaigns", "other", "other/x.yaml").exit_code == 0
    absolute = run("--campaigns", str(other), str(other / "x.yaml"))
    assert (absolute.exit_code, absolute.stdout) == (0, "1 file(s) checked: 1 campaign(s) valid.\n")
