"""The plan: one action per campaign key, made by a pure function, rendered many ways.

`make_plan(campaigns, moves, state, options)` matches by key, compares by fingerprint and diffs
fields only for matched pairs. Each action is one small class with a sort order and a `data()`
record; renderers and the saved plan read those records and never recompute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from reconciler.config.campaign import Campaign
from reconciler.config.discovery import Move
from reconciler.errors import Location, PlanError, Problem
from reconciler.plan.diff import FieldChange, field_diff
from reconciler.state.model import Entry, State

DEFAULT_MAX_CREATES = 25
DEFAULT_TIMEZONE = "Europe/Moscow"


@dataclass(frozen=True)
class Action:
    """What the plan does for one key. Subclasses set `name`, `symbol` and `order`."""

    name: ClassVar[str]
    symbol: ClassVar[str]
    order: ClassVar[int]
    key: str
    source: str | None
    fingerprint: str | None
    identity: str | None
    payload: dict[str, Any] | None
    diff: tuple[FieldChange, ...] = ()
    # The campaign file's calling-policy breaches; keyword-only, so positions stay as they were.
    policy: tuple[Problem, ...] = field(default=(), kw_only=True)

    @property
    def creates(self) -> bool:
        """True when apply sends a create for this action."""
        return False

    def data(self) -> dict[str, Any]:
        """The action as a JSON record (the `actions[]` item of the json plan); `policy` only
        when the campaign breaches the calling policy (a field added within format 1)."""
        record = {
            "key": self.key,
            "action": self.name,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "identity": self.identity,
            "payload": self.payload,
            "diff": [c.data() for c in self.diff],
        }
        if self.policy:
            record["policy"] = [p.as_dict() for p in self.policy]
        return record


@dataclass(frozen=True)
class Create(Action):
    """In the config, not in state: apply POSTs it."""

    name = "create"
    symbol = "+"
    order = 0
    duplicate_of: str | None = None  # a state key with the same fingerprint: probable rename

    @property
    def creates(self) -> bool:
        return True

    def data(self) -> dict[str, Any]:
        return {**super().data(), "duplicate_of": self.duplicate_of}


@dataclass(frozen=True)
class Replace(Action):
    """A drift named with --replace: a new task is created; the old one stays on the platform."""

    name = "replace"
    symbol = "-/+"
    order = 1

    @property
    def creates(self) -> bool:
        return True


@dataclass(frozen=True)
class Drift(Action):
    """In both, payloads differ: nothing happens, the API cannot update a task."""

    name = "drift"
    symbol = "~"
    order = 2


@dataclass(frozen=True)
class Moved(Action):
    """`_moved.yaml` renames a state entry; no API call. `diff` is set when it also drifted."""

    name = "moved"
    symbol = ">"
    order = 3
    old_key: str = ""

    def data(self) -> dict[str, Any]:
        return {**super().data(), "from": self.old_key}


@dataclass(frozen=True)
class InDoubt(Action):
    """A create was sent and its outcome is unknown (state entry `pending`)."""

    name = "in_doubt"
    symbol = "?"
    order = 4
    since: str = ""

    def data(self) -> dict[str, Any]:
        return {**super().data(), "since": self.since}


@dataclass(frozen=True)
class Orphan(Action):
    """In state, no file: the task stays on the platform; `state rm` forgets it."""

    name = "orphan"
    symbol = "!"
    order = 5


@dataclass(frozen=True)
class Unchanged(Action):
    """In both, fingerprints equal."""

    name = "unchanged"
    symbol = " "
    order = 6


ACTION_TYPES: tuple[type[Action], ...] = (Create, Replace, Drift, Moved, InDoubt, Orphan, Unchanged)
SUMMARY_KEYS = ("create", "replace", "moved", "drift", "orphan", "in_doubt", "unchanged")


@dataclass(frozen=True)
class PlanOptions:
    """What the user asked for on the command line."""

    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    max_creates: int = DEFAULT_MAX_CREATES
    timezone: str = DEFAULT_TIMEZONE
    now: datetime | None = None  # aware; None means "do not check start moments"


@dataclass(frozen=True)
class Plan:
    """Every action, sorted by key, with the state it was made against."""

    actions: tuple[Action, ...]
    lineage: str | None
    serial: int
    options: PlanOptions = field(default_factory=PlanOptions)
    problems: tuple[Problem, ...] = ()

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(SUMMARY_KEYS, 0)
        for action in self.actions:
            counts[action.name] += 1
            if isinstance(action, Moved) and action.diff:
                counts["drift"] += 1
        return counts

    @property
    def creates(self) -> list[Action]:
        """The actions apply sends a create for (creates and replaces), in key order."""
        return [a for a in self.actions if a.creates]

    @property
    def has_changes(self) -> bool:
        """True when apply would do something (create, replace or move)."""
        return any(a.creates or isinstance(a, Moved) for a in self.actions)

    @property
    def duplicates(self) -> list[Create]:
        return [a for a in self.actions if isinstance(a, Create) and a.duplicate_of]

    def raise_if_unsafe(self, allow_duplicate: tuple[str, ...] = ()) -> None:
        """Refuse a plan apply must not carry out: problems, too many creates, duplicates."""
        if self.problems:
            raise PlanError(f"the plan has {len(self.problems)} problem(s); fix them first")
        count = len(self.creates)
        if count > self.options.max_creates:
            raise PlanError(
                f"the plan creates {count} tasks, more than --max-creates "
                f"{self.options.max_creates}; split the change or raise --max-creates"
            )
        for action in self.duplicates:
            if action.key not in allow_duplicate:
                raise PlanError(
                    f"{action.key} has the same payload as {action.duplicate_of} in the state "
                    f"(a probable rename): creating it would call everyone again. Run "
                    f"`reconcile state mv {action.duplicate_of} {action.key}`, or pass "
                    f"--allow-duplicate {action.key} if a second task is really wanted"
                )


def make_plan(
    campaigns: dict[str, Campaign], moves: list[Move], state: State, options: PlanOptions
) -> Plan:
    """The plan for `campaigns` against `state`. Pure: the same inputs give the same plan."""
    problems: list[Problem] = []
    entries = dict(state.campaigns)
    moved_from: dict[str, str] = {}
    for move in moves:
        if move.old not in entries:
            continue  # already carried out (or never applied): nothing to rename
        if move.old in campaigns:
            problems.append(
                Problem(
                    move.location,
                    "from",
                    f"{move.old!r} is moved but its file still exists; "
                    "delete the old file or drop the move",
                )
            )
        elif move.new in entries:
            problems.append(
                Problem(
                    move.location,
                    "to",
                    f"cannot move {move.old!r} onto {move.new!r}: the state already has that key",
                )
            )
        else:
            moved_from[move.new] = move.old
            entries[move.new] = entries.pop(move.old)

    keys = sorted(set(campaigns) | set(entries))
    for name, wanted in (("--target", options.targets), ("--replace", options.replace)):
        for key in wanted:
            if key not in keys:
                raise PlanError(f"{name} {key}: no campaign file and no state entry has that key")
    if options.targets:
        keys = [k for k in keys if k in options.targets]

    by_fingerprint = {e.fingerprint: k for k, e in sorted(state.campaigns.items())}
    actions: list[Action] = []
    for key in keys:
        campaign, entry = campaigns.get(key), entries.get(key)
        action = _action(key, campaign, entry, moved_from.get(key), options, by_fingerprint)
        if key in options.replace and not isinstance(action, Replace):
            raise PlanError(
                f"--replace {key}: it is {action.name}, not drifted; nothing to replace"
            )
        if action.creates and campaign is not None:
            problems += _start_problems(campaign, options)
        actions.append(action)
    return Plan(tuple(actions), state.lineage, state.serial, options, tuple(sorted(problems)))


def _action(
    key: str,
    campaign: Campaign | None,
    entry: Entry | None,
    old_key: str | None,
    options: PlanOptions,
    by_fingerprint: dict[str, str],
) -> Action:
    if entry is not None and entry.status == "pending":
        return InDoubt(
            key, entry.source, entry.fingerprint, None, entry.payload, since=entry.created_at
        )
    if entry is None:
        assert campaign is not None
        return Create(
            key,
            campaign.source,
            campaign.fingerprint,
            None,
            campaign.payload,
            policy=campaign.policy,
            duplicate_of=by_fingerprint.get(campaign.fingerprint),
        )
    if campaign is None:
        return Orphan(key, entry.source, entry.fingerprint, entry.identity, entry.payload)
    diff = (
        ()
        if entry.fingerprint == campaign.fingerprint
        else tuple(field_diff(entry.payload, campaign.payload))
    )
    common = (key, campaign.source, campaign.fingerprint, entry.identity, campaign.payload, diff)
    policy = campaign.policy
    if old_key is not None:
        return Moved(*common, old_key=old_key, policy=policy)
    if not diff:
        return Unchanged(*common, policy=policy)
    if key in options.replace:
        return Replace(*common, policy=policy)
    return Drift(*common, policy=policy)


def _start_problems(campaign: Campaign, options: PlanOptions) -> list[Problem]:
    moment = campaign.payload.get("startMoment")
    if options.now is None or campaign.payload.get("startType") != "time" or not moment:
        return []
    start = datetime.strptime(moment, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(options.timezone))
    if start > options.now:
        return []
    where = campaign.spots.get("startMoment", Location(campaign.source))
    return [
        Problem(
            where,
            "startMoment",
            f"starts {moment} ({options.timezone}), which is already "
            "in the past; move startMoment into the future",
        )
    ]
