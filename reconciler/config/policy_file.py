"""`campaigns/_policy.yaml`: the calling policy's thresholds, and its JSON Schema.

    callingHours: {from: "08:00", to: "22:00"}   # the callee's local time
    maxRate: "10/s"
    maxCallsPerDay: 6
    level: warning                               # or error: a breach fails validate and plan

Every key is optional (a missing one keeps its default); unknown keys and bad values are
problems at their line, and the keys that did parse still apply. Only the file at the top of
the campaigns folder is read: a `_policy.yaml` in a sub-folder is an error rather than a rule
that is silently ignored (see `discovery.py`).

One table (`KEYS`) feeds both the reader and `schemas/policy.schema.json`, so they cannot
disagree; no pydantic, so a run served from the validation cache stays fast.
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.config import normalize
from reconciler.config.discovery import display
from reconciler.config.policy import DEFAULT, Policy
from reconciler.config.scalars import INT_MAX, whole
from reconciler.config.yamlio import Document, FieldPath, display_path, load_file, visible
from reconciler.errors import Problem

SCHEMA_FILE = "policy.schema.json"
LEVELS = ("error", "warning")
TIME_TEXT = 'expected a time of day as text "HH:MM", e.g. "08:00"'
CALLS_TEXT = f"expected a whole number of calls from 1 to {INT_MAX}, e.g. 6"
RATE_TEXT = 'expected a rate text "N/s" (N calls per second) or "1/Ns", N from 1 to 99, e.g. "10/s"'
DEFAULT_FROM = normalize.time_meaning(DEFAULT.calling_from)
DEFAULT_TO = normalize.time_meaning(DEFAULT.calling_to)
HOURS = {
    "from": "Earliest start of a campaign's calling window, callee's local time (default 08:00).",
    "to": "Latest end of a campaign's calling window, callee's local time (default 22:00).",
}
KEYS = {
    "callingHours": "The hours in which campaigns may call: the calling window of every campaign "
    "must lie within them, must not wrap midnight and must be at least 30 minutes long.",
    "maxRate": 'Highest dialing rate of a campaign, as a rate text ("10/s"; default "10/s").',
    "maxCallsPerDay": "Most calls one number may get in 24 hours: the first call plus the redials "
    "that ring (every rule but congestion); default 6.",
    "level": "How a breach is reported: `warning` (printed; exit 0) or `error` (validate and "
    "plan fail). Default warning.",
}


def load_policy(path: Path | None) -> tuple[Policy, list[Problem]]:
    """The policy in `path` (None: the defaults), and the problems of the file."""
    if path is None:
        return DEFAULT, []
    doc = load_file(path, display(path))
    if doc.problems:
        return DEFAULT, doc.problems
    reader = _Reader(doc)
    policy = DEFAULT
    for key, value in doc.data.items():
        if key == "callingHours":
            policy = reader.hours(policy, value)
        elif key == "maxRate":
            if isinstance(value, str) and normalize.parse_rate(value) is not None:
                policy = replace(policy, max_rate=value.strip())
            else:
                reader.bad((key,), RATE_TEXT)
        elif key == "maxCallsPerDay":
            calls = whole(value)
            if calls is not None and 1 <= calls <= INT_MAX:
                policy = replace(policy, max_calls_per_day=calls)
            else:
                reader.bad((key,), CALLS_TEXT)
        elif key == "level":
            if value in LEVELS:
                policy = replace(policy, level=value)
            else:
                reader.bad((key,), "expected `error` or `warning`")
        else:
            reader.unknown((key,), list(KEYS))
    return policy, reader.problems


class _Reader:
    def __init__(self, doc: Document) -> None:
        self.doc, self.problems = doc, list[Problem]()

    def bad(self, path: FieldPath, expected: str) -> None:
        value = self.doc.data
        for part in path:
            value = value[part]
        shown = f"text {value!r}" if isinstance(value, str) else _plain(value)
        self.problems.append(
            Problem(self.doc.at(path), display_path(path), f"{expected}, got {shown}")
        )

    def unknown(self, path: FieldPath, known: list[str]) -> None:
        name = str(path[-1])
        message = f"unknown key {visible(display_path(path))}"
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            message += f" (did you mean {close[0]}?)"
        message += f"; a policy file has only {', '.join(known)}"
        self.problems.append(Problem(self.doc.at(path, key=True), display_path(path), message))

    def hours(self, policy: Policy, value: Any) -> Policy:
        if not isinstance(value, dict):
            self.bad(("callingHours",), 'expected a mapping {from: "08:00", to: "22:00"}')
            return policy
        times = {"from": policy.calling_from, "to": policy.calling_to}
        ok = True
        for key, text in value.items():
            path = ("callingHours", key)
            if key not in times:
                self.unknown(path, list(HOURS))
                ok = False
                continue
            seconds = normalize.parse_time_of_day(text) if isinstance(text, str) else None
            if seconds is None:
                self.bad(path, TIME_TEXT)
                ok = False
            else:
                times[key] = seconds
        if ok and times["from"] >= times["to"]:
            where = "to" if "to" in value else "from"
            self.problems.append(
                Problem(
                    self.doc.at(("callingHours", where)),
                    f"callingHours.{where}",
                    f"callingHours must end after they start within one day, got "
                    f"{normalize.time_meaning(times['from'])}-{normalize.time_meaning(times['to'])}",
                )
            )
            return policy
        return replace(policy, calling_from=times["from"], calling_to=times["to"]) if ok else policy


def _plain(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def schema() -> dict[str, Any]:
    """`schemas/policy.schema.json` (draft-07), from the same table the reader uses."""
    time = {"type": "string", "pattern": normalize.TIME_PATTERN}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://reconcile.invalid/schemas/" + SCHEMA_FILE,
        "title": "reconcile calling policy (campaigns/_policy.yaml)",
        "description": "Thresholds of the calling policy that `reconcile validate` and "
        "`reconcile plan` check every campaign against. Every key is optional.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "callingHours": {
                "description": KEYS["callingHours"],
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "from": {"description": HOURS["from"], **time, "default": DEFAULT_FROM},
                    "to": {"description": HOURS["to"], **time, "default": DEFAULT_TO},
                },
            },
            "maxRate": {
                "description": KEYS["maxRate"],
                "type": "string",
                "pattern": normalize.RATE_PATTERN,
                "default": DEFAULT.max_rate,
            },
            "maxCallsPerDay": {
                "description": KEYS["maxCallsPerDay"],
                "type": "integer",
                "minimum": 1,
                "maximum": INT_MAX,
                "default": DEFAULT.max_calls_per_day,
            },
            "level": {
                "description": KEYS["level"],
                "enum": list(LEVELS),
                "default": DEFAULT.level,
            },
        },
    }
