"""Plan renderings: text, markdown, json and GitHub notices, with golden files.

The golden files under tests/golden/ are one fixed scenario (a create, a drift, an orphan, an
in-doubt create) in each rendering. After a deliberate change to a renderer, regenerate them
with `UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_render_plan.py` and review the diff by eye.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import WriteFiles, edit

from reconciler.config.campaign import fingerprint
from reconciler.config.discovery import Move
from reconciler.config.models import Campaign
from reconciler.config.validate import load_config
from reconciler.errors import Location
from reconciler.plan.plan import Plan, PlanOptions, make_plan
from reconciler.plan.render import markdown, plan_text
from reconciler.plan.render.common import summary_line
from reconciler.state.model import Entry, State, Status

GOLDEN = Path(__file__).parent / "golden"
LINEAGE = "0b7c3f5e-0000-4000-8000-000000000001"
SECRET_URL = "https://u:p@h/x?token=abc&x=1"
MASKED_URL = "https://***@h/x?token=***&x=1"
SUMMARY = "Plan: 1 to create, 0 to replace, 0 to move, 1 drifted, 1 orphaned, 1 in doubt."

PROMO = edit(
    "startType: manual\ncps: 1.03\n",
    'startType: time\nstartMoment: "2030-06-02 10:00"\ncps: "3/s"\n'
    f'webhookUrls:\n  - "{SECRET_URL}"\n',
    edit(
        "  recordCall: false\n",
        '  recordCall: false\n  useTr: true\n  allowCallTimeFrom: "09:00"\n'
        '  allowCallTimeTo: "20:00"\n',
    ),
)
SURVEY = edit("name: Spring promo", "name: Customer survey", PROMO).replace(
    f'webhookUrls:\n  - "{SECRET_URL}"\n', ""
)


def check_golden(name: str, actual: str) -> None:
    """Compare with tests/golden/NAME; UPDATE_GOLDEN=1 rewrites the file instead."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 and review it"
    assert actual == path.read_text(encoding="utf-8"), (
        f"{name} differs from the golden file; if the change is wanted, rerun with "
        "UPDATE_GOLDEN=1 and review the diff"
    )


def entry(
    payload: dict[str, Any], source: str, status: Status = "created", identity: str | None = None
) -> Entry:
    return Entry(status, identity, fingerprint(payload), payload, source, "2026-11-27T10:00:00Z")


@pytest.fixture
def scenario(write_campaigns: WriteFiles) -> Plan:
    """promo: create; survey: drift (call window and rate); gone: orphan; wait: in doubt."""
    root = write_campaigns({"promo.yaml": PROMO, "survey.yaml": SURVEY})
    config = load_config(root)
    assert not config.errors, config.errors
    applied = copy.deepcopy(config.campaigns["survey"].payload)
    applied["additionalOptions"]["allowCallTimeFrom"] = 36000
    applied["cps"] = 1.05
    state = State(
        LINEAGE,
        7,
        "https://cis.twin24.ai/api/v1",
        {
            "survey": entry(applied, "campaigns/survey.yaml", identity="7001"),
            "gone": entry({**applied, "name": "Gone"}, "campaigns/gone.yaml", identity="7002"),
            "wait": entry({**applied, "name": "Wait"}, "campaigns/wait.yaml", "pending"),
        },
    )
    return make_plan(config.campaigns, config.moves, state, PlanOptions())


def body(name: str, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": name,
        "defaultExec": "robot",
        "defaultExecData": "3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70",
        "secondExec": "end",
        "cidType": "default",
        "startType": "time",
        "startMoment": "2030-06-02 10:00",
        "cps": 1.03,
        "additionalOptions": {
            "fullListMethod": "reject",
            "fullListTime": 30,
            "useTr": True,
            "allowCallTimeFrom": 32400,
            "allowCallTimeTo": 72000,
        },
        "redialStrategyOptions": {"redialStrategyEn": True},
    }
    payload.update(changes)
    return payload


