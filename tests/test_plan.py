"""make_plan: one action per key, the safety rules, and Plan.raise_if_unsafe (spec section 4)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import VALID_CAMPAIGN, WriteFiles, edit

from reconciler.config.campaign import fingerprint
from reconciler.config.models import Campaign
from reconciler.config.validate import Config, load_config
from reconciler.errors import Location, PlanError
from reconciler.plan.diff import FieldChange
from reconciler.plan.plan import (
    Create,
    Drift,
    InDoubt,
    Moved,
    Orphan,
    Plan,
    PlanOptions,
    Replace,
    Unchanged,
    guard_message,
    make_plan,
)
from reconciler.plan.render import plan_text
from reconciler.plan.render.common import summary_line
from reconciler.state.model import Entry, State, Status

LINEAGE = "0b7c3f5e-0000-4000-8000-000000000001"
CREATED_AT = "2026-11-27T10:00:00Z"

# VALID_CAMPAIGN started at a fixed time: `startMoment` is on line 7 (value in column 14).
TIMED = edit("startType: manual\n", 'startType: time\nstartMoment: "2030-06-02 10:00"\n')
START_AT = Location("campaigns/timed.yaml", 7, 14)


def payload(name: str = "Spring promo", **changes: Any) -> dict[str, Any]:
    """A complete payload; `changes` replace top-level fields."""
    body: dict[str, Any] = {
        "name": name,
        "defaultExec": "robot",
        "defaultExecData": "3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70",
        "secondExec": "end",
        "cidType": "default",
        "startType": "manual",
        "cps": 1.03,
        "additionalOptions": {
            "fullListMethod": "reject",
            "fullListTime": 30,
            "useTr": True,
            "allowCallTimeFrom": 32400,
            "allowCallTimeTo": 72000,
        },
        "redialStrategyOptions": {"redialStrategyEn": False},
    }
    body.update(changes)
    return body


def campaign(key: str, body: dict[str, Any] | None = None) -> Campaign:
    body = body if body is not None else payload(name=key)
    return Campaign(key, f"campaigns/{key}.yaml", body, fingerprint(body))


def entry(body: dict[str, Any], status: Status = "created", identity: str = "7001") -> Entry:
    """A state entry for `body`, its source named after the payload's name."""
    ident = None if status == "pending" else identity
    source = f"campaigns/{body['name']}.yaml"
    return Entry(status, ident, fingerprint(body), body, source, CREATED_AT)


def state(**entries: Entry) -> State:
    return State(LINEAGE, 7, "https://cis.twin24.ai/api/v1", dict(entries))


def plan_of(campaigns: list[Campaign], current: State | None = None, **options: Any) -> Plan:
    return make_plan({c.key: c for c in campaigns}, [], current or State(), PlanOptions(**options))


def only(plan: Plan) -> Any:
    assert len(plan.actions) == 1, plan.actions
    return plan.actions[0]


def config(write_campaigns: WriteFiles, files: dict[str, str]) -> Config:
    root = write_campaigns(files)
    loaded = load_config(root)
    assert not loaded.errors, loaded.errors
    return loaded


# --- one test per action ------------------------------------------------------------------


def test_a_campaign_not_in_state_is_created() -> None:
    wanted = campaign("promo")
    plan = plan_of([wanted])
    action = only(plan)
    assert isinstance(action, Create)
    assert (action.key, action.source, action.identity) == ("promo", "campaigns/promo.yaml", None)
    assert (action.payload, action.fingerprint) == (wanted.payload, wanted.fingerprint)
    assert action.duplicate_of is None
    assert plan.creates == [action] and plan.has_changes
    assert plan.summary["create"] == 1
    assert (plan.lineage, plan.serial) == (None, 0)


def test_equal_fingerprints_are_unchanged() -> None:
    wanted = campaign("promo")
    plan = plan_of([wanted], state(promo=entry(wanted.payload)))
    action = only(plan)
    assert isinstance(action, Unchanged)
    assert action.identity == "7001" and action.diff == ()
    assert not plan.creates and not plan.has_changes
    assert plan.summary == dict.fromkeys(plan.summary, 0) | {"unchanged": 1}
    assert (plan.lineage, plan.serial) == (LINEAGE, 7)


