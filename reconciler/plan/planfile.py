"""Saved plans (`plan --out FILE`) and the freshness check `apply FILE` relies on.

A saved plan is the json plan plus a binding: the fingerprint of every campaign, the state's
lineage and serial, the api_url, the tool version, the schema version and the options it was
made with. `check_fresh` compares the binding with what is on disk now and refuses a stale plan
with a message that says what changed.
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
from reconciler.config.files import Unreadable, read_regular
from reconciler.errors import PlanError
from reconciler.plan.plan import Plan
from reconciler.plan.render.plan_text import data as plan_data
from reconciler.state.model import State

KIND = "reconcile-plan"
MAX_PLAN_BYTES = 256 * 1024 * 1024  # thousands of campaigns with their payloads fit


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
    """Read a saved plan; refuse a broken, foreign or newer one."""
    try:  # a regular file, bounded: a FIFO or /dev/zero never hangs or fills memory
        raw = read_regular(path, MAX_PLAN_BYTES, "as plan files")
    except Unreadable as exc:
        raise PlanError(f"{path}: cannot read the plan file ({exc})") from None
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deeply
        raise PlanError(f"{path}: not a reconcile plan file (not valid JSON)") from None
    if not isinstance(body, dict) or body.get("kind") != KIND or "binding" not in body:
        raise PlanError(f"{path}: not a reconcile plan file (made by `reconcile plan --out`)")
    if body.get("format_version") != 1:
        raise PlanError(f"{path}: plan format {body.get('format_version')} is not supported")
    return body


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
        reasons.append(f"API URL {bound.get('api_url')} -> {api_url}")
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