def campaign(key: str, payload: dict[str, Any] | None = None) -> Campaign:
    payload = payload if payload is not None else body(key)
    return Campaign(key, f"campaigns/{key}.yaml", payload, fingerprint(payload))


# --- golden files --------------------------------------------------------------------------


def test_text_golden(scenario: Plan) -> None:
    check_golden("plan.txt", plan_text.text(scenario))


def test_markdown_golden(scenario: Plan) -> None:
    check_golden("plan.md", markdown.markdown(scenario))


def test_json_golden(scenario: Plan) -> None:
    check_golden("plan.json", plan_text.as_json(scenario))


def test_github_notices_golden(scenario: Plan) -> None:
    check_golden("plan.github.txt", plan_text.github_notices(scenario))


# --- text ----------------------------------------------------------------------------------


def test_text_shows_symbols_annotations_and_the_closing_line(scenario: Plan) -> None:
    out = plan_text.text(scenario)
    lines = out.splitlines()
    for header in (
        "+ create promo  (campaigns/promo.yaml)",
        "~ drift survey  (campaigns/survey.yaml)",
        "! orphan gone  (campaigns/gone.yaml)",
        "? in doubt wait  (campaigns/wait.yaml)",
    ):
        assert header in lines
    assert "    cps: 1.03  # 3 calls/s" in lines
    assert "      allowCallTimeFrom: 32400  # 09:00" in lines
    assert "      allowCallTimeTo: 72000  # 20:00" in lines
    assert "    additionalOptions.allowCallTimeFrom: 36000 -> 32400  # 10:00 -> 09:00" in lines
    assert "    cps: 1.05 -> 1.03  # 5 calls/s -> 3 calls/s" in lines
    assert "the API cannot update a task: this change is NOT applied" in out
    assert "To forget it, run `reconcile state rm gone`" in out
    assert lines[-1] == SUMMARY == summary_line(scenario)
    assert out.endswith(SUMMARY + "\n")


def test_text_masks_secrets_in_webhook_urls(scenario: Plan) -> None:
    for out in (plan_text.text(scenario), markdown.markdown(scenario)):
        assert f'- "{MASKED_URL}"' in out
        assert "u:p@" not in out and "abc" not in out


def test_text_opens_with_who_gets_called(scenario: Plan) -> None:
    lines = plan_text.text(scenario).splitlines()
    assert lines[:5] == [
        "Who gets called: 1 new task(s) (limit 25 per apply)",
        "  earliest start: 2030-06-02 10:00 (Europe/Moscow)",
        "  peak rate: 3 calls/s (promo)",
        "  calling windows: 09:00-20:00 callee's local time",
        "  redials: on in 0 of 1",
    ]


def test_banner_warns_when_creates_exceed_max_creates() -> None:
    campaigns = {k: campaign(k) for k in ("a", "b", "c")}
    plan = make_plan(campaigns, [], State(), PlanOptions(max_creates=2))
    out = plan_text.text(plan)
    assert "Who gets called: 3 new task(s) (limit 2 per apply)" in out
    assert "  WARNING: 3 creates exceed --max-creates 2; apply will refuse" in out.splitlines()
    assert "WARNING" in markdown.markdown(plan)
    at_limit = plan_text.text(make_plan(campaigns, [], State(), PlanOptions(max_creates=3)))
    assert "WARNING" not in at_limit


