"""Unit tests of reconciler.apply.apply: the policy, with a fake client, a no-op sleep and a real
FileStore in tmp_path (and once over the real client on an httpx.MockTransport)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.apply import apply as applying
from reconciler.apply import client as api
from reconciler.apply.apply import (
    RETRY_AFTER_CAP,
    RETRY_ATTEMPTS,
    Applier,
    ApplyOptions,
    ApplyReport,
    RateLimiter,
    Stop,
)
from reconciler.config.campaign import fingerprint
from reconciler.errors import ApiError, AuthError, PlanError, ReconcileError, StateError
from reconciler.plan.plan import Action, Create, InDoubt, Moved, Plan, PlanOptions, Replace
from reconciler.state.file.store import FileStore
from reconciler.state.model import Entry, State
from reconciler.state.store import iso_z

URL = "https://twin24.test/api/v1"
NOW = datetime(2030, 1, 1, 10, 0, 0, tzinfo=UTC)

Outcome = api.CreateOutcome


def payload(key: str, **more: Any) -> dict[str, Any]:
    return {"name": f"Task {key}", **more}


def create(key: str, **more: Any) -> Create:
    body = payload(key, **more)
    return Create(key, f"campaigns/{key}.yaml", fingerprint(body), None, body)


def entry(key: str, identity: str | None = None, **more: Any) -> Entry:
    body = payload(key, **more)
    status = "created" if identity else "pending"
    return Entry(status, identity, fingerprint(body), body, f"campaigns/{key}.yaml", iso_z(NOW))


def remote(identity: str, name: str, created_at: datetime | None = NOW) -> api.RemoteTask:
    stamp = created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z") if created_at else None
    return api.RemoteTask(identity, name, "BLANK", stamp, {})


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@dataclass
class FakeClient:
    """Answers each create from `script(name, attempt)`; records every call."""

    script: Callable[[str, int], Outcome] = lambda name, attempt: api.Created(f"id-{name}")
    tasks: list[api.RemoteTask] = field(default_factory=list)
    list_error: Exception | None = None
    calls: list[str] = field(default_factory=list)
    lists: int = 0
    queries: list[tuple[str | None, datetime | None]] = field(default_factory=list)
    clock_skew: timedelta | None = timedelta(0)  # the platform's clock behind ours
    clock_warning: str | None = None  # a Date header the client did not believe

    def create(self, body: dict[str, Any]) -> Outcome:
        name = body["name"]
        attempt = self.calls.count(name)
        self.calls.append(name)
        return self.script(name, attempt)

    def list_tasks(
        self, *, keyword: str | None = None, since: datetime | None = None
    ) -> list[api.RemoteTask]:
        """Like the API: `keyword` matches part of the name; `since` filters on createdAt."""
        self.lists += 1
        self.queries.append((keyword, since))
        if self.list_error is not None:
            raise self.list_error
        return [
            t
            for t in self.tasks
            if (keyword is None or keyword.lower() in t.name.lower())
            and (since is None or t.created_at is None or _parse(t.created_at) >= since)
        ]


@dataclass
class Run:
    report: ApplyReport
    lines: list[str]
    sleeps: list[float]
    state: State

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "state.json")


def seed(store: FileStore, entries: dict[str, Entry], api_url: str | None = URL) -> State:
    with store.lock("seed"):
        return store.write(State(api_url=api_url, campaigns=entries))


def run(
    store: FileStore,
    client: Any,
    actions: list[Action],
    *,
    clock: Callable[[], datetime] = lambda: NOW,
    stop: Stop | None = None,
    **options: Any,
) -> Run:
    """Plan `actions` against the store's state and apply it under the lock."""
    lines: list[str] = []
    sleeps: list[float] = []
    settings = {"api_url": URL, "parallelism": 1, "rate": 0.0, **options}
    with store.lock("reconcile apply"):
        state = store.read()
        plan = Plan(tuple(actions), state.lineage, state.serial)
        applier = Applier(
            store, client, ApplyOptions(**settings), lines.append, stop, clock, sleeps.append
        )
        report = applier.run(plan, state)
    return Run(report, lines, sleeps, store.read())


def journal_records(store: FileStore) -> list[dict[str, Any]]:
    return [json.loads(line) for line in store.journal_path.read_text().splitlines()]


