"""What the remote task list says about a plan's creates, read before any create is sent.

Pure functions over the state and the listed tasks (spec sections 3 and 9.2):

- **names on the platform**: a create whose `name` a listed task has, where the state records
  that task for another key (as its task or as one it replaced), is a probable rename, refused
  like the plan's duplicate guards unless `--allow-duplicate KEY`;
- **the lost-state guard**: a create whose `name` a listed task has that the state does not know
  is refused with the `reconcile import` that adopts it, naming the task that is not a replaced
  one (the newest that is not halted: a replace always creates the newer task; when a task has
  no creation time no order is claimed);
- **who owns an identity**, for `check-remote` and `import` too.

Names are compared by `name_key` (case, spaces and Unicode normal form ignored): a platform that
trims or folds names must never make the guards miss a task. A message says so when the
platform's spelling differs from the campaign's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.apply.client import RemoteTask
from reconciler.config.campaign import name_key
from reconciler.errors import PlanError
from reconciler.hints import Hints
from reconciler.plan.plan import (
    Action,
    Create,
    Plan,
    PlanOptions,
    Replace,
    allow_command,
    guard_message,
    moved_line,
)
from reconciler.state.model import State


@dataclass(frozen=True)
class Owner:
    """The state key an identity belongs to, and whether it is one the key replaced."""

    key: str
    replaced: bool


def owners(state: State) -> dict[str, Owner]:
    """Every identity the state records (current and replaced), with its key."""
    found: dict[str, Owner] = {}
    for key, entry in sorted(state.campaigns.items()):
        for old in entry.replaced:
            found.setdefault(old, Owner(key, True))
        if entry.identity:
            found[entry.identity] = Owner(key, False)
    return found


def created_at(task: RemoteTask) -> datetime | None:
    """A task's creation time, or None when it is missing, unparseable or has no zone."""
    try:
        moment = datetime.fromisoformat(str(task.created_at).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def live_first(tasks: Iterable[RemoteTask]) -> list[RemoteTask]:
    """Tasks that are not halted first, newest first within each; undated ones last."""

    def order(task: RemoteTask) -> tuple[bool, bool, float, str]:
        moment = created_at(task)
        stamp = -moment.timestamp() if moment is not None else 0.0
        return (task.status == "HALTED", moment is None, stamp, task.identity)

    return sorted(tasks, key=order)


def by_name(tasks: Iterable[RemoteTask]) -> dict[str, list[RemoteTask]]:
    """The tasks grouped by `name_key` of their names."""
    grouped: dict[str, list[RemoteTask]] = {}
    for task in tasks:
        grouped.setdefault(name_key(task.name), []).append(task)
    return grouped


def named_like(action: Action, named: dict[str, list[RemoteTask]]) -> list[RemoteTask]:
    """The listed tasks whose name is the action's (by `name_key`)."""
    return named.get(name_key(str((action.payload or {}).get("name"))), [])


def spelled(name: str, tasks: Iterable[RemoteTask]) -> str:
    """` (spelled 'X' there)` when the platform's spelling of `name` differs from ours."""
    others = sorted({t.name for t in tasks if t.name != name})
    if not others:
        return ""
    shown = ", ".join(map(repr, others))
    return f" (spelled {shown} there: the same name once case and spaces are ignored)"


def import_hint(key: str, tasks: list[RemoteTask], hints: Hints) -> str:
    """`run `reconcile import KEY ID``, ID the live one, with the others named as older; when a
    task has no creation time no order is claimed: all are listed, to pick from."""
    first, *others = live_first(tasks)
    if others and any(created_at(t) is None for t in tasks):
        ids = ", ".join(sorted(t.identity for t in tasks))
        return (
            f"run `{hints.command('import', key, 'ID')}` with the one that is this campaign's: "
            f"{ids} (the platform gives no creation time for some, so this tool cannot tell "
            "which is current)"
        )
    hint = f"run `{hints.command('import', key, first.identity)}`"
    if others:
        ids = ", ".join(t.identity for t in others)
        hint += f" (the newest; {ids}: older or halted, probably tasks it replaced)"
    return hint


def halted_hint(key: str, tasks: list[RemoteTask]) -> str:
    """For halted tasks: how to run the campaign again (a halted task cannot be restarted)."""
    if not tasks or any(t.status != "HALTED" for t in tasks):
        return ""
    return (
        f". A halted task cannot be restarted through the API: to run {key} again, import it "
        f"as above, then change the campaign (its startMoment, for example) and apply with "
        f"--replace {key}"
    )


def remote_duplicate(
    action: Action, named: dict[str, list[RemoteTask]], owned: dict[str, Owner]
) -> tuple[RemoteTask, Owner] | None:
    """A listed task with the action's name that the state records for another key."""
    for task in live_first(named_like(action, named)):
        owner = owned.get(task.identity)
        if owner is not None and owner.key != action.key:
            return task, owner
    return None


def remote_duplicate_message(
    action: Action, task: RemoteTask, owner: Owner, options: PlanOptions
) -> str:
    """Why a create is refused because its name is another key's task on the platform."""
    key, old = action.key, owner.key
    whose = f"a task {old} replaced" if owner.replaced else f"{old}'s task"
    allow = allow_command(action, options)
    fix = (
        f"halt it on the platform and run `{allow}`, or give {key} another name"
        if owner.replaced
        else f"if the file was renamed, add `{moved_line(old, key)}` to _moved.yaml in "
        f"the campaigns folder, or run `{options.command('state mv', old, key)}`; if a second "
        f"task is really wanted, run `{allow}`"
    )
    name = str((action.payload or {}).get("name"))
    return (
        f"{key}: the platform's task {task.identity} named {task.name!r} is {whose} in the "
        f"state (a probable rename){spelled(name, [task])}: creating {key} would start a "
        f"second task with that name and call everyone again. {fix[0].upper()}{fix[1:]}"
    )


def describe_skew(skew: timedelta) -> str:
    """`15 min behind ours`, `3 s ahead of ours`, `in step with ours`."""
    seconds = skew.total_seconds()
    size = abs(seconds)
    if size < 1:
        return "in step with ours"
    amount = f"{size / 60:.0f} min" if size >= 120 else f"{size:.0f} s"
    return f"{amount} {'behind' if seconds > 0 else 'ahead of'} ours"


Refusal = tuple[Action, str]  # a create that is not sent, and why (with the fix)


def name_guards(
    plan: Plan, state: State, remote: list[RemoteTask], allow: tuple[str, ...]
) -> tuple[list[Action], list[Refusal]]:
    """The plan's creates split into allowed and refused by the payload and name guards: the
    plan's (state entries) and the platform's (tasks the state records for another key).

    Raises PlanError, before anything is done, for an `--allow-duplicate` key no guard flags.
    """
    owned, named = owners(state), by_name(remote)
    allowed: list[Action] = []
    refused: list[Refusal] = []
    flagged: set[str] = set()
    for action in plan.creates:
        message = None
        if isinstance(action, Create | Replace) and action.duplicate_of:
            message = guard_message(action, plan.options)
        elif (hit := remote_duplicate(action, named, owned)) is not None:
            message = remote_duplicate_message(action, *hit, plan.options)
        if message is not None:
            flagged.add(action.key)
        if message is None or action.key in allow:
            allowed.append(action)
        else:
            refused.append((action, f"not sent: {message}"))
    for key in sorted(set(allow) - flagged):
        wanted = next((a for a in plan.creates if a.key == key), None)
        unknown = [] if wanted is None else named_like(wanted, named)
        unknown = [t for t in unknown if t.identity not in owned]
        if wanted is not None and unknown:  # the lost-state guard holds it back: not overridden
            raise PlanError(
                f"--allow-duplicate {key}: {key} is not held back by a rename guard but by the "
                f"lost-state guard: {lost_state_message(wanted, unknown, plan.options.hints)}. "
                "--allow-duplicate "
                "does not override that guard; nothing was done"
            )
        raise PlanError(
            f"--allow-duplicate {key}: no guard flags {key} (no state entry and no task on the "
            "platform shares its payload or name), so the flag would do nothing; nothing was done"
        )
    return allowed, refused


def lost_state_message(action: Action, unknown: list[RemoteTask], hints: Hints) -> str:
    """The platform has tasks with the action's name that the state does not know: say so,
    with the import that adopts the right one."""
    name = str((action.payload or {}).get("name"))
    ids = ", ".join(
        f"{t.identity} ({t.status})" if t.status == "HALTED" else t.identity
        for t in live_first(unknown)
    )
    return (
        f"a task named {name!r}{spelled(name, unknown)} already exists on the platform ({ids}) "
        f"but the state does not know it; nothing was sent. If it is this campaign, "
        f"{import_hint(action.key, unknown, hints)}{halted_hint(action.key, unknown)}"
    )


def lost_state(
    creates: list[Action], known: set[str], remote: list[RemoteTask], hints: Hints
) -> tuple[list[Action], list[Refusal]]:
    """The lost-state guard: refuse each create whose name a task the state does not know has."""
    named = by_name(remote)
    allowed: list[Action] = []
    refused: list[Refusal] = []
    for action in sorted(creates, key=lambda a: a.key):
        unknown = [t for t in named_like(action, named) if t.identity not in known]
        if unknown:
            refused.append((action, lost_state_message(action, unknown, hints)))
        else:
            allowed.append(action)
    return allowed, refused
