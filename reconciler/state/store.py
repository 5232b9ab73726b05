"""What plan, apply and the state commands see of a state backend: the `Store` and `Records`
protocols, the lock holder's record, and the clock helpers both backends share.

Backends: `state.file` (one JSON file with a journal beside it) and `state.postgres` (one
workspace in a database). Nothing outside `state/` and the CLI's `build_store` names a backend.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from reconciler.state.model import Entry, State


class Records(Protocol):
    """The write-ahead journal of a run, whatever the backend (file lines, database rows)."""

    @property
    def where(self) -> str:
        """How messages name it: the journal file, or the database workspace."""
        ...

    def pending(self, key: str, entry: Entry) -> None: ...
    def created(self, key: str, entry: Entry) -> None: ...
    def removed(self, key: str) -> None: ...
    def has_records(self) -> bool: ...
    def close(self) -> None: ...


class Store(Protocol):
    """What plan, apply and the state commands need of a state backend (file or PostgreSQL)."""

    @property
    def where(self) -> str:
        """How messages name it: a file path, or a database URL and workspace."""
        ...

    def read(self) -> State: ...
    def pull(self) -> State: ...
    def lock(
        self, command: str, timeout: float = 0.0
    ) -> contextlib.AbstractContextManager[Any]: ...
    def unlock(self, lock_id: str) -> None: ...
    def write(self, state: State) -> State: ...
    def journal(self) -> Records: ...
    def fold(self) -> State: ...
    def lock_state(self) -> LockState: ...


@runtime_checkable
class DatabaseStore(Store, Protocol):
    """A backend with a schema of its own, which a file can be pushed into."""

    def init(self) -> bool: ...
    def push(self, state: State) -> State: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_z(moment: datetime) -> str:
    """ISO-8601 UTC with a `Z`, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LockInfo:
    """The holder of the state lock, as written into the lock file."""

    id: str
    pid: int
    host: str
    since: str
    command: str

    @classmethod
    def from_text(cls, text: str) -> LockInfo | None:
        """The holder named by a lock file's text; None when it is empty or unreadable."""
        try:
            d = json.loads(text)
            return cls(str(d["id"]), int(d["pid"]), str(d["host"]), str(d["since"]), d["command"])
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return (
            f"pid {self.pid} on host {self.host} since {self.since} ({self.command}), "
            f"lock id {self.id}"
        )


@dataclass(frozen=True)
class LockState:
    """Who holds the state lock, as seen without taking it (`reconcile doctor`).

    `held`: True or False, or None when it cannot be told (a holder named on another host of
    a shared folder); `holder`: the run the lock file or the locks table names.
    """

    held: bool | None
    holder: LockInfo | None = None


def pid_alive(pid: int) -> bool:
    """True when a process with this pid runs on this host (or cannot be signalled)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