# --- the write-ahead rule -------------------------------------------------------------------


def test_each_create_is_journaled_as_pending_before_it_is_sent(store: FileStore) -> None:
    seen: list[str] = []

    def script(name: str, attempt: int) -> Outcome:
        key = name.removeprefix("Task ")
        pending = [
            r for r in journal_records(store) if r["op"] == "pending" and r.get("key") == key
        ]
        assert len(pending) == 1, f"{key} was sent before its pending record was written"
        assert pending[0]["entry"]["status"] == "pending"
        assert pending[0]["entry"]["payload"] == payload(key)
        # A crash now would leave it pending: another reader replays the journal.
        assert FileStore(store.path).read().campaigns[key].status == "pending"
        seen.append(key)
        return api.Created(f"id-{key}")

    result = run(store, FakeClient(script), [create("a"), create("b"), create("c")], parallelism=3)

    assert sorted(seen) == ["a", "b", "c"]
    assert result.report.exit_code == 0
    assert sorted(result.report.created) == ["a", "b", "c"]
    for key in "abc":
        got = result.state.campaigns[key]
        assert (got.status, got.identity, got.payload) == ("created", f"id-{key}", payload(key))
        assert got.fingerprint == fingerprint(payload(key))
        assert got.source == f"campaigns/{key}.yaml" and got.created_at == iso_z(NOW)
    assert result.state.serial == 1 and result.state.api_url == URL
    assert not store.journal_path.exists()
    assert result.report.summary() == "Apply: 3 created, 0 adopted, 0 moved, 0 refused, 0 in doubt."


def test_the_journal_is_folded_even_when_a_create_raises(store: FileStore) -> None:
    def script(name: str, attempt: int) -> Outcome:
        if name == "Task b":
            raise RuntimeError("bug")
        return api.Created(f"id-{name}")

    with pytest.raises(StateError) as caught:  # never an internal error once creates were sent
        run(store, FakeClient(script), [create("a"), create("b")])

    assert str(caught.value) == (
        "apply stopped: an unexpected RuntimeError; please report it; nothing more was sent. "
        "The state file holds what was done: created a."
    )
    state = store.read()
    assert state.campaigns["a"].status == "created"
    assert state.campaigns["b"].status == "pending"  # sent or not: unknown, so in doubt
    assert not store.journal_path.exists()


# --- outcomes -----------------------------------------------------------------------------


def test_a_refused_create_removes_its_entry_and_the_others_go_on(store: FileStore) -> None:
    def script(name: str, attempt: int) -> Outcome:
        if name == "Task b":
            return api.Refused(422, "Validation failed", [{"path": "cps", "message": "bad"}])
        return api.Created(f"id-{name}")

    result = run(store, FakeClient(script), [create("a"), create("b"), create("c")])

    assert sorted(result.state.campaigns) == ["a", "c"]
    assert [k for k, _ in result.report.refused] == ["b"]
    assert result.report.exit_code == 1
    assert (
        "campaigns/b.yaml:1:1: error: b: refused by the API: HTTP 422: Validation failed "
        '([{"path": "cps", "message": "bad"}])' in result.lines
    )
    assert result.report.summary() == "Apply: 2 created, 0 adopted, 0 moved, 1 refused, 0 in doubt."


def test_an_in_doubt_create_stays_pending_and_is_sent_once(store: FileStore) -> None:
    client = FakeClient(lambda name, attempt: api.InDoubt("HTTP 503: Service Unavailable"))

    result = run(store, client, [create("a")])

    assert client.calls == ["Task a"]
    assert result.sleeps == []
    assert result.state.campaigns["a"].status == "pending"
    assert result.report.in_doubt == [("a", "HTTP 503: Service Unavailable")]
    assert result.report.exit_code == 1
    assert "never re-sent blindly" in result.text


def test_a_replace_keeps_the_old_identity_in_replaced(store: FileStore) -> None:
    seed(store, {"a": entry("a", "old-1")})
    new = payload("a", cps=2.0)
    action = Replace("a", "campaigns/a.yaml", fingerprint(new), "old-1", new)
    client = FakeClient(lambda n, i: api.Created("new-2"), tasks=[remote("old-1", "Task a")])

    first = run(store, client, [action])  # the old task on the platform is known: not blocked

    got = first.state.campaigns["a"]
    assert (got.identity, got.replaced, got.payload) == ("new-2", ("old-1",), new)
    client.script = lambda n, i: api.Created("new-3")
    second = run(store, client, [action])
    assert second.state.campaigns["a"].replaced == ("old-1", "new-2")


