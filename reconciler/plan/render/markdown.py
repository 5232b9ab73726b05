"""The plan as Markdown for a pull-request comment, always under 60,000 UTF-16 code units.

Values reach the comment in two places: inside a `diff` code block, as lines escaped for a
terminal (`escape.text`: a value never has a line of its own, so it cannot close the fence or
the `<details>`), and inside the `<summary>` HTML (`escape.markdown`). Every other character
of the comment is the tool's own.
"""

from __future__ import annotations

from reconciler.plan.plan import Action, Plan, PlanOptions
from reconciler.plan.render import common, escape
from reconciler.plan.render.plan_text import block

MAX_CHARS = 60_000  # in UTF-16 code units, as GitHub and the action's JavaScript count
_RESERVE = 2_000  # room for the closing "not shown" note
MARKER = "<!-- reconcile-plan -->"


def units(text: str) -> int:
    """Length of `text` in UTF-16 code units (a character outside the BMP, an emoji, is 2)."""
    return len(text.encode("utf-16-le")) // 2


def _diff_lines(action: Action) -> list[str]:
    """A field diff as `- old` / `+ new` lines, so GitHub colours it like any diff."""
    out = []
    for change in action.diff:
        if change.kind != "added":
            old = common.scalar(common.shown(change.path, change.old))
            out.append(f"- {change.path}: {old}{common.annotate(change.path, change.old)}")
        if change.kind != "removed":
            new = common.scalar(common.shown(change.path, change.new))
            out.append(f"+ {change.path}: {new}{common.annotate(change.path, change.new)}")
    return [escape.text(line) for line in out]


def _section(action: Action, options: PlanOptions) -> str:
    lines = block(action, options)
    if action.diff:
        notes = [line for line in lines[1:] if not line.startswith("    ")]
        body = "\n".join([lines[0], *_diff_lines(action), *("! " + n.strip() for n in notes)])
    else:
        # Payload lines keep their nesting below the diff marker; notes are flush left.
        body = "\n".join(
            line
            if i == 0
            else ("+ " if action.creates else "! ")
            + (line[4:] if line.startswith("    ") else line.strip())
            for i, line in enumerate(lines)
        )
    name, key = action.name.replace("_", " "), escape.markdown(action.key)
    summary = f"<code>{action.symbol}</code> {name} <b>{key}</b>"
    return f"<details><summary>{summary}</summary>\n\n```diff\n{body}\n```\n</details>\n"


def markdown(plan: Plan) -> str:
    """Summary first, then the banner, then one collapsible section per campaign."""
    head = [MARKER, f"**{common.summary_line(plan)}**", ""]
    banner = common.banner(plan)
    if banner:
        head += ["```", *banner, "```", ""]
    out = "\n".join(head) + "\n"
    size = units(out)
    shown = 0
    changed = [a for a in plan.actions if a.name != "unchanged"]
    for action in changed:
        section = _section(action, plan.options)
        section_size = units(section)
        if size + section_size > MAX_CHARS - _RESERVE:
            break
        out += section
        size += section_size
        shown += 1
    left = changed[shown:]
    if left:
        counts: dict[str, int] = {}
        for action in left:
            counts[action.name] = counts.get(action.name, 0) + 1
        what = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in sorted(counts.items()))
        out += (
            f"\n…and {len(left)} more campaign(s) not shown ({what}) to keep this comment "
            f"readable; run <code>{escape.markdown(plan.options.command('plan'))}</code> for "
            "the full plan.\n"
        )
    if not changed:
        out += "No changes. The platform matches the campaign files.\n"
    return out
