"""Saved plans (`plan --out FILE`) and the freshness check `apply FILE` relies on.

A saved plan is the json plan plus a binding: the fingerprint of every campaign, the state's
lineage and serial, the api_url, the tool version, the schema version and the options it was
made with. `load` refuses a plan file whose structure was tampered with (`check_shape`: every
field apply reads, with its type) before anything reads it; `check_fresh` compares the binding
with what is on disk now and refuses a stale plan with a message that says what changed.
Reading one back for `show` (`to_plan`) is in `saved`.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.config.campaign import SCHEMA_VERSION, Campaign
from reconciler.config.campaign import fingerprint as campaign_fingerprint
from reconciler.config.files import Unreadable, kind, read_regular
from reconciler.config.normalize import mask_url
from reconciler.errors import PlanError
from reconciler.hints import SANDBOX_API_URL, Hints
from reconciler.plan.plan import (
    ACTION_TYPES,
    DEFAULT_MAX_CREATES,
    DEFAULT_TIMEZONE,
    Plan,
    PlanOptions,
)
from reconciler.plan.render.plan_text import data as plan_data
from reconciler.plan.saved import to_plan as to_plan  # `show` reads a plan back through here
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
        "timezone": plan.options.timezone,
    }


def dumps(plan: Plan, campaigns: dict[str, Campaign], api_url: str) -> str:
    """The saved plan's text: the json plan plus its binding."""
    body = {"kind": KIND, **plan_data(plan), "binding": binding(plan, campaigns, api_url)}
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def check_target(path: Path, owned: Sequence[Path] = (), folders: Sequence[Path] = ()) -> bool:
    """Refuse to put a plan at `path` unless it is new or an earlier saved plan: the atomic
    write replaces whatever the name held (the state file, a campaign file, a symbolic link,
    a device node such as /dev/full when run as root), and nothing of that may be lost. Nor
    may a new plan take a name the tool reads: `owned` (the state and the files beside it,
    which may not exist yet) or any path below `folders` (the campaigns folder).

    Returns whether the path exists (an earlier plan, to replace).
    """
    if not str(path) or path.name in ("", ".", ".."):
        raise PlanError(f"--out {str(path)!r}: give a file name for the plan; nothing was written")
    real = Path(os.path.realpath(path))
    taken = next((p for p in owned if Path(os.path.realpath(p)) == real), None)
    if taken is None:
        taken = next((f for f in folders if Path(os.path.realpath(f)) in real.parents), None)
    if taken is not None:
        raise PlanError(
            f"{path}: this name belongs to {taken} (the state, its journal, backup or lock, the "
            "sandbox's tasks, or the campaigns folder), which the tool reads; nothing was "
            "written: save the plan elsewhere"
        )
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise PlanError(f"{path}: cannot write the plan file ({exc.strerror})") from None
    what = "a folder" if stat.S_ISDIR(info.st_mode) else kind(info.st_mode)
    if what is not None:
        raise PlanError(
            f"{path}: not a regular file but {what}; a plan is only written to a new file or "
            "over an earlier saved plan; nothing was written: choose another path"
        )
    if not _is_saved_plan(path):
        raise PlanError(
            f"{path}: the file exists and is not a plan saved by `reconcile plan --out`; it is "
            "never overwritten (it may be the state or a campaign file); nothing was written: "
            "choose another path, or remove the file first"
        )
    return True


def _is_saved_plan(path: Path) -> bool:
    """Whether `path` holds a plan `plan --out` wrote: a JSON object of its kind (a stale,
    newer or tampered one included: making the plan again is how to replace it)."""
    try:
        body = parse_json(read_regular(path, MAX_PLAN_BYTES, "as plan files").decode("utf-8"))
    except (Unreadable, ValueError):
        return False
    return isinstance(body, dict) and body.get("kind") == KIND


def save(
    path: Path,
    plan: Plan,
    campaigns: dict[str, Campaign],
    api_url: str,
    owned: Sequence[Path] = (),
    folders: Sequence[Path] = (),
) -> None:
    """Write a saved plan atomically, to a new file or over an earlier saved plan only
    (`check_target`); a new file is linked into place, so a file made there meanwhile is
    never replaced."""
    exists = check_target(path, owned, folders)
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
        if exists:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # FileExistsError when something took the name meanwhile
            os.unlink(tmp)
    except FileExistsError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise PlanError(
            f"{path}: a file appeared there while the plan was written; it was left as it is "
            "and nothing was written: run plan again"
        ) from None
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise PlanError(f"{path}: cannot write the plan file ({exc.strerror})") from None


