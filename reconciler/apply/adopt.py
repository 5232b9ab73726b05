"""`reconcile import`: adopt tasks that exist on the platform as applied campaigns (spec 9.2).

`import KEY IDENTITY` records IDENTITY for KEY only when the platform lists that task, its
`name` is the campaign's (by `name_key`: a platform that trims or folds names is no mismatch;
`--force` overrides that check, with a warning), and the state does not already record that
identity for any key (as its task or as a replaced one). `import --all` is the lost-state
recovery: every remote task whose name is exactly one campaign's that the state does not know
is adopted; a campaign whose name several unknown tasks have, or a task whose name is the
campaign's only once case and spaces are ignored, is skipped and listed with its import. The
adopted entry holds the campaign's current payload, so the next plan shows it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.apply import guard
from reconciler.apply.client import RemoteTask
from reconciler.config.campaign import Campaign, name_key
from reconciler.errors import StateError
from reconciler.hints import Hints
from reconciler.state.model import Entry, State


@dataclass(frozen=True)
class Adoption:
    """One campaign key and the task it adopts, with anything worth a warning."""

    key: str
    task: RemoteTask
    entry: Entry
    warnings: tuple[str, ...] = ()


@dataclass
class Recovery:
    """What `import --all` found: the adoptions, and the campaigns it could not decide."""

    adopted: list[Adoption] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def check_local(key: str, state: State, identity: str, hints: Hints | None = None) -> None:
    """The checks that need no request: KEY not applied yet, IDENTITY not recorded anywhere."""
    existing = state.campaigns.get(key)
    if existing is not None and existing.status == "created":
        forget = (hints or Hints()).command("state rm", key)
        raise StateError(
            f"{key} is already in the state as {existing.identity}; `{forget}` first if that "
            "is wrong"
        )
    owner = guard.owners(state).get(identity)
    if owner is not None:
        whose = f"as a task {owner.key} replaced" if owner.replaced else f"for {owner.key}"
        raise StateError(
            f"task {identity} is already recorded in the state {whose}; one task cannot be two "
            f"campaigns' (check the identity; nothing was changed)"
        )


def adopt_one(
    campaign: Campaign,
    state: State,
    remote: list[RemoteTask],
    identity: str,
    created_at: str,
    force: bool = False,
    hints: Hints | None = None,
) -> Adoption:
    """Adopt task `identity` for `campaign`, after checking it against the listed tasks."""
    check_local(campaign.key, state, identity, hints)
    task = next((t for t in remote if t.identity == identity), None)
    if task is None:
        raise StateError(
            f"the platform does not list a task {identity} ({len(remote)} task(s) listed): "
            "check the identity and the API URL; nothing was changed"
        )
    wanted = campaign.payload["name"]
    warnings: list[str] = []
    if task.name != wanted and name_key(task.name) == name_key(wanted):
        warnings.append(
            f"note: task {identity} is named {task.name!r} on the platform, {wanted!r} in "
            f"{campaign.key}: the same name once case and spaces are ignored"
        )
    elif task.name != wanted:
        if not force:
            raise StateError(
                f"task {identity} is named {task.name!r} on the platform, but {campaign.key} "
                f"is named {wanted!r}: it is probably another campaign's task. Check the "
                f"identity, or pass --force to import it anyway; nothing was changed"
            )
        warnings.append(
            f"warning: task {identity} is named {task.name!r} on the platform, not {wanted!r} "
            f"like {campaign.key}; imported anyway (--force)"
        )
    return _adoption(campaign, state, task, created_at, warnings)


def adopt_all(
    campaigns: dict[str, Campaign],
    state: State,
    remote: list[RemoteTask],
    created_at: str,
    hints: Hints | None = None,
) -> Recovery:
    """Adopt every unknown remote task whose name is exactly one unknown campaign's (spec
    9.2: exact-name matches only); a task whose name is a campaign's once case and spaces are
    ignored (`name_key`) is not adopted but reported, with the import that adopts it."""
    known = set(guard.owners(state))
    unknown = [c for k, c in campaigns.items() if k not in state.campaigns]
    by_key = {name_key(c.payload["name"]): c for c in unknown}
    found: dict[str, list[RemoteTask]] = {}
    for task in remote:
        campaign = by_key.get(name_key(task.name))
        if task.identity not in known and campaign is not None:
            found.setdefault(campaign.key, []).append(task)
    recovery = Recovery()
    for key, tasks in sorted(found.items()):
        name = campaigns[key].payload["name"]
        if any(t.name != name for t in tasks):
            recovery.skipped.append(
                f"{key}: the platform has {', '.join(t.identity for t in tasks)} named like "
                f"{name!r}{guard.spelled(name, tasks)}; --all adopts exact names only. If it "
                f"is this campaign's, {guard.import_hint(key, tasks, hints or Hints())}"
            )
            continue
        if len(tasks) > 1:
            ids = ", ".join(t.identity for t in guard.live_first(tasks))
            recovery.skipped.append(
                f"{key}: {len(tasks)} tasks named {tasks[0].name!r} are on the platform "
                f"({ids}); none was imported. Adopt the right one: "
                f"{guard.import_hint(key, tasks, hints or Hints())}"
            )
            continue
        recovery.adopted.append(_adoption(campaigns[key], state, tasks[0], created_at, []))
    return recovery


def _adoption(
    campaign: Campaign, state: State, task: RemoteTask, created_at: str, warnings: list[str]
) -> Adoption:
    if task.status == "HALTED":
        warnings.append(f"warning: task {task.identity} is HALTED on the platform")
    existing = state.campaigns.get(campaign.key)
    entry = Entry(
        "created",
        task.identity,
        campaign.fingerprint,
        campaign.payload,
        campaign.source,
        created_at,
        existing.replaced if existing is not None else (),  # a pending replace keeps them
    )
    return Adoption(campaign.key, task, entry, tuple(warnings))