def test_drift_has_a_field_level_diff_with_nested_paths() -> None:
    applied = payload(name="promo", taskComment="wave 1")
    changed = copy.deepcopy(applied)
    changed["additionalOptions"]["allowCallTimeFrom"] = 36000
    changed["cps"] = 1.05
    del changed["taskComment"]
    changed["callStrategy"] = "STEP_2_STEP"
    plan = plan_of([campaign("promo", changed)], state(promo=entry(applied)))
    action = only(plan)
    assert isinstance(action, Drift)
    assert action.identity == "7001" and not action.creates
    assert action.payload == changed  # the desired payload; the diff says what the state had
    assert list(action.diff) == [
        FieldChange("additionalOptions.allowCallTimeFrom", "changed", 32400, 36000),
        FieldChange("callStrategy", "added", None, "STEP_2_STEP"),
        FieldChange("cps", "changed", 1.03, 1.05),
        FieldChange("taskComment", "removed", "wave 1", None),
    ]
    assert plan.summary["drift"] == 1 and not plan.has_changes


def test_a_drift_named_with_replace_is_replaced() -> None:
    applied = payload(name="promo")
    plan = plan_of(
        [campaign("promo", payload(name="promo", cps=1.05))],
        state(promo=entry(applied, identity="7001")),
        replace=("promo",),
    )
    action = only(plan)
    assert isinstance(action, Replace)
    assert action.creates and action.identity == "7001"  # the old task, kept in `replaced`
    assert [c.path for c in action.diff] == ["cps"]
    assert plan.creates == [action]
    assert plan.summary["replace"] == 1 and plan.summary["drift"] == 0


@pytest.mark.parametrize("kind", ["unchanged", "create"])
def test_replace_of_a_key_that_has_not_drifted_is_refused(kind: str) -> None:
    wanted = campaign("promo")
    current = state(promo=entry(wanted.payload)) if kind == "unchanged" else State()
    with pytest.raises(PlanError, match=rf"--replace promo: it is {kind}, not drifted"):
        plan_of([wanted], current, replace=("promo",))


def test_a_state_entry_with_no_file_is_an_orphan() -> None:
    gone = payload(name="gone")
    plan = plan_of([], state(gone=entry(gone, identity="7002")))
    action = only(plan)
    assert isinstance(action, Orphan)
    assert (action.key, action.identity, action.source) == ("gone", "7002", "campaigns/gone.yaml")
    assert action.payload == gone and not action.creates
    assert plan.summary["orphan"] == 1 and not plan.has_changes


@pytest.mark.parametrize("with_file", [True, False])
def test_a_pending_entry_is_in_doubt(with_file: bool) -> None:
    body = payload(name="promo")
    plan = plan_of(
        [campaign("promo", body)] if with_file else [], state(promo=entry(body, "pending"))
    )
    action = only(plan)
    assert isinstance(action, InDoubt)
    assert action.since == CREATED_AT and action.identity is None
    assert action.data()["since"] == CREATED_AT
    assert plan.summary["in_doubt"] == 1 and not plan.creates


def test_actions_are_sorted_by_key_and_counted() -> None:
    a, b = payload(name="b-drift"), payload(name="d-gone")
    plan = plan_of(
        [campaign("c-new"), campaign("b-drift", payload(name="b-drift", cps=1.09)), campaign("a")],
        state(**{"b-drift": entry(a), "d-gone": entry(b), "a": entry(payload(name="a"))}),
    )
    assert [(x.key, x.name) for x in plan.actions] == [
        ("a", "unchanged"),
        ("b-drift", "drift"),
        ("c-new", "create"),
        ("d-gone", "orphan"),
    ]
    assert plan.summary == {
        "create": 1,
        "replace": 0,
        "moved": 0,
        "drift": 1,
        "orphan": 1,
        "in_doubt": 0,
        "unchanged": 1,
    }


def test_make_plan_does_not_change_its_inputs(write_campaigns: WriteFiles) -> None:
    loaded = config(
        write_campaigns,
        {"new.yaml": VALID_CAMPAIGN, "_moved.yaml": "- {from: old, to: new}\n"},
    )
    current = state(old=entry(loaded.campaigns["new"].payload))
    before = copy.deepcopy((loaded.campaigns, current))
    make_plan(loaded.campaigns, loaded.moves, current, PlanOptions())
    assert (loaded.campaigns, current) == before


