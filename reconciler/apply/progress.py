"""How far an apply is, for a terminal (spec 9.4): `[12/25] created KEY`, with the rate wait.

`Applier` reports to a `Progress`: how many creates it will send, each outcome as it is
recorded, and each wait for the `--rate` limit. The CLI draws a status line from it on a
terminal; elsewhere nothing is drawn (every outcome is a line of its own anyway).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """What apply tells about its creates as they go; called from several threads."""

    def start(self, total: int) -> None:
        """`total` creates are about to be sent (after the guards)."""

    def done(self, key: str, outcome: str) -> None:
        """One create ended: `created`, `refused`, `in doubt` or `not started`."""

    def waiting(self, seconds: float) -> None:
        """A create waits `seconds` for its turn under `--rate`."""


class Silent:
    """No progress shown (not a terminal, or a caller that does not want it)."""

    def start(self, total: int) -> None:
        pass

    def done(self, key: str, outcome: str) -> None:
        pass

    def waiting(self, seconds: float) -> None:
        pass
