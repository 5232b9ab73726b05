"""Policy of apply: write-ahead order, in-doubt resolution, the lost-state guard, retries,
parallelism, rate, signals. Side effects go through the injected store and client.

Per create: journal `pending` (fsync) -> POST -> journal `created` / `removed`, or leave it
`pending` when the outcome is unknown. A create is never re-sent blindly: an in-doubt entry is
looked up on the platform by name first, and re-created only with `--retry-pending KEY`.

A run started with a login (`renew` given) answers a 401 by logging in again, once
(`relogin.py`), and re-sends what the 401 refused: nothing was created, its pending record
stays, and the re-sent create is recorded as any other.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from reconciler.apply import client as api
from reconciler.apply import doubt, failure, guard
from reconciler.apply.progress import Progress, Silent
from reconciler.apply.relogin import Relogin
from reconciler.config.normalize import mask_url
from reconciler.errors import (
    ApiError,
    AuthError,
    ListAnswerError,
    PlanError,
    ReconcileError,
    StateError,
)
from reconciler.plan.plan import Action, InDoubt, Moved, Plan, Replace
from reconciler.plan.render import escape
from reconciler.state.model import Entry, State
from reconciler.state.store import Records, Store, iso_z, utc_now

PENDING_GRACE = timedelta(minutes=2)  # a task may take a while to appear in the list
PENDING_GRACE_ENV = "RECONCILE_PENDING_GRACE"  # seconds; for tests and pipeline rehearsals
RETRY_ATTEMPTS = 5
BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0
RETRY_AFTER_CAP = 60.0
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 143}
# After a stop signal, requests in flight get this long before they end (a create then is in
# doubt): CI kills about 10 s after its signal, and the journal and the state still need
# writing.
STOP_GRACE = 3.0


@dataclass(frozen=True)
class ApplyOptions:
    """What the user asked for."""

    api_url: str
    parallelism: int = 4
    rate: float = 5.0  # creates per second; 0 = unlimited
    retry_pending: tuple[str, ...] = ()
    allow_duplicate: tuple[str, ...] = ()
    remote_check: bool = True


@dataclass
class ApplyReport:
    """What happened, per key, and the exit code it means."""

    created: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # by the API or a guard
    in_doubt: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # not started after a stop
    stopped: str | None = None
    signal: str | None = None

    @property
    def exit_code(self) -> int:
        if self.signal:
            return EXIT_SIGNAL.get(self.signal, 130)
        if self.refused or self.in_doubt or self.skipped or self.stopped:
            return 1
        return 0

    def summary(self) -> str:
        """`Apply: C created, A adopted, M moved, R refused, D in doubt.` (spec 9.2)."""
        return (
            f"Apply: {len(self.created)} created, {len(self.adopted)} adopted, "
            f"{len(self.moved)} moved, {len(self.refused)} refused, {len(self.in_doubt)} in doubt."
        )


class Stop:
    """A flag set by a signal handler or a 401: no new create starts once it is set."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None
        self.signal: str | None = None

    def set(self, reason: str, signal: str | None = None) -> None:
        if not self.event.is_set():
            self.reason, self.signal = reason, signal
            self.event.set()


class RateLimiter:
    """At most `rate` starts per second across threads (0 = unlimited)."""

    def __init__(
        self,
        rate: float,
        sleep: Callable[[float], object] = time.sleep,
        waiting: Callable[[float], None] | None = None,
    ) -> None:
        self.interval = 1 / rate if rate > 0 else 0.0
        self.next = 0.0
        self.lock = threading.Lock()
        self.sleep = sleep
        self.waiting = waiting  # told how long each wait is (the progress line shows it)

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + self.interval
        if start > now:
            if self.waiting is not None:
                self.waiting(start - now)
            self.sleep(start - now)


Echo = Callable[[str], None]