def test_a_refused_replace_restores_the_entry_it_replaced(store: FileStore) -> None:
    old = entry("a", "old-1")
    seed(store, {"a": old})
    new = payload("a", cps=2.0)
    action = Replace("a", "campaigns/a.yaml", fingerprint(new), "old-1", new)

    result = run(store, FakeClient(lambda n, i: api.Refused(400, "Bad", None)), [action])

    assert result.state.campaigns["a"] == old


# --- retries --------------------------------------------------------------------------------


def test_not_sent_is_retried_with_exponential_backoff(store: FileStore) -> None:
    client = FakeClient(
        lambda name, attempt: api.NotSent("could not connect") if attempt < 3 else api.Created("x")
    )

    result = run(store, client, [create("a")])

    assert client.calls == ["Task a"] * 4
    assert result.state.campaigns["a"].identity == "x"
    base = applying.BACKOFF_BASE
    assert len(result.sleeps) == 3
    for attempt, delay in enumerate(result.sleeps):  # full delay times a jitter in [0.5, 1]
        assert base * 2**attempt * 0.5 <= delay <= base * 2**attempt


def test_not_sent_every_time_gives_up_after_the_attempts_and_forgets_the_entry(
    store: FileStore,
) -> None:
    client = FakeClient(lambda name, attempt: api.NotSent("could not connect"))

    result = run(store, client, [create("a")])

    assert len(client.calls) == RETRY_ATTEMPTS
    assert len(result.sleeps) == RETRY_ATTEMPTS - 1
    assert all(s <= applying.BACKOFF_MAX for s in result.sleeps)
    assert "a" not in result.state.campaigns  # nothing was sent, so nothing is in doubt
    assert result.report.refused == [("a", "could not connect")]


def test_a_429_waits_retry_after_then_backoff(store: FileStore) -> None:
    answers: list[Outcome] = [api.RateLimited(2.0), api.RateLimited(None), api.Created("x")]
    client = FakeClient(lambda name, attempt: answers[attempt])

    result = run(store, client, [create("a")])

    assert result.sleeps[0] == 2.0
    assert 0.5 <= result.sleeps[1] <= 1.0  # no Retry-After: backoff for attempt 1
    assert result.state.campaigns["a"].identity == "x"


def test_a_429_every_time_is_reported_readably(store: FileStore) -> None:
    result = run(store, FakeClient(lambda n, i: api.RateLimited(1.0)), [create("a")])

    assert result.sleeps == [1.0] * (RETRY_ATTEMPTS - 1)
    assert "a" not in result.state.campaigns
    assert result.report.refused == [
        ("a", f"rate limited (HTTP 429) {RETRY_ATTEMPTS} times; run `reconcile apply` again later")
    ]


def test_a_retry_after_above_the_cap_stops_apply_with_a_clear_message(store: FileStore) -> None:
    client = FakeClient(lambda name, attempt: api.RateLimited(RETRY_AFTER_CAP + 1))

    result = run(store, client, [create("a"), create("b")])

    assert client.calls == ["Task a"]  # b never started
    assert result.sleeps == []
    assert result.report.stopped == (
        f"rate limited: the API asks to wait {RETRY_AFTER_CAP + 1:.0f}s, more than the "
        f"{RETRY_AFTER_CAP:.0f}s cap; run `reconcile apply` again later"
    )
    assert [k for k, _ in result.report.skipped] == ["b"]
    assert result.report.exit_code == 1
    assert result.state.campaigns == {}


# --- stopping -------------------------------------------------------------------------------


def test_a_401_stops_the_remaining_creates(store: FileStore) -> None:
    client = FakeClient(lambda name, attempt: api.Unauthorized("HTTP 401: Token is expired."))

    result = run(store, client, [create("a"), create("b"), create("c")])

    assert client.calls == ["Task a"]
    assert result.report.stopped is not None
    assert "token is missing, wrong or expired" in result.report.stopped
    assert [k for k, _ in result.report.skipped] == ["b", "c"]
    assert result.report.exit_code == 1 and result.report.signal is None
    assert result.state.campaigns == {}
    assert any("token is missing, wrong or expired; stopping" in line for line in result.lines)


