"""The state of one workspace in PostgreSQL (spec section 8), with `FileStore`'s methods.

Connections and the schema are `connection.py`'s. The lock is a session-level advisory lock,
`pg_try_advisory_lock(hashtext('reconcile:' || workspace))`, taken on the store's one
connection and held for the command's whole run, so it dies with that connection: a killed
run never blocks the next. The `locks` row only names the holder for the conflict message.

Journal records (pending / created / removed) are each one autocommitted statement that
upserts or deletes one `entries` row, and only while the workspace still has the (lineage,
serial) the journal started from: the write-ahead rule costs one small write, whatever the
size of the state, and a run that lost its lock cannot record anything. `write(state)` is one
transaction that compare-and-swaps the serial it read (`UPDATE ... WHERE serial = <read>`),
applies the difference to `entries` and resets the count of unfolded records: a stale writer
changes nothing. `read()` is the rows, with every record already in them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reconciler.errors import LockHeld, StateError
from reconciler.hints import Hints
from reconciler.state.model import Entry, State
from reconciler.state.postgres.connection import (
    SCHEMA_VERSION,
    connect,
    display_url,
    execute,
    import_psycopg,
    init_schema,
    is_postgres_url,
    normalize_url,
    one_line,
)
from reconciler.state.postgres.journal import (
    ENTRY_COLUMNS,
    UPSERT,
    PostgresJournal,
    entry_of,
    params_of,
)
from reconciler.state.store import LockInfo, LockState, iso_z, pid_alive, utc_now

__all__ = ["SCHEMA_VERSION", "PostgresJournal", "PostgresStore", "display_url", "is_postgres_url"]

if TYPE_CHECKING:
    import psycopg

LOCK_POLL_SECONDS = 0.1
HELD_BY = """
SELECT id::text, pid, host, since, command, backend_pid, EXISTS (
    SELECT 1 FROM pg_locks k
    WHERE k.locktype = 'advisory' AND k.granted AND k.pid = l.backend_pid AND k.objsubid = 1
      AND ((k.classid::bigint << 32) | k.objid::bigint) = hashtext('reconcile:' || l.workspace)
) FROM reconcile.locks l WHERE workspace = %s
"""


class PostgresStore:
    """One workspace of the state in a PostgreSQL database; the methods of `FileStore`."""

    def __init__(
        self,
        url: str,
        workspace: str = "default",
        clock: Callable[[], datetime] = utc_now,
        hints: Hints | None = None,
    ) -> None:
        url = normalize_url(url)
        self.url, self.workspace, self._clock = url, workspace, clock
        self._hints = hints or Hints()  # for the commands its messages suggest
        self.where = f"{display_url(url)} (workspace {workspace!r})"
        if not workspace or len(workspace) > 200 or not workspace.isprintable():
            raise StateError(
                f"{display_url(url)}: --workspace {workspace!r} is not a usable name; use up "
                "to 200 printable characters"
            )
        self._conn: psycopg.Connection[Any] | None = None
        self._journal: PostgresJournal | None = None
        self._key = f"reconcile:{workspace}"
        # The unfolded-record count of the last read on the locked connection: a write checks
        # it with the serial, so a record another writer committed since is never deleted.
        self._records_read: int | None = None

    # --- the FileStore interface ---------------------------------------------------------

    def read(self) -> State:
        """The workspace's state with every journal record; an unknown workspace is empty."""
        if self._conn is not None:
            return self._read(self._conn)[0]
        with self._session() as conn:
            return self._read(conn)[0]

    @contextlib.contextmanager
    def lock(self, command: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        """Hold the workspace's advisory lock on this store's connection for the whole run."""
        if self._conn is not None:
            raise RuntimeError(f"{self.where}: this store already holds the lock")
        with self._session() as conn:
            self._acquire(conn, timeout)
            info = LockInfo(
                str(uuid.uuid4()), os.getpid(), socket.gethostname(), iso_z(self._clock()), command
            )
            try:
                self._execute(
                    conn,
                    "INSERT INTO reconcile.locks AS l VALUES (%s, %s, %s, %s, %s, %s, "
                    "pg_backend_pid()) ON CONFLICT (workspace) DO UPDATE SET id = EXCLUDED.id, "
                    "pid = EXCLUDED.pid, host = EXCLUDED.host, since = EXCLUDED.since, "
                    "command = EXCLUDED.command, backend_pid = EXCLUDED.backend_pid",
                    (self.workspace, info.id, info.pid, info.host, info.since, command),
                )
                self._conn = conn
                yield info
            finally:
                if self._journal is not None:
                    self._journal.close()
                    self._journal = None
                self._conn = None
                with contextlib.suppress(Exception):  # the lock dies with the connection anyway
                    conn.execute(
                        "DELETE FROM reconcile.locks WHERE workspace = %s AND id = %s",
                        (self.workspace, info.id),
                    )
                    conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (self._key,))

    def unlock(self, lock_id: str) -> None:
        """`reconcile state unlock LOCK_ID`: end a hung holder's session (never a live local
        one), or clear the record a dead one left."""
        with self._session() as conn:
            row = self._execute(conn, HELD_BY, (self.workspace,)).fetchone()
            if row is None or row[0] != lock_id:
                found = f"it is held by lock id {row[0]}" if row else "no lock is recorded"
                raise StateError(
                    f"{self.where}: lock id {lock_id} does not match ({found}); nothing was "
                    "changed: copy the id from the lock error message"
                )
            _, pid, host, since, command, backend_pid, held = row
            if held:
                if host == socket.gethostname() and pid_alive(pid):
                    holder = LockInfo(lock_id, pid, host, since, command).describe()
                    raise StateError(
                        f"{self.where}: state is locked by {holder}, and that process is still "
                        "running; nothing was changed: wait for it to finish or stop it first"
                    )
                ended = self._execute(conn, "SELECT pg_terminate_backend(%s)", (backend_pid,))
                if not ended.fetchone()[0]:
                    raise StateError(
                        f"{self.where}: cannot end the holder's database session (backend pid "
                        f"{backend_pid}); ask an administrator to run pg_terminate_backend on it"
                    )
            self._execute(
                conn,
                "DELETE FROM reconcile.locks WHERE workspace = %s AND id = %s",
                (self.workspace, lock_id),
            )

    def lock_state(self) -> LockState:
        """Who holds the workspace's lock, from the locks table and `pg_locks` (read only)."""
        with self._session() as conn:
            row = self._execute(conn, HELD_BY, (self.workspace,)).fetchone()
        if row is None or not row[6]:
            return LockState(False)
        return LockState(True, LockInfo(*row[:5]))

    def write(self, state: State) -> State:
        """Write `state.next_serial()` if the workspace still has `state`'s serial (CAS)."""
        conn = self._require_lock("write")
        written = state.next_serial()
        self._swap(conn, state, written)
        return written

    def journal(self) -> PostgresJournal:
        """Start journal records on the state as it is now (under the lock)."""
        conn = self._require_lock("journal")
        if self._journal is not None and not self._journal.closed:
            raise RuntimeError(f"{self.where}: the journal is already open")
        self._execute(
            conn,
            "INSERT INTO reconcile.workspaces (name) VALUES (%s) ON CONFLICT DO NOTHING",
            (self.workspace,),
        )
        state, records = self._read(conn)
        self._journal = PostgresJournal(
            conn, self.workspace, (state.lineage, state.serial), records, self.where
        )
        return self._journal

    def fold(self) -> State:
        """Fold journal records into a write (a new serial); without any, change nothing."""
        if self._conn is None:
            with self.lock("reconcile state fold"):
                return self.fold()
        state, records = self._read(self._conn)
        return self.write(state) if records else state

    # --- PostgreSQL only -----------------------------------------------------------------

    def init(self) -> bool:
        """Create or upgrade the schema (idempotent); True when something was created."""
        return init_schema(self.url, self.where)

    def pull(self) -> State:
        """The workspace's state, to be printed as a state file."""
        state = self.read()
        if not state.exists:
            remedy = (
                "the next `reconcile apply` folds the records of the first one"
                if state.campaigns
                else "check --workspace (env RECONCILE_WORKSPACE)"
            )
            raise StateError(f"{self.where}: no state has been written to this workspace; {remedy}")
        return state

    def push(self, state: State) -> State:
        """Upload a file's `state` as it is (lineage and serial kept), under the lock.

        Only into an empty workspace (spec section 8); pushing the very state the workspace
        holds is a no-op. Anything else is refused: a newer serial in a file does not prove it
        descends from what the workspace holds, and overwriting could forget created tasks.
        """
        conn = self._require_lock("push")
        current, records = self._read(conn)
        if current.exists or current.campaigns or records:
            if current.lineage == state.lineage and current == state and not records:
                return current  # the same state again: nothing to do
            held = (
                f"state lineage {current.lineage} at serial {current.serial}"
                if current.exists
                else "records of an apply that was never folded"
            )
            raise StateError(
                f"{self.where}: the workspace is not empty (it holds {held}); nothing was "
                "written: push only into an empty --workspace, or "
                f"`{self._hints.command('state pull')}` to see what this one holds (a newer "
                "serial does not prove the file descends from it)"
            )
        self._swap(conn, current, state)
        return state

    # --- internals -----------------------------------------------------------------------

    def _session(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        return connect(self.url, self.where)

    def _read(self, conn: psycopg.Connection[Any]) -> tuple[State, int]:
        """The state and its count of unfolded records, from one snapshot."""
        psycopg = import_psycopg()
        try:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                head = conn.execute(
                    "SELECT lineage::text, serial, api_url, records FROM reconcile.workspaces "
                    "WHERE name = %s",
                    (self.workspace,),
                ).fetchone()
                rows = conn.execute(
                    f"SELECT {ENTRY_COLUMNS} FROM reconcile.entries WHERE workspace = %s",
                    (self.workspace,),
                ).fetchall()
        except psycopg.Error as exc:
            raise StateError(f"{self.where}: cannot read the state ({one_line(exc)})") from None
        if head is None:
            if conn is self._conn:
                self._records_read = 0
            return State(), 0
        lineage, serial, api_url, records = head
        if conn is self._conn:
            self._records_read = records
        entries = {row[0]: entry_of(row, self.where) for row in rows}
        return State(lineage=lineage, serial=serial, api_url=api_url, campaigns=entries), records

    def _swap(self, conn: psycopg.Connection[Any], expected: State, new: State) -> None:
        """In one transaction: the workspace row from `expected` to `new`, and its entries."""
        psycopg = import_psycopg()
        try:
            with conn.transaction():
                swapped = conn.execute(
                    "UPDATE reconcile.workspaces SET lineage = %s, serial = %s, api_url = %s, "
                    "records = 0, updated_at = now() WHERE name = %s AND serial = %s AND "
                    "lineage IS NOT DISTINCT FROM %s AND (%s::bigint IS NULL OR records = %s)",
                    (
                        new.lineage,
                        new.serial,
                        new.api_url,
                        self.workspace,
                        expected.serial,
                        expected.lineage,
                        self._records_read,
                        self._records_read,
                    ),
                ).rowcount
                if not swapped and not expected.exists and expected.serial == 0:
                    swapped = conn.execute(
                        "INSERT INTO reconcile.workspaces (name, lineage, serial, api_url) "
                        "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (self.workspace, new.lineage, new.serial, new.api_url),
                    ).rowcount
                if not swapped:
                    raise self._stale(conn, expected)
                self._sync_entries(conn, new.campaigns)
        except psycopg.Error as exc:
            raise StateError(
                f"{self.where}: cannot write the state ({one_line(exc)}); nothing was written"
            ) from None
        if self._journal is not None and not self._journal.closed:
            self._journal.restart((new.lineage, new.serial))

    def _stale(self, conn: psycopg.Connection[Any], expected: State) -> StateError:
        row = conn.execute(
            "SELECT lineage::text, serial FROM reconcile.workspaces WHERE name = %s",
            (self.workspace,),
        ).fetchone()
        now = f"serial {row[1]}" if row else "no state"
        if row and row[0] != expected.lineage:
            now += f" of lineage {row[0]}"
        return StateError(
            f"{self.where}: the state changed since it was read ({now} in the database, serial "
            f"{expected.serial} read); nothing was written: run the command again"
        )

    def _sync_entries(self, conn: psycopg.Connection[Any], entries: dict[str, Entry]) -> None:
        rows = conn.execute(
            f"SELECT {ENTRY_COLUMNS} FROM reconcile.entries WHERE workspace = %s",
            (self.workspace,),
        ).fetchall()
        stored = {row[0]: entry_of(row, self.where) for row in rows}
        gone = [key for key in stored if key not in entries]
        if gone:
            conn.execute(
                "DELETE FROM reconcile.entries WHERE workspace = %s AND key = ANY(%s)",
                (self.workspace, gone),
            )
        changed = [(key, e) for key, e in entries.items() if stored.get(key) != e]
        if changed:
            with conn.cursor() as cursor:
                cursor.executemany(
                    "WITH ws AS (SELECT %(ws)s AS name)" + UPSERT,
                    [params_of(self.workspace, key, entry) for key, entry in changed],
                )

    def _acquire(self, conn: psycopg.Connection[Any], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            got = self._execute(conn, "SELECT pg_try_advisory_lock(hashtext(%s))", (self._key,))
            if got.fetchone()[0]:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockHeld(self._held_message(conn))
            time.sleep(min(LOCK_POLL_SECONDS, remaining))

    def _held_message(self, conn: psycopg.Connection[Any]) -> str:
        row = self._execute(conn, HELD_BY, (self.workspace,)).fetchone()
        info = LockInfo(*row[:5]) if row and row[6] else None
        who = info.describe() if info else "another run (not named in the locks table yet)"
        unlock = (
            f", or if that run is hung run `{self._hints.command('state unlock', info.id)}`"
            if info
            else ""
        )
        return (
            f"{self.where}: state is locked by {who}; wait for it to finish, retry with "
            f"--lock-timeout SECONDS{unlock}"
        )

    def _execute(self, conn: psycopg.Connection[Any], sql: str, params: Any = None) -> Any:
        return execute(conn, self.where, sql, params)

    def _require_lock(self, what: str) -> psycopg.Connection[Any]:
        if self._conn is None:
            raise RuntimeError(f"PostgresStore.{what}() needs the lock: call it in `with lock()`")
        return self._conn
