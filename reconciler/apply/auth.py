"""The credentials of a run (spec 9.3): a token, or a login that yields one; a token's expiry.

    read_credentials(env, ...)  a token (`--token-file`, else env TWIN24_TOKEN) wins; else a
                                login (env TWIN24_LOGIN, with TWIN24_PASSWORD or
                                `--password-file`) posted to `{IAM_URL}/auth/login`; with
                                --sandbox a login is made at the sandbox, and without one the
                                sandbox's fixed token is used (a real token is never read)
    Credentials                 the bearer token, its kind and source, the run's `Secrets`, the
                                warnings to show, `renew()` (a login made again, once per 401)

Everything is read, and the login made, before anything is sent to the task API; every
failure is an `AuthError` that names the file, the variable or the IAM URL and the status,
never a secret. A token that is a JWT is refused once expired and warned about within a day
(`expiry.py`); a login's token is refused when expired, never warned about: it is renewed.
The login request has the client's time limits and overall deadline (`deadline.py`), its
answer is read bounded (`answer.py`), and a redirect is never followed: the password goes
to the IAM URL given and nowhere else, and only over https (or http to this machine).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import httpx

from reconciler.apply import deadline
from reconciler.apply.answer import Answer, AnswerTooLarge, read_answer
from reconciler.apply.client import (
    TOKEN_ENV,
    Timeouts,
    check_api_url,
    check_token,
    read_secret_file,
    read_token,
)
from reconciler.apply.expiry import LOGIN_HINT, check_expiry, token_expiry
from reconciler.apply.secrets import Secrets
from reconciler.errors import AuthError

DEFAULT_IAM_URL: Final = "https://iam.twin24.ai/api/v1"
LOGIN_ENV: Final = "TWIN24_LOGIN"
PASSWORD_ENV: Final = "TWIN24_PASSWORD"
LOGIN_PATH: Final = "/auth/login"
LOGIN_TTL: Final = 3600  # seconds asked of the IAM: a run that outlives it logs in again
MAX_ERROR_TEXT: Final = 200
_USER_AGENT: Final = "reconcile (campaigns-as-code)"
_TIMEOUTS: Final = Timeouts()

Kind = Literal["token", "login", "sandbox"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Login:
    """A login at the IAM: where, who, and the password (never shown by `repr`)."""

    iam_url: str
    email: str
    password: str = field(repr=False)
    timeouts: Timeouts = _TIMEOUTS
    transport: httpx.BaseTransport | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        """The login endpoint, `{IAM_URL}/auth/login`."""
        return self.iam_url.rstrip("/") + LOGIN_PATH

    def token(self, secrets: Secrets) -> str:
        """Log in and return the answer's token; its token and refresh token join `secrets`.
        Raises AuthError naming the IAM URL and the status; nothing reaches the task API."""
        secrets.add(self.password)
        answer = self._post(secrets)
        body: Any = None
        with contextlib.suppress(ValueError):
            body = answer.json()
        for value in _token_values(body):  # before any text of the answer is shown
            secrets.add(value)
        status = answer.status_code
        if status != 200:
            raise self._refused(answer, body, secrets)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            shape = "a body that is not JSON" if body is None else "no `token` in its answer"
            raise AuthError(
                f"the login at {self.url} answered HTTP {status} with {shape}; nothing was "
                "sent to the task API: check --iam-url / TWIN24_IAM_URL"
            )
        try:
            check_token(token, "the login's answer")
        except AuthError:
            raise AuthError(
                f"the login at {self.url} answered HTTP {status} with a token that cannot be "
                "sent in an HTTP header; nothing was sent to the task API: report this"
            ) from None
        return token

    def _post(self, secrets: Secrets) -> Answer:
        deadlines = deadline.Deadlines()
        body = {"email": self.email, "password": self.password, "ttl": LOGIN_TTL}
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        client = httpx.Client(
            transport=self.transport,
            timeout=self.timeouts.as_httpx(),
            follow_redirects=False,  # the password goes to this address, never on
        )
        deadline.install(client, deadlines)
        try:
            with (
                client,
                deadlines.request(self.timeouts.deadline),
                client.stream("POST", self.url, json=body, headers=headers) as response,
            ):
                return read_answer(response)
        except httpx.HTTPError as exc:
            if deadlines.expired() == "deadline":
                why = f"no complete answer within the {self.timeouts.deadline:g}s deadline"
            else:
                text = str(secrets.scrub(str(exc))).strip()[:MAX_ERROR_TEXT]
                why = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            raise AuthError(
                f"the login at {self.url} failed ({why}); nothing was sent to the task API: "
                "check --iam-url / TWIN24_IAM_URL and the network, then run again"
            ) from None
        except AnswerTooLarge as exc:
            raise AuthError(
                f"the login at {self.url} failed ({exc}); nothing was sent to the task API"
            ) from None

    def _refused(self, answer: Answer, body: Any, secrets: Secrets) -> AuthError:
        status = answer.status_code
        if isinstance(body, dict) and "error" in body:
            error = body["error"]
            text = error if isinstance(error, str) else json.dumps(error, ensure_ascii=False)
        elif body is None:
            text = answer.text
        else:
            text = ""
        text = " ".join(str(secrets.scrub(text)).split())[:MAX_ERROR_TEXT]
        said = f"HTTP {status}: {text}" if text else f"HTTP {status} {answer.reason_phrase}"
        if 300 <= status < 400:
            remedy = (
                f"a redirect (to {_site(answer.headers.get('Location', ''), secrets)}) is never "
                "followed with a password: set --iam-url / TWIN24_IAM_URL to the address it names"
            )
        elif status in (400, 401, 403, 404, 422):
            remedy = "check TWIN24_LOGIN, the password and --iam-url / TWIN24_IAM_URL"
        else:
            remedy = "the IAM may be down: run again later"
        return AuthError(
            f"the login at {self.url} was refused ({said}); nothing was sent to the task "
            f"API: {remedy}"
        )


def _site(location: str, secrets: Secrets) -> str:
    """Where a redirect points, as scheme and host only: its path or query may quote the
    request in any encoding."""
    try:
        parts = urlsplit(location)
        site = f"{parts.scheme}://{parts.hostname}" if parts.scheme and parts.hostname else ""
    except ValueError:
        site = ""
    return str(secrets.scrub(site))[:MAX_ERROR_TEXT] if site else "an address it did not say"


def _token_values(body: Any) -> list[str]:
    """The texts of the answer's `token`, `refreshToken` and any other key naming a token."""
    if not isinstance(body, dict):
        return []
    return [v for k, v in body.items() if "token" in str(k).lower() and isinstance(v, str)]


