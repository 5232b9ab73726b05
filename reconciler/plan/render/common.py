"""Pieces every plan rendering shares: values, annotations, masking, the banner, the summary."""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from typing import Any

from reconciler.config import normalize
from reconciler.plan.diff import FieldChange
from reconciler.plan.plan import Action, Plan, PlanOptions
from reconciler.plan.render import escape

ADVICE = {
    "drift": "the API cannot update a task: this change is NOT applied. To create a new task "
    "(the old one keeps running), run `{replace}`.",
    "replace": "a NEW task is created; the old task {identity} stays on the platform (halt it "
    "there if it must stop).",
    "orphan": "no file: the task stays on the platform (the API cannot delete it). To forget "
    "it, run `{forget}`.",
    "in_doubt": "a create was sent at {since} and its outcome is unknown; apply looks for it on "
    "the platform before creating anything.",
    "moved": "the state entry is renamed from {old}; no API call.",
}
MAX_WINDOWS = 5  # calling windows listed in the banner; the rest are counted


def summary_line(plan: Plan) -> str:
    """`Plan: 2 to create, 0 to replace, 0 to move, 1 drifted, 0 orphaned, 0 in doubt.`"""
    c = plan.summary
    return (
        f"Plan: {c['create']} to create, {c['replace']} to replace, {c['moved']} to move, "
        f"{c['drift']} drifted, {c['orphan']} orphaned, {c['in_doubt']} in doubt."
    )


def scalar(value: Any) -> str:
    """A value as JSON text (strings quoted, null, true/false)."""
    if isinstance(value, str):  # the common case, without json.dumps' per-call set-up
        return str(encode_basestring(value))
    return json.dumps(value, ensure_ascii=False)


def annotate(path: str, value: Any) -> str:
    """The meaning of an encoded value, or `` when it needs none."""
    leaf = path.rsplit(".", 1)[-1]
    meaning = None
    if leaf == "cps":
        meaning = normalize.cps_meaning(value)
    elif leaf in normalize.TIME_FIELDS:
        meaning = normalize.time_meaning(value)
    return f"  # {meaning}" if meaning else ""


def shown(path: str, value: Any) -> Any:
    """The value as shown to reviewers: webhook URLs with credentials masked."""
    if path.startswith("webhookUrls") and isinstance(value, str):
        return normalize.mask_url(value)
    if isinstance(value, dict):
        return {k: shown(f"{path}.{k}", v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(f"{path}[{i}]", v) for i, v in enumerate(value)]
    return value


def payload_lines(payload: dict[str, Any], indent: str = "") -> list[str]:
    """A payload as indented `key: value` lines, encoded values annotated, secrets masked."""
    lines: list[str] = []

    def walk(value: Any, path: str, prefix: str, depth: int) -> None:
        pad = indent + "  " * depth
        if isinstance(value, dict) and _inline(path, value):
            inner = ", ".join(f"{k}: {scalar(v)}" for k, v in value.items())
            lines.append(f"{pad}{prefix} {{{inner}}}")
        elif isinstance(value, dict) and value:
            lines.append(f"{pad}{prefix}")
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else k, f"{k}:", depth + 1)
        elif isinstance(value, list) and value:
            lines.append(f"{pad}{prefix}")
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]", "-", depth + 1)
        else:
            text = scalar(shown(path, value))
            lines.append(f"{pad}{prefix} {text}{annotate(path, value)}")

    for key, value in payload.items():
        walk(value, key, f"{key}:", 0)
    return lines


def _inline(path: str, value: dict[str, Any]) -> bool:
    # Short mappings of plain values (redial rules) read best on one line.
    return 0 < len(value) <= 4 and not any(
        isinstance(v, dict | list) or annotate(f"{path}.{k}", v) for k, v in value.items()
    )


def change_line(change: FieldChange) -> str:
    """`cps: 1.05 -> 1.03  # 5 calls/s -> 3 calls/s` (or `(absent)` for added/removed)."""
    old = "(absent)" if change.kind == "added" else scalar(shown(change.path, change.old))
    new = "(absent)" if change.kind == "removed" else scalar(shown(change.path, change.new))
    notes = [annotate(change.path, v).removeprefix("  # ") for v in (change.old, change.new)]
    note = f"  # {notes[0] or '-'} -> {notes[1] or '-'}" if any(notes) else ""
    return f"{change.path}: {old} -> {new}{note}"


