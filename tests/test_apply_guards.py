"""Unit tests of what apply does with the remote list before anything is sent (spec 9.2): the
name guards, flags that must apply, the lost-state hint, a list it cannot trust, in-doubt
lookups that allow for clock skew, and pending entries that move. A fake client, a real
FileStore in tmp_path (helpers shared with test_apply_unit)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from test_apply_unit import NOW, URL, FakeClient, create, entry, payload, remote, run, seed

from reconciler.apply import client as api
from reconciler.apply.apply import Applier, ApplyOptions
from reconciler.apply.doubt import SKEW_MARGIN
from reconciler.config.campaign import fingerprint
from reconciler.errors import ListAnswerError, PlanError
from reconciler.plan.plan import Action, Create, InDoubt, Plan
from reconciler.state.file.store import FileStore
from reconciler.state.model import Entry
from reconciler.state.store import iso_z

SUMMARY = "Apply: {} created, {} adopted, {} moved, {} refused, {} in doubt."


@pytest.fixture
def store(tmp_path: Any) -> FileStore:
    return FileStore(tmp_path / "state.json")


def renamed(key: str, old: str, **more: Any) -> Create:
    """A create the plan flagged: its name is `old`'s in the state (a probable rename)."""
    body = payload(old, **more)
    return Create(key, f"campaigns/{key}.yaml", fingerprint(body), None, body, (), old, "name")


# --- the name guards -----------------------------------------------------------------------


def test_a_flagged_create_is_refused_before_anything_is_sent_and_others_go_on(
    store: FileStore,
) -> None:
    seed(store, {"old": entry("old", "id-old")})
    client = FakeClient(tasks=[remote("id-old", "Task old")])

    result = run(store, client, [renamed("new", "old", cps=1.04), create("other")])

    assert client.calls == ["Task other"]
    assert result.report.refused == [("new", "probable rename")]
    assert result.report.summary() == SUMMARY.format(1, 0, 0, 1, 0)
    assert result.report.exit_code == 1
    [line] = [line for line in result.lines if "new.yaml" in line]
    assert line.startswith("campaigns/new.yaml:1:1: error: not sent: new has the name 'Task old'")
    assert "add `- {from: old, to: new}` to _moved.yaml" in line
    assert line.endswith("run `reconcile apply --allow-duplicate new`")
    assert sorted(result.state.campaigns) == ["old", "other"]


def test_allow_duplicate_sends_a_flagged_create(store: FileStore) -> None:
    seed(store, {"old": entry("old", "id-old")})
    client = FakeClient(tasks=[remote("id-old", "Task old")])

    result = run(store, client, [renamed("new", "old", cps=1.04)], allow_duplicate=("new",))

    assert client.calls == ["Task old"]
    assert result.report.exit_code == 0
    assert result.state.campaigns["new"].identity == "id-Task old"


def test_a_name_another_key_replaced_on_the_platform_is_refused(store: FileStore) -> None:
    """The plan cannot see it (the state keeps identities, not the replaced tasks' names):
    the listed task with this name is one the state records as replaced by `x`."""
    x = replace(entry("x", "id-x2"), replaced=("id-x1",))
    seed(store, {"x": x})
    client = FakeClient(tasks=[remote("id-x1", "Task a"), remote("id-x2", "Task x")])

    refused = run(store, client, [create("a")])

    assert client.calls == []
    assert refused.report.refused == [("a", "probable rename")]
    assert (
        "a: the platform's task id-x1 named 'Task a' is a task x replaced in the state "
        "(a probable rename)" in refused.text
    )
    assert "Halt it on the platform and run `reconcile apply --allow-duplicate a`" in refused.text

    allowed = run(store, client, [create("a")], allow_duplicate=("a",))
    assert client.calls == ["Task a"] and allowed.report.exit_code == 0


def test_allow_duplicate_for_a_create_no_guard_flags_is_refused_before_anything(
    store: FileStore,
) -> None:
    client = FakeClient()

    with pytest.raises(PlanError) as caught:
        run(store, client, [create("a")], allow_duplicate=("a",))

    assert str(caught.value) == (
        "--allow-duplicate a: no guard flags a (no state entry and no task on the platform "
        "shares its payload or name), so the flag would do nothing; nothing was done"
    )
    assert client.calls == []
    assert not store.path.exists() and not store.journal_path.exists()


