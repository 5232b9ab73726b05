"""`reconcile doctor`: read-only checks of a set-up, one `Check` each (spec 9.4).

    versions     the tool, Python and the libraries it reads and talks with
    campaigns    every campaign valid (validated without the cache, which is never written)
    schemas      a `schemas/` folder, if there is one, against what this version writes
    state        readable: backend, lineage, serial, entries; pending entries are a warning
    lock         free, or who holds it: read, never taken, no lock file made
    credentials  which kind (a token and where from, or a login), never a value
    token        a JWT's expiry: expired fails, within 24 hours warns
    api          one list page (`limit=1`): reachable, the token accepted
    list         the list answer in a shape this version reads (`listing.page_items`)
    clock        the API's `Date` header against this machine's clock: over 60 s warns
    timezone     the time zone `startMoment` is read in

Each check is a small function returning a `Check`; a check that needs what an earlier one
could not give (no credentials, an API that did not answer) says it was not checked, as a
`warn`. Nothing here creates a task, writes a file or takes a lock. `run` exits nowhere: the
CLI turns any `fail` into exit 1.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from reconciler import DISTRIBUTION, __version__
from reconciler.apply.auth import Credentials
from reconciler.apply.client import Twin24Client
from reconciler.apply.expiry import EXPIRY_WARNING, LOGIN_HINT, token_expiry, when
from reconciler.apply.listing import KNOWN_SHAPES
from reconciler.errors import ApiError, AuthError, ListAnswerError, ReconcileError
from reconciler.state.store import Store

Status = Literal["ok", "warn", "fail"]
MAX_CLOCK_SKEW = timedelta(seconds=60)
SECOND_SKEW = 2.0  # seconds: a Date header is truncated to the second, and the answer travels
LIBRARIES = ("httpx", "pydantic", "ruamel.yaml", "click")


@dataclass(frozen=True)
class Check:
    """One line of the report: the check's name, `ok`/`warn`/`fail`, and what it found."""

    check: str
    status: Status
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class Inputs:
    """What the CLI hands over; the callables raise `ReconcileError` for what they cannot do."""

    campaigns_dir: Path
    schemas_dir: Path
    store: Callable[[], Store]
    credentials: Callable[[], Credentials]  # read, a login made; an expired token not refused
    connect: Callable[[Credentials], Twin24Client]
    api_url: str
    timezone: str
    state_flags: str = ""  # what a suggested state command needs to act on this state
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


def run(inputs: Inputs) -> list[Check]:
    """Every check, in the order of the module docstring."""
    checks = [versions(), campaigns(inputs.campaigns_dir), schemas(inputs.schemas_dir)]
    try:
        store: Store | None = inputs.store()
    except ReconcileError as exc:
        store = None
        checks += [Check("state", "fail", str(exc)), not_checked("lock", "no usable state")]
    if store is not None:
        checks += [state(store), lock(store, inputs.state_flags)]
    try:
        credentials: Credentials | None = inputs.credentials()
    except ReconcileError as exc:
        credentials = None
        checks.append(Check("credentials", "fail", str(exc)))
    if credentials is None:
        checks.append(not_checked("token", "no credentials"))
    else:
        checks += [credentials_kind(credentials), token(credentials, inputs.now())]
    if credentials is None or checks[-1].status == "fail":
        why = "no usable credentials: nothing is sent without them"
        checks += [not_checked(name, why) for name in ("api", "list", "clock")]
    else:
        checks += connected(inputs, credentials)
    checks.append(timezone(inputs.timezone, inputs.now()))
    return checks


def connected(inputs: Inputs, credentials: Credentials) -> list[Check]:
    """The API checks, with a client made from `credentials`."""
    try:
        client = inputs.connect(credentials)
    except ReconcileError as exc:
        why = "no client for this API URL"
        return [Check("api", "fail", str(exc)), not_checked("list", why), not_checked("clock", why)]
    try:
        return api(client, inputs.api_url)
    finally:
        client.close()


def not_checked(check: str, why: str) -> Check:
    return Check(check, "warn", f"not checked: {why}")


def versions() -> Check:
    """The tool, Python and library versions (for support)."""
    parts = [f"reconcile {__version__} ({DISTRIBUTION})", f"Python {platform.python_version()}"]
    for name in (*LIBRARIES, "psycopg"):
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            if name != "psycopg":  # only a PostgreSQL state needs it
                parts.append(f"{name} not installed")
    return Check("versions", "ok", ", ".join(parts))


