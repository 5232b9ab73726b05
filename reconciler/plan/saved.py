"""Reading a saved plan back (`reconcile show PLANFILE`): the JSON `planfile.load` returned,
to the `Plan` the renderers take.

`planfile.check_shape` checks what `apply` reads; this module checks, by type, everything the
renderers read, so a tampered plan file is refused with the field it got wrong (`actions[0]
.policy: expected a list`) and never reaches a renderer that would fail on it. The renderers
take any JSON value where the API takes a plain value; where the API takes an object (the
models' nested models: `additionalOptions`, `redialStrategyOptions.busy`...), a saved payload
must hold an object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.errors import Location, PlanError, Problem
from reconciler.hints import SANDBOX_API_URL, Hints
from reconciler.plan.diff import FieldChange
from reconciler.plan.plan import (
    ACTION_TYPES,
    DEFAULT_TIMEZONE,
    Action,
    Create,
    InDoubt,
    Moved,
    Plan,
    PlanOptions,
    Replace,
)

_KINDS = {t.name: t for t in ACTION_TYPES}
_CHANGE_KINDS = ("added", "removed", "changed")
_LEVELS = ("error", "warning")


class _Reader:
    """Typed access to a saved plan's JSON; anything unexpected is a PlanError naming where."""

    def __init__(self, path: Path | str, hints: Hints) -> None:
        self.path = path
        self.again = hints.command("plan", flags=[("--out", str(path))])

    def fail(self, where: str, expected: str) -> PlanError:
        return PlanError(
            f"{self.path}: not a reconcile plan file this version can read ({where}: expected "
            f"{expected}); make it again with `{self.again}`"
        )

    def get(self, record: dict[str, Any], key: str, where: str, kind: Any, what: str) -> Any:
        value = record.get(key)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.fail(f"{where}.{key}" if where else key, what)
        return value

    def text(self, record: dict[str, Any], key: str, where: str) -> str | None:
        value: str | None = self.get(record, key, where, (str, type(None)), "text or null")
        return value


def to_plan(body: dict[str, Any], path: Path | str, hints: Hints | None = None) -> Plan:
    """The plan a saved plan holds (what `load` returned), to render as `plan` did."""
    read = _Reader(path, hints or Hints())
    bound = read.get(body, "binding", "", dict, "an object")
    options = PlanOptions(
        tuple(str(k) for k in read.get(bound, "targets", "binding", list, "a list")),
        tuple(str(k) for k in read.get(bound, "replace", "binding", list, "a list")),
        read.get(bound, "max_creates", "binding", int, "a number"),
        read.get(bound, "timezone", "binding", (str, type(None)), "text or null")
        or DEFAULT_TIMEZONE,  # older saved plans have none
        hints=Hints(sandbox=bound.get("api_url") == SANDBOX_API_URL),
    )
    state = read.get(body, "state", "", dict, "an object")
    actions = read.get(body, "actions", "", list, "a list")
    return Plan(
        tuple(_action(read, record, f"actions[{i}]") for i, record in enumerate(actions)),
        read.text(state, "lineage", "state"),
        read.get(state, "serial", "state", int, "a number"),
        options,
    )


def _action(read: _Reader, record: Any, where: str) -> Action:
    if not isinstance(record, dict):
        raise read.fail(where, "an object")
    name = read.get(record, "action", where, str, "an action name")
    kind = _KINDS.get(name)
    if kind is None:
        raise read.fail(f"{where}.action", f"one of {', '.join(_KINDS)}")
    payload = record.get("payload")
    if payload is not None:
        _check_objects(read, payload, f"{where}.payload")
    problems = record.get("policy")  # older saved plans have none
    if problems is not None and not isinstance(problems, list):
        raise read.fail(f"{where}.policy", "a list")
    common: dict[str, Any] = {
        "key": read.get(record, "key", where, str, "text"),
        "source": read.text(record, "source", where),
        "fingerprint": read.text(record, "fingerprint", where),
        "identity": read.text(record, "identity", where),
        "payload": _in_api_order(payload),
        "diff": tuple(
            _change(read, c, f"{where}.diff[{i}]")
            for i, c in enumerate(read.get(record, "diff", where, list, "a list"))
        ),
        "policy": tuple(
            _problem(read, p, f"{where}.policy[{i}]") for i, p in enumerate(problems or [])
        ),
    }
    if kind in (Create, Replace):
        common["duplicate_of"] = read.text(record, "duplicate_of", where)
        by = record.get("duplicate_by")
        if by not in (None, "payload", "name"):
            raise read.fail(f"{where}.duplicate_by", "payload, name or null")
        common["duplicate_by"] = by
    if kind is Moved:
        common["old_key"] = read.get(record, "from", where, str, "text")
    if kind is InDoubt:
        common["since"] = read.get(record, "since", where, str, "text")
        common["old_key"] = read.text(record, "from", where) or ""
    action: Action = kind(**common)
    return action


def _check_objects(read: _Reader, value: Any, where: str, model: Any = None) -> None:
    """`value` is an object, and so is each of its fields that holds a nested model."""
    from reconciler.config.models import CallTask, submodels

    if not isinstance(value, dict):
        raise read.fail(where, "an object")
    for name, sub in submodels(model or CallTask).items():
        if name in value:
            _check_objects(read, value[name], f"{where}.{name}", sub)


def _in_api_order(payload: dict[str, Any] | None) -> dict[str, Any] | None:
    """The payload with its fields in the API page's order, as `plan` shows them (a saved plan
    sorts them); as it is when it is not a payload this version validates the same."""
    if payload is None:
        return None
    from pydantic import ValidationError

    from reconciler.config.models import payload_of

    try:
        ordered = payload_of(payload)
    except (ValidationError, ValueError, TypeError):
        return payload
    return ordered if ordered == payload else payload


def _change(read: _Reader, record: Any, where: str) -> FieldChange:
    if not isinstance(record, dict) or record.get("kind") not in _CHANGE_KINDS:
        raise read.fail(where, "a change with a kind: added, removed or changed")
    return FieldChange(
        read.get(record, "path", where, str, "text"),
        record["kind"],
        record.get("old"),
        record.get("new"),
    )


def _problem(read: _Reader, record: Any, where: str) -> Problem:
    if not isinstance(record, dict) or record.get("level") not in _LEVELS:
        raise read.fail(where, "a problem with a level: error or warning")
    location = Location(
        read.get(record, "file", where, str, "text"),
        read.get(record, "line", where, int, "a number"),
        read.get(record, "column", where, int, "a number"),
    )
    return Problem(
        location,
        read.get(record, "path", where, str, "text"),
        read.get(record, "message", where, str, "text"),
        record["level"],
    )