class Applier:
    """Carries out one plan against one locked store and one client."""

    def __init__(
        self,
        store: Store,
        client: api.Twin24Client,
        options: ApplyOptions,
        echo: Echo,
        stop: Stop | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], object] | None = None,
        error: Echo | None = None,
        renew: Callable[[], None] | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.store, self.client, self.options = store, client, options
        # Every line names keys, identities or API messages: escaped here, once for all.
        self.echo = _escaped(echo)
        self.error = _escaped(error or echo)  # problems and warnings (stderr in the CLI)
        self.stop = stop or Stop()
        self.clock = clock
        # Waits between retries end early when a signal stops the run.
        self.sleep: Callable[[float], object] = sleep or self.stop.event.wait
        self.report = ApplyReport()
        self.progress = progress or Silent()
        self.again = "reconcile apply"  # the command that runs it again (set by `run`)
        self.limiter = RateLimiter(options.rate, self.sleep, self.progress.waiting)
        self.lock = threading.Lock()
        self.journal_error: StateError | None = None  # the first journal record that failed
        self._failing = threading.Lock()
        self.relogin = Relogin(renew, self.error)

    def run(self, plan: Plan, state: State) -> ApplyReport:
        """Apply `plan` (made against `state`, read under the lock). Always folds the journal.

        Every refusal that concerns the whole run (flags, limits, an unreadable task list)
        comes before the first record is written; creates a guard flags are refused one by one.
        Once records are written no error leaves without saying what was done and where it is
        recorded (`failure.message`), not even an unexpected one.
        """
        if state.api_url and state.api_url != self.options.api_url:
            raise StateError(
                f"the state belongs to {mask_url(state.api_url)}, not {self.options.api_url}; "
                "use the matching --api-url or another --state"
            )
        plan.raise_if_unsafe()
        plan.check_flags(self.options.retry_pending, self.options.allow_duplicate)
        self.again = plan.options.command("apply")
        if not self.options.remote_check and not state.campaigns and plan.creates:
            raise PlanError(
                "--no-remote-check is refused: the state has no entries, which is exactly when "
                "the lost-state guard matters (with a lost or uncommitted state file, apply "
                "would create every campaign again). Nothing was sent: wait until the Twin24 "
                "list endpoint answers and run apply again, or, if the tasks exist, recover the "
                f"state with `{plan.options.command('import', flags=[('--all', None)])}`"
            )
        remote = self._list(plan, state)
        moved = _moved(plan, state)
        creates, refused = guard.name_guards(
            plan, moved, remote or [], self.options.allow_duplicate
        )
        self._refuse(refused, "probable rename")
        journal = self.store.journal()
        unexpected: Exception | None = None
        try:
            self._moves(plan, moved, journal)
            state = moved
            creates += self._resolve_all(plan, state, journal, remote or [])
            if len(creates) > plan.options.max_creates:  # --retry-pending re-creates count too
                raise PlanError(
                    f"apply would create {len(creates)} tasks, more than --max-creates "
                    f"{plan.options.max_creates}; nothing was created"
                )
            known = set(guard.owners(state)) | set(self.report.adopted)
            creates, refused = guard.lost_state(creates, known, remote or [], plan.options.hints)
            self._refuse(refused, "exists on the platform")
            self._creates(creates, state, journal)
        except StateError as exc:  # only a journal record fails so: nothing more was sent
            self._journal_failed(exc)
        except Exception as exc:  # a refusal (ReconcileError) or a bug: after the fold
            unexpected = exc
        finally:
            journal.close()
            folded = self._fold(journal)
        if self.stop.reason:
            self.report.stopped, self.report.signal = self.stop.reason, self.stop.signal
        if isinstance(unexpected, ReconcileError) and folded is None:
            raise unexpected  # refused before any create was sent; what was done is folded
        if self.journal_error is not None or folded is not None or unexpected is not None:
            raise StateError(
                failure.message(
                    self.report,
                    self.journal_error,
                    folded,
                    journal.where,
                    plan.options,
                    unexpected,
                )
            )
        return self.report

    def _fold(self, journal: Records) -> StateError | None:
        """Fold the journal into a state write; the error if that failed (journal kept)."""
        try:
            if journal.has_records():
                folded = self.store.read()
                self.store.write(replace(folded, api_url=folded.api_url or self.options.api_url))
            else:  # nothing happened: keep the serial (a saved plan stays fresh for a retry)
                self.store.fold()
        except StateError as exc:
            return exc
        except Exception as exc:  # never an internal error once creates may have been sent
            return StateError(
                f"{self.store.where}: the state could not be written ({failure.unexpected(exc)})"
            )
        return None

    def _journal_failed(self, exc: StateError) -> None:
        """A journal record failed: nothing after it can be recorded, so nothing more is sent."""
        with self._failing:  # not self.lock: _record holds that one
            if self.journal_error is None:
                self.journal_error = exc
        self.stop.set("the journal cannot record what is sent")

    def _moves(self, plan: Plan, moved: State, journal: Records) -> None:
        """Record each rename of `_moved.yaml` (pending entries move with their record)."""
        for action in plan.actions:
            old = action.old_key if isinstance(action, Moved | InDoubt) else ""
            if not old:
                continue
            entry = moved.campaigns[action.key]
            # The new key first: a crash between the two records leaves both, never neither.
            (journal.pending if entry.status == "pending" else journal.created)(action.key, entry)
            journal.removed(old)
            self.report.moved.append(action.key)
            self.echo(f"> {old} -> {action.key}: state entry renamed")

    def _list(self, plan: Plan, state: State) -> list[api.RemoteTask] | None:
        """The remote task list, when a create or an in-doubt entry needs it; None otherwise."""
        doubts = any(isinstance(a, InDoubt) for a in plan.actions)
        if not plan.creates and not doubts:
            return None
        generation = self.relogin.generation
        try:
            try:
                remote = self.client.list_tasks()
            except AuthError:
                if not self.relogin.after_401(generation):
                    raise
                remote = self.client.list_tasks()
        except AuthError as exc:  # not "unavailable": --no-remote-check would not help
            again = f"; logging in again failed: {self.relogin.error}" if self.relogin.error else ""
            raise AuthError(
                f"nothing was created: the token is missing, wrong or expired; {exc}{again}"
            ) from None
        except ListAnswerError as exc:  # it answered: never read as "no tasks"
            raise ListAnswerError(
                f"cannot trust the remote task list, so apply cannot check for lost state or "
                f"in-doubt creates: {exc}. Nothing was created"
            ) from None
        except ApiError as exc:
            if doubts or self.options.remote_check:
                # With no entries the check is the lost-state guard itself: never offer to skip.
                skip = ", or pass --no-remote-check to skip the check"
                lost = (
                    " (the state has no entries: if its file was lost, recover it with "
                    "`reconcile import --all` once the list endpoint answers)"
                )
                raise ApiError(
                    f"cannot read the remote task list, so apply cannot check for lost state "
                    f"or in-doubt creates: {exc}. Nothing was created; retry later"
                    + ("" if doubts else skip if state.campaigns else lost)
                ) from None
            self.error("warning: remote task list unavailable; --no-remote-check given")
            return []
        if self.client.clock_warning:
            self.error(f"warning: {self.client.clock_warning}")
        return remote

    def _resolve_all(
        self, plan: Plan, state: State, journal: Records, remote: list[api.RemoteTask]
    ) -> list[Action]:
        """Resolve every in-doubt entry (`doubt.resolve`); returns the --retry-pending creates."""
        retries: list[Action] = []
        for action in [a for a in plan.actions if isinstance(a, InDoubt)]:
            entry = state.campaigns[action.key]
            retry = action.key in self.options.retry_pending
            found = doubt.resolve(
                action.key,
                entry,
                state,
                self.client,
                self.clock(),
                pending_grace(),
                retry,
                plan.options,
                remote,
            )
            (self.error if found.error else self.echo)(found.message)
            if found.adopt is not None:
                journal.created(action.key, replace(entry, status="created", identity=found.adopt))
                self.report.adopted.append(found.adopt)
            elif found.retry:
                retries.append(
                    Replace(action.key, entry.source, entry.fingerprint, None, entry.payload)
                )
            elif found.doubt is not None:
                self.report.in_doubt.append((action.key, found.doubt))
        return retries

    def _refuse(self, refusals: list[guard.Refusal], reason: str) -> None:
        for action, message in refusals:
            self.report.refused.append((action.key, reason))
            self.error(f"{action.source}:1:1: error: {message}")

    def _creates(self, creates: list[Action], state: State, journal: Records) -> None:
        workers = max(1, self.options.parallelism)
        self.progress.start(len(creates))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="create") as pool:
            for future in [pool.submit(self._create, a, state, journal) for a in creates]:
                try:
                    future.result()
                except Exception:  # a bug: the creates not started yet must not be sent
                    self.stop.set("an unexpected error stopped apply")
                    raise

    def _create(self, action: Action, state: State, journal: Records) -> None:
        self.progress.done(action.key, self._create_one(action, state, journal))

    def _create_one(self, action: Action, state: State, journal: Records) -> str:
        """Send one create (write-ahead); returns its outcome in a word, for the progress."""
        if self.stop.event.is_set():
            with self.lock:
                self.report.skipped.append((action.key, f"not started: {self.stop.reason}"))
            return "not started"
        self.limiter.wait()
        if self.stop.event.is_set():  # the signal came while this create waited for its turn
            with self.lock:
                self.report.skipped.append((action.key, f"not started: {self.stop.reason}"))
            return "not started"
        previous = state.campaigns.get(action.key)
        replaced = previous.replaced if previous else ()
        if previous is not None and previous.status == "created" and previous.identity:
            replaced = (*replaced, previous.identity)
        payload = action.payload or {}
        pending = Entry(
            "pending",
            None,
            action.fingerprint or "",
            payload,
            action.source or "",
            iso_z(self.clock()),
            replaced,
        )
        try:
            journal.pending(action.key, pending)  # the write-ahead rule: recorded before sending
        except StateError as exc:
            self._journal_failed(exc)
            with self.lock:
                self.report.skipped.append((action.key, "not sent: the journal cannot record it"))
            return "not sent"
        outcome = self._send(action)
        with self.lock:
            self._record(action, outcome, pending, previous, journal)
        if isinstance(outcome, api.Created | api.InDoubt):
            return "created" if isinstance(outcome, api.Created) else "in doubt"
        return "refused"

    def _send(self, action: Action) -> api.CreateOutcome:
        generation = self.relogin.generation
        outcome = self._attempts(action)
        if isinstance(outcome, api.Unauthorized) and self.relogin.after_401(generation):
            # A 401 refused the create: nothing was created, so it is sent again, once, with
            # the new token; its pending record stays until this outcome is recorded.
            self.limiter.wait()
            if self.stop.event.is_set():
                return api.NotSent(f"not re-sent: {self.stop.reason}")
            outcome = self._attempts(action)
        return outcome

    def _attempts(self, action: Action) -> api.CreateOutcome:
        payload = action.payload or {}
        for attempt in range(RETRY_ATTEMPTS):
            outcome = self.client.create(payload)
            if isinstance(outcome, api.NotSent):
                delay = _backoff(attempt)
            elif isinstance(outcome, api.RateLimited):
                delay = (
                    outcome.retry_after if outcome.retry_after is not None else _backoff(attempt)
                )
                if delay > RETRY_AFTER_CAP:
                    reason = (
                        f"rate limited: the API asks to wait {delay:.0f}s, more than the "
                        f"{RETRY_AFTER_CAP:.0f}s cap; run `{self.again}` again later"
                    )
                    self.stop.set(reason)  # every other create would meet the same limit
                    return api.NotSent(reason)
            else:
                return outcome
            if attempt + 1 < RETRY_ATTEMPTS:
                self.sleep(delay)
            if self.stop.event.is_set():  # nothing was created by the attempts so far
                return api.NotSent(f"not retried: {self.stop.reason}")
        return outcome

    def _record(
        self,
        action: Action,
        outcome: api.CreateOutcome,
        pending: Entry,
        previous: Entry | None,
        journal: Records,
    ) -> None:
        source = action.source or action.key
        if isinstance(outcome, api.Created):
            try:
                journal.created(
                    action.key, replace(pending, status="created", identity=outcome.identity)
                )
            except StateError as exc:  # the journal keeps it pending: the next apply finds it
                self._journal_failed(exc)
                self.report.in_doubt.append((action.key, f"created {outcome.identity}, unrecorded"))
                self.error(
                    f"{source}:1:1: error: {action.key}: created {outcome.identity}, but the "
                    "journal could not record it; it stays pending: the next apply adopts it"
                )
                return
            self.report.created.append(action.key)
            self.echo(f"+ {action.key}: created {outcome.identity}")
            return
        if isinstance(outcome, api.InDoubt):
            self.report.in_doubt.append((action.key, outcome.reason))
            self.error(
                f"{source}:1:1: error: {action.key}: outcome unknown ({outcome.reason}); it stays "
                "pending and is never re-sent blindly: the next apply looks for it first"
            )
            return
        # Nothing was created: forget the pending record (or restore what was replaced).
        try:
            if previous is not None and previous.status == "created":
                journal.created(action.key, previous)
            else:
                journal.removed(action.key)
        except StateError as exc:  # it stays pending: the next apply finds nothing, says so
            self._journal_failed(exc)
        if isinstance(outcome, api.Unauthorized):
            self.stop.set("the API answered 401: the token is missing, wrong or expired")
            self.report.refused.append((action.key, outcome.message))
            self.error(f"error: {outcome.message}: {self.relogin.remedy()}")
            return
        message = (
            outcome.message
            if isinstance(outcome, api.Refused)
            else (
                outcome.reason
                if isinstance(outcome, api.NotSent)
                else f"rate limited (HTTP 429) {RETRY_ATTEMPTS} times; run `{self.again}` "
                "again later"
            )
        )
        self.report.refused.append((action.key, message))
        self.error(f"{source}:1:1: error: {action.key}: refused by the API: {message}")


def _escaped(echo: Echo) -> Echo:
    """`echo` for lines that hold values from files and from the API (see `escape.text`)."""
    return lambda line: echo(escape.text(line))


def pending_grace() -> timedelta:
    """How long "not on the platform" is not believed: PENDING_GRACE, or the env knob."""
    text = os.environ.get(PENDING_GRACE_ENV)
    if text is None or not text.strip():
        return PENDING_GRACE
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ReconcileError(
            f"{PENDING_GRACE_ENV}={text!r} is not a number of seconds >= 0; fix or unset it"
        )
    return timedelta(seconds=seconds)


def _backoff(attempt: int) -> float:
    return float(min(BACKOFF_MAX, BACKOFF_BASE * 2**attempt) * (0.5 + random.random() / 2))


def _moved(plan: Plan, state: State) -> State:
    """`state` with the renames of the plan's moves (and moved in-doubt entries) done."""
    entries = dict(state.campaigns)
    for action in plan.actions:
        if isinstance(action, Moved | InDoubt) and action.old_key:
            entries[action.key] = entries.pop(action.old_key)
    return state.with_entries(entries)
