"""Compose the parts a command needs: the store, the validated config, the plan, the API.

Commands parse options and call these; nothing here prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.options import DEFAULT_STATE, SANDBOX_API_URL, SANDBOX_STATE, SANDBOX_TASKS
from reconciler.cli.output import hints
from reconciler.errors import InputError, ReconcileError, StateError

if TYPE_CHECKING:
    from reconciler.apply.auth import Credentials
    from reconciler.apply.client import Timeouts, Twin24Client
    from reconciler.state.model import State
    from reconciler.state.store import DatabaseStore, Store


def build_store(
    state_path: str | None,
    sandbox: bool = False,
    workspace: str = "default",
    read_only: bool = False,
) -> Store:
    """The state store for `--state`: a postgresql:// URL's workspace, or a file (the
    sandbox has its own default file, whose folder is made unless `read_only`)."""
    from reconciler.state.file.store import FileStore
    from reconciler.state.postgres.store import PostgresStore, is_postgres_url

    if state_path is not None and is_postgres_url(state_path):
        return PostgresStore(state_path, workspace, hints=hints())
    if workspace != "default":
        raise StateError(
            f"--workspace {workspace!r} needs a postgresql:// --state; a state file has no "
            "workspaces: use another --state file instead"
        )
    if sandbox and state_path is None and not read_only:
        SANDBOX_STATE.parent.mkdir(parents=True, exist_ok=True)
    return FileStore(
        Path(state_path) if state_path else SANDBOX_STATE if sandbox else DEFAULT_STATE,
        hints=hints(),
    )


def read_state_file(path: Path) -> State:
    """The state in the file at `path` (never a database URL), its journal replayed."""
    from reconciler.state.file.store import FileStore

    return FileStore(path).read()


def build_postgres_store(
    state_path: str | None, workspace: str, command: str, sandbox: bool = False
) -> DatabaseStore:
    """The PostgreSQL store `command` needs; a file --state is refused."""
    from reconciler.state.store import DatabaseStore

    store = build_store(state_path, sandbox, workspace)
    if not isinstance(store, DatabaseStore):
        raise StateError(
            f"`reconcile {command}` needs a postgresql://USER@HOST:PORT/DB --state (or env "
            f"RECONCILE_STATE); {store.where} is a state file"
        )
    return store


def build_config(campaigns_dir: Path) -> Any:
    """Load and validate the campaigns; raise InputError on any error."""
    from reconciler.config.cache import ValidationCache
    from reconciler.config.validate import load_config

    config = load_config(campaigns_dir, ValidationCache.default())
    if config.errors:
        raise InputError(config.problems)
    return config


def api_url_of(api_url: str | None, sandbox: bool) -> str:
    """The API URL a command uses (checked: never one with a password in it)."""
    if sandbox:
        return SANDBOX_API_URL
    from reconciler.apply.client import DEFAULT_API_URL, check_api_url

    url = api_url or DEFAULT_API_URL
    check_api_url(url)
    return url


def check_timezone(timezone: str) -> None:
    """Refuse an unknown --timezone as a usage error."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(
            f"unknown time zone {timezone!r}", param_hint="--timezone"
        ) from None


def build_plan(
    campaigns_dir: Path,
    read_state: Any,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    timezone: str,
    max_creates: int,
) -> tuple[Any, Any, Any]:
    """Validate the campaigns, then read the state and plan; returns (plan, config, state).

    The state is read after validation: worker processes forked by the validation then do not
    inherit (and copy) a large state.
    """
    from datetime import UTC, datetime

    from reconciler.plan.plan import PlanOptions, make_plan

    check_timezone(timezone)
    config = build_config(campaigns_dir)
    state = read_state()
    options = PlanOptions(targets, replace, max_creates, timezone, datetime.now(UTC), hints())
    return make_plan(config.campaigns, config.moves, state, options), config, state


def start_sandbox(read_only: bool = False) -> Any:
    """The embedded sandbox of --sandbox, started, its tasks kept beside its state file (whose
    folder is made unless `read_only`: a sandbox only read makes no file)."""
    from reconciler.sandbox import Sandbox, SandboxOptions

    if not read_only:
        SANDBOX_STATE.parent.mkdir(parents=True, exist_ok=True)
    sandbox = Sandbox(SandboxOptions(port=0, data_file=SANDBOX_TASKS))
    sandbox.start()
    return sandbox


def build_credentials(
    url: str,
    token_file: Path | None,
    password_file: Path | None,
    iam_url: str | None,
    sandbox: bool,
    *,
    refuse_expired: bool = True,
) -> Credentials:
    """The run's credentials (`apply.auth`), a login made; with --sandbox (`url` is then the
    embedded sandbox's) a login goes to the sandbox, and without one its fixed token is used."""
    from reconciler.apply.auth import read_credentials

    return read_credentials(
        os.environ,
        token_file=None if sandbox else token_file,
        password_file=password_file,
        iam_url=url if sandbox else iam_url,
        sandbox_token="sandbox" if sandbox else None,
        timeouts=build_timeouts(),
        refuse_expired=refuse_expired,
    )


def build_client(url: str, credentials: Credentials) -> Twin24Client:
    """The API client for `url` with the credentials' token, scrubbing all their secrets."""
    from reconciler.apply.client import Twin24Client

    return Twin24Client(
        url,
        credentials.token,
        timeouts=build_timeouts(),
        secrets=credentials.secrets,
        auth_remedy=credentials.remedy,
    )


def build_timeouts() -> Timeouts:
    """The client's time limits, with the env knobs of tests and rehearsals."""
    from reconciler.apply.client import Timeouts

    return Timeouts(
        read=_seconds(READ_TIMEOUT_ENV, Timeouts.read),
        deadline=_seconds(DEADLINE_ENV, Timeouts.deadline),
    )


class Services:
    """The API side of a run: the credentials (read, and a login made), a client, and the
    embedded sandbox when --sandbox is given. Commands build it before they print a plan, so
    missing or expired credentials cost nothing (spec 9.3)."""

    def __init__(
        self,
        api_url: str | None,
        token_file: Path | None,
        sandbox: bool,
        password_file: Path | None = None,
        iam_url: str | None = None,
    ) -> None:
        from reconciler.apply.client import DEFAULT_API_URL

        self.sandbox: Any = start_sandbox() if sandbox else None
        url = self.sandbox.url if self.sandbox is not None else api_url or DEFAULT_API_URL
        try:
            self.credentials = build_credentials(url, token_file, password_file, iam_url, sandbox)
            self.client = build_client(url, self.credentials)
        except BaseException:
            if self.sandbox is not None:
                self.sandbox.stop()
            raise
        self.warnings = self.credentials.warnings

    @property
    def renew(self) -> Callable[[], None] | None:
        """For a run started with a login: log in again and send the new token from now on."""
        if self.credentials.login is None:
            return None
        return lambda: self.client.use_token(self.credentials.renew())

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()
        if self.sandbox is not None:
            self.sandbox.stop()


READ_TIMEOUT_ENV = "RECONCILE_READ_TIMEOUT"  # seconds per read (tests, pipeline rehearsals)
DEADLINE_ENV = "RECONCILE_REQUEST_DEADLINE"  # seconds for a whole request, answer included


def _seconds(name: str, default: float) -> float:
    """A client time limit from env `name` (tests and rehearsals), else `default`."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise ReconcileError(f"{name}={text!r} is not a number of seconds > 0; fix or unset it")
    return seconds