def advice(action: Action, options: PlanOptions) -> str:
    """What the reviewer should know about an action that does not simply create; the commands
    it suggests carry the run's context (`PlanOptions.command`)."""
    template = ADVICE.get(action.name, "")
    old = getattr(action, "old_key", "")
    if action.name == "in_doubt" and old:
        template += " Its pending state entry is renamed from {old} first."
    return template.format(
        identity=action.identity,
        since=getattr(action, "since", ""),
        old=old,
        replace=options.command("plan", flags=[("--replace", action.key)]),
        forget=options.command("state rm", action.key),
    )


def calls_per_second(cps: Any) -> float:
    """The real dialing rate of an encoded cps value."""
    if not isinstance(cps, int | float) or cps not in normalize.CPS_VALUES:
        return 0.0
    n = round(abs(cps - 1) * 100)
    return float(n) if cps > 1 else 1 / n


def banner(plan: Plan) -> list[str]:
    """Who gets called: how many creates, earliest start, peak rate, windows, redials.

    The lines are escaped for a terminal (they name a campaign key and a start moment).
    """
    payloads = {a.key: a.payload for a in plan.creates if a.payload}
    if not payloads:
        return []
    return [escape.text(line) for line in _banner(plan, payloads)]


def _banner(plan: Plan, payloads: dict[str, dict[str, Any]]) -> list[str]:
    creates = list(payloads.values())
    starts = sorted(
        str(p["startMoment"])
        for p in creates
        if p.get("startType") == "time" and p.get("startMoment")
    )
    manual = sum(1 for p in creates if p.get("startType") == "manual")
    peak = max(payloads, key=lambda key: calls_per_second(payloads[key].get("cps")))
    windows: set[str] = set()
    for p in creates:
        opts = p.get("additionalOptions", {})
        if opts.get("useTr"):
            start = normalize.time_meaning(opts.get("allowCallTimeFrom"))
            end = normalize.time_meaning(opts.get("allowCallTimeTo"))
            windows.add(f"{start}-{end} callee's local time")
        else:
            windows.add("no calling window (useTr off)")
    redials = sum(1 for p in creates if p.get("redialStrategyOptions", {}).get("redialStrategyEn"))
    first = f"{starts[0]} ({plan.options.timezone})" if starts else "none scheduled"
    listed = sorted(windows)
    window_text = ", ".join(listed[:MAX_WINDOWS])  # short, whatever the size of the plan
    if len(listed) > MAX_WINDOWS:
        window_text += f" and {len(listed) - MAX_WINDOWS} more"
    lines = [
        f"Who gets called: {len(creates)} new task(s) (limit {plan.options.max_creates} per apply)",
        f"  earliest start: {first}" + (f"; {manual} started by hand" if manual else ""),
        f"  peak rate: {normalize.cps_meaning(payloads[peak].get('cps'))} ({peak})",
        f"  calling windows: {window_text}",
        f"  redials: on in {redials} of {len(creates)}",
    ]
    breaches = policy_count(plan.creates)
    if breaches:
        lines.append(f"  policy: {breaches}")
    if len(creates) > plan.options.max_creates:
        lines.append(
            f"  WARNING: {len(creates)} creates exceed --max-creates {plan.options.max_creates}; "
            "apply will refuse"
        )
    return lines


def policy_count(actions: list[Action]) -> str:
    """`2 warnings (2030/night-promo)`: the calling-policy breaches of `actions`, or ``."""
    levels = [p.level for a in actions for p in a.policy]
    if not levels:
        return ""
    counts = [(levels.count(level), level) for level in ("error", "warning")]
    said = ", ".join(f"{n} {level}{'' if n == 1 else 's'}" for n, level in counts if n)
    keys = [a.key for a in actions if a.policy]
    listed = ", ".join(keys[:MAX_WINDOWS])
    if len(keys) > MAX_WINDOWS:
        listed += f" and {len(keys) - MAX_WINDOWS} more"
    return f"{said} ({listed})"


def policy_notes(action: Action) -> list[str]:
    """One line per calling-policy breach of an action's campaign file."""
    notes = []
    for p in action.policy:
        where = f"line {p.location.line}"
        if p.location.file != action.source:  # set by a _defaults.yaml
            where = f"{p.location.file}:{p.location.line}"
        notes.append(f"policy {p.level} at {where}: {p.path}: {p.message}")
    return notes


def notice(action: Action) -> str:
    """One line for a GitHub notice: `+ create: starts 2030-06-02 10:00, 3 calls/s`."""
    payload = action.payload or {}
    start = (
        f"starts {payload.get('startMoment')}"
        if payload.get("startType") == "time"
        else "started by hand"
    )
    return f"{action.symbol} {action.name}: {start}, {normalize.cps_meaning(payload.get('cps'))}"
