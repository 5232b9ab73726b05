"""`reconcile fmt`: API key order, comments and styles kept, idempotent, data unchanged."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from conftest import VALID_CAMPAIGN, WriteFiles, snapshot

from reconciler.config.fmt import FmtError, FmtResult, format_files, format_text, write_results
from reconciler.config.yamlio import load_bytes

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "campaigns").rglob("*.yaml"))
# Example files that are not canonical yet (campaigns/ is not fmt's to edit): name -> why.
NOT_CANONICAL: dict[str, str] = {}

SHUFFLED = """\
# yaml-language-server: $schema=../schemas/campaign-file.schema.json
# Spring promotion, shuffled by hand.

# the pace: three calls a second
cps: "3/s"  # 1.03 on the wire
redialStrategyOptions:
  # congestion: retry soon
  congestion: {count: 3, time: 300, redial: true}
  answerNoList: {redial: false}
  redialStrategyEn: true  # master switch
  busy:
    count: 3
    # ten minutes
    time: 600
    redial: true
  noAnswer: {redial: true, time: 3600, count: 2}
  answerMash: {redial: false}
additionalOptions:
  detectRobot: true
  allowCallTimeTo: '20:00'  # evening
  # morning
  allowCallTimeFrom: '09:00'
  useTr: true
  fullListTime: 30
  recordCall: false
  fullListMethod: reject
# who calls
defaultExecData: 3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70
startType: manual
name: Spring promo  # unique
cidType: default
secondExec: end
defaultExec: robot
"""

CANONICAL = """\
# yaml-language-server: $schema=../schemas/campaign-file.schema.json
# Spring promotion, shuffled by hand.

name: Spring promo  # unique
defaultExec: robot
# who calls
defaultExecData: 3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70
secondExec: end
cidType: default
startType: manual
# the pace: three calls a second
cps: "3/s"  # 1.03 on the wire
additionalOptions:
  fullListMethod: reject
  fullListTime: 30
  useTr: true
  # morning
  allowCallTimeFrom: '09:00'
  allowCallTimeTo: '20:00'  # evening
  recordCall: false
  detectRobot: true
redialStrategyOptions:
  redialStrategyEn: true  # master switch
  busy:
    redial: true
    # ten minutes
    time: 600
    count: 3
  noAnswer: {redial: true, time: 3600, count: 2}
  answerMash: {redial: false}
  # congestion: retry soon
  congestion: {redial: true, time: 300, count: 3}
  answerNoList: {redial: false}
"""

WEBHOOKS = """\
name: x
webhookUrls:
  # the CRM
  - delay: 5  # seconds
    # where
    url: https://crm.example.com/hook
    events:
      CALL_ENDED: {value: true, name: CALL_ENDED}
  - https://b.example.com  # plain
"""

WEBHOOKS_CANONICAL = """\
name: x
webhookUrls:
  # the CRM
  # where
  - url: https://crm.example.com/hook
    delay: 5  # seconds
    events:
      CALL_ENDED: {name: CALL_ENDED, value: true}
  - https://b.example.com  # plain
