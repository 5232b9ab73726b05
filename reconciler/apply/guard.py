"""What the remote task list says about a plan's creates, read before any create is sent.

Pure functions over the state and the listed tasks (spec sections 3 and 9.2):

- **names on the platform**: a create whose `name` a listed task has, where the state records
  that task for another key (as its task or as one it replaced), is a probable rename, refused
  like the plan's duplicate guards unless `--allow-duplicate KEY`;
- **the lost-state guard**: a create whose `name` a listed task has that the state does not know
  is refused with the `reconcile import` that adopts it, naming the task that is not a replaced
  one (the newest that is not halted: a replace always creates the newer task);
- **who owns an identity**, for `check-remote` and `import` too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.apply.client import RemoteTask
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
    grouped: dict[str, list[RemoteTask]] = {}
    for task in tasks:
        grouped.setdefault(task.name, []).append(task)
    return grouped


def import_hint(key: str, tasks: list[RemoteTask], hints: Hints) -> str:
    """`run `reconcile import KEY ID``, ID the live one, with the others named as older."""
    first, *others = live_first(tasks)
    hint = f"run `{hints.command('import', key, first.identity)}`"
    if others:
        ids = ", ".join(t.identity for t in others)
        hint += f" (the newest; {ids}: older or halted, probably tasks it replaced)"
    return hint


def remote_duplicate(
    action: Action, named: dict[str, list[RemoteTask]], owned: dict[str, Owner]
) -> tuple[RemoteTask, Owner] | None:
    """A listed task with the action's name that the state records for another key."""
    name = str((action.payload or {}).get("name"))
    for task in live_first(named.get(name, [])):
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
        else f"if the file was renamed, add `- {{from: {old}, to: {key}}}` to _moved.yaml in "
        f"the campaigns folder, or run `{options.command('state mv', old, key)}`; if a second "
        f"task is really wanted, run `{allow}`"
    )
    return (
        f"{key}: the platform's task {task.identity} named {task.name!r} is {whose} in the "
        f"state (a probable rename): creating {key} would start a second task with that name "
        f"and call everyone again. {fix[0].upper()}{fix[1:]}"
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
        raise PlanError(
            f"--allow-duplicate {key}: no guard flags {key} (no state entry and no task on the "
            "platform shares its payload or name), so the flag would do nothing; nothing was done"
        )
    return allowed, refused


def lost_state(
    creates: list[Action], known: set[str], remote: list[RemoteTask], hints: Hints
) -> tuple[list[Action], list[Refusal]]:
    """The lost-state guard: refuse each create whose name a task the state does not know has."""
    named = by_name(remote)
    allowed: list[Action] = []
    refused: list[Refusal] = []
    for action in sorted(creates, key=lambda a: a.key):
        name = str((action.payload or {}).get("name"))
        unknown = [t for t in named.get(name, []) if t.identity not in known]
        if not unknown:
            allowed.append(action)
            continue
        ids = ", ".join(t.identity for t in live_first(unknown))
        refused.append(
            (
                action,
                f"a task named {name!r} already exists on the platform ({ids}) but the state "
                f"does not know it; nothing was sent. If it is this campaign, "
                f"{import_hint(action.key, unknown, hints)}",
            )
        )
    return allowed, refused