def campaigns(folder: Path) -> Check:
    """Every campaign file valid, as `reconcile validate` says (warnings warn)."""
    from reconciler.config.validate import load_config

    config = load_config(folder, None)  # no cache: doctor writes nothing
    errors = config.errors
    if errors:
        files = len({p.location.file for p in errors})
        first = errors[0]
        return Check(
            "campaigns",
            "fail",
            f"{len(errors)} error(s) in {files} file(s), the first: {first.location}: "
            f"{first.path}: {first.message}; run `reconcile validate` for all",
        )
    found = f"{len(config.campaigns)} campaign(s) valid in {folder}"
    warnings = len(config.problems)
    if warnings:
        return Check("campaigns", "warn", f"{found}, {warnings} warning(s): run reconcile validate")
    return Check("campaigns", "ok", found)


def schemas(folder: Path) -> Check:
    """A committed `schemas/` folder against the files this version writes."""
    from reconciler.config import schema

    names = ", ".join(schema.expected_files())
    if not folder.is_dir():
        nothing = f"no {folder}/ folder: nothing to compare (`reconcile schema` writes one)"
        return Check("schemas", "ok", nothing)
    stale = schema.stale(folder)
    if stale:
        return Check(
            "schemas",
            "warn",
            f"{', '.join(p.name for p in stale)} in {folder}/ differ from what reconcile "
            f"{__version__} writes: run `reconcile schema` and commit them (the plan "
            "workflow's `schema --check` fails until then)",
        )
    return Check("schemas", "ok", f"{folder}/ holds what reconcile {__version__} writes ({names})")


def state(store: Store) -> Check:
    """The state readable (its journal replayed in memory): backend, lineage, serial."""
    try:
        current = store.read()
    except ReconcileError as exc:
        return Check("state", "fail", str(exc))
    backend = "PostgreSQL" if store.where.startswith("postgres") else "file"
    if not current.exists:
        first = "no state yet (the first apply makes it)"
        return Check("state", "ok", f"{backend} {store.where}: {first}")
    pending = sorted(k for k, e in current.campaigns.items() if e.status == "pending")
    found = (
        f"{backend} {store.where}: lineage {current.lineage}, serial {current.serial}, "
        f"{len(current.campaigns)} entries"
    )
    if current.api_url:
        found += f", for {current.api_url}"
    if pending:
        return Check(
            "state",
            "warn",
            f"{found}; {len(pending)} in doubt ({', '.join(pending[:3])}"
            f"{', ...' if len(pending) > 3 else ''}): the next apply looks for them first",
        )
    return Check("state", "ok", found)


def lock(store: Store, state_flags: str = "") -> Check:
    """The state lock free, or who holds it (read without taking it). A lock held by a live
    run warns: that run may be working now; apply and the state commands wait or stop."""
    try:
        seen = store.lock_state()
    except ReconcileError as exc:
        return Check("lock", "fail", str(exc))
    info = seen.holder
    if info is None:
        return Check("lock", "ok", "free")
    if seen.held is False:
        return Check("lock", "ok", f"free (the lock file still names {info.describe()}, ended)")
    maybe = "held" if seen.held else "perhaps held (another host: cannot tell)"
    return Check(
        "lock",
        "warn",
        f"{maybe} by {info.describe()}: apply and the state commands fail until it ends (or "
        f"wait with --lock-timeout); if that run is dead: reconcile state unlock{state_flags} "
        f"{info.id}",
    )


def credentials_kind(credentials: Credentials) -> Check:
    """Which credentials a run would use (never their value), and any conflict."""
    kinds = {"token": "a token", "login": "a login", "sandbox": "no credentials needed"}
    detail = f"{kinds[credentials.kind]}: {credentials.source}"
    if credentials.kind == "token":
        detail += f" ({LOGIN_HINT})"
    if credentials.warnings:
        return Check("credentials", "warn", f"{detail}; {'; '.join(credentials.warnings)}")
    return Check("credentials", "ok", detail)