@pytest.mark.parametrize(("name", "code"), [("SIGTERM", 143), ("SIGINT", 130), ("SIGHUP", 143)])
def test_a_signal_lets_the_create_in_flight_finish_and_starts_no_more(
    store: FileStore, name: str, code: int
) -> None:
    stop = Stop()

    def script(task: str, attempt: int) -> Outcome:
        stop.set(f"received {name}", name)  # arrives while the first create is in flight
        return api.Created(f"id-{task}")

    client = FakeClient(script)
    result = run(store, client, [create("a"), create("b"), create("c")], stop=stop)

    assert client.calls == ["Task a"]
    assert result.state.campaigns["a"].status == "created"
    assert sorted(result.state.campaigns) == ["a"]
    assert result.report.exit_code == code
    assert result.report.signal == name


# --- the remote list: in-doubt resolution and the lost-state guard --------------------------


def test_a_failing_list_endpoint_stops_apply_before_any_create(store: FileStore) -> None:
    before = seed(store, {"z": entry("z", "id-z")})
    client = FakeClient(list_error=ApiError("the Twin24 list endpoint is unavailable (503)"))

    with pytest.raises(ApiError, match="pass --no-remote-check to skip the check") as caught:
        run(store, client, [create("a")])

    assert "Nothing was created" in str(caught.value)
    assert client.calls == []
    assert store.read() == before and not store.journal_path.exists()  # nothing written


def test_with_no_state_entries_a_failing_list_never_suggests_skipping_the_check(
    store: FileStore,
) -> None:
    """The lost-state case (finding F3): following the hint would create every campaign."""
    client = FakeClient(list_error=ApiError("the Twin24 list endpoint is unavailable (503)"))

    with pytest.raises(ApiError) as caught:
        run(store, client, [create("a")])

    assert "--no-remote-check" not in str(caught.value)
    assert str(caught.value).endswith(
        "Nothing was created; retry later (the state has no entries: if its file was lost, "
        "recover it with `reconcile import --all` once the list endpoint answers)"
    )
    assert client.calls == [] and not store.path.exists() and not store.journal_path.exists()


@pytest.mark.parametrize("entries", [None, {}], ids=["no-state-file", "no-entries"])
def test_no_remote_check_is_refused_when_the_state_has_no_entries(
    store: FileStore, entries: dict[str, Entry] | None
) -> None:
    if entries is not None:
        seed(store, entries)
    before = snapshot_of(store)
    client = FakeClient(list_error=ApiError("unavailable"))

    with pytest.raises(PlanError) as caught:
        run(store, client, [create("a")], remote_check=False)

    assert str(caught.value).startswith(
        "--no-remote-check is refused: the state has no entries, which is exactly when the "
        "lost-state guard matters"
    )
    assert "recover the state with `reconcile import --all`" in str(caught.value)
    assert client.calls == [] and client.lists == 0  # refused before anything was asked
    assert snapshot_of(store) == before


def snapshot_of(store: FileStore) -> dict[str, bytes]:
    """The store's files (the lock file aside: every run makes it) with their bytes."""
    files = sorted(store.path.parent.iterdir())
    return {p.name: p.read_bytes() for p in files if p.name != store.lock_path.name}


def test_without_the_remote_check_a_failing_list_endpoint_is_a_warning(store: FileStore) -> None:
    seed(store, {"z": entry("z", "id-z")})  # a state with entries: the flag keeps its meaning
    client = FakeClient(list_error=ApiError("unavailable"))

    result = run(store, client, [create("a")], remote_check=False)

    assert client.calls == ["Task a"]
    assert "warning: remote task list unavailable; --no-remote-check given" in result.lines
    assert result.report.exit_code == 0


def test_in_doubt_entries_need_the_list_even_without_the_remote_check(store: FileStore) -> None:
    seed(store, {"a": entry("a")})
    client = FakeClient(list_error=ApiError("unavailable"))
    action = InDoubt("a", "campaigns/a.yaml", None, None, payload("a"), since=iso_z(NOW))

    with pytest.raises(ApiError) as caught:
        run(store, client, [action, create("b")], remote_check=False)

    assert "--no-remote-check" not in str(caught.value)
    assert client.calls == []