# --- moves ----------------------------------------------------------------------------------


MOVED = "# renames\n- {from: old, to: new}\n"


def test_a_move_renames_the_state_entry(write_campaigns: WriteFiles) -> None:
    loaded = config(write_campaigns, {"new.yaml": VALID_CAMPAIGN, "_moved.yaml": MOVED})
    current = state(old=entry(loaded.campaigns["new"].payload, identity="7003"))
    plan = make_plan(loaded.campaigns, loaded.moves, current, PlanOptions())
    action = only(plan)
    assert isinstance(action, Moved)
    assert (action.key, action.old_key, action.identity) == ("new", "old", "7003")
    assert action.diff == () and action.data()["from"] == "old"
    assert plan.summary["moved"] == 1 and plan.summary["drift"] == 0
    assert plan.has_changes and not plan.creates and not plan.problems


def test_a_moved_campaign_that_also_changed_counts_as_moved_and_drifted(
    write_campaigns: WriteFiles,
) -> None:
    loaded = config(write_campaigns, {"new.yaml": VALID_CAMPAIGN, "_moved.yaml": MOVED})
    applied = copy.deepcopy(loaded.campaigns["new"].payload)
    applied["additionalOptions"]["fullListTime"] = 45
    plan = make_plan(loaded.campaigns, loaded.moves, state(old=entry(applied)), PlanOptions())
    action = only(plan)
    assert isinstance(action, Moved)
    assert list(action.diff) == [
        FieldChange("additionalOptions.fullListTime", "changed", 45, 30),
    ]
    assert (plan.summary["moved"], plan.summary["drift"]) == (1, 1)
    assert plan_text.data(plan)["summary"] == plan.summary  # the json shows both counts
    assert "1 to move, 1 drifted" in summary_line(plan)


def test_a_move_whose_old_file_still_exists_is_a_problem(write_campaigns: WriteFiles) -> None:
    other = edit("name: Spring promo", "name: Old promo")
    loaded = config(
        write_campaigns, {"new.yaml": VALID_CAMPAIGN, "old.yaml": other, "_moved.yaml": MOVED}
    )
    current = state(old=entry(loaded.campaigns["old"].payload))
    plan = make_plan(loaded.campaigns, loaded.moves, current, PlanOptions())
    [problem] = plan.problems
    assert (problem.location.file, problem.location.line) == ("campaigns/_moved.yaml", 2)
    assert problem.path == "from"
    assert "'old' is moved but its file still exists" in problem.message
    assert "delete the old file or drop the move" in problem.message
    assert [(a.key, a.name) for a in plan.actions] == [("new", "create"), ("old", "unchanged")]
    with pytest.raises(PlanError, match=r"1 problem\(s\)"):
        plan.raise_if_unsafe()


def test_a_move_onto_a_key_the_state_has_is_a_problem(write_campaigns: WriteFiles) -> None:
    loaded = config(write_campaigns, {"new.yaml": VALID_CAMPAIGN, "_moved.yaml": MOVED})
    body = loaded.campaigns["new"].payload
    plan = make_plan(
        loaded.campaigns,
        loaded.moves,
        state(old=entry(payload(name="old")), new=entry(body)),
        PlanOptions(),
    )
    [problem] = plan.problems
    assert problem.path == "to" and "the state already has that key" in problem.message


def test_a_move_already_carried_out_is_ignored(write_campaigns: WriteFiles) -> None:
    loaded = config(write_campaigns, {"new.yaml": VALID_CAMPAIGN, "_moved.yaml": MOVED})
    current = state(new=entry(loaded.campaigns["new"].payload))
    plan = make_plan(loaded.campaigns, loaded.moves, current, PlanOptions())
    assert isinstance(only(plan), Unchanged) and not plan.problems


# --- --target ------------------------------------------------------------------------------


