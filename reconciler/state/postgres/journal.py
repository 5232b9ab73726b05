"""Write-ahead journal records in PostgreSQL: one committed statement each (spec sections 5, 8).

Each record upserts or deletes one `entries` row and counts itself in `workspaces.records`,
in one statement that finds the workspace only while it still has the (lineage, serial) the
journal started from. So a record costs the same whatever the size of the state, and a run
that lost its lock (another run has written since) records nothing. `PostgresStore.write`
folds the records: it bumps the serial and resets the count.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from reconciler.errors import StateError
from reconciler.state.model import Entry
from reconciler.state.postgres.connection import import_psycopg, one_line

if TYPE_CHECKING:
    import psycopg

Base = tuple[str | None, int]  # (lineage, serial) a journal continues

ENTRY_COLUMNS = "key, status, identity, fingerprint, payload, source, created_at, replaced"
UPSERT = f"""
INSERT INTO reconcile.entries (workspace, {ENTRY_COLUMNS})
SELECT name, %(key)s, %(status)s, %(identity)s, %(fingerprint)s, %(payload)s, %(source)s,
       %(created_at)s, %(replaced)s FROM ws
ON CONFLICT (workspace, key) DO UPDATE SET status = EXCLUDED.status,
    identity = EXCLUDED.identity, fingerprint = EXCLUDED.fingerprint,
    payload = EXCLUDED.payload, source = EXCLUDED.source,
    created_at = EXCLUDED.created_at, replaced = EXCLUDED.replaced
"""
# A record counts itself, and finds its workspace only while it has the journal's base.
RECORD_BASE = """
WITH ws AS (
    UPDATE reconcile.workspaces SET records = records + 1
    WHERE name = %(ws)s AND serial = %(serial)s AND lineage IS NOT DISTINCT FROM %(lineage)s
    RETURNING name
)"""
RECORD_UPSERT = RECORD_BASE + UPSERT + " RETURNING 1"
RECORD_REMOVE = (
    RECORD_BASE
    + """, gone AS (
    DELETE FROM reconcile.entries e USING ws WHERE e.workspace = ws.name AND e.key = %(key)s
)
SELECT count(*) FROM ws"""
)


class PostgresJournal:
    """Write-ahead records, each one committed statement before its call returns.

    Thread-safe. A record applies only while the workspace has the journal's base (lineage,
    serial); after a write by another run (a lost lock) it fails and nothing changes.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        workspace: str,
        base: Base,
        records: int,
        where: str,
    ) -> None:
        self._conn, self._workspace, self._base, self._where = conn, workspace, base, where
        self._records = records  # unfolded ones, a crashed run's included
        self._mutex = threading.Lock()
        self.closed = False
        self._failed: str | None = None

    @property
    def where(self) -> str:
        """The database workspace, for messages."""
        return self._where

    def pending(self, key: str, entry: Entry) -> None:
        """Record that a create is about to be sent (call before sending it)."""
        self._record("pending", key, RECORD_UPSERT, entry)

    def created(self, key: str, entry: Entry) -> None:
        """Record a create the API confirmed."""
        self._record("created", key, RECORD_UPSERT, entry)

    def removed(self, key: str) -> None:
        """Record that a key's entry is gone (its create was refused)."""
        self._record("removed", key, RECORD_REMOVE, None)

    def close(self) -> None:
        with self._mutex:
            self.closed = True

    def has_records(self) -> bool:
        """True when the workspace has records no write has folded yet (a crash's too)."""
        return self._records > 0

    def restart(self, base: Base) -> None:
        """After a write folded the records: later ones continue the new serial."""
        with self._mutex:
            self._base, self._records = base, 0

    def _record(self, op: str, key: str, sql: str, entry: Entry | None) -> None:
        psycopg = import_psycopg()
        with self._mutex:
            if self.closed:
                raise RuntimeError(f"{self._where}: the journal is closed")
            if self._failed:
                raise StateError(f"{self._where}: the journal failed earlier ({self._failed})")
            lineage, serial = self._base
            params = params_of(self._workspace, key, entry) if entry else {"key": key}
            params |= {"ws": self._workspace, "serial": serial, "lineage": lineage}
            try:
                row = self._conn.execute(sql, params).fetchone()
                applied = bool(row and row[0])
                problem = None if applied else "the state was changed by another run"
            except psycopg.Error as exc:
                applied, problem = False, one_line(exc)
            if not applied:
                # After a failed record nothing that follows can be trusted.
                self._failed = problem
                raise StateError(f"{self._where}: cannot record {op} for {key!r} ({problem})")
            self._records += 1


def params_of(workspace: str, key: str, entry: Entry) -> dict[str, Any]:
    from psycopg.types.json import Jsonb

    return {
        "ws": workspace,
        "key": key,
        "status": entry.status,
        "identity": entry.identity,
        "fingerprint": entry.fingerprint,
        "payload": Jsonb(entry.payload),
        "source": entry.source,
        "created_at": entry.created_at,
        "replaced": Jsonb(list(entry.replaced)),
    }


def entry_of(row: tuple[Any, ...], where: str) -> Entry:
    key, status, identity, fingerprint, payload, source, created_at, replaced = row
    data = {
        "status": status,
        "identity": identity,
        "fingerprint": fingerprint,
        "payload": payload,
        "source": source,
        "created_at": created_at,
        "replaced": replaced or [],
    }
    return Entry.from_json(key, data, where)