def test_banner_sums_up_rates_starts_and_windows() -> None:
    campaigns = {
        "slow": campaign("slow", body("slow", cps=0.4, startMoment="2030-07-01 09:00")),
        "fast": campaign("fast", body("fast", cps=1.09, startMoment="2030-06-01 12:00")),
        "hand": campaign(
            "hand",
            body(
                "hand",
                startType="manual",
                additionalOptions={"fullListMethod": "reject", "fullListTime": 30},
                redialStrategyOptions={"redialStrategyEn": False},
            ),
        ),
    }
    del campaigns["hand"].payload["startMoment"]
    plan = make_plan(campaigns, [], State(), PlanOptions(timezone="Asia/Yekaterinburg"))
    assert plan_text.text(plan).splitlines()[:5] == [
        "Who gets called: 3 new task(s) (limit 25 per apply)",
        "  earliest start: 2030-06-01 12:00 (Asia/Yekaterinburg); 1 started by hand",
        "  peak rate: 9 calls/s (fast)",
        "  calling windows: 09:00-20:00 callee's local time, no calling window (useTr off)",
        "  redials: on in 2 of 3",
    ]


def test_no_banner_without_creates_and_a_no_changes_line() -> None:
    c = campaign("a")
    entry_a = entry(c.payload, c.source, identity="1")
    plan = make_plan({"a": c}, [], State(LINEAGE, 1, None, {"a": entry_a}), PlanOptions())
    assert plan_text.text(plan) == (
        "No changes. The platform matches the campaign files.\n"
        "Plan: 0 to create, 0 to replace, 0 to move, 0 drifted, 0 orphaned, 0 in doubt.\n"
    )
    md = markdown.markdown(plan)
    assert "<details>" not in md and "No changes." in md


def test_text_shows_replace_moved_and_probable_renames() -> None:
    state = State(
        LINEAGE,
        3,
        None,
        {
            "r": entry(body("r"), "campaigns/r.yaml", identity="9001"),
            "old": entry(body("m"), "campaigns/old.yaml", identity="9002"),
            "orig": entry(body("d"), "campaigns/orig.yaml", identity="9003"),
        },
    )
    campaigns = {
        "r": campaign("r", body("r", cps=1.05)),
        "m": campaign("m", body("m", taskComment="moved")),
        "d": campaign("d"),
    }
    moves = [Move("old", "m", Location("campaigns/_moved.yaml", 1, 3))]
    plan = make_plan(campaigns, moves, state, PlanOptions(replace=("r",)))
    out = plan_text.text(plan)
    lines = out.splitlines()
    assert "-/+ replace r  (campaigns/r.yaml)" in lines
    assert "a NEW task is created; the old task 9001 stays on the platform" in out
    assert "> moved m  (campaigns/m.yaml)" in lines
    assert '    taskComment: (absent) -> "moved"' in lines
    assert "the state entry is renamed from old; no API call." in out
    assert "+ create d  (campaigns/d.yaml)" in lines
    assert (
        "  PROBABLE RENAME: same payload as orig in the state; if the file was renamed, add "
        "`- {from: orig, to: d}` to _moved.yaml or run `reconcile state mv orig d` "
        "(apply refuses this create; if a second task is really wanted: "
        "`reconcile apply --replace r --allow-duplicate d`)"
    ) in lines
    assert lines[-1] == (
        "Plan: 1 to create, 1 to replace, 1 to move, 1 drifted, 1 orphaned, 0 in doubt."
    )


def test_colour_only_when_asked(scenario: Plan) -> None:
    plain = plan_text.text(scenario)
    assert "\x1b[" not in plain
    coloured = plan_text.text(scenario, color=True)
    assert "\x1b[32m+ create promo" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain
    assert "\x1b[" not in markdown.markdown(scenario)


# --- markdown ------------------------------------------------------------------------------


def test_markdown_opens_with_the_summary_and_has_one_section_per_change(scenario: Plan) -> None:
    md = markdown.markdown(scenario)
    visible = [line for line in md.splitlines() if line and not line.startswith("<!--")]
    assert visible[0] == f"**{SUMMARY}**"
    assert md.count("<details>") == md.count("</details>") == 4
    assert md.count("```diff\n") == 4
    for symbol, name, key in (
        ("+", "create", "promo"),
        ("~", "drift", "survey"),
        ("!", "orphan", "gone"),
        ("?", "in doubt", "wait"),
    ):
        assert f"<details><summary><code>{symbol}</code> {name} <b>{key}</b></summary>" in md


