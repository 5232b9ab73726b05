"""Side effects on the state file: lock, journal, atomic write, backup, replay.

Files beside the state file `S` (spec sections 3 and 5):

    S           the state; every write replaces it atomically and bumps its serial
    S.backup    the version before the last write
    S.lock      an OS lock (flock) held for a command's whole run; its text names the holder
    S.journal   JSON lines appended since the last write (the write-ahead rule)

The journal starts with `{"op": "begin", "lineage": L, "serial": N}`, the state it continues,
then `pending` / `created` records (`key`, `entry`) and `removed` records (`key`). Replayed onto
a state with serial M (and lineage L, or any lineage when L is null):

    M == N   apply the records in order; a truncated last line (a crash mid-append) is skipped
    M >  N   a write already folded it and died before removing it: ignore it
    M <  N, or another lineage: StateError (a foreign journal is never applied)
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from reconciler.errors import LockHeld, StateError
from reconciler.state import Entry, State, dumps, loads

LOCK_POLL_SECONDS = 0.05
Base = tuple[str | None, int]  # (lineage, serial) of the state a journal continues


class Records(Protocol):
    """The write-ahead journal of a run, whatever the backend (file lines, database rows)."""

    def pending(self, key: str, entry: Entry) -> None: ...
    def created(self, key: str, entry: Entry) -> None: ...
    def removed(self, key: str) -> None: ...
    def has_records(self) -> bool: ...
    def close(self) -> None: ...


class Store(Protocol):
    """What plan, apply and the state commands need of a state backend (file or PostgreSQL)."""

    def read(self) -> State: ...
    def lock(
        self, command: str, timeout: float = 0.0
    ) -> contextlib.AbstractContextManager[Any]: ...
    def unlock(self, lock_id: str) -> None: ...
    def write(self, state: State) -> State: ...
    def journal(self) -> Records: ...
    def fold(self) -> State: ...


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
        self._open(keep)

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

    def close(self) -> None:
        with self._sync, self._mutex:  # the same lock order as _append: _sync, then _mutex
            self._close_fd()
            self._closed = True

    def _open(self, keep: int) -> None:
        """Continue the first `keep` bytes of the file (dropping a torn tail), or start it."""
        if keep:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            os.ftruncate(fd, keep)
            os.fsync(fd)
        else:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o666)
            lineage, serial = self._base
            _write_all(fd, _line({"op": "begin", "lineage": lineage, "serial": serial}))
            os.fsync(fd)
            _fsync_dir(self.path.parent)
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
                _write_all(self._fd, line)
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
        self._failed = exc.strerror or str(exc)
        return StateError(
            f"{self.path}: cannot record {record['op']} for {record['key']!r} "
            f"({self._failed}); stop sending creates, then run `reconcile plan`"
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


class FileStore:
    """The state in one local file, with its lock, journal and backup beside it."""

    def __init__(self, path: Path, clock: Callable[[], datetime] = utc_now) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock_fd: int | None = None
        self._journal: Journal | None = None
        # The last state parsed or written, with its bytes: a large state is read several
        # times in one apply (plan, journal base, fold), and parsed only when its bytes change.
        self._parsed: tuple[bytes, State] | None = None
        self.lock_path, self.journal_path, self.backup_path = (
            self.path.with_name(self.path.name + suffix)
            for suffix in (".lock", ".journal", ".backup")
        )

    def read(self) -> State:
        """The state with the journal replayed in memory; a missing file is an empty state.

        Never writes. The journal is read before the state: a write that folds it in between
        leaves a newer serial, so the journal is then rightly ignored.
        """
        scan = _scan(self.journal_path)
        _, state = self._load()
        if scan is not None and self._is_live(scan, state):
            return _replay(state, scan, str(self.journal_path))
        return state

    @contextlib.contextmanager
    def lock(self, command: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        """Hold the exclusive lock on `<state>.lock`, waiting up to `timeout` seconds."""
        if self._lock_fd is not None:
            raise RuntimeError(f"{self.lock_path}: this store already holds the lock")
        fd = self._acquire(timeout)
        since = iso_z(self._clock())
        info = LockInfo(str(uuid.uuid4()), os.getpid(), socket.gethostname(), since, command)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(asdict(info), sort_keys=True).encode() + b"\n", 0)
            self._lock_fd = fd
            yield info
        finally:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
            self._lock_fd = None
            try:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def unlock(self, lock_id: str) -> None:
        """Remove a lock left behind (`reconcile state unlock LOCK_ID`); refuse a live one."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR)
        except FileNotFoundError:
            raise StateError(f"{self.lock_path}: no lock file; nothing to unlock") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = False
            except BlockingIOError:
                held = True
            info = LockInfo.from_text(os.pread(fd, 65536, 0).decode("utf-8", "replace"))
            if info is None or info.id != lock_id:
                found = f"it holds lock id {info.id}" if info else "it names no holder"
                raise StateError(
                    f"{self.lock_path}: lock id {lock_id} does not match ({found}); "
                    "nothing was changed: copy the id from the lock error message"
                )
            if held and info.host == socket.gethostname() and _pid_alive(info.pid):
                raise StateError(
                    f"{self.path}: state is locked by {info.describe()}, and that process is "
                    "still running; nothing was changed: wait for it to finish or stop it first"
                )
            if _same_file(fd, self.lock_path):
                os.unlink(self.lock_path)
        finally:
            os.close(fd)

    def write(self, state: State) -> State:
        """Write `state.next_serial()` atomically (under the lock) and return it.

        `state` must be the state on disk as read under this lock plus the changes, including
        the journal's records: the journal is removed once the new file is in place.
        """
        self._require_lock("write")
        old, current = self._load()
        if old is not None and (current.lineage, current.serial) != (state.lineage, state.serial):
            raise StateError(
                f"{self.path}: the state changed since it was read (serial {current.serial} on "
                f"disk, {state.serial} read); nothing was written: run the command again"
            )
        scan = _scan(self.journal_path)
        if scan is not None:
            self._is_live(scan, state)  # refuses a foreign journal before it would be dropped
        written = state.next_serial()
        text = dumps(written).encode("utf-8")
        if old is not None:
            _keep_backup(self.path, self.backup_path, old)
        _atomic_write(self.path, text)
        self._parsed = (text, written)
        self._drop_journal((written.lineage, written.serial))
        for stale in self.path.parent.glob(f".{glob.escape(self.path.name)}*.tmp"):
            stale.unlink(missing_ok=True)  # left by a write killed before its rename
        return written

    def journal(self) -> Journal:
        """Open the journal for appending (under the lock); continues an unfolded one."""
        self._require_lock("journal")
        if self._journal is not None and not self._journal._closed:
            raise RuntimeError(f"{self.journal_path}: the journal is already open")
        _, state = self._load()
        scan = _scan(self.journal_path)
        keep = 0
        if scan is not None and self._is_live(scan, state):
            _replay(state, scan, str(self.journal_path))  # never append after a corrupt line
            keep = scan.end
        self._journal = Journal(self.journal_path, (state.lineage, state.serial), keep)
        return self._journal

    def fold(self) -> State:
        """Fold an unfolded journal into a state write (taking the lock if not held)."""
        if self._lock_fd is None:
            with self.lock("reconcile state fold"):
                return self.fold()
        scan = _scan(self.journal_path)
        _, state = self._load()
        if scan is None:
            return state
        if self._is_live(scan, state) and scan.lines:
            return self.write(_replay(state, scan, str(self.journal_path)))
        self._drop_journal((state.lineage, state.serial))
        return state

    def _load(self) -> tuple[bytes | None, State]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None, State()
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read the state file ({exc.strerror})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise StateError(
                f"{self.path}: not a valid state file (not UTF-8); it was left untouched: "
                f"restore it from git or from {self.backup_path}"
            ) from None
        if self._parsed is not None and self._parsed[0] == raw:
            return raw, self._parsed[1]
        state = loads(text, str(self.path))
        self._parsed = (raw, state)
        return raw, state

    def _is_live(self, scan: _Scan, state: State) -> bool:
        """True when the journal continues `state`; False when empty or already folded."""
        if scan.base is None:
            return False
        lineage, serial = scan.base
        if lineage is not None and lineage != state.lineage:
            problem = f"lineage {state.lineage}" if state.exists else "no state file"
            raise StateError(
                f"{self.journal_path}: journal of state lineage {lineage} (serial {serial}), "
                f"but {self.path} has {problem}; nothing was changed: restore the state it "
                "belongs to from git or the backup, or move the journal away to discard it"
            )
        if state.serial < serial:
            raise StateError(
                f"{self.journal_path}: journal continues serial {serial}, but {self.path} has "
                f"the older serial {state.serial}; nothing was changed: restore the newer "
                "state, or move the journal away to discard it"
            )
        return state.serial == serial

    def _drop_journal(self, base: Base) -> None:
        if self._journal is not None and not self._journal._closed:
            self._journal._restart(base)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.journal_path)
        _fsync_dir(self.path.parent)

    def _require_lock(self, what: str) -> None:
        if self._lock_fd is None:
            raise RuntimeError(f"FileStore.{what}() needs the lock: call it in `with lock(...)`")

    def _acquire(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise StateError(f"{self.lock_path}: cannot open ({exc.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LockHeld(self._held_message()) from None
                time.sleep(min(LOCK_POLL_SECONDS, remaining))
                continue
            if _same_file(fd, self.lock_path):
                return fd
            os.close(fd)  # `state unlock` removed the file we locked: lock the new one

    def _held_message(self) -> str:
        try:
            info = LockInfo.from_text(self.lock_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            info = None
        who = info.describe() if info else "another process (not named in the lock file yet)"
        unlock = f", or if that run is dead run `reconcile state unlock {info.id}`" if info else ""
        return (
            f"{self.path}: state is locked by {who}; wait for it to finish, retry with "
            f"--lock-timeout SECONDS{unlock}"
        )


@dataclass(frozen=True)
class _Scan:
    """A journal's complete lines: its header's base, the records after it, their length."""

    base: Base | None
    lines: list[bytes]
    end: int


def _scan(path: Path) -> _Scan | None:
    """Read a journal's header; None when there is no journal file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"{path}: cannot read the journal ({exc.strerror})") from None
    end = data.rfind(b"\n") + 1  # what follows is a record torn by a crash: skipped
    lines = data[:end].split(b"\n")[:-1]
    if not lines:
        return _Scan(None, [], 0)
    header = _record(lines[0], f"{path}:1")
    lineage, serial = header.get("lineage"), header.get("serial")
    if header["op"] != "begin" or not isinstance(lineage, str | None):
        raise _corrupt(f"{path}:1", "the first record must be a 'begin' with a lineage")
    if not isinstance(serial, int) or serial < 0:
        raise _corrupt(f"{path}:1", "the 'begin' record has no non-negative serial")
    return _Scan((lineage, serial), lines[1:], end)


def _replay(state: State, scan: _Scan, where: str) -> State:
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
        record = json.loads(line)
    except ValueError:
        record = None
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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _keep_backup(path: Path, backup: Path, old: bytes) -> None:
    """Make `backup` the current state file: a hard link (no copy of a large state), which
    the rename of the new state then leaves holding the old version; a copy where links fail."""
    tmp = backup.with_name(f".{backup.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        os.link(path, tmp)
        os.replace(tmp, backup)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _atomic_write(backup, old)


def _atomic_write(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename over `path`, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
