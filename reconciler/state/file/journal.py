"""The write-ahead journal of the file backend: `<state>.journal`, JSON lines, append-only.

The journal starts with `{"op": "begin", "lineage": L, "serial": N}`, the state it continues,
then `pending` / `created` records (`key`, `entry`) and `removed` records (`key`). Replayed onto
a state with serial M (and lineage L, or any lineage when L is null):

    M == N   apply the records in order; a truncated last line (a crash mid-append) is skipped
    M >  N   a write already folded it and died before removing it: ignore it
    M <  N, or another lineage: StateError (a foreign journal is never applied)

A null L (the journal of a state never written) continues no existing state: onto one, it is
ignored when that state is newer (M > N) and refused otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import StateError
from reconciler.state.model import MAX_SERIAL, Entry, State, parse_json

Base = tuple[str | None, int]  # (lineage, serial) of the state a journal continues


class Journal:
    """Append-only write-ahead records; each one is on disk (fsync) when its call returns.

    Thread-safe. One `write` and at most one `fsync` per record: the cost does not depend on
    the size of the state. Records appended by several threads at once share one fsync (group
    commit): an fsync covers every byte written before it started. Obtain it from
    `FileStore.journal()` while holding the lock.
    """

    def __init__(self, path: Path, base: Base, keep: int = 0) -> None:
        self.path = path
        self._base = base
        self._mutex = threading.Lock()
        self._sync = threading.Lock()
        self._written = 0  # records written (under _mutex)
        self._synced = 0  # records known to be on disk (under _sync)
        self._fd: int | None = None
        self._closed = False
        self._failed: str | None = None
        try:
            self._open(keep)
        except OSError as exc:
            raise StateError(
                f"{path}: cannot write the journal ({why(exc)}); nothing was sent"
            ) from None

    @property
    def where(self) -> str:
        """The journal file, for messages."""
        return str(self.path)

    def pending(self, key: str, entry: Entry) -> None:
        """Record that a create is about to be sent (call before sending it)."""
        self._append({"op": "pending", "key": key, "entry": entry.to_json()})

    def created(self, key: str, entry: Entry) -> None:
        """Record a create the API confirmed."""
        self._append({"op": "created", "key": key, "entry": entry.to_json()})

    def removed(self, key: str) -> None:
        """Record that a key's entry is gone (its create was refused)."""
        self._append({"op": "removed", "key": key})

    def has_records(self) -> bool:
        """True when the journal holds records after its `begin` line (this run's or a crash's)."""
        try:
            with open(self.path, "rb") as handle:
                return sum(1 for _ in handle) > 1
        except FileNotFoundError:
            return False
        except OSError:
            return True  # cannot tell: folding what is there is the safe side

    def close(self) -> None:
        with self._sync, self._mutex:  # the same lock order as _append: _sync, then _mutex
            self._close_fd()
            self._closed = True

    def _open(self, keep: int) -> None:
        """Continue the first `keep` bytes of the file (dropping a torn tail), or start it."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW
        if keep:
            fd = os.open(self.path, flags)
        else:
            fd = os.open(self.path, flags | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            if keep:
                os.ftruncate(fd, keep)
                os.fsync(fd)
            else:
                lineage, serial = self._base
                write_all(fd, _line({"op": "begin", "lineage": lineage, "serial": serial}))
                os.fsync(fd)
                fsync_dir(self.path.parent)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _append(self, record: dict[str, Any]) -> None:
        line = _line(record)
        with self._mutex:
            if self._closed:
                raise RuntimeError(f"{self.path}: the journal is closed")
            if self._failed:
                raise StateError(f"{self.path}: the journal failed earlier ({self._failed})")
            try:
                if self._fd is None:
                    self._open(0)
                assert self._fd is not None
                write_all(self._fd, line)
                self._written += 1
                mine, fd = self._written, self._fd
            except OSError as exc:
                raise self._failure(record, exc) from None
        with self._sync:
            if self._synced >= mine:
                return  # an fsync that started after our write already covered it
            with self._mutex:
                covered = self._written
            try:
                os.fsync(fd)
            except OSError as exc:
                with self._mutex:
                    raise self._failure(record, exc) from None
            self._synced = covered

    def _failure(self, record: dict[str, Any], exc: OSError) -> StateError:
        # After a failed write or fsync nothing that follows can be trusted.
        self._failed = why(exc)
        return StateError(
            f"{self.path}: cannot record {record['op']} for {record['key']!r} ({self._failed})"
        )

    def _restart(self, base: Base) -> None:
        """After a write folded the records: drop the file; the next record starts a new one."""
        with self._sync, self._mutex:
            self._close_fd()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self._base = base

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True)
class Scan:
    """A journal's complete lines: its header's base, the records after it, their length."""

    base: Base | None
    lines: list[bytes]
    end: int


def read_journal(path: Path) -> Scan | None:
    """Read a journal's header; None when there is no journal file."""
    data = read_regular(path, "the journal")
    if data is None:
        return None
    end = data.rfind(b"\n") + 1  # what follows is a record torn by a crash: skipped
    lines = data[:end].split(b"\n")[:-1]
    if not lines:
        return Scan(None, [], 0)
    header = _record(lines[0], f"{path}:1")
    lineage, serial = header.get("lineage"), header.get("serial")
    if header["op"] != "begin" or not isinstance(lineage, str | None):
        raise _corrupt(f"{path}:1", "the first record must be a 'begin' with a lineage")
    if not isinstance(serial, int) or isinstance(serial, bool) or not 0 <= serial <= MAX_SERIAL:
        raise _corrupt(f"{path}:1", "the 'begin' record has no serial from 0 to 2**53")
    return Scan((lineage, serial), lines[1:], end)