@pytest.mark.parametrize("remote_check", [True, False])
def test_a_401_from_the_list_is_a_token_error_not_an_unavailable_list(
    store: FileStore, remote_check: bool
) -> None:
    seed(store, {"z": entry("z", "id-z")})
    client = FakeClient(list_error=AuthError("the Twin24 API refused the token (HTTP 401)"))

    with pytest.raises(AuthError, match="token is missing, wrong or expired") as caught:
        run(store, client, [create("a")], remote_check=remote_check)

    assert "--no-remote-check" not in str(caught.value)
    assert client.calls == []


@pytest.mark.parametrize("remote_check", [True, False])
def test_a_create_whose_name_is_already_on_the_platform_is_refused_with_the_import_command(
    store: FileStore, remote_check: bool
) -> None:
    seed(store, {"z": entry("z", "id-z")})
    before = store.read()
    client = FakeClient(tasks=[remote("stray-1", "Task a"), remote("id-z", "Task z")])

    result = run(store, client, [create("a")], remote_check=remote_check)

    assert client.calls == []
    assert result.report.refused == [("a", "exists on the platform")]  # counted as refused
    assert result.report.skipped == []
    assert "If it is this campaign, run `reconcile import a stray-1`" in result.text
    assert result.report.summary() == "Apply: 0 created, 0 adopted, 0 moved, 1 refused, 0 in doubt."
    assert result.report.exit_code == 1
    assert result.state == before  # nothing happened: not even the serial moved
    assert not store.journal_path.exists()


def pending_plan(store: FileStore) -> list[Action]:
    seed(store, {"a": entry("a")})
    return [InDoubt("a", "campaigns/a.yaml", None, None, payload("a"), since=iso_z(NOW))]


def test_an_in_doubt_create_found_once_on_the_platform_is_adopted(store: FileStore) -> None:
    actions = pending_plan(store)
    client = FakeClient(tasks=[remote("found-1", "Task a", NOW + timedelta(seconds=1))])

    result = run(store, client, actions, clock=lambda: NOW + timedelta(seconds=5))

    assert client.calls == []
    assert result.state.campaigns["a"].status == "created"
    assert result.state.campaigns["a"].identity == "found-1"
    assert result.report.adopted == ["found-1"]
    assert result.report.exit_code == 0


def test_an_in_doubt_create_found_twice_is_reported_with_both(store: FileStore) -> None:
    actions = pending_plan(store)
    tasks = [remote("dup-1", "Task a"), remote("dup-2", "Task a", NOW + timedelta(seconds=2))]

    result = run(store, FakeClient(tasks=tasks), actions)

    assert result.state.campaigns["a"].status == "pending"
    assert result.report.in_doubt == [("a", "several tasks match: dup-1, dup-2")]
    assert "`reconcile import a ID`" in result.text


def test_the_lookup_asks_the_list_endpoint_by_name_and_since_the_pending_time(
    store: FileStore,
) -> None:
    actions = pending_plan(store)
    client = FakeClient(tasks=[remote("found-1", "Task a", NOW + timedelta(seconds=1))])

    run(store, client, actions, clock=lambda: NOW + timedelta(seconds=5))

    keyword, since = client.queries[-1]
    assert keyword == "Task a"
    assert since is not None and since <= NOW  # never later than the create was sent


def test_a_task_the_state_already_knows_is_never_adopted(store: FileStore) -> None:
    """A pending replace whose old task matches by name and has no usable date: the old task
    is the one being replaced, not the outcome of the create."""
    body = payload("a")
    pending = Entry(
        "pending", None, fingerprint(body), body, "campaigns/a.yaml", iso_z(NOW), ("old-1",)
    )
    seed(store, {"a": pending})
    actions: list[Action] = [InDoubt("a", "campaigns/a.yaml", None, None, body, since=iso_z(NOW))]
    client = FakeClient(tasks=[remote("old-1", "Task a", None), remote("old-1", "Task a")])

    result = run(store, client, actions, clock=lambda: NOW + timedelta(seconds=5))

    assert result.report.adopted == []
    assert result.state.campaigns["a"].status == "pending"
    assert result.report.in_doubt == [("a", "not visible yet")]


