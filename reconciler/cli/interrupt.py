"""A signal before apply's own handlers: the exit code of a run stopped by a signal (9.6).

From the console script's first line to apply's handlers (imports, validation, the plan, the
state commands), SIGINT exits 130 and SIGTERM and SIGHUP exit 143, with one line on stderr and
no traceback, as a signal during apply's run does. The handlers raise `Interrupted`, a
`SystemExit`: wherever it lands it ends the process with that code, `finally` blocks and
context managers (the state lock) still run, and no `except Exception` swallows it. Once the
exit code is decided, `hold()` blocks the three signals until the process is gone.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 143}


class Interrupted(SystemExit):
    """A stop signal arrived; `code` is the exit code, `name` the signal."""

    def __init__(self, name: str) -> None:
        super().__init__(EXIT_CODES[name])
        self.name = name


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def install() -> dict[int, Any]:
    """Make SIGINT, SIGTERM and SIGHUP raise `Interrupted` (unless ignored); returns the
    handlers found (none outside the main thread, where Python cannot set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for name in EXIT_CODES:
        number = getattr(signal, name, None)
        # An ignored signal stays ignored (nohup, a background job of a script).
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
            previous[number] = signal.signal(number, _interrupted)
    return previous


def hold() -> None:
    """Block SIGINT, SIGTERM and SIGHUP for the rest of the process, once its exit code is
    decided: while Python shuts down it puts the default handlers back, and a signal then
    would end the process with -15 or -1 instead of the exit code it already has."""
    if threading.current_thread() is not threading.main_thread():
        return
    numbers = {getattr(signal, name) for name in EXIT_CODES if hasattr(signal, name)}
    signal.pthread_sigmask(signal.SIG_BLOCK, numbers)


@contextlib.contextmanager
def exit_on_signals() -> Iterator[None]:
    """`install()` for the block; the handlers found are put back afterwards (tests call the
    CLI in-process)."""
    previous = install()
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