def replay(state: State, scan: Scan, where: str) -> State:
    campaigns = dict(state.campaigns)
    for number, line in enumerate(scan.lines, start=2):
        at = f"{where}:{number}"
        record = _record(line, at)
        op, key = record["op"], record.get("key")
        if not isinstance(key, str):
            raise _corrupt(at, "no string 'key'")
        if op in ("pending", "created"):
            campaigns[key] = Entry.from_json(key, record.get("entry"), at)
        elif op == "removed":
            campaigns.pop(key, None)
        else:
            raise _corrupt(at, f"unknown op {op!r}")
    return state.with_entries(campaigns)


def _record(line: bytes, at: str) -> dict[str, Any]:
    try:
        record = parse_json(line)
    except json.JSONDecodeError:
        record = None
    except ValueError as exc:  # deep nesting, endless digits, lone surrogates
        raise _corrupt(at, str(exc)) from None
    if not isinstance(record, dict) or not isinstance(record.get("op"), str):
        raise _corrupt(at, "not a JSON object with an 'op'")
    return record


def _corrupt(at: str, reason: str) -> StateError:
    return StateError(
        f"{at}: corrupt journal record ({reason}); nothing was changed: fix or delete that "
        "line by hand, then check the remote tasks for the creates it recorded"
    )


def _line(record: dict[str, Any]) -> bytes:
    text = json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return (text + "\n").encode("utf-8")


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def why(exc: OSError) -> str:
    """An OSError's reason, for a message (`Too many levels of symbolic links` said plainly)."""
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link"
    return exc.strerror or type(exc).__name__


def read_regular(path: Path, what: str) -> bytes | None:
    """The bytes of a regular file, never through a link; None when there is no file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"{path}: cannot read {what} ({why(exc)})") from None
    with os.fdopen(fd, "rb") as handle:
        try:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise StateError(f"{path}: {what} is not a regular file; nothing was changed")
            return handle.read()
        except OSError as exc:
            raise StateError(f"{path}: cannot read {what} ({why(exc)})") from None
