"""The calling policy through the commands: `validate`, `plan` (text, markdown, json, GitHub),
saved plans, `schema`, and the README's example, read from README.md so the two cannot drift.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import WriteFiles
from inproc import Result, invoke
from jsonschema import Draft7Validator

from reconciler.config import policy
from reconciler.config.campaign import Campaign, fingerprint
from reconciler.config.policy_file import SCHEMA_FILE, load_policy
from reconciler.errors import Level, Location, Problem
from reconciler.plan.plan import PlanOptions, make_plan
from reconciler.plan.render.common import banner
from reconciler.sandbox import Sandbox, SandboxOptions
from reconciler.state.model import State

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run `reconcile ARGS` through `main`, as the console script does."""
    return invoke(args, env)


def timed(name: str, moment: str = "2099-06-02 10:00", **lines: str) -> str:
    """A valid campaign with a calling window; keyword arguments replace whole lines."""
    text = f"""\
name: {name}
defaultExec: robot
defaultExecData: 3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70
secondExec: end
cidType: default
startType: time
startMoment: "{moment}"
cps: "3/s"
additionalOptions:
  fullListMethod: reject
  fullListTime: 30
  recordCall: false
  useTr: true
  allowCallTimeFrom: "09:00"
  allowCallTimeTo: "20:00"
redialStrategyOptions:
  redialStrategyEn: false
  busy: {{redial: false}}
  noAnswer: {{redial: false}}
  answerMash: {{redial: false}}
  congestion: {{redial: false}}
  answerNoList: {{redial: false}}
"""
    for key, value in lines.items():
        text = re.sub(rf"^( *){key}: .*$", rf"\g<1>{key}: {value}", text, count=1, flags=re.M)
    return text


LATE_NIGHT = (
    "campaigns/night.yaml:15:20: warning: additionalOptions.allowCallTimeTo: calls may go on "
    "until 23:30"
)
FAST = "campaigns/night.yaml:8:6: warning: cps: 20 new calls start every second"


@pytest.fixture
def night(write_campaigns: WriteFiles, workdir: Path) -> Path:
    """One campaign to create with two breaches (window end at line 15, rate at line 8), one
    clean campaign."""
    write_campaigns(
        {
            "night.yaml": timed("Night", allowCallTimeTo='"23:30"', cps='"20/s"'),
            "day.yaml": timed("Day"),
        }
    )
    return workdir