def test_an_undated_candidate_is_reported_and_not_adopted(store: FileStore) -> None:
    actions = pending_plan(store)
    client = FakeClient(tasks=[remote("maybe-1", "Task a", None)])

    result = run(store, client, actions, clock=lambda: NOW + timedelta(minutes=5))

    assert result.report.adopted == []
    assert result.state.campaigns["a"].status == "pending"
    assert result.report.in_doubt == [("a", "cannot date maybe-1")]
    assert "If it is, run `reconcile import a maybe-1`" in result.text


def test_retry_pending_creates_count_against_max_creates(store: FileStore) -> None:
    actions = pending_plan(store)
    with pytest.raises(PlanError, match="more than --max-creates 1"):
        applier_run_with_limit(store, [*actions, create("b")], limit=1)


def applier_run_with_limit(store: FileStore, actions: list[Action], limit: int) -> None:
    with store.lock("reconcile apply"):
        state = store.read()
        plan = Plan(tuple(actions), state.lineage, state.serial, PlanOptions(max_creates=limit))
        options = ApplyOptions(api_url=URL, rate=0.0, retry_pending=("a",))
        Applier(
            store,
            FakeClient(),
            options,
            print,
            None,
            lambda: NOW + timedelta(hours=1),
            lambda s: None,
        ).run(plan, state)


def test_a_signal_during_the_rate_wait_starts_no_create(store: FileStore) -> None:
    stop = Stop()

    def sleep(seconds: float) -> None:  # the rate limiter's wait: the signal arrives now
        stop.set("received SIGTERM", "SIGTERM")

    client = FakeClient()
    with store.lock("reconcile apply"):
        state = store.read()
        plan = Plan((create("a"), create("b")), state.lineage, state.serial)
        options = ApplyOptions(api_url=URL, rate=1.0, parallelism=1)
        report = Applier(store, client, options, print, stop, lambda: NOW, sleep).run(plan, state)

    assert len(client.calls) <= 1  # the first needs no wait; the second must not be sent
    assert report.exit_code == 143


def test_a_signal_during_a_retry_wait_sends_no_retry(store: FileStore) -> None:
    stop = Stop()
    client = FakeClient(lambda name, attempt: api.RateLimited(30.0))

    def sleep(seconds: float) -> None:
        stop.set("received SIGTERM", "SIGTERM")

    with store.lock("reconcile apply"):
        state = store.read()
        plan = Plan((create("a"),), state.lineage, state.serial)
        options = ApplyOptions(api_url=URL, rate=0.0)
        report = Applier(store, client, options, print, stop, lambda: NOW, sleep).run(plan, state)

    assert client.calls == ["Task a"]
    assert report.exit_code == 143
    assert "a" not in store.read().campaigns  # nothing was created: the entry is gone


def test_an_older_task_with_the_same_name_is_not_a_match(store: FileStore) -> None:
    actions = pending_plan(store)
    older = remote("old-1", "Task a", NOW - timedelta(hours=1))

    result = run(store, FakeClient(tasks=[older]), actions)

    assert result.report.in_doubt == [("a", "not visible yet")]


def test_an_in_doubt_create_not_found_waits_for_the_grace_period(store: FileStore) -> None:
    actions = pending_plan(store)
    client = FakeClient()

    soon = run(store, client, actions, clock=lambda: NOW + timedelta(seconds=30))
    assert soon.report.in_doubt == [("a", "not visible yet")]
    assert f"run `reconcile apply` again after {iso_z(NOW + applying.PENDING_GRACE)}" in soon.text

    late = run(store, client, actions, clock=lambda: NOW + timedelta(minutes=3))
    assert late.report.in_doubt == [("a", "not found on the platform")]
    assert "re-send it with `reconcile apply --retry-pending a`" in late.text

    retried = run(
        store, client, actions, clock=lambda: NOW + timedelta(minutes=3), retry_pending=("a",)
    )
    assert client.calls == ["Task a"]
    assert retried.state.campaigns["a"].identity == "id-Task a"
    assert retried.report.exit_code == 0


