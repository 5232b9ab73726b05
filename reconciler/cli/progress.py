"""apply's progress on a terminal: a status line under the outcome lines (spec 9.4).

    + 2030/a: created 6f1c...
    + 2030/b: created 9e2d...
    [2/25] created 2030/b; waiting 0.2 s for --rate 5/s

The status line is redrawn in place (carriage return, erase line) and cleared before any other
line is printed, so the outcome lines scroll above it as they would without it. Only on a
terminal: in a CI log each outcome is a line of its own, and a redrawn line would be noise.
"""

from __future__ import annotations

import shutil
import sys
import threading

import click

from reconciler.plan.render import escape


class StatusLine:
    """A `Progress` that draws `[done/total] outcome KEY` on stdout, a terminal."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.total = 0
        self.count = 0
        self.last = "starting"
        self.wait = 0.0
        self.drawn = False
        self.lock = threading.RLock()

    # --- Progress -----------------------------------------------------------------------

    def start(self, total: int) -> None:
        with self.lock:
            self.total, self.count = total, 0
            self._draw()

    def done(self, key: str, outcome: str) -> None:
        with self.lock:
            self.count += 1
            self.last, self.wait = f"{outcome} {key}", 0.0
            self._draw()

    def waiting(self, seconds: float) -> None:
        with self.lock:
            self.wait = seconds
            self._draw()

    # --- lines printed while it shows ---------------------------------------------------

    def echo(self, line: str) -> None:
        """An outcome line (stdout), printed above the status line."""
        self._above(line, err=False)

    def error(self, line: str) -> None:
        """A problem line (stderr), printed above the status line."""
        self._above(line, err=True)

    def clear(self) -> None:
        """Remove the status line (at the end of the run)."""
        with self.lock:
            if self.drawn:
                sys.stdout.write("\r\x1b[K")
                sys.stdout.flush()
                self.drawn = False

    def text(self) -> str:
        """`[12/25] created KEY; waiting 0.2 s for --rate 5/s` (escaped, not cut)."""
        status = f"[{self.count}/{self.total}] {self.last}"
        if self.wait >= 0.05:
            status += f"; waiting {self.wait:.1f} s for --rate {self.rate:g}/s"
        return escape.text(status)

    def _above(self, line: str, err: bool) -> None:
        with self.lock:
            self.clear()
            click.echo(line, err=err)
            if self.total:
                self._draw()

    def _draw(self) -> None:
        width = shutil.get_terminal_size((80, 24)).columns
        sys.stdout.write("\r\x1b[K" + self.text()[: max(width - 1, 10)])
        sys.stdout.flush()
        self.drawn = True
