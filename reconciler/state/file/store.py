"""Side effects on the state file: lock, journal, atomic write, backup, replay.

Files beside the state file `S` (spec sections 3 and 5):

    S           the state; every write replaces it atomically and bumps its serial
    S.backup    the version before the last write
    S.lock      an OS lock (flock) held for a command's whole run; its text names the holder.
                The holder removes it as it lets go (still holding it), and every acquirer
                checks after its flock that the path still names the file it locked, so no
                two runs ever hold it at once and no run leaves it behind
    S.journal   JSON lines appended since the last write (the write-ahead rule; journal.py)

`S` must not be a symbolic link (spec 9.6): two spellings of one state would take two locks
and let two applies run at once, and a write would replace the link with a file. For the same
reason a state file with another hard link is refused by every command that locks, before and
after taking the lock (the backup, which is made as a hard link, is not counted). The lock is
taken on the resolved path of `S`; none of these files is ever followed through a link.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from reconciler.errors import LockHeld, StateError
from reconciler.hints import Hints
from reconciler.state.file.journal import (
    Base,
    Journal,
    Scan,
    fsync_dir,
    read_journal,
    read_regular,
    replay,
    why,
    write_all,
)
from reconciler.state.model import State, dumps, loads
from reconciler.state.store import LockInfo, LockState, iso_z, pid_alive, utc_now

LOCK_POLL_SECONDS = 0.05


class FileStore:
    """The state in one local file, with its lock, journal and backup beside it."""

    def __init__(
        self, path: Path, clock: Callable[[], datetime] = utc_now, hints: Hints | None = None
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._hints = hints or Hints()  # for the commands its messages suggest
        self._lock_fd: int | None = None
        self._journal: Journal | None = None
        # The last state parsed or written, with its bytes: a large state is read several
        # times in one apply (plan, journal base, fold), and parsed only when its bytes change.
        self._parsed: tuple[bytes, State] | None = None
        self.journal_path, self.backup_path = (
            self.path.with_name(self.path.name + suffix) for suffix in (".journal", ".backup")
        )
        _refuse_link(self.path)
        # Two spellings of one folder (a linked folder, `./`) must meet on one lock.
        self.lock_path = Path(os.path.realpath(self.path.parent)) / (self.path.name + ".lock")

    def read(self) -> State:
        """The state with the journal replayed in memory; a missing file is an empty state.

        Never writes. The journal is read before the state: a write that folds it in between
        leaves a newer serial, so the journal is then rightly ignored.
        """
        scan = read_journal(self.journal_path)
        _, state = self._load()
        if scan is not None and self._is_live(scan, state):
            return replay(state, scan, str(self.journal_path))
        return state

    @property
    def where(self) -> str:
        """How messages name this store."""
        return str(self.path)

    def pull(self) -> State:
        """The state to print as a state file; a missing file is an error."""
        state = self.read()
        if not state.exists:
            raise StateError(f"{self.path}: no state file; nothing to pull")
        return state

    @contextlib.contextmanager
    def lock(self, command: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        """Hold the exclusive lock on `<state>.lock`, waiting up to `timeout` seconds."""
        if self._lock_fd is not None:
            raise RuntimeError(f"{self.lock_path}: this store already holds the lock")
        self._refuse_hard_links()
        fd = self._acquire(timeout)
        try:
            self._refuse_hard_links()  # again: a link made while we waited for the lock
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        since = iso_z(self._clock())
        info = LockInfo(str(uuid.uuid4()), os.getpid(), socket.gethostname(), since, command)
        try:
            with contextlib.suppress(OSError):  # a full disk: the lock holds, unnamed
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
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                    # Unlinked while still held: a run waiting on this file finds, after its
                    # flock, that the path no longer names it, and locks a new one (_acquire).
                    if _same_file(fd, self.lock_path):
                        os.unlink(self.lock_path)
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def unlock(self, lock_id: str) -> None:
        """Remove a lock left behind (`reconcile state unlock LOCK_ID`); refuse a live one."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise StateError(f"{self.lock_path}: no lock file; nothing to unlock") from None
        except OSError as exc:
            raise StateError(f"{self.lock_path}: cannot open ({why(exc)})") from None
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
            if held:  # a flock is let go when its process ends: whoever holds it is running
                raise StateError(
                    f"{self.path}: state is locked by {info.describe()}, and that process is "
                    "still running (it holds the lock now, whatever host or process id its lock "
                    "file names); nothing was changed: wait for it to finish or stop it first"
                )
            if _same_file(fd, self.lock_path):
                os.unlink(self.lock_path)
        finally:
            os.close(fd)

    def lock_state(self) -> LockState:
        """Who holds the lock, read from the lock file's text: never taken, never created.

        A holder writes its name when it takes the lock and removes the file when it lets go;
        a run killed outright leaves its name, but the OS released its lock: a name whose
        process is gone (on this host) is a free lock.
        """
        try:
            fd = os.open(self.lock_path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return LockState(False)
        except OSError as exc:
            raise StateError(f"{self.lock_path}: cannot read the lock file ({why(exc)})") from None
        try:
            info = LockInfo.from_text(os.pread(fd, 65536, 0).decode("utf-8", "replace"))
        finally:
            os.close(fd)
        if info is None:
            return LockState(False)
        if info.host != socket.gethostname():
            return LockState(None, info)
        return LockState(pid_alive(info.pid), info)

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
        scan = read_journal(self.journal_path)
        if scan is not None:
            self._is_live(scan, state)  # refuses a foreign journal before it would be dropped
        written = state.next_serial()
        text = dumps(written).encode("utf-8")
        _refuse_link(self.path)  # a link made since: it is never replaced by a file
        try:
            if old is not None:
                _keep_backup(self.path, self.backup_path, old)
            _atomic_write(self.path, text)
        except OSError as exc:
            raise StateError(
                f"{self.path}: cannot write the state file ({why(exc)}); it was left as it was"
            ) from None
        self._parsed = (text, written)
        with contextlib.suppress(OSError):  # the new state is in place: a journal left over
            self._drop_journal((written.lineage, written.serial))  # is ignored (older serial)
            for stale in self.path.parent.glob(f".{glob.escape(self.path.name)}*.tmp"):
                stale.unlink(missing_ok=True)  # left by a write killed before its rename
        return written

    def journal(self) -> Journal:
        """Open the journal for appending (under the lock); continues an unfolded one."""
        self._require_lock("journal")
        if self._journal is not None and not self._journal._closed:
            raise RuntimeError(f"{self.journal_path}: the journal is already open")
        _, state = self._load()
        scan = read_journal(self.journal_path)
        keep = 0
        if scan is not None and self._is_live(scan, state):
            replay(state, scan, str(self.journal_path))  # never append after a corrupt line
            keep = scan.end
        self._journal = Journal(self.journal_path, (state.lineage, state.serial), keep)
        return self._journal

    def fold(self) -> State:
        """Fold an unfolded journal into a state write (taking the lock if not held)."""
        if self._lock_fd is None:
            with self.lock("reconcile state fold"):
                return self.fold()
        scan = read_journal(self.journal_path)
        _, state = self._load()
        if scan is None:
            return state
        if self._is_live(scan, state) and scan.lines:
            return self.write(replay(state, scan, str(self.journal_path)))
        self._drop_journal((state.lineage, state.serial))
        return state

    def _load(self) -> tuple[bytes | None, State]:
        raw = read_regular(self.path, "the state file")
        if raw is None:
            return None, State()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise StateError(
                f"{self.path}: not a valid state file (not UTF-8); it was left untouched: "
                f"restore it {self._restore_from()}"
            ) from None
        if self._parsed is not None and self._parsed[0] == raw:
            return raw, self._parsed[1]
        state = loads(text, str(self.path), self._restore_from())
        self._parsed = (raw, state)
        return raw, state

    def _is_live(self, scan: Scan, state: State) -> bool:
        """True when the journal continues `state`; False when empty or already folded."""
        if scan.base is None:
            return False
        lineage, serial = scan.base
        if lineage is None and state.exists and state.serial > serial:
            return False  # the first write folded it and died before removing it
        if lineage != state.lineage:
            problem = f"lineage {state.lineage}" if state.exists else "no state file"
            base = f"state lineage {lineage}" if lineage else "a state not written yet"
            raise StateError(
                f"{self.journal_path}: journal of {base} (serial {serial}), "
                f"but {self.path} has {problem}; nothing was changed: restore the state it "
                f"belongs to {self._restore_from()}, or move the journal away to discard it"
            )
        if state.serial < serial:
            raise StateError(
                f"{self.journal_path}: journal continues serial {serial}, but {self.path} has "
                f"the older serial {state.serial}; nothing was changed: restore the newer "
                "state, or move the journal away to discard it"
            )
        return state.serial == serial

    def _restore_from(self) -> str:
        """Where a broken state can come back from: git, and the backup when there is one."""
        if os.path.isfile(self.backup_path) and not os.path.islink(self.backup_path):
            return f"from git or from {self.backup_path}"
        return "from git (there is no backup file)"

    def _drop_journal(self, base: Base) -> None:
        if self._journal is not None and not self._journal._closed:
            self._journal._restart(base)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.journal_path)
        fsync_dir(self.path.parent)

    def _refuse_hard_links(self) -> None:
        """Refuse a state file with another name (a hard link): each name has its own lock, so
        two runs could change the one file at once. The store's own backup (and the temporary
        name it is made under) shares the file for a moment while a write replaces it, or for
        good after a crash at that moment: those names are not counted."""
        try:
            found = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return  # no state file yet (or unreadable: reading it says why)
        if found.st_nlink <= 1:
            return
        own = [
            self.backup_path,
            *self.path.parent.glob(f".{glob.escape(self.backup_path.name)}.*.tmp"),
        ]
        ours = sum(1 for name in own if _same_path(found, name))
        others = found.st_nlink - 1 - ours
        if others > 0:
            raise StateError(
                f"{self.path}: the state file has {others} other name(s) (hard links), so it "
                "may be locked under another name while this run changes it; nothing was read "
                f"or changed. Give it one name only: remove its other links (`find / -xdev "
                f"-samefile {self.path}` lists them)"
            )

    def _require_lock(self, what: str) -> None:
        if self._lock_fd is None:
            raise RuntimeError(f"FileStore.{what}() needs the lock: call it in `with lock(...)`")

    def _acquire(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
            except OSError as exc:
                raise StateError(
                    f"{self.lock_path}: cannot open the lock file ({why(exc)}); nothing was changed"
                ) from None
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
        return (
            f"{self.path}: state is locked by {who}; wait for it to finish, retry with "
            "--lock-timeout SECONDS, or stop that run (the lock goes when its process ends)"
        )


def _refuse_link(path: Path) -> None:
    if os.path.islink(path):
        raise StateError(
            f"{path}: the state file is a symbolic link (to {os.readlink(path)}); nothing was "
            "read or changed: give the file itself as --state (a link would be locked apart "
            "from the file it names)"
        )


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
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def _same_path(found: os.stat_result, path: Path) -> bool:
    try:
        return os.path.samestat(found, os.stat(path, follow_symlinks=False))
    except OSError:
        return False


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False
