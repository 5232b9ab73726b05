"""End to end on PostgreSQL: `reconcile` processes with `--state postgresql://... --workspace W`
against the sandbox over loopback, and a throw-away server (tests/pg_fixtures.py).

The loop, the state commands, import, moving a state between the file and the database, every
bad connection or schema as a one-line error that writes nothing and shows no password, and
concurrency with real processes: two applies on one workspace, eight on eight workspaces, a
SIGKILLed apply. After every apply the server has exactly one task per campaign.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest
from pg_fixtures import PW_PASSWORD, PW_USER, Cluster, StateBackend
from test_apply_e2e import (  # noqa: F401  (start_sandbox is a fixture)
    RECONCILE,
    TOKEN,
    Result,
    StartSandbox,
    apply_args,
    cli_env,
    finish,
    ids_by_name,
    name_of,
    reconcile,
    start_sandbox,
    wait_for,
    write_campaigns,
)

from reconciler.sandbox import Sandbox
from reconciler.state.model import State, dumps, loads
from reconciler.state.postgres.store import PostgresStore

OTHER_LINEAGE = "00000000-0000-4000-8000-00000000beef"


@pytest.fixture
def pg(pg_url: str, pg_workspace: str) -> StateBackend:
    return StateBackend("postgres", pg_url, pg_workspace)


@pytest.fixture
def sandbox(start_sandbox: StartSandbox) -> Sandbox:  # noqa: F811
    return start_sandbox()


def pg_apply(
    backend: StateBackend, url: str, *extra: str, env: dict[str, str] | None = None
) -> Result:
    return reconcile(*apply_args(url, *backend.args(), *extra), env=env)


def start(
    backend: StateBackend, url: str, *extra: str, cwd: Path | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(RECONCILE), *apply_args(url, *backend.args(), *extra)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=cwd,
    )


def assert_in_sync(sandbox: Sandbox, keys: list[str], backend: StateBackend) -> None:
    """Exactly one task per campaign on the server, and the workspace maps each key to it."""
    names = ids_by_name(sandbox)
    entries = backend.read().campaigns
    assert sorted(entries) == sorted(keys)
    for key in keys:
        assert len(names.get(name_of(key), [])) == 1, (key, names)
        assert entries[key].status == "created", (key, entries[key])
        assert entries[key].identity == names[name_of(key)][0]


def assert_plan_empty(backend: StateBackend, url: str) -> None:
    result = reconcile("plan", "--api-url", url, "--detailed-exitcode", *backend.args())
    assert result.code == 0, result.output
    assert "Plan: 0 to create, 0 to replace" in result.stdout


def one_line_error(result: Result) -> str:
    """The single `error: ...` line a bad input must give (exit 1, nothing on stdout)."""
    assert result.code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# --- the loop -------------------------------------------------------------------------------


def test_apply_records_in_the_workspace_and_a_second_apply_sends_nothing(
    sandbox: Sandbox, pg: StateBackend, workdir: Path
) -> None:
    keys = write_campaigns(workdir, 3)

    result = pg_apply(pg, sandbox.url)

    assert result.code == 0, result.output
    assert "Apply: 3 created, 0 adopted, 0 moved, 0 refused, 0 in doubt." in result.stdout
    assert_in_sync(sandbox, keys, pg)
    state = pg.read()
    assert (state.serial, state.api_url) == (1, sandbox.url)
    assert sorted(p.name for p in workdir.iterdir()) == ["campaigns"]  # no state file

    again = pg_apply(pg, sandbox.url)
    assert again.code == 0 and "Apply: 0 created" in again.stdout, again.output
    assert sandbox.create_requests == 3 and pg.read().serial == 1
    assert_plan_empty(pg, sandbox.url)

    write_campaigns(workdir, 1, first=3)
    elsewhere = reconcile(*apply_args("http://127.0.0.1:9/api/v1", *pg.args()))
    assert elsewhere.code == 1
    assert f"error: the state belongs to {sandbox.url}" in elsewhere.stderr
    assert sandbox.create_requests == 3 and pg.read().serial == 1

    env = cli_env(**pg.env())  # the environment selects it as well as the flags
    listed = reconcile("state", "list", env=env)
    assert listed.code == 0 and sorted(listed.stdout.split()[::3]) == keys, listed.output


def test_state_commands_and_import_work_on_a_workspace(
    sandbox: Sandbox, pg: StateBackend, workdir: Path
) -> None:
    keys = write_campaigns(workdir, 2)
    assert pg_apply(pg, sandbox.url).code == 0
    identity = pg.read().campaigns["c001"].identity
    assert identity

    steps = [
        (["state", "show", "c001"], f'"identity": "{identity}"'),
        (["state", "mv", "c001", "renamed"], "Moved c001 to renamed (serial 2)."),
        (["state", "rm", "renamed"], "Removed renamed from the state (serial 3)"),
        (
            ["import", "c001", identity, "--api-url", sandbox.url],
            f"Imported c001 as {identity} (serial 4).",
        ),
    ]
    for args, expected in steps:
        result = reconcile(*args, *pg.args())
        assert result.code == 0 and expected in result.stdout, (args, result.output)
    assert_in_sync(sandbox, keys, pg)
    assert_plan_empty(pg, sandbox.url)


def test_push_and_pull_move_a_state_between_the_file_and_the_database(
    sandbox: Sandbox, pg: StateBackend, workdir: Path
) -> None:
    keys = write_campaigns(workdir, 2)
    assert reconcile(*apply_args(sandbox.url)).code == 0  # on the state file first
    file_text = Path("reconcile.state.json").read_text(encoding="utf-8")

    pushed = reconcile("state", "push", "reconcile.state.json", *pg.args())
    assert pushed.code == 0 and "serial 1, 2 entries" in pushed.stdout, pushed.output
    pulled = reconcile("state", "pull", *pg.args())
    assert pulled.code == 0 and pulled.stdout == file_text, pulled.output
    assert_plan_empty(pg, sandbox.url)

    keys += write_campaigns(workdir, 1, first=2)  # the database goes on from serial 1
    assert pg_apply(pg, sandbox.url).code == 0
    assert_in_sync(sandbox, keys, pg)
    back = reconcile("state", "pull", *pg.args())
    Path("reconcile.state.json").write_text(back.stdout, encoding="utf-8")  # and back again
    assert loads(back.stdout, "pulled").serial == 2
    assert_plan_empty(StateBackend("file", "reconcile.state.json"), sandbox.url)


def test_the_state_backend_fixture_selects_each_backend(
    sandbox: Sandbox,
    state_backend: StateBackend,
    workdir: Path,
) -> None:
    keys = write_campaigns(workdir, 2)

    result = reconcile(*apply_args(sandbox.url), env=cli_env(**state_backend.env()))

    assert result.code == 0, result.output
    assert_in_sync(sandbox, keys, state_backend)
    assert sorted(state_backend.read_json()["campaigns"]) == keys
    assert state_backend.pending() == [] and state_backend.lock_holder_pid() is None
    assert Path("reconcile.state.json").exists() == (state_backend.kind == "file")


# --- bad input: one line, exit 1, nothing written, no password ------------------------------


@pytest.mark.slow
def test_bad_connections_and_schemas_are_one_line_errors_that_change_nothing(
    sandbox: Sandbox,
    pg_cluster: Cluster,
    pg_empty_db: str,
    workdir: Path,
) -> None:
    write_campaigns(workdir, 1)
    newer_db = pg_cluster.url(pg_cluster.new_database())
    PostgresStore(newer_db).init()
    with psycopg.connect(newer_db, autocommit=True) as conn:
        conn.execute("UPDATE reconcile.meta SET version = 99")
    wrong_password = cli_env(PGPASSWORD="wrong-" + PW_PASSWORD)
    cases = [
        ("postgresql://reconcile@127.0.0.1:1/db", cli_env(), "Connection refused"),
        (pg_cluster.url(user=PW_USER), wrong_password, "password authentication failed"),
        (pg_cluster.url(user=PW_USER), cli_env(), "no password supplied"),
        (pg_empty_db, cli_env(), "run `reconcile state init`"),
        (newer_db, cli_env(), "version 99, newer than this reconcile knows (1)"),
        ("postgresql://reconcile:" + PW_PASSWORD + "@/x", cli_env(), "must not hold a password"),
    ]
    for url, env, expected in cases:
        for command in (["plan"], apply_args(sandbox.url)):
            result = reconcile(*command, "--state", url, "--workspace", "w", env=env)
            assert expected in one_line_error(result), (url, command, result.stderr)
            assert PW_PASSWORD not in result.output
    assert sandbox.create_requests == 0
    assert sorted(p.name for p in workdir.iterdir()) == ["campaigns"]
    for db in (pg_empty_db, newer_db):
        with psycopg.connect(db, autocommit=True) as conn:
            schema = conn.execute("SELECT to_regclass('reconcile.workspaces')").fetchone()
            assert schema == (None,) or conn.execute(
                "SELECT count(*) FROM reconcile.workspaces"
            ).fetchone() == (0,)

    init = reconcile("state", "init", "--state", pg_empty_db)
    assert init.code == 0 and "Created the reconcile schema version 1" in init.stdout
    again = reconcile("state", "init", "--state", pg_empty_db)
    assert again.code == 0 and "Found the reconcile schema version 1" in again.stdout
    assert reconcile("plan", "--state", pg_empty_db).code == 0


def test_a_push_into_a_workspace_of_another_lineage_is_refused(
    pg: StateBackend, workdir: Path
) -> None:
    with pg.store().lock("test") as _:
        written = pg.store().read()  # empty
    store = pg.store()
    with store.lock("test"):
        written = store.write(State(api_url="https://x/v1"))
    foreign = State(OTHER_LINEAGE, 5, "https://x/v1", {})
    Path("other.json").write_text(dumps(foreign), encoding="utf-8")

    result = reconcile("state", "push", "other.json", *pg.args())

    line = one_line_error(result)
    assert f"holds state lineage {written.lineage} at serial {written.serial}" in line
    assert "nothing was written" in line
    assert pg.read() == written
    file_state = reconcile("state", "push", "other.json", "--state", "x.json")
    assert "needs a postgresql://" in one_line_error(file_state)
    workspace_of_a_file = reconcile("state", "list", "--workspace", "team-b")
    assert "needs a postgresql:// --state" in one_line_error(workspace_of_a_file)


# --- concurrency with real processes --------------------------------------------------------


@pytest.mark.slow
def test_two_applies_on_one_workspace_one_fails_on_the_lock_the_other_waits(
    start_sandbox: StartSandbox,  # noqa: F811
    pg: StateBackend,
    workdir: Path,
) -> None:
    keys = write_campaigns(workdir, 3)
    sandbox = start_sandbox()
    gate = sandbox.hold_next(1)  # the first create stays in flight until the test says so
    first = start(pg, sandbox.url, "--parallelism", "1")
    try:
        wait_for(
            lambda: sandbox.create_requests == 1 and pg.lock_holder_pid() == first.pid,
            what="the held create",
            proc=first,
        )
        waiting = start(pg, sandbox.url, "--lock-timeout", "60")

        at_once = pg_apply(pg, sandbox.url)

        line = one_line_error(at_once)
        assert f"state is locked by pid {first.pid} on host " in line
        assert "(reconcile apply), lock id " in line and "--lock-timeout" in line
        gate.set()
        done, waited = finish(first), finish(waiting)
    finally:
        gate.set()
        first.kill()
    assert done.code == 0, done.output
    assert waited.code == 0 and "Apply: 0 created" in waited.stdout, waited.output
    assert sandbox.create_requests == 3
    assert_in_sync(sandbox, keys, pg)


@pytest.mark.slow
def test_eight_applies_on_eight_workspaces_run_at_once_and_all_succeed(
    start_sandbox: StartSandbox,  # noqa: F811
    pg_url: str,
    tmp_path: Path,
) -> None:
    sandbox = start_sandbox(latency=0.3)
    backends = [StateBackend("postgres", pg_url, f"team-{i}-{os.getpid()}") for i in range(8)]
    folders = [tmp_path / f"repo-{i}" for i in range(8)]
    keys = [write_campaigns(folder, 2, first=2 * i) for i, folder in enumerate(folders)]
    held: set[int] = set()
    watching = threading.Event()

    def watch() -> None:  # how many workspace locks are held at the same moment
        with psycopg.connect(pg_url, autocommit=True) as conn:
            while not watching.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                ).fetchone()
                held.add(row[0] if row else 0)
                time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        # --lock-timeout 0: had any run waited for another's lock, it would have failed.
        procs = [start(b, sandbox.url, cwd=f) for b, f in zip(backends, folders, strict=True)]
        results = [finish(proc) for proc in procs]
    finally:
        watching.set()
        watcher.join()
    for result in results:
        assert result.code == 0 and "Apply: 2 created" in result.stdout, result.output
    assert max(held) >= 4, held  # the runs overlapped
    assert len(sandbox.tasks) == 16
    for backend, own in zip(backends, keys, strict=True):
        assert_in_sync_subset(sandbox, own, backend)


def assert_in_sync_subset(sandbox: Sandbox, keys: list[str], backend: StateBackend) -> None:
    names = ids_by_name(sandbox)
    entries = backend.read().campaigns
    assert sorted(entries) == keys
    for key in keys:
        assert [entries[key].identity] == names[name_of(key)]


@pytest.mark.slow
def test_a_sigkilled_apply_releases_the_lock_and_the_next_apply_finishes(
    start_sandbox: StartSandbox,  # noqa: F811
    pg: StateBackend,
    workdir: Path,
) -> None:
    keys = write_campaigns(workdir, 4)
    sandbox = start_sandbox(latency=0.3)
    killed = start(pg, sandbox.url, "--parallelism", "1")
    try:
        wait_for(lambda: bool(pg.pending()), what="a pending record", proc=killed)
        os.kill(killed.pid, signal.SIGKILL)
    finally:
        killed.communicate(timeout=30)
    assert pg.pending()  # the record was committed before the create was sent

    started = time.monotonic()
    runs = [pg_apply(pg, sandbox.url, "--lock-timeout", "5")]
    assert time.monotonic() - started < 5
    assert "locked" not in runs[0].output
    grace = cli_env(RECONCILE_PENDING_GRACE="0")
    while runs[-1].code != 0 and len(runs) < 4:
        pending = pg.pending()
        assert pending, runs[-1].output  # the only acceptable reason to fail here
        time.sleep(0.6)  # a create in flight at the kill has landed by now
        retry = [arg for key in pending for arg in ("--retry-pending", key)]
        runs.append(pg_apply(pg, sandbox.url, *retry, env=grace))
    assert runs[-1].code == 0, [r.output for r in runs]
    assert len(sandbox.tasks) == 4
    assert_in_sync(sandbox, keys, pg)
    assert pg.lock_holder_pid() is None