"""


def data(text: str) -> object:
    doc = load_bytes(text.encode("utf-8"), "f.yaml")
    assert not doc.problems, doc.problems
    return doc.data


def shuffled(text: str, rnd: random.Random) -> str:
    """`text` with top-level blocks, nested lines and flow-mapping entries in random order.

    Fits the example files: a header, then one line per key except nested block mappings
    (one line per child) and lists (left in order).
    """
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    blocks: list[list[str]] = []
    for line in lines[start:]:
        if line.startswith(" "):
            blocks[-1].append(line)
        else:
            blocks.append([line])
    for block in blocks:
        children = block[1:]
        if children and not children[0].lstrip().startswith("-"):
            rnd.shuffle(children)
        block[1:] = children
    rnd.shuffle(blocks)

    def flow(match: re.Match[str]) -> str:
        entries = match.group(1).split(", ")
        rnd.shuffle(entries)
        return "{" + ", ".join(entries) + "}"

    body = "\n".join(line for block in blocks for line in block)
    return "\n".join(lines[:start]) + "\n" + re.sub(r"\{([^}]*)\}", flow, body) + "\n"


def test_shuffled_file_comes_out_in_api_order_with_comments_at_their_keys() -> None:
    assert format_text(SHUFFLED) == CANONICAL


def test_modeline_stays_on_line_one_and_quotes_and_flow_style_are_kept() -> None:
    out = format_text(SHUFFLED).splitlines()
    assert out[0].startswith("# yaml-language-server: $schema=")
    assert 'cps: "3/s"  # 1.03 on the wire' in out
    assert "  allowCallTimeFrom: '09:00'" in out
    assert "  congestion: {redial: true, time: 300, count: 3}" in out


def test_webhook_objects_are_sorted_and_items_keep_their_order() -> None:
    assert format_text(WEBHOOKS) == WEBHOOKS_CANONICAL
    assert format_text(WEBHOOKS_CANONICAL) == WEBHOOKS_CANONICAL


def test_unknown_keys_follow_the_known_ones_in_their_own_order() -> None:
    text = "zeta: 1\nname: x\nalpha: 2\nadditionalOptions:\n  beta: 1\n  recordCall: true\n"
    assert format_text(text) == (
        "name: x\nadditionalOptions:\n  recordCall: true\n  beta: 1\nzeta: 1\nalpha: 2\n"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a comment block ending in a blank line is the header; what follows moves with its key
        (
            "# head\n\n# about cps\ncps: 1.02\nname: x\n",
            "# head\n\nname: x\n# about cps\ncps: 1.02\n",
        ),
        # with no blank line, the whole block is the header
        ("# head\n# more\ncps: 1.02\nname: x\n", "# head\n# more\nname: x\ncps: 1.02\n"),
        # comments indented into a block stay at its end; the rest go with the next key
        (
            "additionalOptions:\n  recordCall: true\n  # end of options\n# about name\nname: x\n",
            "# about name\nname: x\nadditionalOptions:\n  recordCall: true\n  # end of options\n",
        ),
        # comments after flow and empty values (ruamel files them elsewhere)
        (
            "taskComment:\n# c1\ncps: {}\n# c2\nname: x\n",
            "# c2\nname: x\n# c1\ncps: {}\ntaskComment:\n",
        ),
        # re-indentation: mappings 2, lists 4 with the dash at 2
        (
            "name: x\nwebhookUrls:\n- https://a\nadditionalOptions:\n    # c\n    useTr: true\n",
            "name: x\nwebhookUrls:\n  - https://a\nadditionalOptions:\n  # c\n  useTr: true\n",
        ),
        # one trailing newline; `---`/`%YAML` dropped, the comments around them kept
        ("%YAML 1.2\n# c\n--- # d\nname: x\n\n\n", "# c\n# d\nname: x\n"),
        ("name: x\n...\n# bye", "name: x\n# bye\n"),
        ("\ufeffname: x\r\ncps: 1.02\r\n", "name: x\ncps: 1.02\n"),
        # long lines are not wrapped; block texts are kept, `|+` included
        ("name: " + "word " * 40 + "end\n", "name: " + "word " * 40 + "end\n"),
        (
            "taskComment: |+\n  keep\n\n# c\nname: x\n",
            "# c\nname: x\ntaskComment: |+\n  keep\n\n...\n",  # ruamel ends a last `|+` so
        ),
    ],
)
def test_canonical_form(text: str, expected: str) -> None:
    assert format_text(text) == expected
    assert format_text(expected) == expected
    assert data(expected) == data(text)


def test_a_comment_ruamel_would_drop_is_refused_with_its_line() -> None:
    text = "name: x\nredialStrategyOptions:\n  busy: {redial: true,  # why\n    count: 1}\n"
    with pytest.raises(FmtError, match="cannot keep this comment") as caught:
        format_text(text)
    assert caught.value.line == 3


def test_broken_text_is_refused() -> None:
    with pytest.raises(FmtError) as caught:
        format_text("name: x\nname: y\n")
    assert caught.value.line == 2


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_example_campaigns_are_canonical(path: Path) -> None:
    if path.name in NOT_CANONICAL:
        pytest.xfail(NOT_CANONICAL[path.name])
    text = path.read_text(encoding="utf-8")
    assert format_text(text) == text


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_shuffled_examples_format_like_the_originals_with_the_same_data(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    canonical = format_text(text)
    assert data(canonical) == data(text)
    assert format_text(canonical) == canonical
    for seed in range(8):
        variant = shuffled(text, random.Random(seed))
        assert data(variant) == data(text)
        out = format_text(variant)
        assert out == canonical, f"seed {seed}"
        assert data(out) == data(text)


FIELDS = {
    "": ["name", "cps", "webhookUrls", "additionalOptions", "redialStrategyOptions", "zExtra"],
    "additionalOptions": ["fullListMethod", "useTr", "allowCallTimeFrom", "recordCall", "x"],
    "redialStrategyOptions": ["redialStrategyEn", "busy", "noAnswer"],
    "busy": ["redial", "time", "count"],
    "noAnswer": ["redial", "time", "count"],
    "[]": ["url", "partialResults", "delay"],
}
SCALARS = ["x", "1.02", "'09:00'", '"3/s"', ""]


def random_campaign(rnd: random.Random) -> str:
    """A campaign with comments tagged by key path: `# lead:P` above P, `# eol:P` after it."""
    out = ["# modeline", ""]

    def mapping(name: str, prefix: str, ind: int, dash: bool = False) -> None:
        keys = rnd.sample(FIELDS[name], rnd.randint(1, len(FIELDS[name])))
        for n, key in enumerate(keys):
            path = f"{prefix}.{key}".lstrip(".")
            if rnd.random() < 0.3:
                out.append("")
            if rnd.random() < 0.5 and not (dash and n == 0):
                out.append(" " * max(0, ind - rnd.choice([0, 0, 1])) + f"# lead:{path}")
            eol = f"  # eol:{path}" if rnd.random() < 0.4 else ""
            at = " " * (ind - 2) + "- " if dash and n == 0 else " " * ind
            if key in FIELDS and key != "webhookUrls" and rnd.random() < 0.5:
                out.append(f"{at}{key}:{eol}")
                mapping(key, path, ind + rnd.choice([2, 4]))
            elif key in FIELDS:
                entries = rnd.sample(FIELDS[key], len(FIELDS[key]))
                out.append(f"{at}{key}: {{{', '.join(f'{e}: 1' for e in entries)}}}{eol}")
            elif key == "webhookUrls":
                out.append(f"{at}{key}:{eol}")
                for j in range(rnd.randint(1, 3)):
                    if rnd.random() < 0.5:
                        out.append(" " * ind + f"- https://h{j}.example.com")
                    else:
                        mapping("[]", f"{path}[{j}]", ind + 2, dash=True)
            else:
                out.append(f"{at}{key}: {rnd.choice(SCALARS)}{eol}")
        if rnd.random() < 0.3:
            out.append(" " * ind + f"# tail:{prefix}")

    mapping("", "", 0)
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("seed", range(100))
def test_random_campaigns_keep_every_comment_at_its_key(seed: int) -> None:
    text = random_campaign(random.Random(seed))
    out = format_text(text)
    assert format_text(out) == out
    assert data(out) == data(text)
    lines = out.splitlines()
    for i, line in enumerate(lines):
        tag = re.search(r"# (lead|eol):(\S+)", line)
        if not tag:
            continue
        key = re.split(r"[.\]]", tag.group(2))[-1]
        if tag.group(1) == "eol":
            target = line
        else:
            target = next(x for x in lines[i + 1 :] if x.strip() and not x.lstrip().startswith("#"))
        assert re.match(rf"\s*(- )?{key}:", target), (tag.group(0), target, out)


def result(results: list[FmtResult], name: str) -> FmtResult:
    return next(r for r in results if r.path.name == name)


def test_format_files_covers_campaigns_and_every_defaults_file(
    write_campaigns: WriteFiles,
) -> None:
    root = write_campaigns(
        {
            "a.yaml": VALID_CAMPAIGN,
            "team/_defaults.yaml": "cps: 1.02\ndefaultExec: robot\n",
            "team/b.yaml": "cps: 1.02\nname: b\n",
            "empty/sub/_defaults.yml": "cps: 1.02\nname: d\n",
            "_moved.yaml": "- {to: a, from: b}\n",
            "_drafts/c.yaml": "cps: 1.02\nname: c\n",
        }
    )
    results = format_files(root)
    assert [r.file for r in results] == [
        "campaigns/a.yaml",
        "campaigns/empty/sub/_defaults.yml",
        "campaigns/team/_defaults.yaml",
        "campaigns/team/b.yaml",
    ]
    assert [r.file for r in results if r.changed] == [
        "campaigns/empty/sub/_defaults.yml",
        "campaigns/team/_defaults.yaml",
        "campaigns/team/b.yaml",
    ]
    assert result(results, "_defaults.yaml").formatted == "defaultExec: robot\ncps: 1.02\n"
    assert all(r.problem is None for r in results)


def test_write_results_rewrites_only_changed_files(write_campaigns: WriteFiles) -> None:
    root = write_campaigns({"a.yaml": VALID_CAMPAIGN, "b.yaml": SHUFFLED})
    (root / "b.yaml").chmod(0o640)
    before = snapshot(root)
    written, failed = write_results(format_files(root))
    assert (written, failed) == ([root / "b.yaml"], [])
    after = snapshot(root)
    assert after["a.yaml"] == before["a.yaml"]
    assert sorted(after) == ["a.yaml", "b.yaml"]  # no temporary file left behind
    assert (root / "b.yaml").read_text(encoding="utf-8") == CANONICAL
    assert (root / "b.yaml").stat().st_mode & 0o777 == 0o640
    assert write_results(format_files(root)) == ([], [])


@pytest.mark.parametrize("header", ["|", ">", "|+", ">+", "|-"])
def test_a_block_text_at_the_end_without_a_line_break_keeps_its_meaning(
    header: str, write_campaigns: WriteFiles
) -> None:
    # The end of the file ends the last line (YAML test suite L24T, JEF9): `|` over
    # `  Onboarding` is "Onboarding\n"; fmt once refused such a file (ruamel read
    # "Onboarding"), and must never write a file that reads otherwise.
    text = VALID_CAMPAIGN + f"taskComment: {header}\n  Onboarding"
    root = write_campaigns({"a.yaml": text})
    before = load_bytes(text.encode(), "a.yaml").data

    written, failed = write_results(format_files(root))

    assert (written, failed) == ([root / "a.yaml"], [])
    after = (root / "a.yaml").read_text(encoding="utf-8")
    assert after.endswith("\n") and load_bytes(after.encode(), "a.yaml").data == before
    assert before["taskComment"] == ("Onboarding" if header == "|-" else "Onboarding\n")


def test_a_broken_file_is_reported_and_never_rewritten(write_campaigns: WriteFiles) -> None:
    flow_comment = "name: x\nredialStrategyOptions:\n  busy: {redial: true,  # why\n    count: 1}\n"
    root = write_campaigns(
        {"bad.yaml": "cps: 1\nname: [x\n", "flow.yaml": flow_comment, "ok.yaml": SHUFFLED}
    )
    before = snapshot(root)
    results = format_files(root)
    bad, flow = result(results, "bad.yaml"), result(results, "flow.yaml")
    assert bad.formatted is None and bad.problem is not None
    assert bad.problem.location.file == "campaigns/bad.yaml"
    assert "invalid YAML" in bad.problem.message
    assert flow.formatted is None and flow.problem is not None
    assert (flow.problem.location.file, flow.problem.location.line) == ("campaigns/flow.yaml", 3)
    assert write_results(results) == ([root / "ok.yaml"], [])
    after = snapshot(root)
    assert after["bad.yaml"] == before["bad.yaml"]
    assert after["flow.yaml"] == before["flow.yaml"]


def test_a_missing_campaigns_folder_is_a_problem(workdir: Path) -> None:
    (only,) = format_files(workdir / "nowhere")
    assert only.problem is not None and "not found" in only.problem.message


def test_cli_fmt_check_names_files_and_fmt_rewrites_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from reconciler.cli.main import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "campaigns").mkdir()
    canonical = "# keep me\nname: A  # the name\ncps: 1.03\n"
    (tmp_path / "campaigns/a.yaml").write_text("cps: 1.03\n# keep me\nname: A  # the name\n")
    (tmp_path / "campaigns/b.yaml").write_text(canonical)
    runner = CliRunner()
    check = runner.invoke(cli, ["fmt", "--check"])
    assert check.exit_code == 1
    assert "campaigns/a.yaml: would be reformatted" in check.stderr
    assert "b.yaml" not in check.stderr
    assert (tmp_path / "campaigns/a.yaml").read_text().startswith("cps:")  # --check writes nothing
    done = runner.invoke(cli, ["fmt"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "campaigns/a.yaml").read_text() == canonical
    assert runner.invoke(cli, ["fmt", "--check"]).exit_code == 0


# --- files named on the command line, line endings, --diff (issue 15) ----------------------


A_UNSORTED = "cps: 1.03\n# keep me\nname: A  # the name\n"
A_SORTED = "# keep me\nname: A  # the name\ncps: 1.03\n"


def fmt_cli(*args: str) -> tuple[int, str, str]:
    from click.testing import CliRunner

    from reconciler.cli.main import main

    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        try:
            main(["fmt", *args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue().decode(), err.getvalue().decode()


def test_fmt_leaves_a_file_with_lone_carriage_returns_as_it_is(
    write_campaigns: WriteFiles,
) -> None:
    """CR line ends were rewritten to LF with stray CRs left behind, so `fmt --check` failed
    again after `fmt`; a lone CR is now a problem of the file, which fmt never rewrites."""
    root = write_campaigns(
        {"cr.yaml": A_UNSORTED.replace("\n", "\r"), "hidden.yaml": "cps: 1.5\r# cps: 1\nname: A\n"}
    )
    before = snapshot(root)
    for args in ((), ("--check",), ("--diff",)):
        code, out, err = fmt_cli(*args)
        assert code == 1 and out == "", args
        assert [line.split(": error: ")[0] for line in err.splitlines()] == [
            "campaigns/cr.yaml:1:10",
            "campaigns/hidden.yaml:1:9",
        ], err
        assert "a carriage return (CR) that is not part of a CRLF line end" in err
    assert snapshot(root) == before


def test_fmt_keeps_crlf_line_endings_and_a_bom(write_campaigns: WriteFiles) -> None:
    root = write_campaigns(
        {
            "crlf.yaml": A_UNSORTED.replace("\n", "\r\n").encode(),
            "bom.yaml": b"\xef\xbb\xbf" + A_UNSORTED.encode(),
            "canonical-crlf.yaml": b"\xef\xbb\xbf" + A_SORTED.replace("\n", "\r\n").encode(),
        }
    )
    code, out, err = fmt_cli()
    assert (code, err) == (0, "")
    assert out == "reformatted campaigns/bom.yaml\nreformatted campaigns/crlf.yaml\n"
    assert (root / "crlf.yaml").read_bytes() == A_SORTED.replace("\n", "\r\n").encode()
    assert (root / "bom.yaml").read_bytes() == b"\xef\xbb\xbf" + A_SORTED.encode()
    assert fmt_cli("--check") == (0, "3 file(s) already canonical.\n", "")


def test_fmt_formats_only_the_files_named(write_campaigns: WriteFiles) -> None:
    root = write_campaigns(
        {
            "a.yaml": A_UNSORTED,
            "b.yaml": A_UNSORTED.replace("name: A", "name: B"),
            "_moved.yaml": "- {from: x, to: a}\n",
            "_policy.yaml": "maxRate: 10/s\n",
        }
    )
    named = ("campaigns/a.yaml", "campaigns/_moved.yaml", "campaigns/_policy.yaml")
    code, out, err = fmt_cli(*named)
    assert (code, out, err) == (0, "reformatted campaigns/a.yaml\n", "")
    assert (root / "a.yaml").read_text() == A_SORTED
    assert (root / "b.yaml").read_text().startswith("cps:")  # not named: left alone
    assert (root / "_moved.yaml").read_text() == "- {from: x, to: a}\n"


def test_fmt_refuses_paths_it_does_not_format(write_campaigns: WriteFiles, workdir: Path) -> None:
    write_campaigns({"a.yaml": A_UNSORTED, "_drafts/x.yaml": A_UNSORTED, "notes.txt": "x"})
    (workdir / "elsewhere.yaml").write_text(A_UNSORTED)
    code, out, err = fmt_cli(
        "elsewhere.yaml", "campaigns/_drafts/x.yaml", "campaigns/notes.txt", "campaigns/no.yaml"
    )
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "campaigns/_drafts/x.yaml:1:1: error: not read by reconcile, so not checked: it is not "
        "a campaign file, _defaults.yaml, _moved.yaml or _policy.yaml (names and folders "
        "starting with _ or . are skipped)",
        "campaigns/no.yaml:1:1: error: no such file",
        "campaigns/notes.txt:1:1: error: not a campaign file: only .yaml and .yml files are read "
        "below the campaigns folder",
        "elsewhere.yaml:1:1: error: not below the campaigns folder campaigns/, so it is not "
        "checked; pass that folder with --campaigns DIR",
    ]
    assert (workdir / "campaigns" / "a.yaml").read_text() == A_UNSORTED  # nothing written


def test_fmt_diff_prints_what_would_change_and_writes_nothing(
    write_campaigns: WriteFiles,
) -> None:
    root = write_campaigns({"a.yaml": A_UNSORTED.replace("\n", "\r\n"), "b.yaml": A_SORTED})
    before = snapshot(root)
    diff = [
        "--- a/campaigns/a.yaml",
        "+++ b/campaigns/a.yaml",
        "@@ -1,3 +1,3 @@",
        "-cps: 1.03",
        " # keep me",
        " name: A  # the name",
        "+cps: 1.03",
    ]
    code, out, err = fmt_cli("--diff")
    assert (code, out.splitlines(), err) == (0, diff, "")
    code, out, err = fmt_cli("--diff", "--check", "campaigns/a.yaml")
    assert (code, out.splitlines()) == (1, diff)
    assert err == (
        "campaigns/a.yaml: would be reformatted (run `reconcile fmt campaigns/a.yaml`)\n"
    )
    assert snapshot(root) == before


def test_fmt_prints_its_problems_in_the_order_validate_does(write_campaigns: WriteFiles) -> None:
    from click.testing import CliRunner

    from reconciler.cli.main import cli

    write_campaigns({"a.yaml": "name: [\n", "b.YAML": VALID_CAMPAIGN, "c.yaml": "- x\n"})
    runner = CliRunner()

    validated = runner.invoke(cli, ["validate"]).stderr.splitlines()[:-1]  # less the summary
    formatted = runner.invoke(cli, ["fmt", "--check"]).stderr.splitlines()

    assert [line.split(":")[0] for line in validated] == [
        "campaigns/a.yaml",
        "campaigns/b.YAML",
        "campaigns/c.yaml",
    ]
    assert formatted == validated
