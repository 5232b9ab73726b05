"""In-doubt resolution: look for a pending create on the platform before anything is sent.

A `pending` entry's create was sent and its answer lost. `resolve` asks the list endpoint for
tasks with its name created since the pending time, on the platform's clock: the pending time
less the skew measured from the API's `Date` header, less a margin (spec 5 and 9.2). Then:

    exactly one match                -> adopt it
    several                          -> report them all, stop for that key
    none, within the grace period    -> "not visible yet"
    none, but an older unknown task  -> report it; never suggest a re-create while it exists
    none                             -> re-create with --retry-pending, else report
    a candidate it cannot date       -> report it (no creation time, or no believable Date)

Candidates are the tasks with the entry's name (by `name_key`) that the state does not know
(any key's, replaced ones included), from that lookup and from the full listing apply read
just before: a platform whose keyword search or clock misses a task still lists it, and while
the full listing holds such a task, whatever its creation time, nothing suggests or carries
out a re-create.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.apply import client as api
from reconciler.apply import guard
from reconciler.config.campaign import name_key
from reconciler.plan.plan import PlanOptions
from reconciler.state.model import Entry, State
from reconciler.state.store import iso_z

# Beyond the skew measured from the Date header (whole seconds, measured once per run): a wider
# window only finds more candidates, and known identities are excluded anyway.
SKEW_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True)
class Resolution:
    """What to do with one in-doubt key, and what to tell the user."""

    message: str
    adopt: str | None = None  # the identity found
    retry: bool = False  # re-create it (--retry-pending)
    doubt: str | None = None  # still in doubt: the reason, for the report
    error: bool = False  # print on the error stream


def resolve(
    key: str,
    entry: Entry,
    state: State,
    client: api.Twin24Client,
    now: datetime,
    grace: timedelta,
    retry: bool,
    options: PlanOptions,
    remote: list[api.RemoteTask],
) -> Resolution:
    """Resolve the pending `entry` of `key`; `now` is our clock, `retry` --retry-pending,
    `options` the plan's (for the commands the messages suggest), `remote` the full listing
    read just before."""
    adopt = options.command("import", key, "ID")
    since = datetime.fromisoformat(entry.created_at.replace("Z", "+00:00"))
    name = str(entry.payload.get("name"))
    known = set(guard.owners(state))
    skew = client.clock_skew  # measured by the full listing just before
    start = None if skew is None else since - skew - SKEW_MARGIN  # on the platform's clock
    listed = client.list_tasks(keyword=name, since=start)
    pool = {t.identity: t for t in [*remote, *listed]}
    wanted = name_key(name)
    candidates = [
        t for t in pool.values() if name_key(t.name) == wanted and t.identity not in known
    ]
    undated = [t for t in candidates if guard.created_at(t) is None]
    if undated or (start is None and candidates):
        ids = ", ".join(t.identity for t in undated or candidates)
        why = (
            "without a creation time"
            if undated
            else "and sends no believable Date header to compare clocks with"
        )
        return Resolution(
            f"? {key}: the platform lists {ids} named {name!r}{guard.spelled(name, candidates)} "
            f"{why}, so apply cannot tell whether it is this create. If it is, "
            f"{guard.import_hint(key, undated or candidates, options.hints)}",
            doubt=f"cannot date {ids}",
            error=True,
        )
    matches = [t for t in candidates if start is None or _at_or_after(t, start)]
    older = [t for t in candidates if t not in matches]
    if len(matches) == 1:
        found = matches[0].identity
        return Resolution(
            f"? {key}: found on the platform as {found}{guard.spelled(name, matches)}; adopted",
            adopt=found,
        )
    if len(matches) > 1:
        ids = ", ".join(t.identity for t in matches)
        return Resolution(
            f"? {key}: {len(matches)} tasks named {name!r} were created since "
            f"{entry.created_at}: {ids}. Keep one with `{adopt}` (and halt "
            "the others on the platform)",
            doubt=f"several tasks match: {ids}",
            error=True,
        )
    if now - since < grace:
        wait = iso_z(since + grace)
        return Resolution(
            f"? {key}: not on the platform yet; run `{options.command('apply')}` again after "
            f"{wait}",
            doubt="not visible yet",
        )
    if older:  # never suggest (or carry out) a re-create while a task with its name exists
        ids = ", ".join(t.identity for t in older)
        return Resolution(
            f"? {key}: no task named {name!r} was created since {entry.created_at} by the "
            f"platform's clock, but the platform lists ones the state does not know "
            f"({ids}){guard.spelled(name, older)}; apply does not re-create it while they "
            f"exist. If one is this campaign's, {guard.import_hint(key, older, options.hints)}",
            doubt=f"older tasks with its name: {ids}",
            error=True,
        )
    if retry:
        return Resolution(
            f"? {key}: not on the platform; re-creating (--retry-pending)", retry=True
        )
    clock = f" (its clock is {guard.describe_skew(skew)}, allowed for)" if skew is not None else ""
    return Resolution(
        f"? {key}: a create was sent at {entry.created_at} but no task named {name!r} was "
        f"created on the platform since then{clock}; if you are sure, re-send it with "
        f"`{options.command('apply', flags=[('--retry-pending', key)])}`",
        doubt="not found on the platform",
    )


def _at_or_after(task: api.RemoteTask, start: datetime) -> bool:
    moment = guard.created_at(task)
    return moment is not None and moment >= start
