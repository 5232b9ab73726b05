"""The calling policy (spec 9.5): campaigns that are valid for the API and still ring people at
night, too fast or too often.

`check` runs on one campaign after defaults are merged and friendly forms normalised, inside
the validation of that campaign (so its problems point at the line of the campaign file or of
the `_defaults.yaml` that set the value, and the cache keys on the policy: `Policy.key`).
`past_starts` depends on the clock, so it runs on every campaign outside the cache
(`validate` only; `plan` keeps its own error for a create).

The thresholds come from `campaigns/_policy.yaml` (read by `policy_file.py`) or the defaults
below. Plain Python on purpose: a run served from the cache never imports pydantic.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from reconciler.config import normalize
from reconciler.config.campaign import Campaign
from reconciler.config.yamlio import Document, FieldPath, display_path
from reconciler.errors import Level, Location, Problem

DAY = 24 * 3600
MIN_WINDOW = 30 * 60
# Redial rules that ring the callee, with what triggers them in plain words. `congestion` (a
# call error) never rings, so it is left out of the count.
RINGING_RULES = {
    "busy": "when busy",
    "noAnswer": "when not answered",
    "answerMash": "after an answering machine",
    "answerNoList": "after a call that was not effective",
}


@dataclass(frozen=True)
class Policy:
    """Thresholds and how a breach is reported; the defaults are the spec's."""

    calling_from: int = 8 * 3600  # seconds since midnight
    calling_to: int = 22 * 3600
    max_rate: str = "10/s"  # a rate text, as in campaign files
    max_calls_per_day: int = 6
    level: Level = "warning"

    @functools.cached_property
    def max_calls_per_second(self) -> float:
        return calls_per_second(normalize.parse_rate(self.max_rate))

    @property
    def hours(self) -> str:
        """`08:00-22:00`."""
        return (
            f"{normalize.time_meaning(self.calling_from)}-{normalize.time_meaning(self.calling_to)}"
        )

    def key(self) -> bytes:
        """What a clean validation result depends on (part of the validation cache key)."""
        return (
            f"policy {self.calling_from} {self.calling_to} {self.max_calls_per_second!r} "
            f"{self.max_calls_per_day} {self.level}"
        ).encode()


DEFAULT = Policy()


# Encoded cps -> calls per second: 1 + N/100 is N a second, 1 - N/100 one every N seconds.
_RATES = {cps: float(n) for n, cps in normalize.CPS_PER_SECOND.items()} | {
    cps: 1 / n for n, cps in normalize.CPS_EVERY_SECONDS.items()
}


def calls_per_second(cps: Any) -> float:
    """The real dialing rate of an encoded cps value (1.03 -> 3.0, 0.4 -> 1/60); 0 if none."""
    if isinstance(cps, bool) or not isinstance(cps, int | float):
        return 0.0
    return _RATES.get(cps, 0.0)


def check(payload: dict[str, Any], doc: Document, policy: Policy) -> list[Problem]:
    """Every policy breach of one valid payload; `doc` is the merged document it came from
    (its data is the campaign before friendly forms were normalised).

    Runs on every campaign that is not in the cache, so a clean one costs a few lookups: the
    messages are only made for a breach.
    """
    found = _Found(doc, policy)
    _window(payload.get("additionalOptions") or {}, found)
    if calls_per_second(payload.get("cps")) > policy.max_calls_per_second:
        _rate(payload["cps"], found)
    _redials(payload.get("redialStrategyOptions") or {}, found)
    return found.problems


class _Found:
    """Collects breaches at the line that set each value."""

    def __init__(self, doc: Document, policy: Policy) -> None:
        self.doc, self.policy = doc, policy
        self.problems: list[Problem] = []

    def add(self, path: FieldPath, message: str, unset: bool = False) -> None:
        # A value that is not set is reported at the key of the mapping it belongs in.
        location = self.doc.at(path, key=unset)
        self.problems.append(Problem(location, display_path(path), message, self.policy.level))

    def written(self, path: FieldPath) -> Any:
        """The value as the file wrote it (before friendly forms), or None."""
        value: Any = self.doc.data
        for part in path:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value