@pytest.mark.parametrize(
    ("flag", "key", "message"),
    [
        ("retry_pending", "a", "--retry-pending a: a is not pending (in doubt) in this plan"),
        ("allow_duplicate", "nothing", "--allow-duplicate nothing: nothing is not created"),
    ],
)
def test_a_flag_key_that_would_do_nothing_stops_apply_before_anything(
    store: FileStore, flag: str, key: str, message: str
) -> None:
    client = FakeClient()

    with pytest.raises(PlanError, match=re.escape(message)):
        run(store, client, [create("a")], **{flag: (key,)})

    assert client.calls == [] and client.lists == 0
    assert not store.path.exists()


# --- the lost-state guard's hint, and a list it cannot trust -------------------------------


def test_with_the_state_lost_the_import_hint_names_the_live_task_not_the_replaced_one(
    store: FileStore,
) -> None:
    older = remote("replaced-1", "Task a", NOW - timedelta(days=2))
    newer = remote("live-2", "Task a", NOW - timedelta(days=1))
    client = FakeClient(tasks=[older, newer])

    result = run(store, client, [create("a")])

    assert client.calls == []
    assert result.report.refused == [("a", "exists on the platform")]
    assert (
        "run `reconcile import a live-2` (the newest; replaced-1: older or halted, probably "
        "tasks it replaced)" in result.text
    )


@pytest.mark.parametrize("remote_check", [True, False])
def test_a_list_it_cannot_trust_stops_apply_even_with_no_remote_check(
    store: FileStore, remote_check: bool
) -> None:
    before = seed(store, {"z": entry("z", "id-z")})
    client = FakeClient(list_error=ListAnswerError("answered with an HTML page"))

    with pytest.raises(ListAnswerError) as caught:
        run(store, client, [create("a")], remote_check=remote_check)

    assert "answered with an HTML page. Nothing was created" in str(caught.value)
    assert "--no-remote-check" not in str(caught.value)
    assert client.calls == [] and store.read() == before


# --- in-doubt lookups and the clock skew ---------------------------------------------------


def pending(store: FileStore, key: str = "a", old_key: str = "") -> list[Action]:
    seed(store, {old_key or key: entry(key)})
    return [
        InDoubt(
            key,
            f"campaigns/{key}.yaml",
            None,
            None,
            payload(key),
            since=iso_z(NOW),
            old_key=old_key,
        )
    ]


def test_an_in_doubt_create_on_a_platform_15_minutes_behind_is_found_and_adopted(
    store: FileStore,
) -> None:
    """Issue 12, case 9: its createdAt is 15 minutes before our pending time."""
    actions = pending(store)
    behind = timedelta(minutes=15)
    task = remote("found-1", "Task a", NOW - behind + timedelta(seconds=1))
    client = FakeClient(tasks=[task], clock_skew=behind)

    result = run(store, client, actions, clock=lambda: NOW + timedelta(minutes=5))

    assert result.report.adopted == ["found-1"]
    assert result.state.campaigns["a"].identity == "found-1"
    assert client.queries[-1] == ("Task a", NOW - behind - SKEW_MARGIN)
    assert "--retry-pending" not in result.text
    assert result.report.summary() == SUMMARY.format(0, 1, 0, 0, 0)


def test_not_found_says_how_the_skew_was_allowed_for(store: FileStore) -> None:
    actions = pending(store)
    client = FakeClient(clock_skew=timedelta(minutes=15))

    result = run(store, client, actions, clock=lambda: NOW + timedelta(minutes=5))

    assert result.report.in_doubt == [("a", "not found on the platform")]
    assert (
        "no task named 'Task a' was created on the platform since then (its clock is 15 min "
        "behind ours, allowed for); if you are sure, re-send it with `reconcile apply "
        "--retry-pending a`"
    ) in result.text


def test_without_a_date_header_a_same_named_task_is_never_answered_with_retry_pending(
    store: FileStore,
) -> None:
    actions = pending(store)
    client = FakeClient(tasks=[remote("maybe-1", "Task a", NOW - timedelta(hours=3))])
    client.clock_skew = None

    result = run(
        store, client, actions, clock=lambda: NOW + timedelta(hours=1), retry_pending=("a",)
    )

    assert client.calls == []
    assert client.queries[-1] == ("Task a", None)  # no window: every task with its name
    assert result.report.in_doubt == [("a", "cannot date maybe-1")]
    assert "sends no believable Date header" in result.text and "re-send" not in result.text


