"""The plan: one action per campaign key, made by a pure function, rendered many ways.

`make_plan(campaigns, moves, state, options)` matches by key, compares by fingerprint and diffs
fields only for matched pairs. Each action is one small class with a sort order and a `data()`
record; renderers and the saved plan read those records and never recompute.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from reconciler.config.campaign import Campaign, name_key
from reconciler.config.discovery import Move
from reconciler.config.scalars import ScalarError, resolve_plain
from reconciler.errors import Location, PlanError, Problem
from reconciler.hints import Flag, Hints
from reconciler.plan.diff import FieldChange, field_diff
from reconciler.state.model import Entry, State

DEFAULT_MAX_CREATES = 25
DEFAULT_TIMEZONE = "Europe/Moscow"
Guard = Literal["payload", "name"]  # what a flagged create shares with another state entry


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
    # Set by the guards: a state key whose entry has the same payload or name (probable rename).
    duplicate_of: str | None = None
    duplicate_by: Guard | None = None
    duplicate_name: str | None = field(default=None, compare=False)  # that entry's spelling

    @property
    def creates(self) -> bool:
        return True

    def data(self) -> dict[str, Any]:
        return {**super().data(), **_guard_data(self)}


@dataclass(frozen=True)
class Replace(Action):
    """A drift named with --replace: a new task is created; the old one stays on the platform."""

    name = "replace"
    symbol = "-/+"
    order = 1
    duplicate_of: str | None = None  # as for Create: another key's entry has the same name
    duplicate_by: Guard | None = None
    duplicate_name: str | None = field(default=None, compare=False)

    @property
    def creates(self) -> bool:
        return True

    def data(self) -> dict[str, Any]:
        return {**super().data(), **_guard_data(self)}


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
    old_key: str = ""  # set when `_moved.yaml` renames the pending entry (apply moves it first)

    def data(self) -> dict[str, Any]:
        return {**super().data(), "since": self.since, "from": self.old_key or None}


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
    hints: Hints = field(default_factory=Hints)  # the context the suggested commands repeat

    def command(self, words: str, *args: str, flags: Iterable[Flag] = ()) -> str:
        """A command to suggest, with the run's context (`Hints.command`); `plan` and `apply`
        also repeat this run's --target, --replace and --max-creates, so that they act on the
        same campaigns."""
        if words in ("plan", "apply"):
            same: list[Flag] = [("--target", key) for key in self.targets]
            same += [("--replace", key) for key in self.replace]
            if self.max_creates != DEFAULT_MAX_CREATES:
                same.append(("--max-creates", str(self.max_creates)))
            flags = [*same, *(f for f in flags if f not in same)]
        return self.hints.command(words, *args, flags=flags)


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
            if isinstance(action, InDoubt) and action.old_key:
                counts["moved"] += 1
        return counts

    @property
    def creates(self) -> list[Action]:
        """The actions apply sends a create for (creates and replaces), in key order."""
        return [a for a in self.actions if a.creates]

    @property
    def has_changes(self) -> bool:
        """True when apply would change the platform or the state: a create, a replace, a
        move, or an in-doubt create to resolve."""
        return any(a.creates or isinstance(a, Moved | InDoubt) for a in self.actions)

    @property
    def duplicates(self) -> list[Create | Replace]:
        """Creates and replaces a guard flagged as probable renames."""
        return [a for a in self.actions if isinstance(a, Create | Replace) and a.duplicate_of]

    def raise_if_unsafe(self) -> None:
        """Refuse a plan apply must not carry out at all: problems, too many creates.

        (Creates a guard flagged are refused one by one by apply: see `guard_message`.)
        """
        if self.problems:
            raise PlanError(f"the plan has {len(self.problems)} problem(s); fix them first")
        count = len(self.creates)
        if count > self.options.max_creates:
            raise PlanError(
                f"the plan creates {count} tasks, more than --max-creates "
                f"{self.options.max_creates}; split the change or raise --max-creates"
            )

    def check_flags(self, retry_pending: tuple[str, ...], allow_duplicate: tuple[str, ...]) -> None:
        """Refuse a flag key this plan would not act on (spec 9.2), before anything happens.

        `--retry-pending` needs an in-doubt key; `--allow-duplicate` a create or replace (apply
        then checks that a guard, here or on the platform's list, flags it).
        """
        by_key = {a.key: a for a in self.actions}
        for flag, keys, wanted, what in (
            ("--retry-pending", retry_pending, (InDoubt,), "pending (in doubt)"),
            ("--allow-duplicate", allow_duplicate, (Create, Replace), "created or replaced"),
        ):
            for key in keys:
                action = by_key.get(key)
                if isinstance(action, wanted):
                    continue
                now = f"planned: {action.name.replace('_', ' ')}" if action else "not in this plan"
                raise PlanError(
                    f"{flag} {key}: {key} is not {what} in this plan ({now}), so the flag "
                    "would do nothing; nothing was done. Check the key with "
                    f"`{self.options.command('plan')}`"
                )


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


def moved_line(old: str, new: str) -> str:
    """The `_moved.yaml` line that moves `old` to `new`, each key quoted unless YAML reads it
    plain as that very text (`null`, `1.5`, `#c` or `a, b` would be read as something else)."""

    def key(text: str) -> str:
        try:
            plain = _PLAIN_KEY.fullmatch(text) and resolve_plain(text) == text
        except ScalarError:
            plain = False
        return text if plain else json.dumps(text, ensure_ascii=False)

    return f"- {{from: {key(old)}, to: {key(new)}}}"


def guard_message(action: Action, options: PlanOptions) -> str:
    """Why apply refuses a flagged create, with the fix (one sentence each)."""
    assert isinstance(action, Create | Replace) and action.duplicate_of
    old, key = action.duplicate_of, action.key
    name = (action.payload or {}).get("name")
    verb = "creating" if isinstance(action, Create) else "replacing"
    theirs = action.duplicate_name
    if action.duplicate_by == "payload":
        same = "the same payload as"
    elif theirs is None or theirs == name:
        same = f"the name {name!r} of"
    else:  # the same name key, spelled differently: the platform may not tell them apart
        same = (
            f"the name {name!r}, which once case and spaces are ignored is the name {theirs!r} of"
        )
    return (
        f"{key} has {same} {old} in the state (a probable rename): {verb} it would "
        f"start a second task with that name and call everyone again. If the file was renamed, "
        f"add `{moved_line(old, key)}` to _moved.yaml in the campaigns folder, or run "
        f"`{options.command('state mv', old, key)}`; if a second task is really wanted, run "
        f"`{allow_command(action, options)}`"
    )


def allow_command(action: Action, options: PlanOptions) -> str:
    """`reconcile apply ... --allow-duplicate KEY` (and `--replace KEY` for a replace)."""
    flags: list[Flag] = [("--replace", action.key)] if isinstance(action, Replace) else []
    return options.command("apply", flags=[*flags, ("--allow-duplicate", action.key)])


def _guard_data(action: Create | Replace) -> dict[str, Any]:
    return {"duplicate_of": action.duplicate_of, "duplicate_by": action.duplicate_by}


def make_plan(
    campaigns: dict[str, Campaign], moves: list[Move], state: State, options: PlanOptions
) -> Plan:
    """The plan for `campaigns` against `state`. Pure: the same inputs give the same plan."""
    problems: list[Problem] = []
    entries = dict(state.campaigns)
    moved_from: dict[str, str] = {}
    for move in moves:
        if move.old not in entries:
            if move.old not in state.campaigns and move.new not in state.campaigns:
                problems.append(_unused_move(move, state))
            continue  # already carried out: nothing to rename
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
    _check_keys(options, keys, moved_from)
    if options.targets:
        keys = [k for k in keys if k in options.targets]

    guards = _Guards(entries)
    actions: list[Action] = []
    for key in keys:
        campaign, entry = campaigns.get(key), entries.get(key)
        action = guards.flag(_action(key, campaign, entry, moved_from.get(key), options))
        if key in options.replace and not isinstance(action, Replace):
            raise PlanError(
                f"--replace {key}: it is {action.name}, not drifted; nothing to replace"
            )
        if action.creates and campaign is not None:
            problems += _start_problems(campaign, options)
        actions.append(action)
    return Plan(tuple(actions), state.lineage, state.serial, options, tuple(sorted(problems)))


def _check_keys(options: PlanOptions, keys: list[str], moved_from: dict[str, str]) -> None:
    """Every --target and --replace key must name a key of this plan (and be targeted)."""
    moved_to = {old: new for new, old in moved_from.items()}
    for flag, wanted in (("--target", options.targets), ("--replace", options.replace)):
        for key in wanted:
            if key in moved_to:
                raise PlanError(
                    f"{flag} {key}: _moved.yaml moves it to {moved_to[key]}; "
                    f"use {flag} {moved_to[key]}"
                )
            if key not in keys:
                raise PlanError(f"{flag} {key}: no campaign file and no state entry has that key")
            if flag == "--replace" and options.targets and key not in options.targets:
                raise PlanError(
                    f"--replace {key}: not among the --target keys, so nothing would be "
                    f"replaced; add --target {key} or drop --replace {key}"
                )


class _Guards:
    """The duplicate guards: a create or replace that shares its payload (fingerprint) or its
    `name` with another key's state entry is a probable rename (spec 4 and 9.2)."""

    def __init__(self, entries: dict[str, Entry]) -> None:
        self.by_fingerprint: dict[str, str] = {}
        self.by_name: dict[str, tuple[str, str]] = {}  # name key -> (state key, its name)
        for key, entry in sorted(entries.items(), reverse=True):  # the first key in order wins
            self.by_fingerprint[entry.fingerprint] = key
            name = str(entry.payload.get("name"))
            self.by_name[name_key(name)] = (key, name)

    def flag(self, action: Action) -> Action:
        if not isinstance(action, Create | Replace) or action.payload is None:
            return action
        same_payload = self.by_fingerprint.get(action.fingerprint or "")
        same_name = self.by_name.get(name_key(str(action.payload.get("name"))))
        if same_payload is not None and same_payload != action.key:
            return replace(action, duplicate_of=same_payload, duplicate_by="payload")
        if same_name is not None and same_name[0] != action.key:
            key, name = same_name
            return replace(action, duplicate_of=key, duplicate_by="name", duplicate_name=name)
        return action


def _unused_move(move: Move, state: State) -> Problem:
    close = difflib.get_close_matches(move.old, sorted(state.campaigns), n=1)
    hint = (
        f"did you mean {close[0]!r}?"
        if close
        else "drop the line if that campaign was never applied"
    )
    return Problem(
        move.location,
        "from",
        f"neither {move.old!r} nor {move.new!r} is in the state, so this move renames "
        f"nothing (a typo?): {hint}",
    )


def _action(
    key: str,
    campaign: Campaign | None,
    entry: Entry | None,
    old_key: str | None,
    options: PlanOptions,
) -> Action:
    if entry is not None and entry.status == "pending":
        return InDoubt(
            key,
            entry.source,
            entry.fingerprint,
            None,
            entry.payload,
            since=entry.created_at,
            old_key=old_key or "",
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