def _window(options: dict[str, Any], found: _Found) -> None:
    use_tr = options.get("useTr")
    start, end = options.get("allowCallTimeFrom"), options.get("allowCallTimeTo")
    # Not set and no window: nothing was asked of the calling hours here (the platform's own
    # schedule applies); the spec's case is a window that is not the callee's time.
    if use_tr is False or (use_tr is None and (start is not None or end is not None)):
        said = "useTr is false" if use_tr is False else "useTr is not set"
        if start is None and end is None:
            said += ": calls are not held to the callee's local time"
            fix = "set useTr: true with a calling window"
        else:
            said += ": the calling window is not the callee's local time"
            fix = "set useTr: true"
        found.add(
            ("additionalOptions", "useTr"),
            f"{said}, so people in other time zones may be called at night; {fix}",
            unset=use_tr is None,
        )
    if not isinstance(start, int) or not isinstance(end, int):
        return
    policy = found.policy
    if policy.calling_from <= start and end <= policy.calling_to and end - start >= MIN_WINDOW:
        return  # within the hours, long enough (and so not past midnight)
    # Without useTr the window is in the company's time zone (as startMoment is).
    clock = "callee's local time" if use_tr is True else "company's time zone (useTr off)"
    shown_start, shown_end = normalize.time_meaning(start), normalize.time_meaning(end)
    start_path = ("additionalOptions", "allowCallTimeFrom")
    end_path = ("additionalOptions", "allowCallTimeTo")
    hours = f"the calling policy's hours {found.policy.hours}"
    if start > end:
        found.add(
            end_path,
            f"calls may start at {shown_start} and go on until {shown_end}, {clock}, past "
            f"midnight and outside {hours}" + _seconds_hint(found, start_path, end_path),
        )
        return
    if start < found.policy.calling_from:
        found.add(
            start_path,
            f"calls may start at {shown_start}, {clock}, before {hours}"
            + _seconds_hint(found, start_path),
        )
    if end > found.policy.calling_to:
        found.add(
            end_path,
            f"calls may go on until {shown_end}, {clock}, after {hours}"
            + _seconds_hint(found, end_path),
        )
    if end - start < MIN_WINDOW:
        minutes = (end - start) // 60
        found.add(
            end_path,
            f"calls may only be made from {shown_start} to {shown_end}, {clock}: "
            f"{minutes} minute{'' if minutes == 1 else 's'} a day, less than 30"
            + _seconds_hint(found, start_path, end_path),
        )


def _seconds_hint(found: _Found, *paths: FieldPath) -> str:
    """Why `540` is 00:09: a number counts seconds since midnight."""
    numbers = [
        f"{value} is {normalize.time_meaning(value)}"
        for path in paths
        if isinstance(value := found.written(path), int) and not isinstance(value, bool)
    ]
    if not numbers:
        return ""
    return f'; {" and ".join(numbers)}: a number counts seconds since midnight, write "HH:MM"'


def _rate(cps: float, found: _Found) -> None:
    policy = found.policy
    n = round(abs(cps - 1) * 100)
    if cps < 1:
        said = f"a new call starts every {n} seconds"
    elif isinstance(found.written(("cps",)), str):
        said = f"{n} new calls start every second"
    else:
        said = f"cps {cps} means {n} new calls every second (the API reads 1 + N/100)"
    message = f"{said}, faster than the calling policy's maxRate {policy.max_rate}"
    if cps > 1 and not isinstance(found.written(("cps",)), str):
        message += '; write the rate as text, e.g. cps: "3/s"'
    found.add(("cps",), message)


def _redials(options: dict[str, Any], found: _Found) -> None:
    policy = found.policy
    if options.get("redialStrategyEn") is not True:
        return
    parts: list[tuple[str, int, int]] = []  # rule, redials within 24 h, redials set
    calls = 1
    for name in RINGING_RULES:
        rule = options.get(name)
        if not rule or rule.get("redial") is not True:
            continue
        count, delay = rule.get("count") or 0, rule.get("time") or 0
        within = count if delay * count <= DAY else DAY // delay
        if within:
            parts.append((name, within, count))
            calls += within
    if calls <= policy.max_calls_per_day:
        return
    said = ", ".join(
        f"{within}{'' if within == count else f' of {count}'} {RINGING_RULES[name]}"
        for name, within, count in parts
    )
    biggest = max(parts, key=lambda part: part[1])[0]  # first in API order on a tie
    found.add(
        ("redialStrategyOptions", biggest, "count"),
        f"one number may be called up to {calls} times in 24 hours (the first call, then "
        f"redials: {said}), more than the calling policy's maxCallsPerDay "
        f"{policy.max_calls_per_day}",
    )


def past_starts(campaigns: Iterable[Campaign], timezone: str, now: datetime) -> list[Problem]:
    """A warning for every scheduled campaign whose `startMoment` is not in the future."""
    # "YYYY-MM-DD hh:mm" sorts as it reads: one formatted clock, then string comparisons.
    clock = now.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    problems = []
    for campaign in campaigns:
        moment = campaign.payload.get("startMoment")
        if campaign.payload.get("startType") != "time" or not isinstance(moment, str):
            continue
        if moment <= clock:
            problems.append(
                Problem(
                    campaign.spots.get("startMoment", Location(campaign.source)),
                    "startMoment",
                    f"starts {moment} ({timezone}), which is already in the past: `reconcile "
                    "plan` refuses to create it (a campaign that already ran may keep it)",
                    "warning",
                )
            )
    return problems