def load(path: Path, hints: Hints | None = None) -> dict[str, Any]:
    """Read a saved plan; refuse a broken, foreign, newer or tampered one (`check_shape`)."""
    try:  # a regular file, bounded: a FIFO or /dev/zero never hangs or fills memory
        raw = read_regular(path, MAX_PLAN_BYTES, "as plan files")
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
        again = (hints or Hints()).command("plan", flags=[("--out", str(path))])
        raise PlanError(
            f"{path}: not a usable plan file: {problem}; it was changed after it was saved. "
            f"Make the plan again with `{again}` and review it"
        )
    return body


MAX_NAMED = 3  # keys or files a stale-plan message names per reason; the rest are counted


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
        wrong = _payload_mismatch(action, binding["campaigns"])
        if wrong is not None:
            return f"`actions[{index}].{wrong}"
    return None


def _payload_mismatch(action: dict[str, Any], bound: dict[str, str]) -> str | None:
    """For an action that sends its payload (create, replace): where the payload `show`
    prints differs from what `apply` would send. apply sends the campaign file whose
    fingerprint `binding.campaigns` holds, so the payload must hash to the action's
    fingerprint and that must be the bound one; else `show` could print one payload while
    apply sends another."""
    if action["action"] not in ("create", "replace"):
        return None
    payload = action.get("payload")
    if not isinstance(payload, dict):
        return "payload` must be an object"
    try:
        hashed = campaign_fingerprint(payload)
    except (TypeError, ValueError):
        hashed = None
    if hashed != action["fingerprint"]:
        return "payload` does not match its fingerprint"
    if bound.get(action["key"]) != action["fingerprint"]:
        return "fingerprint` is not the one `binding.campaigns` holds for its key"
    return None


def check_fresh(
    saved: dict[str, Any],
    campaigns: dict[str, Campaign],
    state: State,
    api_url: str,
    plan: Plan | None = None,
    path: Path | str = "PLANFILE",
) -> None:
    """Raise PlanError naming every difference between the saved binding and now.

    With `plan` (the plan made now), the actions must also be the ones saved: a `_moved.yaml`
    edited since, for example, turns a reviewed move into an unreviewed create. The message is
    short and bounded: the cause first (another API, another version, another state), then what
    changed (a few keys or files named, the rest counted), then the command that helps, with the
    context of the run (`plan.options`).
    """
    bound = saved["binding"]
    reasons: list[str] = []
    then_url = bound.get("api_url")
    if then_url != api_url:
        reasons.append(f"it was made against another API ({mask_url(str(then_url))} -> {api_url})")
    if bound.get("tool_version") != __version__:
        reasons.append(
            f"it was made by reconcile {bound.get('tool_version')}, this is {__version__}"
        )
    if bound.get("schema_version") != SCHEMA_VERSION:
        reasons.append(
            f"it was made for schema version {bound.get('schema_version')}, this is "
            f"{SCHEMA_VERSION}"
        )
    if bound.get("lineage") is None and state.exists:
        reasons.append("it was made with no state file, and a state exists now")
    elif bound.get("lineage") != state.lineage:
        now_lineage = state.lineage if state.exists else "no state file"
        reasons.append(
            f"the state is another one (lineage {bound.get('lineage')} -> {now_lineage})"
        )
    elif bound.get("serial") != state.serial:
        reasons.append(f"the state changed since (serial {bound.get('serial')} -> {state.serial})")
    then: dict[str, str] = bound.get("campaigns", {})
    now = {k: c.fingerprint for k, c in campaigns.items()}
    changed = sorted(k for k in then.keys() & now.keys() if then[k] != now[k])
    added, removed = sorted(now.keys() - then.keys()), sorted(then.keys() - now.keys())
    if plan is not None:  # the keys of changed files are named below, by their files
        reasons += _actions_differ(saved, plan, {*changed, *added, *removed})
    if plan is not None and (bound.get("timezone") or DEFAULT_TIMEZONE) != plan.options.timezone:
        reasons.append(  # start times are read in it: another zone is another plan
            f"it was made for the time zone {bound.get('timezone')}, this run reads "
            f"{plan.options.timezone} (--timezone, env TWIN24_TIMEZONE)"
        )
    if plan is not None and not reasons and not (changed or added or removed):
        reasons += _content_differs(saved, plan)
    # A removed file is named by the source the saved plan recorded (its key if not targeted).
    sources = {a.get("key"): a.get("source") for a in saved.get("actions", [])}
    for label, keys in (("changed", changed), ("added", added), ("removed", removed)):
        if keys:
            files = [campaigns[k].source if k in campaigns else sources.get(k) or k for k in keys]
            reasons.append(f"campaign files {label}: {named(files)}")
    if reasons:
        options = plan.options if plan is not None else _options(bound)
        # Stale wherever it is applied: the files or the tool changed, not only the API.
        remake = bool(changed or added or removed) or any(
            bound.get(k) != v
            for k, v in (("tool_version", __version__), ("schema_version", SCHEMA_VERSION))
        )
        raise PlanError(
            f"the saved plan {path} is stale: {'; '.join(reasons)}. "
            f"{_advice(then_url, api_url, options, path, remake)}"
        )