def test_target_limits_the_plan_to_those_keys() -> None:
    gone = payload(name="gone")
    plan = plan_of(
        [campaign("a"), campaign("b"), campaign("c")],
        state(gone=entry(gone)),
        targets=("c", "gone"),
    )
    assert [(a.key, a.name) for a in plan.actions] == [("c", "create"), ("gone", "orphan")]
    assert plan.summary["create"] == 1


def test_an_unknown_target_is_refused() -> None:
    with pytest.raises(PlanError, match=r"--target nope: no campaign file and no state entry"):
        plan_of([campaign("a")], targets=("nope",))
    with pytest.raises(PlanError, match=r"--replace nope: no campaign file"):
        plan_of([campaign("a")], replace=("nope",))


# --- duplicate guard -----------------------------------------------------------------------


def test_a_create_with_the_payload_of_an_orphan_is_a_probable_rename() -> None:
    body = payload(name="Spring promo")
    plan = plan_of([campaign("renamed", body)], state(original=entry(body)))
    orphan, create = plan.actions
    assert isinstance(create, Create) and isinstance(orphan, Orphan)
    assert (create.duplicate_of, create.duplicate_by) == ("original", "payload")
    assert create.data()["duplicate_of"] == "original"
    assert create.data()["duplicate_by"] == "payload"
    assert plan.duplicates == [create]
    message = guard_message(create, plan.options)
    assert "renamed has the same payload as original in the state (a probable rename)" in message
    assert "add `- {from: original, to: renamed}` to _moved.yaml" in message
    assert "`reconcile state mv original renamed`" in message
    assert message.endswith("run `reconcile apply --allow-duplicate renamed`")
    plan.raise_if_unsafe()  # apply refuses the flagged create itself, one by one


def test_a_create_with_a_new_payload_is_no_duplicate() -> None:
    plan = plan_of([campaign("new")], state(old=entry(payload(name="old"))))
    assert not plan.duplicates
    plan.raise_if_unsafe()


# --- the name guard (spec 9.2) ---------------------------------------------------------------


def test_a_renamed_and_edited_file_is_a_probable_rename_by_its_name() -> None:
    """Issue 12, case 1: `git mv` plus a changed cps: another payload, the same name."""
    applied = payload(name="NPS survey Q3 2030")
    edited = campaign("survey/nps-q3-v2", payload(name="NPS survey Q3 2030", cps=1.04))
    plan = plan_of([edited], state(**{"survey/nps-q3": entry(applied)}))
    orphan, create = plan.actions
    assert isinstance(create, Create) and isinstance(orphan, Orphan)
    assert (create.duplicate_of, create.duplicate_by) == ("survey/nps-q3", "name")
    assert guard_message(create, plan.options) == (
        "survey/nps-q3-v2 has the name 'NPS survey Q3 2030' of survey/nps-q3 in the state (a "
        "probable rename): creating it would start a second task with that name and call "
        "everyone again. If the file was renamed, add `- {from: survey/nps-q3, to: "
        "survey/nps-q3-v2}` to _moved.yaml in the campaigns folder, or run `reconcile state mv "
        "survey/nps-q3 survey/nps-q3-v2`; if a second task is really wanted, run "
        "`reconcile apply --allow-duplicate survey/nps-q3-v2`"
    )
    text = plan_text.text(plan)
    assert (
        "  PROBABLE RENAME: same name ('NPS survey Q3 2030') as survey/nps-q3 in the state; if "
        "the file was renamed, add `- {from: survey/nps-q3, to: survey/nps-q3-v2}` to "
        "_moved.yaml or run `reconcile state mv survey/nps-q3 survey/nps-q3-v2` (apply refuses "
        "this create; if a second task is really wanted: `reconcile apply --allow-duplicate "
        "survey/nps-q3-v2`)"
    ) in text.splitlines()


@pytest.mark.parametrize("status", ["created", "pending"])
def test_the_name_of_any_other_entry_flags_a_create_even_when_its_file_exists(
    status: Status,
) -> None:
    """`a` was renamed in its file (a drift) and `b` took its old name: a's task keeps that
    name on the platform, so b would be a second task with it. A pending entry's name counts
    too: its create may exist."""
    old = payload(name="Shared")
    plan = plan_of(
        [campaign("a", payload(name="A now")), campaign("b", payload(name="Shared", cps=1.05))],
        state(a=entry(old, status)),
    )
    b = next(a for a in plan.actions if a.key == "b")
    assert isinstance(b, Create) and (b.duplicate_of, b.duplicate_by) == ("a", "name")


