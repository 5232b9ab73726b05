"""FileStore and Journal on real files: atomic writes, backup, replay, lock across processes."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.config.campaign import fingerprint
from reconciler.errors import LockHeld, StateError
from reconciler.state.file.store import FileStore
from reconciler.state.model import Entry, State, dumps
from reconciler.state.store import LockInfo

REPO = Path(__file__).resolve().parents[1]
HOLDER = """
import sys, time
from pathlib import Path
from reconciler.state.file.store import FileStore
with FileStore(Path(sys.argv[1])).lock("reconcile apply"):
    time.sleep(float(sys.argv[2]))
"""
WRITER = """
import sys
from pathlib import Path
from reconciler.state.model import Entry, State
from reconciler.state.file.store import FileStore
store = FileStore(Path(sys.argv[1]))
payload = {"name": "n", "n": "x" * 200}
entry = Entry("created", "id", "sha256:x", payload, "k.yaml", "2026-01-01T00:00:00Z")
with store.lock("reconcile apply"):
    state = store.read()
    while True:
        state = store.write(state.with_entries({f"k{i}": entry for i in range(2000)}))
"""


def entry(n: int, status: str = "pending") -> Entry:
    payload = {"name": f"task {n}", "phones": ["+70000000000"], "n": n}
    return Entry(
        status="created" if status == "created" else "pending",
        identity=f"id-{n}" if status == "created" else None,
        fingerprint=fingerprint(payload),
        payload=payload,
        source=f"campaigns/k{n}.yaml",
        created_at="2026-11-27T10:00:00Z",
    )


def seeded(path: Path, count: int = 1) -> State:
    """Write a state with `count` created entries k0.. and return it as written."""
    store = FileStore(path)
    with store.lock("test"):
        return store.write(
            State(api_url="http://x").with_entries(
                {f"k{i}": entry(i, "created") for i in range(count)}
            )
        )


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file's bytes, inode and mtime, except the lock file's."""
    return {
        p.name: (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
        if not p.name.endswith(".lock")
    }


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "reconcile.state.json"


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def spawn(
    processes: list[subprocess.Popen[bytes]], code: str, *args: str
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=env)
    processes.append(proc)
    return proc


def start_holder(
    processes: list[subprocess.Popen[bytes]], path: Path, seconds: float
) -> tuple[subprocess.Popen[bytes], LockInfo]:
    """A second process holding the lock; returns once its holder info is in the lock file."""
    proc = spawn(processes, HOLDER, str(path), str(seconds))
    lock_file = path.with_name(path.name + ".lock")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the holder process died"
        text = lock_file.read_text() if lock_file.exists() else ""
        info = LockInfo.from_text(text)
        if info is not None and info.pid == proc.pid:
            return proc, info
        time.sleep(0.01)
    raise AssertionError("the holder never took the lock")


# --- reading and writing -------------------------------------------------------------------


def test_missing_file_is_an_empty_state(state_path: Path) -> None:
    state = FileStore(state_path).read()
    assert state == State()
    assert state.lineage is None and not state.exists
    assert list(state_path.parent.iterdir()) == []


def test_write_bumps_serial_keeps_lineage_and_pretty_prints(state_path: Path) -> None:
    store = FileStore(state_path)
    with store.lock("test"):
        first = store.write(State(api_url="http://x").with_entries({"b": entry(2), "a": entry(1)}))
        assert first.serial == 1 and first.lineage
        assert store.read() == first
        second = store.write(first)
    assert (second.serial, second.lineage) == (2, first.lineage)
    text = state_path.read_text(encoding="utf-8")
    assert text == dumps(second)
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert list(json.loads(text)["campaigns"]) == ["a", "b"]


def test_backup_holds_the_previous_version(state_path: Path) -> None:
    store = FileStore(state_path)
    backup = state_path.with_name(state_path.name + ".backup")
    with store.lock("test"):
        first = store.write(State())
        assert not backup.exists()
        first_bytes = state_path.read_bytes()
        store.write(first.with_entries({"a": entry(1)}))
    assert backup.read_bytes() == first_bytes
    assert FileStore(backup).read() == first
    # the backup is the old file itself (a hard link), never the same file as the state
    assert backup.stat().st_ino != state_path.stat().st_ino
    with store.lock("test"):
        second_bytes = state_path.read_bytes()
        store.write(store.read().with_entries({}))
    assert backup.read_bytes() == second_bytes
    assert sorted(p.name for p in state_path.parent.iterdir()) == [
        "reconcile.state.json",
        "reconcile.state.json.backup",
    ]  # the lock file goes with the lock


def test_write_needs_the_lock(state_path: Path) -> None:
    with pytest.raises(RuntimeError, match="needs the lock"):
        FileStore(state_path).write(State())
    with pytest.raises(RuntimeError, match="needs the lock"):
        FileStore(state_path).journal()


def test_write_refuses_a_state_read_before_another_write(state_path: Path) -> None:
    stale = seeded(state_path)
    seeded_again = FileStore(state_path)
    with seeded_again.lock("test"):
        seeded_again.write(seeded_again.read())
    before = state_path.read_bytes()
    store = FileStore(state_path)
    with store.lock("test"), pytest.raises(StateError, match="changed since it was read"):
        store.write(stale)
    assert state_path.read_bytes() == before


VALID = dumps(State(lineage="0f3c", serial=3, api_url="http://x", campaigns={"a": entry(1)}))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{not json", "not a valid state file", id="broken"),
        pytest.param("", "not a valid state file", id="empty"),
        pytest.param(VALID[: len(VALID) // 2], "not a valid state file", id="truncated"),
        pytest.param(VALID.replace('"version": 1', '"version": 2'), "newer reconcile", id="newer"),
        pytest.param(VALID.replace('"serial": 3', '"serial": -1'), "serial", id="bad-serial"),
    ],
)
def test_bad_state_file_is_refused_and_left_untouched(
    state_path: Path, text: str, message: str
) -> None:
    state_path.write_text(text, encoding="utf-8")
    before = snapshot(state_path.parent)
    store = FileStore(state_path)
    with pytest.raises(StateError, match=message) as raised:
        store.read()
    assert str(state_path) in str(raised.value)
    with store.lock("test"), pytest.raises(StateError, match=message):
        store.write(State())
    assert snapshot(state_path.parent) == before


def test_killed_writer_never_leaves_a_half_written_state(
    state_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    seeded(state_path)
    proc = spawn(processes, WRITER, str(state_path))
    deadline = time.monotonic() + 10
    while FileStore(state_path).read().serial < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = FileStore(state_path).read()
    assert state.serial >= 4
    assert FileStore(state_path.with_name(state_path.name + ".backup")).read().serial in (
        state.serial - 1,
        state.serial,  # killed between the backup and the state rename
    )
    store = FileStore(state_path)
    with store.lock("test"):
        store.write(state)
    assert sorted(p.name for p in state_path.parent.iterdir() if p.name.endswith(".tmp")) == []


# --- journal ---------------------------------------------------------------------------------


def journal_file(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


def test_journal_is_replayed_in_memory_by_read(state_path: Path) -> None:
    base = seeded(state_path)
    store = FileStore(state_path)
    with store.lock("reconcile apply"):
        journal = store.journal()
        journal.pending("b", entry(2))
        journal.created("b", entry(2, "created"))
        journal.pending("c", entry(3))
        journal.removed("c")
        journal.pending("d", entry(4))
        before = snapshot(state_path.parent)
        state = FileStore(state_path).read()  # another process's view, without the lock
        assert snapshot(state_path.parent) == before
    assert (state.lineage, state.serial) == (base.lineage, base.serial)
    assert state.campaigns == {"k0": entry(0, "created"), "b": entry(2, "created"), "d": entry(4)}
    lines = journal_file(state_path).read_text().splitlines()
    assert json.loads(lines[0]) == {"op": "begin", "lineage": base.lineage, "serial": 1}
    assert json.loads(lines[1]) == {"op": "pending", "key": "b", "entry": entry(2).to_json()}
    assert json.loads(lines[4]) == {"op": "removed", "key": "c"}


def test_truncated_last_journal_line_is_ignored_and_cut_before_appending(
    state_path: Path,
) -> None:
    seeded(state_path)
    store = FileStore(state_path)
    with store.lock("test"):
        store.journal().pending("b", entry(2))
    with journal_file(state_path).open("ab") as torn:
        torn.write(b'{"entry":{"created_at":"2026-11-27T10:00:00Z","fingerp')
    assert set(store.read().campaigns) == {"k0", "b"}
    with store.lock("test"):
        store.journal().created("c", entry(3, "created"))
    assert set(store.read().campaigns) == {"k0", "b", "c"}
    lines = journal_file(state_path).read_bytes().split(b"\n")
    assert lines[-1] == b"" and [json.loads(line)["op"] for line in lines[:-1]] == [
        "begin",
        "pending",
        "created",
    ]


def test_corrupt_journal_line_names_file_and_line(state_path: Path) -> None:
    seeded(state_path)
    store = FileStore(state_path)
    with store.lock("test"):
        store.journal().pending("b", entry(2))
    with journal_file(state_path).open("ab") as journal:
        journal.write(b"not json\n" + b'{"op":"removed","key":"b"}\n')
    with pytest.raises(StateError, match=rf"{journal_file(state_path)}:3: corrupt journal"):
        store.read()
    with store.lock("test"), pytest.raises(StateError, match=":3: corrupt"):
        store.journal()  # never appends after a corrupt line


def test_entry_in_a_journal_record_is_validated(state_path: Path) -> None:
    seeded(state_path)
    store = FileStore(state_path)
    with store.lock("test"):
        store.journal().removed("k0")
    with journal_file(state_path).open("ab") as journal:
        journal.write(b'{"op":"pending","key":"x","entry":{"status":"gone"}}\n')
    with pytest.raises(StateError, match=r"journal:3: entry 'x' has no 'fingerprint'"):
        store.read()


@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param({"lineage": "another", "serial": 1}, "lineage another", id="foreign"),
        pytest.param({"lineage": "SAME", "serial": 5}, "older serial 1", id="newer-base"),
        # a journal of no state, onto a state of its serial: never applied (it was applied once)
        pytest.param({"lineage": None, "serial": 1}, "a state not written yet", id="null"),
    ],
)
def test_foreign_journal_is_refused(
    state_path: Path, header: dict[str, object], message: str
) -> None:
    base = seeded(state_path)
    if header["lineage"] == "SAME":
        header = {**header, "lineage": base.lineage}
    record = {"op": "pending", "key": "b", "entry": entry(2).to_json()}
    text = json.dumps({"op": "begin", **header}) + "\n" + json.dumps(record) + "\n"
    journal_file(state_path).write_text(text)
    before = snapshot(state_path.parent)
    store = FileStore(state_path)
    with pytest.raises(StateError, match=message) as raised:
        store.read()
    assert str(journal_file(state_path)) in str(raised.value)
    with store.lock("test"):
        for refused in (store.journal, store.fold, lambda: store.write(State())):
            with pytest.raises(StateError):
                refused()
    assert snapshot(state_path.parent) == before


def test_journal_without_its_state_file_is_refused(state_path: Path) -> None:
    seeded(state_path)
    store = FileStore(state_path)
    with store.lock("test"):
        store.journal().pending("b", entry(2))
    state_path.unlink()
    with pytest.raises(StateError, match="has no state file"):
        store.read()


def test_already_folded_journal_is_ignored_then_removed(state_path: Path) -> None:
    seeded(state_path)
    store = FileStore(state_path)
    with store.lock("test"):
        journal = store.journal()
        journal.pending("b", entry(2))
        journal.removed("k0")
        folded_journal = journal_file(state_path).read_bytes()
        # The run then forgets b again and writes; it dies before the journal is removed.
        written = store.write(store.read().with_entries({}))
    assert not journal_file(state_path).exists()
    journal_file(state_path).write_bytes(folded_journal)
    assert store.read() == written  # not applied twice, no error
    with store.lock("test"):
        store.journal().pending("c", entry(3))  # starts a fresh journal on serial 2
        assert set(store.read().campaigns) == {"c"}
        assert store.write(store.read()).serial == 3
    assert not journal_file(state_path).exists()


def test_fold_writes_the_replayed_state_and_removes_the_journal(state_path: Path) -> None:
    seeded(state_path)
    store = FileStore(state_path)
    with store.lock("test"):
        store.journal().created("b", entry(2, "created"))
    folded = store.fold()
    assert (folded.serial, set(folded.campaigns)) == (2, {"k0", "b"})
    assert not journal_file(state_path).exists()
    assert store.read() == folded
    with store.lock("test"):
        store.journal()  # a header without records: nothing to fold
        assert store.fold().serial == 2
    assert not journal_file(state_path).exists()
    assert store.fold() == folded


def test_journal_keeps_working_after_a_write_in_the_same_run(state_path: Path) -> None:
    store = FileStore(state_path)
    with store.lock("test"):
        journal = store.journal()
        journal.pending("a", entry(1))
        written = store.write(store.read())  # first write: the journal header had no lineage
        journal.created("a", entry(1, "created"))
    assert json.loads(journal_file(state_path).read_text().splitlines()[0])["lineage"] == (
        written.lineage
    )
    assert store.read().campaigns == {"a": entry(1, "created")}


def test_journal_is_thread_safe(state_path: Path) -> None:
    seeded(state_path)
    store = FileStore(state_path)
    with store.lock("reconcile apply"):
        journal = store.journal()

        def send(worker: int) -> None:
            for n in range(50):
                journal.pending(f"w{worker}-{n}", entry(n))

        threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(store.read().campaigns) == 1 + 8 * 50
    assert len(journal_file(state_path).read_bytes().splitlines()) == 1 + 8 * 50


def test_a_journal_record_does_not_touch_the_state_file(state_path: Path) -> None:
    seeded(state_path, count=2000)
    store = FileStore(state_path)
    before = state_path.stat()
    with store.lock("reconcile apply"):
        journal = store.journal()
        size = journal_file(state_path).stat().st_size
        for n in range(100):
            journal.pending(f"new{n:03}", entry(7))
        grown = journal_file(state_path).stat().st_size - size
        after = state_path.stat()
        state_path.write_text("{garbage")  # a record never reads or parses the state
        journal.pending("new100", entry(7))
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )
    # The same records beside an empty state grow the journal by exactly as many bytes.
    small = FileStore(state_path.with_name("small.json"))
    with small.lock("test"):
        journal = small.journal()
        size = small.journal_path.stat().st_size
        for n in range(100):
            journal.pending(f"new{n:03}", entry(7))
        assert small.journal_path.stat().st_size - size == grown


# --- lock --------------------------------------------------------------------------------------


def test_lock_file_names_the_holder_and_is_removed_on_release(state_path: Path) -> None:
    store = FileStore(state_path, clock=lambda: datetime(2026, 11, 27, 10, 0, tzinfo=UTC))
    with store.lock("reconcile apply") as info:
        on_disk = json.loads(store.lock_path.read_text())
        assert on_disk == {
            "id": info.id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": "2026-11-27T10:00:00Z",
            "command": "reconcile apply",
        }
        assert not state_path.exists()  # the lock is never on the state file
    assert not store.lock_path.exists()  # removed by its holder, still holding it
    with store.lock("again"):
        assert store.lock_path.exists()
    assert list(state_path.parent.iterdir()) == []  # nothing left behind


def test_the_lock_file_is_removed_after_an_error_too(state_path: Path) -> None:
    store = FileStore(state_path)
    with pytest.raises(StateError), store.lock("reconcile state rm"):
        raise StateError("no state entry 'a'")
    assert list(state_path.parent.iterdir()) == []


LOCK_ROUNDS = 25  # per worker: a few seconds at most on a loaded machine


def _hold_in_turn(state_path: Path, holders: list[int], overlaps: list[int]) -> None:
    for _ in range(LOCK_ROUNDS):
        with FileStore(state_path).lock("stress", timeout=30):
            holders.append(1)
            if len(holders) > 1:
                overlaps.append(len(holders))
            time.sleep(0.0005)
            holders.pop()


def test_removing_the_lock_file_never_lets_two_runs_hold_it(state_path: Path) -> None:
    """The holder unlinks the lock file while it still holds it; a run that flocked the old
    file (opened before the unlink) must notice and lock the new one. Threads with their own
    open file descriptions contend exactly as processes do (flock is per open file)."""
    holders: list[int] = []
    overlaps: list[int] = []
    threads = [
        threading.Thread(target=_hold_in_turn, args=(state_path, holders, overlaps))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    assert not FileStore(state_path).lock_path.exists()


def test_a_run_that_locked_the_removed_lock_file_locks_the_new_one(
    state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race removal opens, made to happen: B opens the lock file, A lets go (removing it),
    C locks a new lock file, and only then does B's flock on the old file succeed. B must see
    that the path now names another file and wait for C, never run beside it."""
    real_flock = fcntl.flock
    opened, go = threading.Event(), threading.Event()
    paused: list[bool] = []

    def flock(fd: int, operation: int) -> None:
        if threading.current_thread().name == "B" and not paused:
            paused.append(True)
            opened.set()  # B holds an fd of the old lock file and has not locked it yet
            go.wait(10)
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    c_holds = threading.Event()
    seen: list[bool] = []

    def run_b() -> None:
        with FileStore(state_path).lock("B", timeout=10):
            seen.append(c_holds.is_set())

    a_store = FileStore(state_path)
    with a_store.lock("A"):
        b = threading.Thread(target=run_b, name="B")
        b.start()
        assert opened.wait(10)
    assert not a_store.lock_path.exists()
    c_store = FileStore(state_path)
    with c_store.lock("C"):
        c_holds.set()
        go.set()
        time.sleep(0.3)  # B's flock on the old file succeeds now; it must not proceed
        c_holds.clear()
    b.join(10)
    assert seen == [False]


STRESS_WORKER = """
import sys, time
from pathlib import Path
from reconciler.state.file.store import FileStore
marker = Path(sys.argv[2])
for _ in range(int(sys.argv[3])):
    with FileStore(Path(sys.argv[1])).lock("stress", timeout=30):
        try:
            marker.open("x").close()  # fails if another process holds the lock now
        except FileExistsError:
            sys.exit(3)
        time.sleep(0.001)
        marker.unlink()
"""


def test_removing_the_lock_file_never_lets_two_processes_hold_it(
    state_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    marker = state_path.with_name("holder")
    workers = [
        spawn(processes, STRESS_WORKER, str(state_path), str(marker), str(LOCK_ROUNDS))
        for _ in range(3)
    ]
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0, 0]  # 3: two held it
    assert not FileStore(state_path).lock_path.exists() and not marker.exists()


def test_second_lock_in_the_same_process_is_refused(state_path: Path) -> None:
    first, second = FileStore(state_path), FileStore(state_path)
    with first.lock("reconcile apply"):
        held = pytest.raises(LockHeld, match=f"pid {os.getpid()} on host")
        with held as raised, second.lock("reconcile apply"):
            pass
        # A live holder: unlock would be refused, so it is not suggested (stop the run instead).
        assert "state unlock" not in str(raised.value)
        assert str(raised.value).endswith("or stop that run (the lock goes when its process ends)")
        with pytest.raises(RuntimeError, match="already holds"), first.lock("again"):
            pass


def test_lock_contention_between_two_processes(
    state_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    store = FileStore(state_path)
    proc, info = start_holder(processes, state_path, seconds=1.0)
    held_at = time.monotonic()
    with pytest.raises(LockHeld) as raised, store.lock("reconcile apply"):
        pass
    message = str(raised.value)
    assert f"state is locked by pid {proc.pid} on host {socket.gethostname()} since " in message
    assert f"(reconcile apply), lock id {info.id}; wait for it to finish" in message
    assert "--lock-timeout SECONDS" in message
    started = time.monotonic()
    with pytest.raises(LockHeld), store.lock("reconcile apply", timeout=0.2):
        pass
    assert time.monotonic() - started >= 0.2
    with store.lock("reconcile apply", timeout=10) as mine:
        assert time.monotonic() - held_at >= 0.9  # only once the holder let go
        assert LockInfo.from_text(store.lock_path.read_text()) == mine


def test_killed_holder_does_not_block(
    state_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    proc, info = start_holder(processes, state_path, seconds=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert LockInfo.from_text(FileStore(state_path).lock_path.read_text()) == info  # left behind
    store = FileStore(state_path)
    with store.lock("reconcile apply") as mine:
        assert mine.pid == os.getpid()


def test_unlock_refuses_a_live_holder_and_clears_a_dead_one(
    state_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    store = FileStore(state_path)
    with pytest.raises(StateError, match="no lock file"):
        store.unlock("whatever")
    proc, info = start_holder(processes, state_path, seconds=60)
    with pytest.raises(StateError, match=f"pid {proc.pid} .* still running"):
        store.unlock(info.id)
    with pytest.raises(StateError, match=f"does not match \\(it holds lock id {info.id}\\)"):
        store.unlock("0000")
    assert store.lock_path.exists()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store.unlock(info.id)
    assert not store.lock_path.exists()
    with store.lock("reconcile apply"):
        pass
    with pytest.raises(StateError, match="no lock file"):
        store.unlock(info.id)  # released normally: nothing to unlock


@pytest.mark.parametrize("host", ["this", "another"])
def test_unlock_refuses_a_held_lock_whatever_its_file_names(
    state_path: Path, processes: list[subprocess.Popen[bytes]], host: str
) -> None:
    """Once, a lock file naming a dead pid (or another host: a container with its own host
    name sharing the workspace) was removed while its flock was held; a second apply then
    locked a new file and created every campaign again."""
    gone = spawn(processes, "pass")
    gone.wait()
    store = FileStore(state_path)
    fd = os.open(store.lock_path, os.O_RDWR | os.O_CREAT)  # held by a process still running
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        named = socket.gethostname() if host == "this" else "ci-runner-2"
        info = LockInfo("dead-id", gone.pid, named, "2026-01-01T00:00:00Z", "x")
        os.write(fd, json.dumps(info.__dict__).encode())
        with pytest.raises(LockHeld, match="dead-id"), store.lock("reconcile apply"):
            pass
        with pytest.raises(StateError, match=r"still running \(it holds the lock now"):
            store.unlock("dead-id")
        assert store.lock_path.exists()
        with pytest.raises(LockHeld), store.lock("reconcile apply"):
            pass
    finally:
        os.close(fd)
    with store.lock("reconcile apply"):  # let go: free again
        assert store.lock_path.exists()


def test_state_text_is_exactly_what_the_json_module_writes() -> None:
    """dumps() is a faster writer; its bytes must equal json.dumps(indent=2, sort_keys)."""
    import json

    payload = {
        "name": 'Опрос «NPS» "q" \\ \t\n\u2028',
        "cps": 1.03,
        "big": 10**20,
        "neg": -0.5,
        "tiny": 1e-7,
        "flags": [True, False, None, [], {}],
        "nested": {"b": [1, {"z": 2, "a": [3.0]}], "a": ""},
    }
    entry = Entry(
        "created", "id-1", "sha256:x", payload, "campaigns/a.yaml", "2026-11-27T00:00:00Z"
    )
    state = State("lineage", 3, "https://x/api/v1", {"b": entry, "a": entry})
    expected = json.dumps(state.to_json(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert dumps(state) == expected