def named(items: list[str]) -> str:
    """`a, b, c and 4 more`: at most MAX_NAMED items named."""
    shown = ", ".join(items[:MAX_NAMED])
    more = len(items) - MAX_NAMED
    return f"{shown} and {more} more" if more > 0 else shown


def _actions_differ(saved: dict[str, Any], plan: Plan, files_changed: set[str]) -> list[str]:
    then_actions = {a.get("key"): _action_id(a) for a in saved.get("actions", [])}
    now_actions = {a["key"]: _action_id(a) for a in plan_data(plan)["actions"]}
    differ = []
    for key in sorted((then_actions.keys() | now_actions.keys()) - files_changed, key=str):
        was, now_is = then_actions.get(key), now_actions.get(key)
        if was != now_is:
            differ.append(
                f"{key}: {was[0] if was else 'absent'} -> {now_is[0] if now_is else 'absent'}"
            )
    return [f"{len(differ)} action(s) differ now ({named(differ)})"] if differ else []


def _content_differs(saved: dict[str, Any], plan: Plan) -> list[str]:
    """What `show` prints of the saved plan (every action with its diff, policy notes and
    guards, the state line, the summary) must be what the plan made now holds: apply carries
    out the plan made now, so a plan file edited by hand must not show a reviewer another."""
    now = json.loads(json.dumps(plan_data(plan), ensure_ascii=False))
    then = {k: v for k, v in saved.items() if k not in ("kind", "binding")}
    where = _first_difference(then, now, "")
    return [f"the file holds what the plan made now does not ({where})"] if where else []


def _first_difference(then: Any, now: Any, where: str) -> str | None:
    """The path of the first place where `then` and `now` differ (`actions[2].diff`), or None."""
    if type(then) is not type(now):
        return where or "the whole file"
    if isinstance(then, dict):
        for key in sorted(then.keys() | now.keys(), key=str):
            if key not in then or key not in now:
                return f"{where}.{key}".lstrip(".")
            found = _first_difference(then[key], now[key], f"{where}.{key}".lstrip("."))
            if found:
                return found
        return None
    if isinstance(then, list):
        if len(then) != len(now):
            return f"{where} ({len(then)} entries, {len(now)} now)"
        for i, (a, b) in enumerate(zip(then, now, strict=True)):
            found = _first_difference(a, b, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if then == now else where


def _options(bound: dict[str, Any]) -> PlanOptions:
    """The options a saved plan was made with (no context: the caller gave none)."""
    return PlanOptions(
        tuple(bound.get("targets") or ()),
        tuple(bound.get("replace") or ()),
        bound.get("max_creates", DEFAULT_MAX_CREATES),
    )


def _advice(
    then_url: Any, api_url: str, options: PlanOptions, path: Path | str, remake: bool
) -> str:
    """Apply the plan against the API it was made for, or make a new one (`remake`: what
    changed would make it stale there too: the campaign files, the tool or schema version)."""
    new_plan = "make a new plan with `{}` and review it"
    if then_url != api_url and isinstance(then_url, str):
        if then_url == SANDBOX_API_URL:
            there, made = replace(options.hints, sandbox=True, api_url=None), "with --sandbox"
        else:
            there, made = replace(options.hints, sandbox=False, api_url=then_url), f"for {then_url}"
        options = replace(options, hints=there)
        if not remake:
            return f"It was made {made}: run `{there.command('apply', str(path))}`"
        return f"It was made {made}: " + new_plan.format(_new_plan(options, path))
    advice = new_plan.format(_new_plan(options, path))
    return advice[0].upper() + advice[1:]


def _new_plan(options: PlanOptions, path: Path | str) -> str:
    return options.command("plan", flags=[("--out", str(path))])


def _action_id(action: dict[str, Any]) -> tuple[Any, ...]:
    return (action.get("action"), action.get("fingerprint"), action.get("from"))
