"""A throw-away PostgreSQL cluster for the tests, and the `state_backend` fixture.

The cluster (initdb + pg_ctl) listens only on a Unix socket in a temporary folder, started once
per test session and removed afterwards. initdb refuses to run as root, so as root it runs as
the unprivileged `nobody` (through `runuser`) in a folder that user owns. Roles:

    reconcile   superuser, trust on the socket: what the tests use
    pwuser      superuser that needs a password (PW_PASSWORD), for the bad-password cases

Database `reconcile` has the schema (`state init`): `pg_url` is its URL and `pg_workspace` a
workspace name no other test uses; `pg_empty_db` is the URL of a fresh database without it.

`state_backend` runs a test once per backend (`file`: reconcile.state.json in the current
folder; `postgres`: a fresh workspace): `args()` or `env()` select it on a command line, and
`read()`, `read_json()`, `pending()`, `lock_holder_pid()` look at it.

tests/conftest.py registers this module as a plugin (`pytest_plugins`), so every test module
can request these fixtures by name, and the session has one cluster. Import only the names
(`StateBackend`, `Cluster`, ...), never the fixtures: a module that imports a fixture gets its
own copy, and its own cluster. `pg_clean_env` is autouse: no test sees PG* variables.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.state.file.store import FileStore
from reconciler.state.model import State, dumps

SUPERUSER = "reconcile"
PW_USER = "pwuser"
PW_PASSWORD = "pg-S3CRET-pass"
DATABASE = "reconcile"
FILE_STATE = "reconcile.state.json"
_names = itertools.count(1)
HOLDER = """
SELECT l.pid FROM reconcile.locks l JOIN pg_locks k ON k.pid = l.backend_pid
WHERE l.workspace = %s AND k.locktype = 'advisory' AND k.granted
"""


def find_bindir() -> Path | None:
    """The folder of initdb and pg_ctl: env PG_BINDIR, PATH, or Debian's newest version."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = shutil.which("initdb")
    if found:
        return Path(found).parent

    def version(path: str) -> tuple[int, ...]:
        number = re.search(r"/postgresql/([\d.]+)/", path)
        return tuple(int(p) for p in number.group(1).split(".")) if number else (0,)

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    return Path(candidates[-1]).parent if candidates else None


@dataclass
class Cluster:
    """A running throw-away cluster; `url(db, user)` is a libpq URL to its socket."""

    bindir: Path
    root: Path
    socket_dir: Path
    as_user: list[str]

    def url(self, db: str = DATABASE, user: str = SUPERUSER, **params: str) -> str:
        extra = "".join(f"&{k}={v}" for k, v in params.items())
        return f"postgresql://{user}@/{db}?host={self.socket_dir}{extra}"

    def execute(self, sql: str, db: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(db), autocommit=True) as conn:
            conn.execute(sql.encode())

    def new_database(self) -> str:
        name = f"t{os.getpid()}_{next(_names)}"
        self.execute(f"CREATE DATABASE {name}")
        return name

    @classmethod
    def start(cls, bindir: Path, durable: bool = False) -> Cluster:
        """initdb, start, the roles, the database; `durable` keeps fsync on (benchmarks)."""
        root = Path(tempfile.mkdtemp(prefix="reconcile-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to `nobody`
            nobody = pwd.getpwnam("nobody")
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
            as_user = ["runuser", "-u", "nobody", "--"]
        cluster = cls(bindir, root, root, as_user)
        data = root / "data"
        cluster._run(
            "initdb",
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        )
        (data / "pg_hba.conf").write_text(
            f"local all {PW_USER} scram-sha-256\nlocal all all trust\n", encoding="utf-8"
        )
        options = f"-k {root} -c listen_addresses='' -c max_connections=60"
        if not durable:  # a throw-away cluster needs no crash safety, only speed
            options += " -c fsync=off -c full_page_writes=off"
        cluster._run("pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "-t", "30",
                     "-o", options, "start")  # fmt: skip
        try:
            cluster.execute(f"CREATE ROLE {PW_USER} LOGIN SUPERUSER PASSWORD '{PW_PASSWORD}'")
            cluster.execute(f"CREATE DATABASE {DATABASE}")
            from reconciler.state.postgres.store import PostgresStore

            PostgresStore(cluster.url()).init()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        proc = subprocess.run(
            [*self.as_user, str(self.bindir / program), *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if proc.returncode != 0:
            log = self.root / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed ({proc.returncode}): {proc.stderr}\n{tail}")


@pytest.fixture(autouse=True)
def pg_clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's libpq settings (PGHOST, PGPASSWORD, ~/.pgpass...)."""
    for name in list(os.environ):
        if name.startswith("PG") and name != "PG_BINDIR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent/reconcile-tests/.pgpass")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throw-away cluster for the whole session (skips when PostgreSQL is not installed)."""
    bindir = find_bindir()
    if bindir is None or not (bindir / "initdb").exists():
        pytest.skip(
            "PostgreSQL server not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin;"
            " .ci/run installs Debian's `postgresql`)"
        )
    cluster = Cluster.start(bindir)
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_workspace() -> str:
    """A workspace name no other test uses."""
    return f"ws-{os.getpid()}-{next(_names)}"


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """The URL of the initialised database (pair it with `pg_workspace`)."""
    return pg_cluster.url()


@pytest.fixture
def pg_empty_db(pg_cluster: Cluster) -> str:
    """The URL of a fresh database that has no reconcile schema yet."""
    return pg_cluster.url(pg_cluster.new_database())


@dataclass(frozen=True)
class StateBackend:
    """Where a test's state lives: a file in the working folder, or a PostgreSQL workspace."""

    kind: str  # "file" or "postgres"
    state: str  # the --state value
    workspace: str = "default"

    def args(self) -> list[str]:
        """`--state` and `--workspace` for a command line."""
        return ["--state", self.state, "--workspace", self.workspace]

    def env(self) -> dict[str, str]:
        """The same selection as environment variables."""
        return {"RECONCILE_STATE": self.state, "RECONCILE_WORKSPACE": self.workspace}

    def store(self) -> Any:
        if self.kind == "file":
            return FileStore(Path(self.state))
        from reconciler.state.postgres.store import PostgresStore

        return PostgresStore(self.state, self.workspace)

    def read(self) -> State:
        """The state as a command would read it (a file's journal replayed)."""
        state: State = self.store().read()
        return state

    def read_json(self) -> dict[str, Any]:
        """The state as the JSON of a state file (what `read_state` gives for a file)."""
        data: dict[str, Any] = json.loads(dumps(self.read()))
        return data

    def pending(self) -> list[str]:
        """Keys recorded as pending (by a journal record or a write)."""
        return sorted(k for k, e in self.read().campaigns.items() if e.status == "pending")

    def lock_holder_pid(self) -> int | None:
        """The pid of the process holding the state lock now, if any."""
        if self.kind == "file":
            try:
                text = Path(self.state + ".lock").read_text(encoding="utf-8")
                return int(json.loads(text)["pid"])
            except (OSError, ValueError, KeyError):
                return None
        import psycopg

        with psycopg.connect(self.state, autocommit=True) as conn:
            row = conn.execute(HOLDER, (self.workspace,)).fetchone()
        return int(row[0]) if row else None


@pytest.fixture(params=["file", "postgres"])
def state_backend(request: pytest.FixtureRequest) -> StateBackend:
    """Each backend in turn; the file one is `reconcile.state.json` in the current folder."""
    if request.param == "file":
        return StateBackend("file", FILE_STATE)
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    workspace: str = request.getfixturevalue("pg_workspace")
    return StateBackend("postgres", cluster.url(), workspace)
