"""Connections to PostgreSQL for the state, and the versioned schema (spec section 8).

Tables in the schema `reconcile`, made by `reconcile state init` (idempotent):

    meta(version)                        the schema version: a newer one than SCHEMA_VERSION is
                                         refused, an older one is upgraded by `state init`
    workspaces(name, lineage, serial, api_url, records)
                                         one per campaign repository; `lineage` is NULL until
                                         the first write; `records` counts journal records no
                                         write has folded yet
    entries(workspace, key, status, identity, fingerprint, payload jsonb, source,
            created_at, replaced jsonb)  one row per state entry
    locks(workspace, id, pid, host, since, command, backend_pid)
                                         names the holder of a workspace's lock

The password comes from libpq (PGPASSWORD, ~/.pgpass, a service file), never from the URL,
which a message only ever shows through `display_url`. psycopg is imported only here, and
only when a postgresql:// state is used: it is the optional extra `reconcile[postgres]`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from reconciler.errors import StateError

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION = 1
URL_PREFIXES = ("postgresql://", "postgres://")
CONNECT_TIMEOUT = 10  # seconds; libpq would wait forever

DDL = """
CREATE SCHEMA IF NOT EXISTS reconcile;
CREATE TABLE IF NOT EXISTS reconcile.meta (version integer NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS meta_one_row ON reconcile.meta ((true));
CREATE TABLE IF NOT EXISTS reconcile.workspaces (
    name text PRIMARY KEY,
    lineage uuid,
    serial bigint NOT NULL DEFAULT 0 CHECK (serial >= 0),
    api_url text,
    records bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS reconcile.entries (
    workspace text NOT NULL REFERENCES reconcile.workspaces (name) ON DELETE CASCADE,
    key text NOT NULL,
    status text NOT NULL CHECK (status IN ('created', 'pending')),
    identity text,
    fingerprint text NOT NULL,
    payload jsonb NOT NULL,
    source text NOT NULL,
    created_at text NOT NULL,
    replaced jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (workspace, key)
);
CREATE TABLE IF NOT EXISTS reconcile.locks (
    workspace text PRIMARY KEY,
    id uuid NOT NULL,
    pid integer NOT NULL,
    host text NOT NULL,
    since text NOT NULL,
    command text NOT NULL,
    backend_pid integer NOT NULL
);
"""


_URL_FORM = "postgresql://USER@HOST:PORT/DB (the password in PGPASSWORD or ~/.pgpass)"
_NOT_SHOWN = "it is not shown here, as it may hold a password"
_POSTGRES_SCHEME = re.compile(r"\s*postgres(ql)?:", re.IGNORECASE)
_OTHER_URL = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.-]*://")
# libpq's `key=value` connection strings start with one of its keywords.
_CONNINFO = re.compile(
    r"\s*(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|options|"
    r"connect_timeout|application_name|target_session_attrs|requiressl|channel_binding)\s*=",
    re.IGNORECASE,
)


def is_postgres_url(state: str) -> bool:
    """True when `--state` names a database: `postgresql:` or `postgres:`, in any letter case.

    Refuses (StateError, never echoing the value) a database URL that cannot be parsed, a
    libpq `key=value` string and a URL of another kind: taken as file paths, they would be
    created as files and shown in messages, passwords and all.
    """
    if _CONNINFO.match(state):
        raise StateError(
            "--state (or RECONCILE_STATE) is a libpq key=value connection string; "
            f"{_NOT_SHOWN}. Give the URL form instead: {_URL_FORM}"
        )
    if not _POSTGRES_SCHEME.match(state):
        if _OTHER_URL.match(state) or "://" in state:  # `jdbc:postgresql://...` too
            raise StateError(
                "--state (or RECONCILE_STATE) is a URL but not a postgresql:// one; "
                f"{_NOT_SHOWN}. Give a state file path or {_URL_FORM}"
            )
        return False
    url = normalize_url(state)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parses the port: ValueError when it is not a number)
    except ValueError:
        parts = None
    if parts is None or not url.startswith(URL_PREFIXES):
        raise StateError(
            f"--state (or RECONCILE_STATE) is a PostgreSQL URL that cannot be parsed; "
            f"{_NOT_SHOWN}. Write it as {_URL_FORM}"
        )
    if parts.fragment or "#" in url:
        raise StateError(
            f"--state (or RECONCILE_STATE) is a PostgreSQL URL with a fragment (`#...`), which "
            f"libpq does not read; {_NOT_SHOWN}. Write it as {_URL_FORM}"
        )
    return True


def normalize_url(url: str) -> str:
    """`url` without surrounding spaces and with its scheme in lower case (libpq only knows
    `postgresql://` and `postgres://`)."""
    url = url.strip()
    scheme, sep, rest = url.partition(":")
    return f"{scheme.lower()}{sep}{rest}"


def display_url(url: str) -> str:
    """`url` with any password replaced by `***`: the only form a message may show."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("://", 1)[0] + "://..."
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{hostport}"
    query = "&".join(
        "password=***" if _is_password(item) else item for item in parts.query.split("&")
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def has_password(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    in_query = any(_is_password(item) for item in parts.query.split("&"))
    return ":" in parts.netloc.rpartition("@")[0] or in_query


def _is_password(query_item: str) -> bool:
    # libpq decodes the key (`pass%77ord` is `password`); sslpassword unlocks a client key.
    return unquote(query_item.split("=", 1)[0]).lower() in ("password", "sslpassword")


def import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StateError(
            "a postgresql:// state needs the psycopg package; install it with "
            "`pip install 'reconcile[postgres]'`"
        ) from None
    return psycopg


def one_line(exc: BaseException) -> str:
    """A database error as one line: the server's primary message, or libpq's lines joined."""
    primary = getattr(getattr(exc, "diag", None), "message_primary", None)
    if primary:
        return " ".join(str(primary).split())
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines).removeprefix("connection failed: ") or type(exc).__name__


TCP_LIMITS = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,  # ms unacknowledged before the connection counts as dead
}


@contextlib.contextmanager
def connect(url: str, where: str, check_schema: bool = True) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection with durable commits, closed afterwards; `where` names the
    URL (masked) and workspace in every error."""
    psycopg = import_psycopg()
    from psycopg.conninfo import conninfo_to_dict

    if has_password(url):
        raise StateError(
            f"{display_url(url)}: the state URL must not hold a password (it shows in logs "
            "and process lists); remove it and put it in PGPASSWORD or ~/.pgpass"
        )
    try:
        given = conninfo_to_dict(url)
    except psycopg.Error:  # libpq's message quotes the whole URL
        raise StateError(
            f"{where}: libpq cannot parse this URL ({_NOT_SHOWN}); write it as {_URL_FORM}"
        ) from None
    extra: dict[str, Any] = {}
    if "connect_timeout" not in given:
        extra["connect_timeout"] = CONNECT_TIMEOUT
    if "application_name" not in given:
        extra["application_name"] = "reconcile"
    # A dead network must end the run (and so free the lock) in about a minute, not hours.
    extra.update({name: value for name, value in TCP_LIMITS.items() if name not in given})
    try:
        conn = psycopg.connect(url, autocommit=True, **extra)
    except psycopg.Error as exc:
        detail = one_line(exc)
        if "password" in detail or "authentication failed" in detail:
            remedy = "check the user in the URL and the password in PGPASSWORD or ~/.pgpass"
        else:
            remedy = "check the URL, and that the server is running and reachable from here"
        raise StateError(f"{where}: cannot connect to PostgreSQL ({detail}); {remedy}") from None
    try:
        # Every journal record must be durable before its create is sent, whatever the default.
        execute(conn, where, "SET synchronous_commit TO on")
        if check_schema:
            _check_schema(conn, where)
        yield conn
    finally:
        conn.close()


def execute(conn: psycopg.Connection[Any], where: str, sql: str, params: Any = None) -> Any:
    """`conn.execute`, with a database error as a one-line StateError."""
    psycopg = import_psycopg()
    try:
        return conn.execute(sql, params)
    except psycopg.Error as exc:
        raise StateError(f"{where}: database error ({one_line(exc)})") from None


def init_schema(url: str, where: str) -> bool:
    """Create or upgrade the schema (idempotent); True when something was created."""
    psycopg = import_psycopg()
    with connect(url, where, check_schema=False) as conn:
        try:
            with conn.transaction():
                # not 'reconcile:' + a name: that is how workspace locks are keyed
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('reconcile schema'))")
                version = _schema_version(conn, where)
                if version is not None and version > SCHEMA_VERSION:
                    raise _newer(where, version)
                if version == SCHEMA_VERSION:
                    return False
                conn.execute(DDL)
                conn.execute("DELETE FROM reconcile.meta")
                conn.execute("INSERT INTO reconcile.meta VALUES (%s)", (SCHEMA_VERSION,))
                return True
        except psycopg.Error as exc:
            raise StateError(
                f"{where}: cannot create the schema ({one_line(exc)}); nothing was changed: "
                "connect as a user that may create schemas in this database"
            ) from None


def _check_schema(conn: psycopg.Connection[Any], where: str) -> None:
    version = _schema_version(conn, where)
    if version is None:
        raise StateError(
            f"{where}: this database has no reconcile schema; run `reconcile state init` with "
            "the same --state first"
        )
    if version > SCHEMA_VERSION:
        raise _newer(where, version)
    if version < SCHEMA_VERSION:
        raise StateError(
            f"{where}: the reconcile schema is at version {version}, this reconcile needs "
            f"{SCHEMA_VERSION}; run `reconcile state init` to upgrade it"
        )


def _schema_version(conn: psycopg.Connection[Any], where: str) -> int | None:
    """The version in `reconcile.meta`; None when there is no schema."""
    found = execute(conn, where, "SELECT to_regclass('reconcile.meta') IS NOT NULL").fetchone()
    if not found[0]:
        return None
    row = execute(conn, where, "SELECT max(version) FROM reconcile.meta").fetchone()
    version: int | None = row[0]
    return version


def _newer(where: str, version: int) -> StateError:
    return StateError(
        f"{where}: the reconcile schema is at version {version}, newer than this reconcile "
        f"knows ({SCHEMA_VERSION}); nothing was changed: upgrade reconcile"
    )