def token(credentials: Credentials, now: datetime) -> Check:
    """A JWT's expiry: expired fails (nothing is sent), within 24 hours warns."""
    expiry = token_expiry(credentials.token)
    if credentials.kind == "sandbox":
        return Check("token", "ok", "the sandbox's fixed token does not expire")
    if not expiry.jwt:
        return Check(
            "token", "ok", "not a JWT: its expiry cannot be read (the API answers 401 once it has)"
        )
    if expiry.expires is None:
        return Check("token", "ok", "a JWT without `exp`: no expiry to check")
    at = when(expiry.expires, now)
    if credentials.kind == "login":
        if expiry.expires <= now:
            return Check("token", "fail", f"the login's token expired at {at}: check this clock")
        return Check("token", "ok", f"the login's token is good until {at}; each run logs in")
    if expiry.expires <= now:
        return Check("token", "fail", f"expired at {at}: nothing is sent with it; {LOGIN_HINT}")
    if expiry.expires - now <= EXPIRY_WARNING:
        return Check("token", "warn", f"expires at {at}: renew it before then; {LOGIN_HINT}")
    return Check("token", "ok", f"expires at {at}")


def api(client: Twin24Client, api_url: str) -> list[Check]:
    """One page of the task list (limit=1): reachable, the token accepted, the answer's shape,
    and the clock skew from its `Date` header."""
    started = time.monotonic()
    try:
        tasks, count = client.list_page({"limit": 1, "page": 0})
    except ListAnswerError as exc:  # it answered, in a shape this version cannot read
        took = time.monotonic() - started
        return [
            Check("api", "ok", f"{api_url} answered the task list in {took:.2f} s"),
            Check("list", "fail", str(exc)),
            clock(client.clock_skew),
        ]
    except AuthError as exc:
        why = "the token was refused"
        return [Check("api", "fail", str(exc)), not_checked("list", why), not_checked("clock", why)]
    except ApiError as exc:
        why = "the API did not answer"
        return [Check("api", "fail", str(exc)), not_checked("list", why), not_checked("clock", why)]
    took = time.monotonic() - started
    listed = f"{count} task(s) on the platform" if count is not None else f"{len(tasks)} task(s)"
    shape = KNOWN_SHAPES.split(" or ")[0] if count is not None else "a bare list of tasks"
    return [
        Check("api", "ok", f"{api_url} answered the task list in {took:.2f} s: {listed}"),
        Check("list", "ok", f"the list answer has a shape this version reads: {shape}"),
        clock(client.clock_skew),
    ]


def clock(skew: timedelta | None) -> Check:
    """This machine's clock against the API's `Date` header (whole seconds)."""
    if skew is None:
        return Check("clock", "warn", "the API's answer has no readable Date header: not compared")
    seconds = skew.total_seconds()
    side = "behind" if seconds >= 0 else "ahead of"
    if abs(seconds) < SECOND_SKEW:  # a Date header counts whole seconds
        return Check("clock", "ok", "the API's Date header agrees with this machine's clock")
    said = f"the API's clock is {abs(seconds):.0f} s {side} this machine's"
    if abs(skew) > MAX_CLOCK_SKEW:
        return Check(
            "clock",
            "warn",
            f"{said} (more than {MAX_CLOCK_SKEW.seconds} s): set this machine's clock (NTP); "
            "token expiry and start times are judged by it",
        )
    return Check("clock", "ok", f"{said} (within {MAX_CLOCK_SKEW.seconds} s)")


def timezone(name: str, now: datetime) -> Check:
    """The time zone `startMoment` is read in, and its offset now."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        unknown = f"unknown time zone {name!r} (--timezone, env TWIN24_TIMEZONE)"
        return Check("timezone", "fail", unknown)
    offset = now.astimezone(zone).strftime("%z")
    return Check(
        "timezone",
        "ok",
        f"startMoment is read as {name} time (UTC{offset[:3]}:{offset[3:]} now; --timezone, "
        "env TWIN24_TIMEZONE)",
    )


def summary(checks: list[Check]) -> str:
    """`doctor: 11 checks, 9 ok, 2 warn, 0 fail.`"""
    count = {status: sum(1 for c in checks if c.status == status) for status in ("ok", "warn")}
    failed = sum(1 for c in checks if c.status == "fail")
    return f"doctor: {len(checks)} checks, {count['ok']} ok, {count['warn']} warn, {failed} fail."


def as_json(checks: list[Check]) -> list[dict[str, Any]]:
    return [c.as_dict() for c in checks]
