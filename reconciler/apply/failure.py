"""What apply says when the state could not record everything: what was and was not done.

A journal record that fails (disk full, permission denied, a read-only folder, a lost
database) stops the creates: nothing is sent that is not recorded first. The state write at
the end can fail the same way; the journal is then the only record of the creates already
sent, and the message says so and asks to keep it (spec 9.6). Any other error once records
were written (a bug included) says the same: never an internal error without that guidance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.errors import ReconcileError, StateError

if TYPE_CHECKING:
    from reconciler.apply.apply import ApplyReport
    from reconciler.plan.plan import PlanOptions

MAX_KEYS = 10  # keys named in the message; the rest are counted


def message(
    report: ApplyReport,
    journal_error: StateError | None,
    fold_error: StateError | None,
    journal: str,
    options: PlanOptions,
    error: Exception | None = None,
) -> str:
    """One message: the cause, what was done and where it is recorded, what was not sent.

    `error` is any other error that stopped apply (a refusal, or a bug: `unexpected`).
    """
    again = options.command("apply")
    parts = [f"{journal_error}; nothing more was sent"] if journal_error else []
    if error is not None:
        cause = str(error) if isinstance(error, ReconcileError) else unexpected(error)
        parts.append(f"apply stopped: {cause}; nothing more was sent")
    done = "; ".join(
        f"{label} {keys(found)}"
        for label, found in (
            ("created", report.created),
            ("outcome unknown (kept pending)", [key for key, _ in report.in_doubt]),
            ("moved", report.moved),
        )
        if found
    )
    if fold_error is None:
        if done:
            parts.append(f"The state file holds what was done: {done}")
    else:
        parts.append(f"{fold_error}")
        parts.append(
            f"{'Done: ' + done if done else 'Nothing was created'}. This run's records are in "
            f"{journal}: keep that file (never delete it); once the cause is fixed, "
            f"`{again}` replays it and looks for every pending create on the platform "
            "before it sends anything"
        )
    not_sent = [key for key, _ in report.skipped]
    if not_sent:
        parts.append(f"Not sent: {keys(not_sent)}; run `{again}` again for them")
    return ". ".join(parts) + "."


def unexpected(error: Exception) -> str:
    """An error that is a bug, as a message may show it: its kind, never its text (which could
    hold anything), and the request to report it."""
    return f"an unexpected {type(error).__name__}; please report it"


def keys(found: list[str]) -> str:
    """`a, b, c` (at most MAX_KEYS named, the rest counted)."""
    named = ", ".join(found[:MAX_KEYS])
    return named + (f" and {len(found) - MAX_KEYS} more" if len(found) > MAX_KEYS else "")