def test_a_replace_is_flagged_by_another_key_s_name_not_by_its_own() -> None:
    mine = payload(name="R")
    own = plan_of(
        [campaign("r", payload(name="R", cps=1.05))], state(r=entry(mine)), replace=("r",)
    )
    assert isinstance(only(own), Replace) and not own.duplicates
    other = plan_of(
        [campaign("r", payload(name="Taken", cps=1.05))],
        state(r=entry(mine), x=entry(payload(name="Taken"), identity="7002")),
        replace=("r",),
        targets=("r",),
    )
    action = only(other)
    assert isinstance(action, Replace)
    assert (action.duplicate_of, action.duplicate_by) == ("x", "name")
    assert action.data()["duplicate_of"] == "x"
    message = guard_message(action, other.options)
    assert "replacing it would start a second task" in message
    # the apply it suggests is still this run's: the same target, still a replace
    assert message.endswith("run `reconcile apply --target r --replace r --allow-duplicate r`")


def test_a_move_recorded_in_moved_yaml_is_no_probable_rename(write_campaigns: WriteFiles) -> None:
    loaded = config(write_campaigns, {"new.yaml": VALID_CAMPAIGN, "_moved.yaml": MOVED})
    applied = copy.deepcopy(loaded.campaigns["new"].payload)
    applied["cps"] = 1.04  # renamed and edited: moved, then drifted
    plan = make_plan(loaded.campaigns, loaded.moves, state(old=entry(applied)), PlanOptions())
    assert isinstance(only(plan), Moved) and not plan.duplicates


# --- flags that must apply (spec 9.2) ------------------------------------------------------


def test_retry_pending_must_name_a_pending_key() -> None:
    pending = payload(name="p")
    plan = plan_of(
        [campaign("p", pending), campaign("u", payload(name="u"))],
        state(p=entry(pending, "pending"), u=entry(payload(name="u"), identity="7002")),
    )
    plan.check_flags(("p",), ())
    with pytest.raises(PlanError) as caught:
        plan.check_flags(("u",), ())
    assert str(caught.value) == (
        "--retry-pending u: u is not pending (in doubt) in this plan (planned: unchanged), so the "
        "flag would do nothing; nothing was done. Check the key with `reconcile plan`"
    )
    with pytest.raises(PlanError, match=r"--retry-pending nope: .*\(not in this plan\)"):
        plan.check_flags(("nope",), ())


def test_allow_duplicate_must_name_a_create_or_replace() -> None:
    plan = plan_of([campaign("a"), campaign("b")], state(b=entry(payload(name="b"))))
    plan.check_flags((), ("a",))  # a create: apply checks that a guard flags it
    with pytest.raises(PlanError, match=r"--allow-duplicate b: b is not created or replaced"):
        plan.check_flags((), ("b",))
    with pytest.raises(PlanError, match=r"--allow-duplicate nothing: .*not in this plan"):
        plan.check_flags((), ("nothing",))


def test_a_replace_outside_the_targets_is_refused() -> None:
    old = payload(name="r")
    with pytest.raises(PlanError, match=r"--replace r: not among the --target keys"):
        plan_of(
            [campaign("r", payload(name="r", cps=1.05)), campaign("t")],
            state(r=entry(old)),
            replace=("r",),
            targets=("t",),
        )


def test_a_target_that_moved_names_its_new_key(write_campaigns: WriteFiles) -> None:
    loaded = config(write_campaigns, {"new.yaml": VALID_CAMPAIGN, "_moved.yaml": MOVED})
    current = state(old=entry(loaded.campaigns["new"].payload))
    with pytest.raises(PlanError, match=r"--target old: _moved.yaml moves it to new; use"):
        make_plan(loaded.campaigns, loaded.moves, current, PlanOptions(targets=("old",)))


# --- _moved.yaml lines that rename nothing, and pending entries that move ------------------