def test_markdown_leaves_out_unchanged_campaigns() -> None:
    c = campaign("same")
    state = State(LINEAGE, 1, None, {"same": entry(c.payload, c.source, identity="1")})
    plan = make_plan({"same": c, "new": campaign("new")}, [], state, PlanOptions())
    md = markdown.markdown(plan)
    assert md.count("<details>") == 1 and "<b>same</b>" not in md


def generated(count: int, vary_windows: bool = False) -> dict[str, Campaign]:
    campaigns = {}
    for i in range(count):
        payload = body(f"Campaign {i:05d}", cps=1.01 + (i % 9) / 100)
        if vary_windows:
            payload["additionalOptions"]["allowCallTimeFrom"] = 28800 + i
        key = f"region-{i % 50:02d}/campaign-{i:05d}"
        campaigns[key] = campaign(key, payload)
    return campaigns


def test_markdown_of_five_thousand_creates_stays_under_the_comment_limit() -> None:
    plan = make_plan(generated(5000), [], State(), PlanOptions())
    md = markdown.markdown(plan)
    assert len(md) < 60_000
    assert md.startswith(
        "<!-- reconcile-plan -->\n"
        "**Plan: 5000 to create, 0 to replace, 0 to move, 0 drifted, 0 orphaned, 0 in doubt.**\n"
    )
    shown = md.count("<details>")
    assert 0 < shown < 5000
    left = 5000 - shown
    assert f"…and {left} more campaign(s) not shown ({left} create)" in md
    assert "run <code>reconcile plan</code> for the full plan" in md


def test_markdown_budget_counts_utf16_units_as_github_does() -> None:
    # An emoji is one code point but two UTF-16 units: GitHub and the action's JavaScript
    # count units, so a comment of emoji names must fit in 60,000 of them.
    campaigns = {}
    for i in range(3000):
        key = f"c{i:05d}"
        campaigns[key] = campaign(key, body("\U0001f4de" * 200 + f" {i}"))
    md = markdown.markdown(make_plan(campaigns, [], State(), PlanOptions()))

    units = len(md.encode("utf-16-le")) // 2
    assert len(md) < units < 60_000
    assert "more campaign(s) not shown" in md


def test_markdown_of_thousands_of_mixed_changes_stays_under_the_limit() -> None:
    campaigns = generated(3000, vary_windows=True)
    entries = {}
    for i, (key, c) in enumerate(sorted(campaigns.items())):
        if i % 3 == 0:
            drifted = {**c.payload, "cps": 1.5}
            entries[key] = entry(drifted, c.source, identity=str(i))
        elif i % 3 == 1:
            entries[f"gone/{key}"] = entry(c.payload | {"name": f"gone {i}"}, "x.yaml", "pending")
    plan = make_plan(campaigns, [], State(LINEAGE, 1, None, entries), PlanOptions())
    md = markdown.markdown(plan)
    assert len(md) < 60_000
    windows = re.search(r"^  calling windows: (.*) and (\d+) more$", md, re.MULTILINE)
    assert windows is not None and windows[2] == "1995"  # the banner stays short
    assert windows[1].count("callee's local time") == 5
    summary = summary_line(plan)
    assert summary == (
        "Plan: 2000 to create, 0 to replace, 0 to move, 1000 drifted, 0 orphaned, 1000 in doubt."
    )
    assert md.splitlines()[1] == f"**{summary}**"
    shown = md.count("<details>")
    counts = re.search(r"…and (\d+) more campaign\(s\) not shown \(([^)]*)\)", md)
    assert counts is not None
    assert shown + int(counts[1]) == 4000
    left = [part.split(" ", 1) for part in counts[2].split(", ")]
    assert sum(int(n) for n, _ in left) == int(counts[1])
    assert [name for _, name in left] == ["create", "drift", "in doubt"]


