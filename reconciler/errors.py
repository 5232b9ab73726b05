"""Problems (values) and the user-facing exception tree.

Bad input is reported as `Problem` values, collected across all files; only the CLI turns
them into an exit code. Everything else a user can cause or meet raises one of:

    ReconcileError            exit 1; message ends with the remedy
    ├── InputError            campaign files have problems (carries the Problem list)
    ├── StateError            state file missing parts, broken, newer, or refused
    │   └── LockHeld          another run holds the state lock (names the holder)
    ├── PlanError             saved plan is broken, foreign or stale; unsafe plan
    └── ApiError              the Twin24 API refused or could not be reached
        ├── AuthError         401: token missing, wrong or expired
        └── ListAnswerError   the task list came back in an unknown shape or incomplete

`cli/main.py` catches `ReconcileError` once, prints `error: MESSAGE` and exits with `exit_code`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

Level = Literal["error", "warning"]


class Location(NamedTuple):
    """A 1-based position in a file; `file` is relative to the working folder.

    A NamedTuple, not a dataclass: the loader makes one per key and value of every file.
    """

    file: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong (or worth a warning) in one file, at one place."""

    location: Location
    path: str
    message: str
    level: Level = field(default="error", compare=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.col,
            "path": self.path,
            "level": self.level,
            "message": self.message,
        }


class ReconcileError(Exception):
    """An error the user can act on; `str()` is the full message with the remedy."""

    exit_code: int = 1


class InputError(ReconcileError):
    """Campaign, defaults or moves files have problems; nothing was changed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        errors = sum(1 for p in self.problems if p.level == "error")
        super().__init__(f"{errors} problem(s) in the campaign files; nothing was changed")


class StateError(ReconcileError):
    """The state file (or backend) cannot be used as it is."""


class LockHeld(StateError):
    """Another run holds the state lock."""


class PlanError(ReconcileError):
    """A saved plan is unusable, or a plan is unsafe to carry out."""


class ApiError(ReconcileError):
    """The Twin24 API refused a request or could not be reached."""


class AuthError(ApiError):
    """HTTP 401 from the API, or no token at all."""


class ListAnswerError(ApiError):
    """The task list answered, but in a shape this version does not know, or its pages do not
    add up: never read as "no tasks" (no `--no-remote-check` skips it)."""
