"""`check-remote`'s comparison of the state with the remote task list (read-only).

A finding is a difference (the command exits 2 on any): `?` a create in doubt, `-` a task gone
from the platform, `!` a task halted there, `+` a task named like a campaign that the state
does not know (names compared by `name_key`). Tasks an entry replaced are known: one still
running is a note, not a difference (a replace leaves the old task on the platform on purpose,
spec 4 and 9.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.apply import guard
from reconciler.apply.client import RemoteTask
from reconciler.config.campaign import name_key
from reconciler.hints import Hints
from reconciler.state.model import State


@dataclass
class Drift:
    """What check-remote prints: findings (differences) and notes."""

    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def compare(
    state: State, names: dict[str, str], remote: list[RemoteTask], hints: Hints | None = None
) -> Drift:
    """Compare `state` with `remote`; `names` maps each campaign's name to its key; `hints`
    the run's context, for the commands the findings suggest."""
    hints = hints or Hints()
    drift = Drift()
    by_id = {t.identity: t for t in remote}
    owned = guard.owners(state)
    for key, entry in sorted(state.campaigns.items()):
        task = by_id.get(entry.identity or "")
        if entry.status != "created":
            drift.findings.append(
                f"? {key}: pending (a create is in doubt); run `{hints.command('apply')}`"
            )
        elif task is None:
            drift.findings.append(f"- {key}: task {entry.identity} is gone from the platform")
        elif task.status == "HALTED":
            drift.findings.append(f"! {key}: task {entry.identity} is HALTED on the platform")
        for old in entry.replaced:
            running = by_id.get(old)
            if running is not None and running.status != "HALTED":
                drift.notes.append(
                    f"note: {key}: replaced task {old} is still on the platform "
                    f"({running.status or 'status unknown'}); halt it there if it must stop calling"
                )
    keyed = {name_key(name): (key, name) for name, key in names.items()}
    unknown: dict[str, list[RemoteTask]] = {}
    ours: dict[str, str] = {}
    for task in remote:
        hit = keyed.get(name_key(task.name))
        if task.identity not in owned and hit is not None:
            unknown.setdefault(hit[0], []).append(task)
            ours[hit[0]] = hit[1]
    for key, tasks in sorted(unknown.items()):
        recorded = state.campaigns.get(key)
        ids = ", ".join(t.identity for t in guard.live_first(tasks))
        name = ours[key]
        named = f"named {name!r}{guard.spelled(name, tasks)}"
        if recorded is not None and recorded.status == "created":
            drift.findings.append(
                f"+ {key}: remote task {ids} {named} is not in the state, which records "
                f"{key} as {recorded.identity}: a second task with this name; halt it on the "
                "platform if it is a duplicate"
            )
        else:
            drift.findings.append(
                f"+ {key}: remote task {ids} {named} is not in the state; adopt it: "
                f"{guard.import_hint(key, tasks, hints)}"
            )
    return drift