@dataclass
class IgnoresFrom(FakeClient):
    """A list endpoint that ignores `from`: older tasks with the name come back too."""

    def list_tasks(
        self, *, keyword: str | None = None, since: datetime | None = None
    ) -> list[api.RemoteTask]:
        return super().list_tasks(keyword=keyword)


def test_an_older_unknown_task_with_its_name_blocks_the_retry_suggestion(
    store: FileStore,
) -> None:
    actions = pending(store)
    client = IgnoresFrom(tasks=[remote("old-9", "Task a", NOW - timedelta(days=3))])

    result = run(
        store, client, actions, clock=lambda: NOW + timedelta(hours=1), retry_pending=("a",)
    )

    assert client.calls == []
    assert result.report.in_doubt == [("a", "older tasks with its name: old-9")]
    assert "apply does not re-create it while they exist" in result.text
    assert "re-send" not in result.text


# --- moves of pending entries ----------------------------------------------------------------


def test_a_pending_entry_moved_by_moved_yaml_moves_and_is_resolved(store: FileStore) -> None:
    """Issue 12, case 8 (an internal error, KeyError, before)."""
    actions = pending(store, key="new", old_key="old")
    client = FakeClient(tasks=[remote("found-1", "Task new", NOW + timedelta(seconds=1))])

    result = run(store, client, [*actions, create("other")], clock=lambda: NOW)

    assert sorted(result.state.campaigns) == ["new", "other"]
    assert result.state.campaigns["new"].identity == "found-1"
    assert result.report.moved == ["new"] and result.report.adopted == ["found-1"]
    assert result.report.summary() == SUMMARY.format(1, 1, 1, 0, 0)
    assert "> old -> new: state entry renamed" in result.text


def test_a_moved_pending_entry_still_in_doubt_keeps_its_record_under_the_new_key(
    store: FileStore,
) -> None:
    actions = pending(store, key="new", old_key="old")
    client = FakeClient()

    result = run(store, client, actions, clock=lambda: NOW + timedelta(seconds=10))

    assert list(result.state.campaigns) == ["new"]
    moved = result.state.campaigns["new"]
    assert (moved.status, moved.created_at) == ("pending", iso_z(NOW))
    assert result.report.in_doubt == [("new", "not visible yet")]


def test_a_retry_of_a_moved_pending_replace_keeps_what_it_replaced(store: FileStore) -> None:
    body = payload("new")
    seed(
        store,
        {"old": Entry("pending", None, fingerprint(body), body, "x", iso_z(NOW), ("first-1",))},
    )
    action = InDoubt("new", "campaigns/new.yaml", None, None, body, since=iso_z(NOW), old_key="old")
    client = FakeClient(lambda name, attempt: api.Created("second-2"))

    with store.lock("reconcile apply"):
        state = store.read()
        options = ApplyOptions(api_url=URL, rate=0.0, retry_pending=("new",))
        Applier(
            store, client, options, print, None, lambda: NOW + timedelta(hours=1), lambda s: None
        ).run(Plan((action,), state.lineage, state.serial), state)

    got = store.read().campaigns["new"]
    assert (got.identity, got.replaced) == ("second-2", ("first-1",))


# --- check-remote's comparison -----------------------------------------------------------------


def test_check_remote_knows_replaced_tasks_and_names_a_second_task_for_a_known_key() -> None:
    from reconciler.apply.drift import compare
    from reconciler.state.model import State

    current = State(
        "lineage",
        3,
        URL,
        {
            "a": replace(entry("a", "a-2"), replaced=("a-1", "a-0")),
            "b": entry("b", "b-1"),
        },
    )
    halted = api.RemoteTask("a-0", "Task a", "HALTED", None, {})
    listed = [remote("a-1", "Task a"), halted, remote("a-2", "Task a"), remote("b-1", "Task b")]
    stray = remote("b-9", "Task b")

    quiet = compare(current, {"Task a": "a", "Task b": "b"}, listed)
    assert quiet.findings == []
    assert quiet.notes == [  # the halted replaced task is not worth a note
        "note: a: replaced task a-1 is still on the platform (BLANK); halt it there if it must "
        "stop calling"
    ]
    found = compare(current, {"Task a": "a", "Task b": "b"}, [*listed, stray])
    assert found.findings == [
        "+ b: remote task b-9 named 'Task b' is not in the state, which records b as b-1: a "
        "second task with this name; halt it on the platform if it is a duplicate"
    ]
