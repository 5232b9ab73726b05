"""The PostgreSQL state store against a real throw-away server (tests/pg_fixtures.py).

What `test_store.py` proves for the file, for a workspace: reads, compare-and-swap writes,
write-ahead records that are committed one by one and touch one row, the advisory lock and
its holder, `unlock`, the versioned schema, push and pull, and every bad connection.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from pg_fixtures import PW_PASSWORD, PW_USER, Cluster

from reconciler.errors import LockHeld, StateError
from reconciler.state.model import Entry, State
from reconciler.state.postgres.connection import SCHEMA_VERSION, connect, display_url
from reconciler.state.postgres.journal import PostgresJournal
from reconciler.state.postgres.store import PostgresStore

PAYLOAD = {"name": "Весенняя акция", "cps": 1.03, "nested": {"list": [1, 2.5, None, True]}}


def entry(status: str = "created", identity: str | None = "id-1", **changes: Any) -> Entry:
    made = Entry(status, identity, "sha256:ab", PAYLOAD, "campaigns/a.yaml", "2030-01-01T00:00:00Z")  # type: ignore[arg-type]
    return replace(made, **changes)


@pytest.fixture
def store(pg_url: str, pg_workspace: str) -> PostgresStore:
    return PostgresStore(pg_url, pg_workspace)


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql.encode(), params).fetchall()


# --- reads and writes -------------------------------------------------------------------------


def test_an_unknown_workspace_is_an_empty_state(store: PostgresStore) -> None:
    assert store.read() == State()


def test_write_chooses_a_lineage_bumps_the_serial_and_reads_back_exactly(
    store: PostgresStore,
) -> None:
    entries = {"a": entry(replaced=("old-1", "old-2")), "b/c": entry("pending", None)}
    with store.lock("test"):
        first = store.write(State(api_url="https://api.example/v1", campaigns=entries))
        second = store.write(first.with_entries({"a": entries["a"]}))
    assert first.lineage and first.serial == 1
    assert (second.lineage, second.serial) == (first.lineage, 2)
    assert store.read() == second
    assert PostgresStore(store.url, store.workspace).read().campaigns["a"].payload == PAYLOAD


def test_write_needs_the_lock(store: PostgresStore) -> None:
    with pytest.raises(RuntimeError, match="needs the lock"):
        store.write(State())


def test_a_stale_writer_fails_and_changes_nothing(store: PostgresStore) -> None:
    other = PostgresStore(store.url, store.workspace)
    with store.lock("test"):
        base = store.write(State(campaigns={"a": entry()}))
    with store.lock("stale"):
        stale = store.read()
    with other.lock("fresh"):
        fresh = other.write(other.read().with_entries({"b": entry()}))
    with store.lock("stale"), pytest.raises(StateError) as raised:
        store.write(stale.with_entries({"c": entry()}))
    assert f"serial {fresh.serial} in the database, serial {base.serial} read" in str(raised.value)
    assert "nothing was written" in str(raised.value)
    assert store.read() == fresh


def test_two_writers_on_one_serial_never_both_succeed(store: PostgresStore) -> None:
    """The CAS itself, without the lock: two connections race on the same serial."""
    with store.lock("test"):
        base = store.write(State())
    results: list[str] = []

    def write(key: str) -> None:
        writer = PostgresStore(store.url, store.workspace)
        writer._conn = _raw(store.url)  # no advisory lock: only the CAS stands in the way
        try:
            writer.write(base.with_entries({key: entry()}))
            results.append("ok")
        except StateError:
            results.append("stale")
        finally:
            writer._conn.close()

    threads = [threading.Thread(target=write, args=(f"k{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["ok"] + ["stale"] * 5
    assert store.read().serial == base.serial + 1
    assert len(store.read().campaigns) == 1


def _raw(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


# --- the write-ahead journal ------------------------------------------------------------------


def test_each_record_is_committed_when_its_call_returns(store: PostgresStore) -> None:
    reader = PostgresStore(store.url, store.workspace)  # another connection, no lock
    with store.lock("test"):
        journal = store.journal()
        journal.pending("a", entry("pending", None))
        assert reader.read().campaigns["a"].status == "pending"
        journal.created("a", entry())
        assert reader.read().campaigns["a"] == entry()
        journal.removed("a")
        assert reader.read().campaigns == {}
        assert reader.read().serial == 0  # records do not write the state
        assert journal.has_records()


def test_a_record_touches_one_row_whatever_the_size_of_the_state(store: PostgresStore) -> None:
    with store.lock("test"):
        store.write(State(campaigns={f"k{i:04d}": entry() for i in range(2000)}))
        sql = "SELECT key, xmin::text FROM reconcile.entries WHERE workspace = %s"
        before = dict(rows(store.url, sql, store.workspace))
        journal = store.journal()
        journal.pending("new", entry("pending", None))
        journal.created("k0007", entry(identity="id-7"))
        after = dict(rows(store.url, sql, store.workspace))
    changed = {key for key in after if after[key] != before.get(key)}
    assert changed == {"new", "k0007"}


def test_fold_writes_records_and_keeps_the_serial_without_any(store: PostgresStore) -> None:
    with store.lock("test"):
        store.write(State())
        assert store.fold().serial == 1  # nothing recorded: nothing written
        store.journal().pending("a", entry("pending", None))
    folded = store.fold()  # takes the lock itself, as after a killed run
    assert folded.serial == 2 and folded.campaigns["a"].status == "pending"
    assert store.fold() == folded


def test_records_of_a_run_that_lost_its_lock_are_refused(store: PostgresStore) -> None:
    with store.lock("test"):
        store.write(State(campaigns={"a": entry()}))
        journal = store.journal()
        # Another run wrote meanwhile (its lock was broken by `state unlock`, say).
        rows(store.url, "UPDATE reconcile.workspaces SET serial = serial + 1 RETURNING 1")
        lost = r"cannot record pending for 'b' \(the state was changed by another run\)"
        with pytest.raises(StateError, match=lost):
            journal.pending("b", entry("pending", None))
        with pytest.raises(StateError, match="failed earlier"):
            journal.removed("a")
    assert set(store.read().campaigns) == {"a"}


def test_journal_is_thread_safe(store: PostgresStore) -> None:
    with store.lock("test"):
        journal = store.journal()

        def record(thread: int) -> None:
            for i in range(20):
                journal.pending(f"t{thread}-{i}", entry())

        threads = [threading.Thread(target=record, args=(t,)) for t in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        written = store.write(store.read())
    assert len(written.campaigns) == 120
    sql = "SELECT records FROM reconcile.workspaces WHERE name = %s"
    assert rows(store.url, sql, store.workspace) == [(0,)]


# --- the lock -------------------------------------------------------------------------------


def test_a_held_lock_names_its_holder_and_is_free_once_released(store: PostgresStore) -> None:
    other = PostgresStore(store.url, store.workspace)
    with store.lock("reconcile apply") as info:
        with pytest.raises(LockHeld) as raised, other.lock("reconcile state rm"):
            pass
        message = str(raised.value)
        assert f"pid {info.pid} on host {info.host} since {info.since} (reconcile apply)" in message
        assert f"`reconcile state unlock {info.id}`" in message
        assert "--lock-timeout" in message
    with other.lock("next"):
        pass


def test_a_waiter_gets_the_lock_when_the_holder_lets_go(store: PostgresStore) -> None:
    other = PostgresStore(store.url, store.workspace)
    released = threading.Event()

    def hold() -> None:
        with store.lock("holder"):
            time.sleep(0.4)
        released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    with other.lock("waiter", timeout=10):
        assert released.is_set()
    holder.join()


def test_workspaces_have_separate_locks(pg_url: str) -> None:
    first, second = PostgresStore(pg_url, "lock-a"), PostgresStore(pg_url, "lock-b")
    with first.lock("one"), second.lock("two"):
        pass


def test_unlock_ends_a_hung_holder_and_refuses_a_live_local_one(store: PostgresStore) -> None:
    other = PostgresStore(store.url, store.workspace)
    with store.lock("hung apply") as info:
        journal = store.journal()
        with pytest.raises(StateError, match="does not match"):
            other.unlock("not-the-id")
        with pytest.raises(StateError, match="still running"):
            other.unlock(info.id)
        # The same run seen from another machine: its process cannot be checked from here.
        sql = "UPDATE reconcile.locks SET host = 'ci-runner-9' WHERE workspace = %s RETURNING 1"
        rows(store.url, sql, store.workspace)
        other.unlock(info.id)
        with other.lock("after the unlock"):
            pass
        with pytest.raises(StateError, match=r"cannot record pending .*terminating connection"):
            journal.pending("a", entry())  # the hung run's session is gone: it records nothing
    assert store.read() == State()


# --- the schema -----------------------------------------------------------------------------


def test_init_is_idempotent_and_versioned(pg_empty_db: str) -> None:
    store = PostgresStore(pg_empty_db)
    with pytest.raises(StateError, match="no reconcile schema; run `reconcile state init`"):
        store.read()
    assert store.init() is True
    assert store.init() is False
    assert rows(pg_empty_db, "SELECT version FROM reconcile.meta") == [(SCHEMA_VERSION,)]
    assert store.read() == State()


def test_a_newer_schema_is_refused_and_an_older_one_upgraded_by_init(
    pg_empty_db: str,
) -> None:
    store = PostgresStore(pg_empty_db)
    store.init()
    rows(pg_empty_db, "UPDATE reconcile.meta SET version = 99 RETURNING 1")
    for action in (store.read, store.init):
        with pytest.raises(StateError, match=r"version 99, newer .*upgrade reconcile"):
            action()
    rows(pg_empty_db, "UPDATE reconcile.meta SET version = 0 RETURNING 1")
    with pytest.raises(StateError, match="run `reconcile state init` to upgrade"):
        store.read()
    assert store.init() is True
    assert store.read() == State()


# --- bad connections ------------------------------------------------------------------------


def test_bad_connections_are_one_line_errors_without_the_password(
    pg_cluster: Cluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pw_url = pg_cluster.url(user=PW_USER)
    cases = [
        ("postgresql://nobody@127.0.0.1:1/db", "Connection refused", "server is running"),
        (pw_url, "no password supplied", "PGPASSWORD or ~/.pgpass"),
    ]
    for url, detail, remedy in cases:
        with pytest.raises(StateError) as raised:
            PostgresStore(url).read()
        assert detail in str(raised.value) and remedy in str(raised.value)
        assert "\n" not in str(raised.value)
    monkeypatch.setenv("PGPASSWORD", "wrong-" + PW_PASSWORD)
    with pytest.raises(StateError) as raised:
        PostgresStore(pw_url).read()
    assert 'password authentication failed for user "pwuser"' in str(raised.value)
    assert PW_PASSWORD not in str(raised.value)
    monkeypatch.setenv("PGPASSWORD", PW_PASSWORD)
    assert PostgresStore(pw_url, "pw").read() == State()


def test_a_password_in_the_url_is_refused_and_masked() -> None:
    for url in ("postgresql://u:hunter2@db.example/x", "postgresql://u@db/x?password=hunter2"):
        with pytest.raises(StateError, match="must not hold a password") as raised:
            PostgresStore(url).read()
        assert "hunter2" not in str(raised.value)
    assert display_url("postgresql://u:hunter2@h:5/d?sslmode=require&password=x") == (
        "postgresql://u:***@h:5/d?sslmode=require&password=***"
    )


def test_a_bad_workspace_name_is_refused(pg_url: str) -> None:
    for name in ("", "a\nb", "x" * 201):
        with pytest.raises(StateError, match="not a usable name"):
            PostgresStore(pg_url, name)


# --- push and pull --------------------------------------------------------------------------


def test_push_keeps_lineage_and_serial_and_only_fills_an_empty_workspace(
    store: PostgresStore,
) -> None:
    """Review finding: a newer serial was accepted over a non-empty workspace, which could
    forget tasks an apply created there since the file was pulled (forked histories)."""
    local = State("5d6f1c1e-0000-4000-8000-000000000001", 7, "https://x/v1", {"a": entry()})
    with store.lock("push"):
        assert store.push(local) == local
        assert store.push(local) == local  # the same state again: nothing to do
        for bad in (
            replace(local, serial=9, campaigns={}),  # newer, but not proven to descend from it
            replace(local, serial=5),
            replace(local, lineage="5d6f1c1e-0000-4000-8000-000000000002"),
        ):
            with pytest.raises(StateError, match="the workspace is not empty"):
                store.push(bad)
    assert store.pull() == local


def test_push_refuses_a_workspace_holding_only_unfolded_records(store: PostgresStore) -> None:
    with store.lock("apply"):
        store.journal().created("a", entry())  # an apply killed before its first fold
    local = State("5d6f1c1e-0000-4000-8000-000000000001", 7, "https://x/v1", {})
    with store.lock("push"), pytest.raises(StateError, match="never folded"):
        store.push(local)


def test_a_write_never_deletes_a_record_committed_after_its_read(store: PostgresStore) -> None:
    """Review finding: the CAS checked only the serial, so a record another writer committed
    on the same serial (possible behind a transaction pooler) was silently deleted."""
    with store.lock("seed"):
        store.write(State(campaigns={}))
    with store.lock("first"):
        current = store.read()
        # a second writer, on its own connection and without the lock (as behind a
        # transaction pooler), commits a record on the same serial after our read
        with connect(store.url, store.where) as conn:
            base = (current.lineage, current.serial)
            PostgresJournal(conn, store.workspace, base, 0, store.where).created("b", entry())
        with pytest.raises(StateError, match="changed since it was read"):
            store.write(current)
    assert "b" in store.read().campaigns


def test_pull_of_an_empty_workspace_is_an_error(store: PostgresStore) -> None:
    with pytest.raises(StateError, match="no state has been written"):
        store.pull()


def test_without_psycopg_a_postgresql_state_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    with pytest.raises(StateError, match=r"pip install 'reconcile\[postgres\]'"):
        PostgresStore("postgresql://u@h/d").read()


def test_unlock_never_ends_a_session_that_holds_another_workspace(
    pg_url: str, pg_workspace: str
) -> None:
    """Review finding: a leftover lock row whose backend pid was reused by a live apply on
    another workspace made `state unlock` terminate that apply's session."""
    live = PostgresStore(pg_url, pg_workspace + "-live")
    stale = PostgresStore(pg_url, pg_workspace + "-stale")
    with live.lock("reconcile apply"):
        backend_pid = live._conn.info.backend_pid  # type: ignore[union-attr]
        with connect(pg_url, stale.where) as conn:
            conn.execute(
                "INSERT INTO reconcile.locks (workspace, id, pid, host, since, command, "
                "backend_pid) VALUES (%s, %s, 1, 'gone-host', '2026-01-01T00:00:00Z', "
                "'reconcile apply', %s)",
                (stale.workspace, "00000000-0000-4000-8000-000000000001", backend_pid),
            )
        stale.unlock("00000000-0000-4000-8000-000000000001")
        assert live.read() == State()  # the live apply's connection still works


@pytest.mark.parametrize(
    "url", ["postgresql://u@/db?host=/x&pass%77ord=S3CRET", "postgresql://u@/db?sslpassword=S3CRET"]
)
def test_encoded_or_ssl_passwords_in_a_url_are_refused_and_masked(url: str) -> None:
    from reconciler.state.postgres.connection import has_password

    assert has_password(url)
    assert "S3CRET" not in display_url(url)


def test_connections_set_tcp_limits_so_a_dead_network_ends_the_run(pg_url: str) -> None:
    with connect(pg_url, "test") as conn:
        options = conn.info.get_parameters()
    assert options.get("tcp_user_timeout") == "60000"
    assert options.get("keepalives_idle") == "30"
