"""Saved plans (`plan --out FILE`) and the freshness check `apply FILE` relies on.

A saved plan is the json plan plus a binding: the fingerprint of every campaign, the state's
lineage and serial, the api_url, the tool version, the schema version and the options it was
made with. `load` refuses a plan file whose structure was tampered with (`check_shape`: every
field apply reads, with its type) before anything reads it; `check_fresh` compares the binding
with what is on disk now and refuses a stale plan with a message that says what changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.config.campaign import SCHEMA_VERSION, Campaign
from reconciler.config.files import Unreadable, read_bounded
from reconciler.config.normalize import mask_url
from reconciler.errors import PlanError
from reconciler.plan.plan import ACTION_TYPES, Plan
from reconciler.plan.render.plan_text import data as plan_data
from reconciler.state.model import MAX_SERIAL, State, parse_json

KIND = "reconcile-plan"
MAX_PLAN_BYTES = 256 * 1024 * 1024  # a plan of 10,000 campaigns is about 15 MB
ACTION_NAMES = tuple(t.name for t in ACTION_TYPES)


def binding(plan: Plan, campaigns: dict[str, Campaign], api_url: str) -> dict[str, Any]:
    """What a saved plan is bound to."""
    return {
        "campaigns": {k: c.fingerprint for k, c in sorted(campaigns.items())},
        "lineage": plan.lineage,
        "serial": plan.serial,
        "api_url": api_url,
        "tool_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "targets": list(plan.options.targets),
        "replace": list(plan.options.replace),
        "max_creates": plan.options.max_creates,
    }


def dumps(plan: Plan, campaigns: dict[str, Campaign], api_url: str) -> str:
    """The saved plan's text: the json plan plus its binding."""
    body = {"kind": KIND, **plan_data(plan), "binding": binding(plan, campaigns, api_url)}
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def save(path: Path, plan: Plan, campaigns: dict[str, Campaign], api_url: str) -> None:
    """Write a saved plan atomically."""
    text = dumps(plan, campaigns, api_url)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
    except OSError as exc:
        raise PlanError(f"{path}: cannot write the plan file ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise PlanError(f"{path}: cannot write the plan file ({exc.strerror})") from None


def load(path: Path) -> dict[str, Any]:
    """Read a saved plan; refuse a broken, foreign, newer or tampered one (`check_shape`)."""
    try:
        raw = read_bounded(path, MAX_PLAN_BYTES, follow=True)
    except FileNotFoundError:
        raise PlanError(f"{path}: cannot read the plan file (No such file or directory)") from None
    except Unreadable as exc:
        raise PlanError(f"{path}: cannot read the plan file ({exc})") from None
    try:
        body = parse_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PlanError(f"{path}: not a reconcile plan file (not UTF-8 text)") from None
    except json.JSONDecodeError:
        raise PlanError(f"{path}: not a reconcile plan file (not valid JSON)") from None
    except ValueError as exc:  # deep nesting, endless digits, a key twice...
        raise PlanError(f"{path}: not a reconcile plan file (JSON with {exc})") from None
    if not isinstance(body, dict) or body.get("kind") != KIND or "binding" not in body:
        raise PlanError(f"{path}: not a reconcile plan file (made by `reconcile plan --out`)")
    if body.get("format_version") != 1:
        version = body.get("format_version")
        shown = version if isinstance(version, int | str) and len(str(version)) < 20 else "?"
        raise PlanError(f"{path}: plan format {shown} is not supported")
    problem = check_shape(body)
    if problem is not None:
        raise PlanError(
            f"{path}: not a usable plan file: {problem}; it was changed since `reconcile plan "
            "--out` wrote it. Make the plan again and review it"
        )
    return body


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SERIAL


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _text_or_null(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _keys(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(k, str) for k in value)


def _fingerprints(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


# What `check_fresh` and `apply` read of a saved plan: each field, its test, what it must be.
_BINDING: dict[str, tuple[Any, str]] = {
    "campaigns": (_fingerprints, "an object of campaign keys and fingerprints"),
    "lineage": (_text_or_null, "text or null"),
    "serial": (_whole, "a whole number from 0"),
    "api_url": (_text, "text"),
    "tool_version": (_text, "text"),
    "schema_version": (_whole, "a whole number from 0"),
    "targets": (_keys, "a list of campaign keys"),
    "replace": (_keys, "a list of campaign keys"),
    "max_creates": (_whole, "a whole number from 0"),
}
_ACTION: dict[str, tuple[Any, str]] = {
    "key": (_text, "text"),
    "action": (lambda v: v in ACTION_NAMES, f"one of {', '.join(ACTION_NAMES)}"),
    "source": (_text_or_null, "text or null"),
    "fingerprint": (_text_or_null, "text or null"),
}


def check_shape(body: dict[str, Any]) -> str | None:
    """What is wrong with a saved plan's structure (`binding.targets must be ...`), or None."""
    binding, actions = body.get("binding"), body.get("actions")
    if not isinstance(binding, dict):
        return "`binding` must be an object"
    for name, (ok, wanted) in _BINDING.items():
        if name not in binding:
            return f"`binding.{name}` is missing"
        if not ok(binding[name]):
            return f"`binding.{name}` must be {wanted}"
    if not isinstance(actions, list):
        return "`actions` must be a list"
    for index, action in enumerate(actions):
        if not isinstance(action, dict):
            return f"`actions[{index}]` must be an object"
        for name, (ok, wanted) in _ACTION.items():
            if name not in action or not ok(action[name]):
                return f"`actions[{index}].{name}` must be {wanted}"
        if not _text_or_null(action.get("from")):
            return f"`actions[{index}].from` must be text or null"
    return None


def check_fresh(
    saved: dict[str, Any],
    campaigns: dict[str, Campaign],
    state: State,
    api_url: str,
    plan: Plan | None = None,
) -> None:
    """Raise PlanError naming every difference between the saved binding and now.

    With `plan` (the plan made now), the actions must also be the ones saved: a `_moved.yaml`
    edited since, for example, turns a reviewed move into an unreviewed create.
    """
    bound = saved["binding"]
    reasons: list[str] = []
    if plan is not None:
        then_actions = {a.get("key"): _action_id(a) for a in saved.get("actions", [])}
        now_actions = {a["key"]: _action_id(a) for a in plan_data(plan)["actions"]}
        for key in sorted(then_actions.keys() | now_actions.keys(), key=str):
            was, now_is = then_actions.get(key), now_actions.get(key)
            if was != now_is:
                reasons.append(
                    f"{key}: {was[0] if was else 'absent'} in the saved plan, "
                    f"{now_is[0] if now_is else 'absent'} now"
                )
    if bound.get("tool_version") != __version__:
        reasons.append(f"made by reconcile {bound.get('tool_version')}, this is {__version__}")
    if bound.get("schema_version") != SCHEMA_VERSION:
        reasons.append(f"schema version {bound.get('schema_version')} -> {SCHEMA_VERSION}")
    if bound.get("api_url") != api_url:
        reasons.append(f"API URL {mask_url(bound['api_url'])} -> {api_url}")
    if bound.get("lineage") is None and state.exists:
        reasons.append("the plan was made with no state file, and a state exists now")
    elif bound.get("lineage") != state.lineage:
        reasons.append(f"state lineage {bound.get('lineage')} -> {state.lineage}")
    elif bound.get("serial") != state.serial:
        reasons.append(f"state serial {bound.get('serial')} -> {state.serial}")
    then: dict[str, str] = bound.get("campaigns", {})
    now = {k: c.fingerprint for k, c in campaigns.items()}
    changed = sorted(k for k in then.keys() & now.keys() if then[k] != now[k])
    added, removed = sorted(now.keys() - then.keys()), sorted(then.keys() - now.keys())
    # A removed file is named by the source the saved plan recorded (its key if not targeted).
    sources = {a.get("key"): a.get("source") for a in saved.get("actions", [])}
    for label, keys in (("changed", changed), ("added", added), ("removed", removed)):
        if keys:
            files = [campaigns[k].source if k in campaigns else sources.get(k) or k for k in keys]
            reasons.append(f"campaign files {label}: {', '.join(files)}")
    if reasons:
        raise PlanError(
            "the saved plan is stale: " + "; ".join(reasons) + ". Run `reconcile plan` again "
            "and review the new plan"
        )


def _action_id(action: dict[str, Any]) -> tuple[Any, ...]:
    return (action.get("action"), action.get("fingerprint"), action.get("from"))