class Credentials:
    """The bearer token of a run, where it came from, and the secrets to keep out of texts."""

    def __init__(
        self,
        kind: Kind,
        source: str,
        token: str,
        secrets: Secrets,
        *,
        login: Login | None = None,
        warnings: list[str] | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.kind, self.source, self.secrets = kind, source, secrets
        self.login = login
        self.warnings = list(warnings or [])
        self._token = token
        self._now = now
        self.expiry = token_expiry(token)

    def __repr__(self) -> str:
        return f"Credentials({self.kind}, {self.source!r})"

    @property
    def token(self) -> str:
        """The bearer token to send."""
        return self._token

    @property
    def remedy(self) -> str:
        """What to check when the API refuses this token (HTTP 401)."""
        if self.kind == "login":
            return "the token of a fresh login was refused: check the login's access to the API"
        if self.kind == "sandbox":
            return "the sandbox's token was refused: check --api-url"
        return f"check {self.source} (tokens expire after a week; {LOGIN_HINT})"

    def renew(self) -> str:
        """Log in again (a login's run after a 401) and return the new token."""
        if self.login is None:
            raise AuthError(f"the token from {self.source} cannot be renewed: {LOGIN_HINT}")
        token = self.login.token(self.secrets)
        check_expiry(token, f"the login at {self.login.url}", self._now(), login=True)
        self._token = token
        self.expiry = token_expiry(token)
        return token


def read_credentials(
    env: Mapping[str, str],
    *,
    token_file: Path | None = None,
    password_file: Path | None = None,
    iam_url: str | None = None,
    sandbox_token: str | None = None,
    timeouts: Timeouts = _TIMEOUTS,
    transport: httpx.BaseTransport | None = None,
    now: Callable[[], datetime] = utc_now,
    refuse_expired: bool = True,
) -> Credentials:
    """The credentials of a run, read and checked, the login made (see the module docstring).

    `sandbox_token`: the embedded sandbox's fixed token; with it no token is read, and a
    login goes to `iam_url` (the sandbox's own address). `refuse_expired=False` leaves a
    token's expiry to the caller (`doctor` reports it; nothing is sent with an expired one).
    """
    email = env.get(LOGIN_ENV, "").strip()
    password_given = password_file is not None or bool(env.get(PASSWORD_ENV))
    secrets = Secrets()
    if sandbox_token is None and (token_file is not None or env.get(TOKEN_ENV, "").strip()):
        token = read_token(token_file, env)
        source = f"token file {token_file}" if token_file is not None else TOKEN_ENV
        secrets.add(token)
        warnings = []
        if email or password_given:
            warnings.append(
                f"both a token ({source}) and a login ({LOGIN_ENV}, {PASSWORD_ENV} or "
                "--password-file) are set: the token is used; unset the one you do not mean"
            )
        warning = check_expiry(token, source, now()) if refuse_expired else None
        warnings += [warning] if warning else []
        return Credentials("token", source, token, secrets, warnings=warnings, now=now)
    if email:
        password = read_password(password_file, env)
        iam = check_iam_url(iam_url or DEFAULT_IAM_URL)
        login = Login(iam, email, password, timeouts, transport)
        try:
            token = login.token(secrets)
        except AuthError as exc:
            if sandbox_token is None:
                raise
            raise AuthError(
                f"{exc} (with --sandbox the login goes to the embedded sandbox, which takes any "
                f"e-mail and the password `sandbox`; or unset {LOGIN_ENV} to use its own token)"
            ) from None
        if refuse_expired:
            check_expiry(token, f"the login at {login.url}", now(), login=True)
        given = f"--password-file {password_file}" if password_file else PASSWORD_ENV
        source = f"{LOGIN_ENV} and {given}, at {login.url}"
        return Credentials("login", source, token, secrets, login=login, now=now)
    if password_given:
        given = "--password-file" if password_file is not None else PASSWORD_ENV
        raise AuthError(
            f"{given} is set, but no {LOGIN_ENV}: set {LOGIN_ENV} to the login's e-mail"
        )
    if sandbox_token is not None:
        secrets.add(sandbox_token)
        return Credentials("sandbox", "the embedded sandbox's token", sandbox_token, secrets)
    raise AuthError(
        f"no Twin24 token: set {TOKEN_ENV} or pass --token-file FILE, or log in with "
        f"{LOGIN_ENV} and {PASSWORD_ENV} (or --password-file FILE)"
    )


def read_password(password_file: Path | None, env: Mapping[str, str]) -> str:
    """The login's password from `--password-file` (preferred) or TWIN24_PASSWORD; a final
    line break is dropped. Messages name the file or the variable, never what they hold."""
    remedy = f"set {PASSWORD_ENV} or pass --password-file FILE"
    if password_file is None:
        password = env.get(PASSWORD_ENV, "").rstrip("\r\n")
        if not password:
            raise AuthError(f"{LOGIN_ENV} is set, but no password: {remedy}")
        return password
    password = read_secret_file(password_file, "password file", remedy).rstrip("\r\n")
    if not password:
        raise AuthError(f"password file {password_file} is empty: {remedy}")
    return password


def check_iam_url(url: str) -> str:
    """`url` if a password may be posted there: https, or http to this machine (a sandbox)."""
    check_api_url(url, "the IAM URL (--iam-url or TWIN24_IAM_URL)", DEFAULT_IAM_URL, AuthError)
    parts = urlsplit(url)
    assert parts.hostname is not None  # checked just before
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise AuthError(
            f"the IAM URL {url} is plain http: a password is sent only over https (or http to "
            "this machine, such as a sandbox); use an https:// --iam-url / TWIN24_IAM_URL"
        )
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