def test_a_move_whose_keys_are_both_absent_from_the_state_is_a_typo(
    write_campaigns: WriteFiles,
) -> None:
    """Issue 12, case 4: `from: survey/csat-callbak` (a typo) validates, since `to` has its
    file; the plan must not show a create plus an orphan as if the line were not there."""
    loaded = config(
        write_campaigns,
        {
            "survey/csat-weekly.yaml": VALID_CAMPAIGN,
            "_moved.yaml": "- {from: survey/csat-callbak, to: survey/csat-weekly}\n",
        },
    )
    current = state(
        **{"survey/csat-callback": entry(loaded.campaigns["survey/csat-weekly"].payload)}
    )
    plan = make_plan(loaded.campaigns, loaded.moves, current, PlanOptions())
    [problem] = plan.problems
    assert (problem.location.file, problem.location.line, problem.location.col) == (
        "campaigns/_moved.yaml",
        1,
        3,
    )
    assert problem.path == "from"
    assert problem.message == (
        "neither 'survey/csat-callbak' nor 'survey/csat-weekly' is in the state, so this move "
        "renames nothing (a typo?): did you mean 'survey/csat-callback'?"
    )
    with pytest.raises(PlanError, match=r"1 problem\(s\)"):
        plan.raise_if_unsafe()


def test_a_move_of_a_campaign_never_applied_says_to_drop_the_line(
    write_campaigns: WriteFiles,
) -> None:
    loaded = config(write_campaigns, {"new.yaml": VALID_CAMPAIGN, "_moved.yaml": MOVED})
    [problem] = make_plan(loaded.campaigns, loaded.moves, State(), PlanOptions()).problems
    assert problem.message.endswith("drop the line if that campaign was never applied")


def test_a_pending_entry_moves_with_its_pending_record(write_campaigns: WriteFiles) -> None:
    loaded = config(write_campaigns, {"new.yaml": VALID_CAMPAIGN, "_moved.yaml": MOVED})
    sent = loaded.campaigns["new"].payload
    plan = make_plan(
        loaded.campaigns, loaded.moves, state(old=entry(sent, "pending")), PlanOptions()
    )
    action = only(plan)
    assert isinstance(action, InDoubt)
    assert (action.key, action.old_key, action.since) == ("new", "old", CREATED_AT)
    assert action.data()["from"] == "old"
    assert (plan.summary["in_doubt"], plan.summary["moved"]) == (1, 1)
    assert plan.has_changes and not plan.problems
    assert "Its pending state entry is renamed from old first." in plan_text.text(plan)


# --- start moments in the past -------------------------------------------------------------


def timed(write_campaigns: WriteFiles, moment: str = "2030-06-02 10:00") -> Config:
    return config(write_campaigns, {"timed.yaml": TIMED.replace("2030-06-02 10:00", moment)})


def test_a_create_that_starts_in_the_past_is_a_problem_at_the_start_moment(
    write_campaigns: WriteFiles,
) -> None:
    loaded = timed(write_campaigns)
    now = datetime(2030, 6, 2, 7, 0, tzinfo=UTC)  # 10:00 in Moscow: starting now is too late
    plan = make_plan(loaded.campaigns, [], State(), PlanOptions(now=now))
    [problem] = plan.problems
    assert problem.location == START_AT
    assert problem.path == "startMoment"
    assert problem.message == (
        "starts 2030-06-02 10:00 (Europe/Moscow), which is already in the past; "
        "move startMoment into the future"
    )
    with pytest.raises(PlanError, match="problem"):
        plan.raise_if_unsafe()


def test_a_start_moment_in_a_defaults_file_is_reported_there(
    write_campaigns: WriteFiles,
) -> None:
    loaded = config(
        write_campaigns,
        {
            "_defaults.yaml": '# shared\nstartType: time\nstartMoment: "2030-06-02 10:00"\n',
            "a.yaml": edit("startType: manual\n", ""),
        },
    )
    plan = make_plan(
        loaded.campaigns, [], State(), PlanOptions(now=datetime(2031, 1, 1, tzinfo=UTC))
    )
    [problem] = plan.problems
    assert (problem.location.file, problem.location.line) == ("campaigns/_defaults.yaml", 3)