def test_the_grace_period_comes_from_the_env_knob(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    actions = pending_plan(store)
    monkeypatch.setenv("RECONCILE_PENDING_GRACE", "0")
    client = FakeClient()

    result = run(store, client, actions, retry_pending=("a",))

    assert client.calls == ["Task a"]
    assert result.report.exit_code == 0
    monkeypatch.setenv("RECONCILE_PENDING_GRACE", "soon")
    with pytest.raises(ReconcileError, match="RECONCILE_PENDING_GRACE='soon'"):
        applying.pending_grace()
    monkeypatch.setenv("RECONCILE_PENDING_GRACE", "-1")
    with pytest.raises(ReconcileError):
        applying.pending_grace()
    monkeypatch.delenv("RECONCILE_PENDING_GRACE")
    assert applying.pending_grace() == applying.PENDING_GRACE


# --- moves, the api_url, parallelism, the rate --------------------------------------------


def test_a_move_renames_the_entry_without_calling_the_api(store: FileStore) -> None:
    old = entry("old", "id-old")
    seed(store, {"old": old})
    action = Moved("new", "campaigns/new.yaml", old.fingerprint, "id-old", old.payload, (), "old")
    client = FakeClient()

    result = run(store, client, [action])

    assert client.calls == [] and client.lists == 0
    assert result.state.campaigns == {"new": old}
    assert result.report.moved == ["new"]


def test_a_state_of_another_api_is_refused(store: FileStore) -> None:
    seed(store, {}, api_url="https://elsewhere.test/api/v1")
    client = FakeClient()

    with pytest.raises(StateError, match="the state belongs to https://elsewhere"):
        run(store, client, [create("a")])

    assert client.calls == [] and client.lists == 0


def test_at_most_parallelism_creates_run_at_once(store: FileStore) -> None:
    barrier = threading.Barrier(3, timeout=10)  # breaks unless three run together
    lock = threading.Lock()
    running = peak = 0

    def script(name: str, attempt: int) -> Outcome:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        barrier.wait()
        time.sleep(0.01)
        with lock:
            running -= 1
        return api.Created(f"id-{name}")

    keys = [f"k{i}" for i in range(9)]
    result = run(store, FakeClient(script), [create(k) for k in keys], parallelism=3)

    assert peak == 3
    assert sorted(result.report.created) == keys


def test_the_rate_limiter_spaces_the_starts() -> None:
    sleeps: list[float] = []
    limiter = RateLimiter(4.0, sleeps.append)
    for _ in range(3):
        limiter.wait()
    assert len(sleeps) == 2
    assert sleeps[0] == pytest.approx(0.25, abs=0.05)
    assert sleeps[1] == pytest.approx(0.5, abs=0.05)
    unlimited: list[float] = []
    free = RateLimiter(0, unlimited.append)
    for _ in range(5):
        free.wait()
    assert unlimited == []


# --- over the real client -----------------------------------------------------------------


@pytest.fixture
def mock_client() -> Iterator[tuple[api.Twin24Client, list[httpx.Request]]]:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"count": 0, "items": []})
        name = json.loads(request.content)["name"]
        if name == "Task ok":
            return httpx.Response(200, json={"id": {"identity": "id-ok"}})
        if name == "Task bad":
            return httpx.Response(422, json={"error": "Validation failed", "details": "cps"})
        return httpx.Response(503, json={"error": "Service Unavailable", "details": None})

    client = api.Twin24Client(URL, "s3cret-T0KEN", transport=httpx.MockTransport(handler))
    yield client, requests
    client.close()


def test_outcomes_over_the_real_client(
    store: FileStore, mock_client: tuple[api.Twin24Client, list[httpx.Request]]
) -> None:
    client, requests = mock_client

    result = run(store, client, [create("bad"), create("boom"), create("ok")])

    assert result.report.created == ["ok"]
    assert result.report.refused == [("bad", "HTTP 422: Validation failed (cps)")]
    assert [k for k, _ in result.report.in_doubt] == ["boom"]
    assert sorted(result.state.campaigns) == ["boom", "ok"]
    assert result.state.campaigns["boom"].status == "pending"
    assert result.state.campaigns["ok"].identity == "id-ok"
    assert [r.method for r in requests] == ["GET", "POST", "POST", "POST"]
    assert all(r.headers["Authorization"] == "Bearer s3cret-T0KEN" for r in requests)
    assert "s3cret-T0KEN" not in store.path.read_text() + result.text