# --- the README's example ------------------------------------------------------------------


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced code block of a Markdown text as (language, content)."""
    blocks: list[tuple[str, str]] = []
    language: str | None = None
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        fence = line.strip()
        if language is None and fence.startswith("```"):
            language, lines = fence[3:], []
        elif language is not None and fence == "```":
            blocks.append((language, "".join(lines)))
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


def policy_section() -> str:
    section = README[README.index("### Calling policy\n") :]
    return section[: section.index("\n### ")]


def readme_example() -> tuple[str, str, str, str]:
    """(path, campaign file, validate's output, validate's output with level: error)."""
    section = policy_section()
    (path,) = re.findall(r"in `(campaigns/[^`]+\.yaml)`:", section)
    blocks = fenced_blocks(section)
    (campaign,) = [text for language, text in blocks if language == "yaml" and "name:" in text]
    warned, failed = [text for language, text in blocks if language == ""]
    return path, campaign, warned, failed


def test_readme_night_example_warns_at_the_right_line_and_fails_with_level_error(
    workdir: Path,
) -> None:
    path, campaign, warned, failed = readme_example()
    target = workdir / path
    target.parent.mkdir(parents=True)
    target.write_text(campaign, encoding="utf-8")
    line = campaign.splitlines().index("  allowCallTimeTo: 540") + 1

    result = run("validate")

    assert result.code == 0
    assert result.stderr + result.stdout == warned
    assert warned.startswith(f"{path}:{line}:20: warning: additionalOptions.allowCallTimeTo: ")

    (workdir / "campaigns/_policy.yaml").write_text("level: error\n", encoding="utf-8")
    result = run("validate")

    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == failed
    assert failed.startswith(f"{path}:{line}:20: error: additionalOptions.allowCallTimeTo: ")
    assert run("plan").code == 1


def test_readme_shows_the_defaults_as_a_policy_file(tmp_path: Path) -> None:
    (defaults,) = [
        text
        for language, text in fenced_blocks(policy_section())
        if language == "yaml" and "policy.schema.json" in text
    ]
    path = tmp_path / "_policy.yaml"
    path.write_text(defaults, encoding="utf-8")

    assert load_policy(path) == (policy.DEFAULT, [])


# --- validate -------------------------------------------------------------------------------


def test_validate_prints_warnings_and_passes(night: Path) -> None:
    result = run("validate")

    assert result.code == 0
    assert result.stdout == "2 campaign(s) valid.\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(FAST) and lines[1].startswith(LATE_NIGHT)


def test_validate_json_and_github_formats_carry_the_level(night: Path) -> None:
    reported = json.loads(run("validate", "--format", "json").stdout)
    assert [(p["line"], p["path"], p["level"]) for p in reported] == [
        (8, "cps", "warning"),
        (15, "additionalOptions.allowCallTimeTo", "warning"),
    ]
    github = run("validate", "--format", "github")
    assert github.code == 0
    assert github.stdout.startswith(
        "::warning file=campaigns/night.yaml,line=8,col=6::cps: 20 new calls start every second"
    )


def test_validate_with_level_error_fails(night: Path) -> None:
    Path("campaigns/_policy.yaml").write_text("level: error\n", encoding="utf-8")

    result = run("validate")

    assert (result.code, result.stdout) == (1, "")
    assert result.stderr.splitlines()[-1] == "error: 2 problem(s) in 1 file(s)."
    assert LATE_NIGHT.replace("warning", "error") in result.stderr


def test_validate_reports_a_bad_policy_file_and_fails(night: Path) -> None:
    Path("campaigns/_policy.yaml").write_text('maxRate: "30/s"\nmaxCalls: 3\n', encoding="utf-8")

    result = run("validate")

    assert result.code == 1
    assert result.stderr.startswith(
        "campaigns/_policy.yaml:2:1: error: maxCalls: unknown key maxCalls (did you mean "
        "maxCallsPerDay?)"
    )
    assert "cps:" not in result.stderr  # 20/s is within the maxRate that did parse
    assert LATE_NIGHT in result.stderr


def test_validate_warns_about_a_past_start_every_time(write_campaigns: WriteFiles) -> None:
    write_campaigns({"late.yaml": timed("Late", "2020-01-01 10:00")})
    expected = (
        "campaigns/late.yaml:7:14: warning: startMoment: starts 2020-01-01 10:00 (Asia/Tokyo), "
        "which is already in the past: `reconcile plan` refuses to create it (a campaign that "
        "already ran may keep it)\n"
    )

    for _ in range(2):  # the second run is served from the cache: the clock is checked anyway
        result = run("validate", env={"TWIN24_TIMEZONE": "Asia/Tokyo"})
        assert (result.code, result.stdout, result.stderr) == (
            0,
            "1 campaign(s) valid.\n",
            expected,
        )
    assert "(UTC)" in run("validate", "--timezone", "UTC").stderr
    # ...and `plan` keeps it an error for a create, reported once.
    planned = run("plan")
    assert planned.code == 1
    assert planned.stderr.splitlines() == [
        "campaigns/late.yaml:7:14: error: startMoment: starts 2020-01-01 10:00 (Europe/Moscow), "
        "which is already in the past; move startMoment into the future",
        "error: the plan has 1 problem(s).",
    ]


def test_validate_refuses_an_unknown_time_zone(write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": timed("A")})

    result = run("validate", "--timezone", "Mars/Olympus")

    assert result.code == 1
    assert "unknown time zone 'Mars/Olympus'" in result.stderr


def test_a_future_start_is_no_warning(write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": timed("A", "2099-12-31 23:59")})

    assert run("validate").stderr == ""


# --- plan -----------------------------------------------------------------------------------


def test_plan_banner_counts_the_breaches_and_sections_list_them(night: Path) -> None:
    result = run("plan")

    assert result.code == 0
    lines = result.stdout.splitlines()
    assert lines[5] == "  policy: 2 warnings (night)"
    assert lines[6] == ""  # the banner ends there
    notes = [line for line in lines if line.startswith("  policy warning")]
    assert [n.split(": ", 1)[0] for n in notes] == [
        "  policy warning at line 8",
        "  policy warning at line 15",
    ]
    assert notes[1].endswith(
        "additionalOptions.allowCallTimeTo: calls may go on until 23:30, callee's local time, "
        "after the calling policy's hours 08:00-22:00"
    )
    assert result.stderr.splitlines()[0].startswith(FAST)  # the warnings, as validate prints


def test_plan_banner_has_no_policy_line_without_breaches(write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": timed("A")})

    result = run("plan")

    assert result.code == 0
    assert "policy" not in result.stdout + result.stderr


def test_plan_markdown_counts_and_shows_them(night: Path) -> None:
    text = run("plan", "--format", "markdown").stdout

    assert "\n  policy: 2 warnings (night)\n```\n" in text
    section = text[text.index("<b>night</b>") :]
    assert "\n+ policy warning at line 15: additionalOptions.allowCallTimeTo: " in section


def test_plan_json_lists_the_breaches_per_action(night: Path) -> None:
    data = json.loads(run("plan", "--format", "json").stdout)

    actions = {a["key"]: a for a in data["actions"]}
    assert data["format_version"] == 1
    assert "policy" not in actions["day"]  # only actions with a breach carry the field
    assert [
        (p["line"], p["column"], p["path"], p["level"]) for p in actions["night"]["policy"]
    ] == [
        (8, 6, "cps", "warning"),
        (15, 20, "additionalOptions.allowCallTimeTo", "warning"),
    ]
    assert all(p["file"] == "campaigns/night.yaml" for p in actions["night"]["policy"])


def test_plan_under_github_actions_annotates_the_lines(night: Path) -> None:
    summary = Path("summary.md")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}

    result = run("plan", "--format", "json", env=env)

    assert result.code == 0
    annotations = [line for line in result.stderr.splitlines() if line.startswith("::warning")]
    assert [a.split("::")[1] for a in annotations] == [
        "warning file=campaigns/night.yaml,line=8,col=6",
        "warning file=campaigns/night.yaml,line=15,col=20",
    ]
    assert "  policy: 2 warnings (night)" in summary.read_text(encoding="utf-8")


def test_plan_with_level_error_fails_and_annotates(night: Path) -> None:
    Path("campaigns/_policy.yaml").write_text("level: error\n", encoding="utf-8")

    result = run("plan", "--detailed-exitcode", env={"GITHUB_ACTIONS": "true"})

    assert result.code == 1
    assert result.stdout.startswith("::error file=campaigns/night.yaml,line=8,col=6::cps: ")
    assert "campaigns/night.yaml:15:20: error: additionalOptions.allowCallTimeTo:" in result.stderr
    assert "nothing was changed" in result.stderr


def test_banner_names_a_few_campaigns_and_counts_the_rest() -> None:
    def breaching(key: str, *levels: Level) -> Campaign:
        payload = {"name": key, "startType": "manual", "cps": 1.2}
        found = tuple(
            Problem(Location(f"campaigns/{key}.yaml", 8, 6), "cps", "x", lv) for lv in levels
        )
        return Campaign(key, f"campaigns/{key}.yaml", payload, fingerprint(payload), policy=found)

    campaigns = {f"k{i}": breaching(f"k{i}", "warning") for i in range(6)}
    campaigns["k6"] = breaching("k6", "error", "warning")
    campaigns["ok"] = breaching("ok")

    lines = banner(make_plan(campaigns, [], State(), PlanOptions()))

    assert lines[5] == "  policy: 1 error, 7 warnings (k0, k1, k2, k3, k4 and 2 more)"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with Sandbox(SandboxOptions(port=0, token="policy-token")) as server:
        monkeypatch.setenv("TWIN24_TOKEN", "policy-token")
        monkeypatch.setenv("TWIN24_API_URL", server.url)
        yield server


def test_a_saved_plan_with_breaches_applies_and_one_with_them_removed_is_refused(
    night: Path, sandbox: Sandbox
) -> None:
    assert run("plan", "--out", "plan.json").code == 0
    saved: dict[str, Any] = json.loads(Path("plan.json").read_text(encoding="utf-8"))
    assert [a.get("policy") is not None for a in saved["actions"]] == [False, True]
    # Edited so that `show` prints no breach: apply would still carry out the night campaign.
    for action in saved["actions"]:
        action.pop("policy", None)
    Path("edited.json").write_text(json.dumps(saved), encoding="utf-8")

    refused = run("apply", "edited.json", "--rate", "0")

    assert refused.code == 1
    assert "the file holds what the plan made now does not (actions[1].policy)" in refused.stderr
    assert sandbox.tasks == {}
    applied = run("apply", "plan.json", "--rate", "0")
    assert applied.code == 0, applied.stderr
    assert len(sandbox.tasks) == 2


# --- schema ---------------------------------------------------------------------------------


def test_schema_writes_and_checks_the_policy_schema(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    assert run("schema", "--output-dir", str(out)).code == 0
    assert (out / SCHEMA_FILE).read_bytes() == (REPO / "schemas" / SCHEMA_FILE).read_bytes()

    (out / SCHEMA_FILE).unlink()
    result = run("schema", "--check", "--output-dir", str(out))

    assert result.code == 1
    assert (
        result.stderr
        == f"{out / SCHEMA_FILE}: missing; run `reconcile schema --output-dir {out}` and "
        "commit it\n"
    )


POLICY_DOCUMENTS = [
    {},
    {"callingHours": {"from": "07:00", "to": "21:30:00"}, "maxRate": "5/s", "level": "error"},
    {"maxRate": "1/60s", "maxCallsPerDay": 1},
    {"maxRate": 10},
    {"maxRate": "100/s"},
    {"maxCallsPerDay": 0},
    {"maxCallsPerDay": "6"},
    {"level": "info"},
    {"callingHours": {"from": "8:00"}},
    {"callingHours": {"since": "08:00"}},
    {"callingHours": "08:00-22:00"},
    {"maxrate": "5/s"},
]


@pytest.mark.parametrize("document", POLICY_DOCUMENTS, ids=json.dumps)
def test_the_policy_schema_accepts_what_the_reader_accepts(
    document: dict[str, Any], tmp_path: Path
) -> None:
    schema = json.loads((REPO / "schemas" / SCHEMA_FILE).read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    path = tmp_path / "_policy.yaml"
    path.write_text(json.dumps(document) if document else "level: warning\n", encoding="utf-8")

    _, problems = load_policy(path)

    assert Draft7Validator(schema).is_valid(document) is (problems == [])


def test_every_policy_key_has_a_description() -> None:
    schema = json.loads((REPO / "schemas" / SCHEMA_FILE).read_text(encoding="utf-8"))
    props = schema["properties"]
    described = [*props.values(), *props["callingHours"]["properties"].values()]
    assert sorted(props) == ["callingHours", "level", "maxCallsPerDay", "maxRate"]
    assert all(p.get("description") for p in described)
