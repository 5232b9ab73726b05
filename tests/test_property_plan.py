"""Properties of the plan: a pure function of its inputs, whatever order they come in.

- `make_plan` gives byte-identical renderings for the same inputs, and for the same inputs in
  any dict order; every key gets exactly one action, sorted by key.
- The order in which campaign files are written to disk does not change
  `reconcile plan --format json`.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.cli.main import cli
from reconciler.config.campaign import fingerprint
from reconciler.config.models import Campaign
from reconciler.plan.plan import SUMMARY_KEYS, PlanOptions, make_plan
from reconciler.plan.render import markdown, plan_text
from reconciler.state.model import Entry, State, Status, dumps

LINEAGE = "0b7c3f5e-0000-4000-8000-000000000001"
CPS = (0.4, 0.9, 1.01, 1.03, 1.05, 1.99)

keys = st.lists(
    st.builds(
        lambda folder, name: f"{folder}{name}",
        st.sampled_from(["", "2030/", "survey/", "survey/q3/"]),
        st.text("abcxyz-", min_size=1, max_size=6).filter(lambda s: not s.startswith("-")),
    ),
    min_size=1,
    max_size=8,
    unique=True,
)


def payload(key: str, cps: float, start: int) -> dict[str, Any]:
    return {
        "name": f"Campaign {key}",
        "defaultExec": "robot",
        "defaultExecData": "3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70",
        "secondExec": "end",
        "cidType": "default",
        "startType": "manual",
        "cps": cps,
        "additionalOptions": {
            "fullListMethod": "reject",
            "fullListTime": 30,
            "useTr": True,
            "allowCallTimeFrom": start,
            "allowCallTimeTo": 72000,
        },
        "redialStrategyOptions": {"redialStrategyEn": False},
    }


@st.composite
def inputs(draw: st.DrawFn) -> tuple[dict[str, Campaign], State, PlanOptions]:
    """Campaigns and a state that share some keys: every action but `moved` can occur."""
    wanted = draw(keys)
    campaigns = {}
    for key in wanted:
        body = payload(key, draw(st.sampled_from(CPS)), draw(st.sampled_from([32400, 36000])))
        campaigns[key] = Campaign(key, f"campaigns/{key}.yaml", body, fingerprint(body))
    entries = {}
    drifted = []
    extra = draw(st.lists(st.sampled_from(["gone", "old/x", "z"]), unique=True))
    for key in dict.fromkeys(wanted + extra):  # orphans only where no campaign has the key
        kind = draw(st.sampled_from(["absent", "same", "drift", "pending"]))
        if kind == "absent":
            continue
        body = copy.deepcopy(campaigns[key].payload) if key in campaigns else payload(key, 1.02, 0)
        if kind == "drift":
            body["cps"] = 1.5
            drifted += [key] if key in campaigns else []
        status: Status = "pending" if kind == "pending" else "created"
        identity = None if status == "pending" else f"id-{key}"
        source = f"campaigns/{key}.yaml"
        entries[key] = Entry(status, identity, fingerprint(body), body, source, "2026-01-01T00:00Z")
    state = State(LINEAGE, draw(st.integers(1, 99)), None, entries)
    replace = tuple(draw(st.lists(st.sampled_from(drifted), unique=True))) if drifted else ()
    return campaigns, state, PlanOptions(replace=replace)


def shuffled(mapping: dict[str, Any], order: list[int]) -> dict[str, Any]:
    items = list(mapping.items())
    return dict(items[i] for i in order)


@settings(max_examples=60, deadline=None)
@given(inputs(), st.randoms(use_true_random=False))
def test_make_plan_is_a_pure_function_of_its_inputs(
    given_inputs: tuple[dict[str, Campaign], State, PlanOptions], rng: Any
) -> None:
    campaigns, state, options = given_inputs
    plan = make_plan(campaigns, [], state, options)
    again = make_plan(copy.deepcopy(campaigns), [], copy.deepcopy(state), options)
    c_order, s_order = list(range(len(campaigns))), list(range(len(state.campaigns)))
    rng.shuffle(c_order)
    rng.shuffle(s_order)
    reordered_state = state.with_entries(shuffled(state.campaigns, s_order))
    reordered = make_plan(shuffled(campaigns, c_order), [], reordered_state, options)
    for render in (plan_text.as_json, plan_text.text, markdown.markdown):
        assert render(plan) == render(again) == render(reordered)

    keys = [a.key for a in plan.actions]
    assert keys == sorted(set(campaigns) | set(state.campaigns))
    summary = plan.summary
    assert set(summary) == set(SUMMARY_KEYS)
    assert sum(summary.values()) == len(plan.actions)  # no moves: each action counted once
    assert summary["replace"] == len(options.replace)
    assert {a.key for a in plan.creates} == {
        k for k in campaigns if k not in state.campaigns
    } | set(options.replace)


campaign_files = st.dictionaries(
    keys=st.sampled_from(["a", "b", "2030/spring", "2030/summer", "survey/q3/nps", "zz"]),
    values=st.sampled_from(CPS),
    min_size=1,
)

TEMPLATE = """\
name: Campaign {key}
defaultExec: robot
defaultExecData: 3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70
secondExec: end
cidType: default
startType: manual
cps: {cps}
additionalOptions: {{fullListMethod: reject, fullListTime: 30, recordCall: false}}
redialStrategyOptions:
  redialStrategyEn: false
  busy: {{redial: false}}
  noAnswer: {{redial: false}}
  answerMash: {{redial: false}}
  congestion: {{redial: false}}
  answerNoList: {{redial: false}}
"""
DEFAULTS = "# shared\ntaskComment: survey team\nadditionalOptions: {recTrimLeft: 2}\n"


def plan_json(files: list[tuple[str, str]], state_text: str) -> str:
    """Write `files` in the given order into a fresh folder; `reconcile plan --format json`."""
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        for name, text in files:
            path = Path("campaigns", name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        Path("reconcile.state.json").write_text(state_text, encoding="utf-8")
        result = CliRunner().invoke(cli, ["plan", "--format", "json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout


@settings(max_examples=12, deadline=None)
@given(campaign_files, st.randoms(use_true_random=False), st.booleans())
def test_the_order_files_are_written_in_does_not_change_the_plan(
    rates: dict[str, float], rng: Any, defaults: bool
) -> None:
    files = [(f"{key}.yaml", TEMPLATE.format(key=key, cps=cps)) for key, cps in rates.items()]
    if defaults:
        files.append(("survey/_defaults.yaml", DEFAULTS))
    files.append(("_moved.yaml", "[]\n"))
    applied = payload("gone", 1.02, 0)
    gone = Entry(
        "created", "1", fingerprint(applied), applied, "campaigns/gone.yaml", "2026-01-01T00:00:00Z"
    )
    state_text = dumps(State(LINEAGE, 3, None, {"gone": gone}))

    in_order = plan_json(sorted(files), state_text)
    mixed = list(files)
    rng.shuffle(mixed)
    assert plan_json(mixed, state_text) == in_order
    assert plan_json(list(reversed(sorted(files))), state_text) == in_order
    assert in_order.endswith("}\n")
    assert ("survey team" in in_order) == (defaults and "survey/q3/nps" in rates)