# --- json ----------------------------------------------------------------------------------


def test_json_has_the_documented_shape(scenario: Plan) -> None:
    data = json.loads(plan_text.as_json(scenario))
    assert data["format_version"] == 1
    assert data["summary"] == {
        "create": 1,
        "replace": 0,
        "moved": 0,
        "drift": 1,
        "orphan": 1,
        "in_doubt": 1,
        "unchanged": 0,
    }
    assert data["state"] == {"lineage": LINEAGE, "serial": 7}
    by_key = {a["key"]: a for a in data["actions"]}
    assert [a["key"] for a in data["actions"]] == ["gone", "promo", "survey", "wait"]
    for action in data["actions"]:
        assert {"key", "action", "source", "fingerprint", "identity", "payload", "diff"} <= set(
            action
        )
    promo = by_key["promo"]
    assert (promo["action"], promo["identity"], promo["diff"]) == ("create", None, [])
    assert promo["fingerprint"] == fingerprint(promo["payload"])
    assert promo["payload"]["webhookUrls"] == [SECRET_URL]  # the exact body, not the display
    survey = by_key["survey"]
    assert (survey["action"], survey["identity"]) == ("drift", "7001")
    assert [(d["path"], d["old"], d["new"]) for d in survey["diff"]] == [
        ("additionalOptions.allowCallTimeFrom", 36000, 32400),
        ("cps", 1.05, 1.03),
    ]
    assert (by_key["gone"]["action"], by_key["gone"]["identity"]) == ("orphan", "7002")
    assert by_key["wait"]["action"] == "in_doubt"


def test_json_is_byte_identical_for_the_same_inputs(write_campaigns: WriteFiles) -> None:
    campaigns = generated(20)
    state = State(
        LINEAGE,
        4,
        None,
        {k: entry({**c.payload, "cps": 1.5}, c.source, identity="1") for k, c in campaigns.items()},
    )
    reordered = dict(reversed(list(campaigns.items())))
    state_reordered = State(LINEAGE, 4, None, dict(reversed(list(state.campaigns.items()))))
    first = plan_text.as_json(make_plan(campaigns, [], state, PlanOptions()))
    again = plan_text.as_json(make_plan(reordered, [], state_reordered, PlanOptions()))
    assert first == again
    assert first.endswith("}\n")


def test_non_ascii_is_written_as_itself() -> None:
    c = campaign("ru", body("Весенняя акция"))
    out = plan_text.as_json(make_plan({"ru": c}, [], State(), PlanOptions()))
    assert '"name": "Весенняя акция"' in out
    assert "Весенняя акция" in plan_text.text(make_plan({"ru": c}, [], State(), PlanOptions()))


# --- GitHub notices ------------------------------------------------------------------------


def test_github_notices_mark_the_first_line_of_each_create_and_replace() -> None:
    hand = body("hand", startType="manual", cps=0.4)
    del hand["startMoment"]
    state = State(LINEAGE, 1, None, {"r": entry(body("r"), "campaigns/r.yaml", identity="1")})
    campaigns = {
        "a": campaign("a"),
        "hand": campaign("hand", hand),
        "r": campaign("r", body("r", cps=1.02)),
    }
    plan = make_plan(campaigns, [], state, PlanOptions(replace=("r",)))
    assert plan_text.github_notices(plan).splitlines() == [
        "::notice file=campaigns/a.yaml,line=1,col=1::+ create: starts 2030-06-02 10:00, 3 calls/s",
        "::notice file=campaigns/hand.yaml,line=1,col=1::+ create: started by hand, 1 call / 60 s",
        "::notice file=campaigns/r.yaml,line=1,col=1::-/+ replace: starts 2030-06-02 10:00, "
        "2 calls/s",
    ]