@pytest.mark.parametrize(
    ("timezone", "now_utc", "past"),
    [
        # 10:00 Moscow is 07:00 UTC: at 07:30 UTC it has passed, though 10:00 UTC is ahead.
        ("Europe/Moscow", datetime(2030, 6, 2, 7, 30, tzinfo=UTC), True),
        ("UTC", datetime(2030, 6, 2, 7, 30, tzinfo=UTC), False),
        # At 09:00 UTC (12:00 Moscow) the start is past in Moscow and still ahead in UTC+1 ...
        ("Europe/Moscow", datetime(2030, 6, 2, 9, 0, tzinfo=UTC), True),
        ("Europe/London", datetime(2030, 6, 2, 8, 30, tzinfo=UTC), False),  # 09:30 BST
        # ... and 10:00 New York is 14:00 UTC: one hour ahead at 13:00 UTC.
        ("America/New_York", datetime(2030, 6, 2, 13, 0, tzinfo=UTC), False),
        ("America/New_York", datetime(2030, 6, 2, 14, 0, tzinfo=UTC), True),
    ],
)
def test_the_time_zone_decides_whether_a_start_is_past(
    write_campaigns: WriteFiles, timezone: str, now_utc: datetime, past: bool
) -> None:
    loaded = timed(write_campaigns)
    plan = make_plan(loaded.campaigns, [], State(), PlanOptions(timezone=timezone, now=now_utc))
    assert bool(plan.problems) is past
    if past:
        assert f"({timezone})" in plan.problems[0].message


def test_start_moments_are_checked_only_for_creates_and_replaces(
    write_campaigns: WriteFiles,
) -> None:
    loaded = timed(write_campaigns)
    body = loaded.campaigns["timed"].payload
    late = PlanOptions(now=datetime(2031, 1, 1, tzinfo=UTC))
    unchanged = make_plan(loaded.campaigns, [], state(timed=entry(body)), late)
    assert isinstance(only(unchanged), Unchanged) and not unchanged.problems
    drifted = state(timed=entry({**body, "cps": 1.05}))
    assert not make_plan(loaded.campaigns, [], drifted, late).problems
    replaced = make_plan(
        loaded.campaigns,
        [],
        drifted,
        PlanOptions(replace=("timed",), now=late.now),
    )
    assert [p.location for p in replaced.problems] == [START_AT]
    no_clock = make_plan(loaded.campaigns, [], State(), PlanOptions())
    assert not no_clock.problems  # now=None: the caller did not ask for the check


# --- max creates ---------------------------------------------------------------------------


def test_raise_if_unsafe_refuses_more_creates_than_max_creates() -> None:
    three = [campaign(k) for k in ("a", "b", "c")]
    plan_of(three, max_creates=3).raise_if_unsafe()
    with pytest.raises(PlanError) as refused:
        plan_of(three, max_creates=2).raise_if_unsafe()
    assert str(refused.value) == (
        "the plan creates 3 tasks, more than --max-creates 2; split the change or raise "
        "--max-creates"
    )


def test_replaces_count_against_max_creates() -> None:
    applied = payload(name="a")
    plan = plan_of(
        [campaign("a", payload(name="a", cps=1.09)), campaign("b")],
        state(a=entry(applied)),
        replace=("a",),
        max_creates=1,
    )
    with pytest.raises(PlanError, match="creates 2 tasks"):
        plan.raise_if_unsafe()


def test_the_plan_is_never_blocked_by_max_creates_itself() -> None:
    plan = plan_of([campaign(f"k{i}") for i in range(5)], max_creates=0)
    assert len(plan.creates) == 5 and not plan.problems


@pytest.mark.parametrize(
    "old", ["survey/nps-q3", "null", "~", "true", "1.5", "0x10", "#c", "x #y", "a, b", " ", "-x"]
)
def test_the_moved_line_a_message_suggests_reads_back_as_those_keys(old: str) -> None:
    """`- {from: null, to: k}` was suggested for the key `null` (read back: no key at all)."""
    from reconciler.config.yamlio import load_bytes
    from reconciler.plan.plan import moved_line

    line = moved_line(old, "survey/nps-q3-v2")
    doc = load_bytes(line.encode() + b"\n", "_moved.yaml", root="list")

    assert not doc.problems, (line, doc.problems)
    assert doc.data == [{"from": old, "to": "survey/nps-q3-v2"}], line
