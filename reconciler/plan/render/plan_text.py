"""The plan as text for a terminal (Terraform-like), as JSON, and as GitHub notices."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from reconciler.plan.plan import (
    Action,
    Create,
    Plan,
    PlanOptions,
    Replace,
    allow_command,
    moved_line,
)
from reconciler.plan.render import common, escape
from reconciler.plan.render.problems import github_command

FORMAT_VERSION = 1
_COLORS = {"+": "32", "-/+": "33", "~": "33", "?": "35", "!": "31", ">": "36"}


def block(action: Action, options: PlanOptions) -> list[str]:
    """The lines of one action: a header, then the payload or the field diff, then advice.

    Each line is escaped for a terminal (keys, sources and identities come from files and
    from the API), so a value never starts a line of its own.
    """
    lines = [_header(action)]
    if action.name in ("create", "replace") and not action.diff:
        lines += common.payload_lines(action.payload or {}, "    ")
    elif action.diff:
        lines += ["    " + common.change_line(c) for c in action.diff]
    note = common.advice(action, options)
    if note:
        lines.append(f"  {note}")
    lines += [f"  {line}" for line in common.policy_notes(action)]
    if isinstance(action, Create | Replace) and action.duplicate_of:
        old, key = action.duplicate_of, action.key
        same = (
            "same payload as"
            if action.duplicate_by == "payload"
            else f"same name ({(action.payload or {}).get('name')!r}) as"
        )
        lines.append(
            f"  PROBABLE RENAME: {same} {old} in the state; if the file was renamed, add "
            f"`{moved_line(old, key)}` to _moved.yaml or run "
            f"`{options.command('state mv', old, key)}` (apply refuses this {action.name}; "
            f"if a second task is really wanted: `{allow_command(action, options)}`)"
        )
    return [escape.text(line) for line in lines]


def _header(action: Action) -> str:
    header = f"{action.symbol} {action.name.replace('_', ' ')} {action.key}"
    return f"{header}  ({action.source})" if action.source else header


def summary(plan: Plan, color: bool = False) -> str:
    """The short form (`plan --summary`): the banner, one line per action that is not
    unchanged (no payloads, no diffs), and the summary line."""

    def line(action: Action) -> list[str]:
        text = _header(action)
        if isinstance(action, Create | Replace) and action.duplicate_of:
            text += f"  PROBABLE RENAME of {action.duplicate_of}: apply refuses it"
        return [escape.text(text)]

    return _rendered(plan, line, color, spaced=False)


def text(plan: Plan, color: bool = False) -> str:
    """The terminal rendering."""
    return _rendered(plan, lambda action: block(action, plan.options), color, spaced=True)


def _rendered(
    plan: Plan, lines_of: Callable[[Action], list[str]], color: bool, spaced: bool
) -> str:
    """The banner, the lines of each action that is not unchanged (a blank line after each
    when `spaced`; the first line colored by its symbol), then the summary line."""
    out: list[str] = []
    banner = common.banner(plan)
    if banner:
        out += [*banner, ""]
    for action in plan.actions:
        if action.name == "unchanged":
            continue
        lines = lines_of(action)
        if color:
            lines[0] = f"\x1b[{_COLORS.get(action.symbol, '0')}m{lines[0]}\x1b[0m"
        out += [*lines, ""] if spaced else lines
    if out and out[-1]:
        out.append("")
    if not any(a.name != "unchanged" for a in plan.actions):
        out.append("No changes. The platform matches the campaign files.")
    out.append(common.summary_line(plan))
    return "\n".join(out) + "\n"


def data(plan: Plan) -> dict[str, Any]:
    """The json plan's data (also the body of a saved plan)."""
    return {
        "format_version": FORMAT_VERSION,
        "summary": plan.summary,
        "actions": [a.data() for a in plan.actions],
        "state": {"lineage": plan.lineage, "serial": plan.serial},
    }


def as_json(plan: Plan) -> str:
    """Stable JSON: the same inputs give byte-identical output."""
    text = json.dumps(data(plan), indent=2, sort_keys=True, ensure_ascii=False)
    return escape.json_text(text) + "\n"


def github_notices(plan: Plan) -> str:
    """A notice annotation on the first line of every campaign file to create or replace."""
    return "".join(
        github_command("notice", a.source, 1, 1, common.notice(a)) for a in plan.creates if a.source
    )
