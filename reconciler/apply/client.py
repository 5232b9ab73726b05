"""Side effects on the Twin24 API: one attempt per call, each result mapped to a value.

No policy here: the client never retries, sleeps or decides (`apply.py` does). `create`
returns one `CreateOutcome`: `Created`, `Refused` (400/402/403/404/405/422), `Unauthorized`
(401), `NotSent` (connect error, connect or pool timeout: provably nothing was sent),
`RateLimited` (429) or `InDoubt` (timeout after sending, connection lost, 5xx or any other
status, a 2xx without an identity). `list_tasks` and `get_task` raise `AuthError`/`ApiError`;
`list_tasks` raises `ListAnswerError` for a list it cannot read completely (`listing.py`).

Creates go over a fresh connection each time: a stale keep-alive connection turns a harmless
"could not send" into an in-doubt create. The token lives in one private attribute and goes
into each request's headers only (`use_token` swaps it after a new login); every text taken
from a response body or an httpx exception is scrubbed of it, of the tokens before it and of
the run's other secrets (`secrets.py`: a login's password and refresh token) before it
reaches an outcome or an error message, and an identity that holds one is no identity (a
create answered so is in doubt; a listed task so is skipped).

Every request has an overall deadline (`Timeouts.deadline`: connect, send and the whole
answer; `deadline.py`) and `cut_short` ends every request in flight early (a stop signal);
answers are read up to a size and JSON up to a depth (`answer.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Final, TypeAlias
from urllib.parse import quote, urlsplit

import httpx

from reconciler.apply import deadline
from reconciler.apply.answer import Answer, AnswerTooLarge, UnusableJson, read_answer
from reconciler.apply.listing import Pager, body_shape, page_items, unknown_shape
from reconciler.apply.secrets import Secrets
from reconciler.config.files import Unreadable, read_bounded
from reconciler.errors import ApiError, AuthError

DEFAULT_API_URL: Final = "https://cis.twin24.ai/api/v1"
TOKEN_ENV: Final = "TWIN24_TOKEN"
REFUSED_STATUSES: Final = frozenset({400, 402, 403, 404, 405, 422})
MAX_ERROR_TEXT: Final = 200
MAX_SECRET_BYTES: Final = 64 * 1024  # a token (or a password) file is never larger

_TASKS_PATH: Final = "/telephony/autoCall"
_USER_AGENT: Final = "reconcile (campaigns-as-code)"
_AUTH_REMEDY: Final = "check TWIN24_TOKEN or --token-file (tokens expire after a week)"
_DELTA_SECONDS = re.compile(r"\d+(\.\d+)?")
# C0 and C1 controls, DEL, line and paragraph separators: never part of an identity.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_CLOCK_SKEW: Final = timedelta(hours=24)  # a Date header further away is not believed


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed for each phase of a request (all four always set explicitly), and for
    the whole request (`deadline`: connect, send and the complete answer)."""

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 5.0
    deadline: float = 60.0

    def as_httpx(self) -> httpx.Timeout:
        """The same four values as an `httpx.Timeout`."""
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


@dataclass(frozen=True)
class Created:
    """The API created the task and returned its identity."""

    identity: str


@dataclass(frozen=True)
class Refused:
    """The API refused the create (400/402/403/404/405/422); nothing was created."""

    status: int
    error: Any
    details: Any

    @property
    def message(self) -> str:
        """`HTTP 422: error (details)`, for reports."""
        return _describe(self.status, self.error, self.details)


@dataclass(frozen=True)
class Unauthorized:
    """HTTP 401: the token is missing, wrong or expired; nothing was created."""

    message: str


@dataclass(frozen=True)
class NotSent:
    """The request provably never left: safe to send again."""

    reason: str


@dataclass(frozen=True)
class RateLimited:
    """HTTP 429: nothing was created; `retry_after` seconds if the API said so."""

    retry_after: float | None


@dataclass(frozen=True)
class InDoubt:
    """The request may have reached the API: the task may or may not exist."""

    reason: str


CreateOutcome: TypeAlias = Created | Refused | Unauthorized | NotSent | RateLimited | InDoubt


@dataclass(frozen=True)
class RemoteTask:
    """A task as the API lists it; `raw` keeps the whole item."""

    identity: str
    name: str
    status: str | None
    created_at: str | None
    raw: dict[str, Any]


class Twin24Client:
    """One attempt per call against the Twin24 call-task API; safe to share between threads.

    `transport` is for tests and the sandbox; without it creates use their own pool that
    keeps no connection alive.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeouts: Timeouts = Timeouts(),
        secrets: Secrets | None = None,
        auth_remedy: str | None = None,
    ) -> None:
        check_api_url(base_url)
        check_token(token, "the client")
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._secrets = secrets if secrets is not None else Secrets()
        self._secrets.add(token)
        self._auth_remedy = auth_remedy or _AUTH_REMEDY
        self._timeouts = timeouts
        self._deadlines = deadline.Deadlines()
        # How far the platform's clock is behind ours (negative: ahead), from the `Date` header
        # of the last list answer; None until one carried a readable Date.
        self.clock_skew: timedelta | None = None
        self.clock_warning: str | None = None  # a Date header that was not believed
        common: dict[str, Any] = {
            "timeout": timeouts.as_httpx(),
            "headers": {"Accept": "application/json", "User-Agent": _USER_AGENT},
            "follow_redirects": False,
        }
        self._client = httpx.Client(transport=transport, **common)
        deadline.install(self._client, self._deadlines)
        self._injected = transport is not None
        # Creates get a pool per thread: one shared pool without keep-alive was seen, under 8
        # threads, to close a socket another thread was still reading (a spurious in-doubt).
        self._common = {**common, "verify": httpx.create_ssl_context()}  # one TLS set-up
        self._local = threading.local()
        self._create_clients: list[httpx.Client] = []
        self._pools = threading.Lock()

    def __repr__(self) -> str:
        return f"Twin24Client(base_url={self._base_url!r})"

    def __enter__(self) -> Twin24Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def cut_short(self, seconds: float) -> None:
        """Let every request in flight, and every later one, go on for `seconds` at most (a
        stop signal: a create cut off after sending is in doubt, as at its deadline)."""
        self._deadlines.cut_short(seconds)

    def use_token(self, token: str) -> None:
        """Send `token` from now on (a new login's); the old one is still scrubbed."""
        check_token(token, "the new login")
        self._secrets.add(token)
        self._token = token

    def close(self) -> None:
        """Close every connection pool."""
        with self._pools:
            for client in self._create_clients:
                client.close()
            self._create_clients.clear()
        self._client.close()

    def _create_client(self) -> httpx.Client:
        """This thread's client for creates (the injected one in tests)."""
        if self._injected:
            return self._client
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            # Same as httpx.HTTPTransport(limits=...) but keeps the environment's proxy settings.
            no_keepalive = httpx.Limits(max_keepalive_connections=0)
            client = httpx.Client(limits=no_keepalive, **self._common)
            deadline.install(client, self._deadlines)
            self._local.client = client
            with self._pools:
                self._create_clients.append(client)
        return client

    def create(self, payload: Mapping[str, Any]) -> CreateOutcome:
        """POST one task over a fresh connection and say what happened; never raises for I/O."""
        return self._scrub_outcome(self._create(payload))

    def _create(self, payload: Mapping[str, Any]) -> CreateOutcome:
        headers = self._headers()
        headers["Connection"] = "close"  # the server closes too, even on an injected transport
        try:
            answer = self._exchange(
                self._create_client(), "POST", _TASKS_PATH, json=dict(payload), headers=headers
            )
        except httpx.RequestError as exc:
            return self._failed_create(exc)
        except AnswerTooLarge as exc:
            return InDoubt(f"{exc}: the server may have created the task")
        return self._create_outcome(answer)

    def list_tasks(
        self, *, keyword: str | None = None, since: datetime | None = None, page_size: int = 1000
    ) -> list[RemoteTask]:
        """All tasks matching `keyword` created since `since` (naive means UTC), page by page.

        Complete or an error: `ListAnswerError` for an answer in a shape this version does not
        know or pages that do not add up (see `listing`); each answer's `Date` header updates
        `clock_skew`.
        """
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size must be 1..1000, not {page_size}")
        with self._scrubbing():
            return self._list_tasks(keyword, since, page_size)

    def _list_tasks(
        self, keyword: str | None, since: datetime | None, page_size: int
    ) -> list[RemoteTask]:
        params: dict[str, str | int] = {}
        if keyword is not None:
            params["keyword"] = keyword
        if since is not None:
            params["from"] = _utc_iso(since)
        pager = Pager(page_size)
        while True:
            found, count = self.list_page({**params, "limit": pager.limit, "page": pager.page})
            if pager.add([t.identity for t in found], found, count):
                return list(pager.seen.values())

    def list_page(self, query: Mapping[str, str | int]) -> tuple[list[RemoteTask], int | None]:
        """One page of the task list (`query`: limit, page...) and its `count` (None for a bare
        list); raises as `list_tasks` does for an answer in a shape this version does not know."""
        with self._scrubbing():
            items, count = page_items(self._get_json(_TASKS_PATH, query, "list endpoint"))
            found: list[RemoteTask] = []
            for index, item in enumerate(items):
                task = self._task(item)
                if task is None:  # fail closed: a task that cannot be read could be any task
                    raise unknown_shape(f"a task object {self._unreadable(item)} (item [{index}])")
                found.append(task)
        return found, count

    def get_task(self, identity: str) -> RemoteTask | None:
        """One task by identity, or None when the API answers 404."""
        path = f"{_TASKS_PATH}/{quote(identity, safe='')}"
        with self._scrubbing():
            body = self._get_json(path, {}, "task endpoint", none_on_404=True)
        if body is None:
            return None
        if not isinstance(body, dict):
            raise ApiError("the Twin24 task endpoint returned an unexpected body: report this")
        return self._task(body, fallback_identity=identity)

    # -- internals ---------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self._base_url}{path}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _exchange(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> Answer:
        """One request within the overall deadline, its answer read whole (bounded)."""
        with (
            self._deadlines.request(self._timeouts.deadline),
            client.stream(method, self._url(path), **kwargs) as response,
        ):
            return read_answer(response)

    def _holds_token(self, text: str) -> bool:
        return self._secrets.holds(text)

    @contextlib.contextmanager
    def _scrubbing(self) -> Iterator[None]:
        """Every error raised inside leaves with the token scrubbed from its message: the last
        line of defence for any text an answer brought in (body, reason phrase, headers)."""
        try:
            yield
        except ApiError as exc:
            message = str(exc)
            scrubbed = self._scrub(message)
            if scrubbed == message:
                raise
            raise type(exc)(scrubbed) from None

    def _scrub_outcome(self, outcome: CreateOutcome) -> CreateOutcome:
        """`outcome` with the token scrubbed from each of its texts (an identity that held it
        was never taken: see `_create_outcome`)."""
        if isinstance(outcome, Created | RateLimited):
            return outcome
        fields = {
            f.name: self._scrub(getattr(outcome, f.name)) for f in dataclasses.fields(outcome)
        }
        return dataclasses.replace(outcome, **fields)

    def _unreadable(self, item: dict[str, Any]) -> str:
        """Why a listed item is no task (`_task` gave None): its id, or its name."""
        raw_id = item.get("id")
        given = [raw_id.get("identity") if isinstance(raw_id, dict) else raw_id]
        given = [value for value in (*given, item.get("identity")) if value is not None]
        identity = next((i for i in map(_identity, given) if i is not None), None)
        if identity is not None and self._holds_token(identity):
            return "whose id holds the API token or a login secret"
        if identity is None:
            return f"whose id is {_a_kind(given[0])}, not usable text" if given else "without an id"
        name = item.get("name")
        if name is None:
            other = next((k for k in ("title", "taskName", "label") if k in item), None)
            return "without a `name`" + (f" (it has `{other}`)" if other else "")
        return f"whose `name` is {_a_kind(name)}, not text"

    def _task(
        self, item: dict[str, Any], fallback_identity: str | None = None
    ) -> RemoteTask | None:
        """A task with every text scrubbed; None without an identity, or with one that holds
        the token (it could only be shown masked, and a masked identity finds nothing)."""
        task = _remote_task(item, fallback_identity)
        if task is None or self._holds_token(task.identity):
            return None
        return _remote_task(self._scrub(item), fallback_identity)

    def _scrub(self, value: Any) -> Any:
        """`value` with every secret of the run replaced (strings, lists, dicts)."""
        return self._secrets.scrub(value)

    def _error_fields(self, response: Answer) -> tuple[Any, Any]:
        """The API's `error` and `details`, or the start of a body that is not such JSON."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and ("error" in body or "details" in body):
            return self._scrub(body.get("error")), self._scrub(body.get("details"))
        text = response.text.strip() or response.reason_phrase.strip()
        return self._scrub(text)[:MAX_ERROR_TEXT], None

    def _exc_text(self, exc: Exception) -> str:
        """Type name plus the exception's own message (never the request), scrubbed."""
        text = self._scrub(str(exc)).strip()[:MAX_ERROR_TEXT]
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    def _failed_create(self, exc: httpx.RequestError) -> NotSent | InDoubt:
        t = self._timeouts
        maybe = "the server may have created the task"
        expired = self._deadlines.expired()
        if expired == "deadline" and not isinstance(exc, httpx.ConnectTimeout):
            return InDoubt(f"no complete answer within the {t.deadline:g}s deadline: {maybe}")
        if expired == "cut-off" and not isinstance(exc, httpx.ConnectTimeout):
            return InDoubt(f"apply was stopped while the create was under way: {maybe}")
        match exc:
            case httpx.ConnectTimeout():
                return NotSent(f"connect timeout after {t.connect:g}s: nothing was sent")
            case httpx.PoolTimeout():
                return NotSent(f"no free connection within {t.pool:g}s: nothing was sent")
            case httpx.ConnectError():
                return NotSent(f"could not connect ({self._exc_text(exc)}): nothing was sent")
            case httpx.ReadTimeout():
                return InDoubt(f"read timeout after {t.read:g}s: {maybe}")
            case httpx.WriteTimeout():
                return InDoubt(f"write timeout after {t.write:g}s while sending: {maybe}")
            case httpx.RemoteProtocolError():
                return InDoubt(f"connection closed mid-way ({self._exc_text(exc)}): {maybe}")
            case httpx.ReadError():
                return InDoubt(f"connection lost reading ({self._exc_text(exc)}): {maybe}")
            case httpx.WriteError():
                return InDoubt(f"connection lost while sending ({self._exc_text(exc)}): {maybe}")
            case _:
                return InDoubt(f"request failed ({self._exc_text(exc)}): {maybe}")

    def _create_outcome(self, response: Answer) -> CreateOutcome:
        status = response.status_code
        if 200 <= status < 300:
            try:
                body = response.json()
            except UnusableJson as exc:
                return InDoubt(f"HTTP {status} with {exc}: the outcome is unknown")
            except ValueError:
                return InDoubt(f"HTTP {status} with a non-JSON body: the outcome is unknown")
            ident = body.get("id") if isinstance(body, dict) else None
            raw = ident.get("identity") if isinstance(ident, dict) else None
            if isinstance(raw, str) and self._holds_token(raw):
                return InDoubt(
                    f"HTTP {status} with the API token in id.identity: not taken as an "
                    "identity, so the outcome is unknown"
                )
            identity = _identity(raw)
            if identity is not None:
                return Created(identity)
            if isinstance(raw, str) and raw:
                return InDoubt(
                    f"HTTP {status} with a control character in id.identity: not taken as an "
                    "identity, so the outcome is unknown"
                )
            return InDoubt(f"HTTP {status} without id.identity: the outcome is unknown")
        if status == 429:
            return RateLimited(parse_retry_after(response.headers.get("Retry-After")))
        error, details = self._error_fields(response)
        if status == 401:
            return Unauthorized(_describe(status, error, details))
        if status in REFUSED_STATUSES:
            return Refused(status, error, details)
        return InDoubt(f"{_describe(status, error, details)}: the server may have created the task")

    def _get_json(
        self, path: str, params: Mapping[str, str | int], what: str, *, none_on_404: bool = False
    ) -> Any:
        """GET and decode JSON (None for a 404 if asked); any other failure raises ApiError."""
        try:
            response = self._exchange(
                self._client, "GET", path, params=params, headers=self._headers()
            )
        except httpx.RequestError as exc:
            if self._deadlines.expired() == "deadline":
                raise ApiError(
                    f"the Twin24 {what} gave no complete answer within the "
                    f"{self._timeouts.deadline:g}s deadline: check the API, then run again later"
                ) from None
            raise ApiError(
                f"the Twin24 {what} is unavailable ({self._exc_text(exc)}): "
                "check the API URL and the network, then run again"
            ) from None
        except AnswerTooLarge as exc:
            raise ApiError(f"the Twin24 {what} failed ({exc}): report this") from None
        status = response.status_code
        if status == 401:
            error, details = self._error_fields(response)
            raise AuthError(
                f"the Twin24 API refused the token ({_describe(status, error, details)}): "
                f"{self._auth_remedy}"
            )
        if status == 404 and none_on_404:
            return None
        if not 200 <= status < 300:
            error, details = self._error_fields(response)
            raise ApiError(
                f"the Twin24 {what} failed ({_describe(status, error, details)}): "
                "check the API URL, then run again later"
            )
        if path == _TASKS_PATH:
            self._note_date(response)
        try:
            return response.json()
        except ValueError as exc:
            if path == _TASKS_PATH:
                raise unknown_shape(body_shape(response.text, exc)) from None
            raise ApiError(
                f"the Twin24 {what} returned HTTP {status} with "
                f"{body_shape(response.text, exc)}: check the API URL"
            ) from None

    def _note_date(self, response: Answer) -> None:
        """Measure `clock_skew` from the answer's `Date` header (kept when it has none).

        A clock more than MAX_CLOCK_SKEW away is not believed (a server's wrong Date header
        would move every in-doubt lookup by as much): it is ignored, and `clock_warning` says so.
        """
        text = response.headers.get("Date")
        try:
            when = parsedate_to_datetime(text) if text else None
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
        if when is None:
            return
        when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        try:
            skew = datetime.now(UTC) - when
        except OverflowError:
            skew = None
        if skew is None or abs(skew) > MAX_CLOCK_SKEW:
            shown = self._scrub(text or "")[:60]
            self.clock_warning = (
                f"the API's Date header ({shown!r}) is more than "
                f"{MAX_CLOCK_SKEW.total_seconds() / 3600:.0f} h away from this machine's clock; "
                "it is not believed, so in-doubt lookups cannot allow for the platform's clock"
            )
            return
        self.clock_skew = skew


API_URL_SOURCE: Final = "the Twin24 API URL (--api-url or TWIN24_API_URL)"


def check_api_url(
    url: str,
    where: str = API_URL_SOURCE,
    example: str = DEFAULT_API_URL,
    error: type[ApiError] = ApiError,
) -> None:
    """Refuse a URL this tool must not use, without echoing it (it may hold a password): not a
    full http(s) URL, a user name or password in it, a query or a fragment. `where` names the
    setting in the message (the API URL, or the IAM URL of a login)."""
    hidden = "it is not shown here, as it may hold a secret"
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is not None and "@" in parts.netloc:
        raise error(
            f"{where} must not carry a user name or password (it is not shown here); use the "
            "token or login instead, and give the URL without them"
        )
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise error(f"{where} is not a full http(s) URL ({hidden}): give one such as {example}")
    if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
        raise error(
            f"{where} must not carry a query or a fragment (`?...`, `#...`; {hidden}): give "
            f"the base URL only, such as {example}"
        )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent or bad."""
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def read_token(token_file: Path | None, env: Mapping[str, str]) -> str:
    """The API token from `--token-file` (preferred when given) or `TWIN24_TOKEN`.

    Messages name the file or the variable, never what they contain.
    """
    if token_file is not None:
        token = read_secret_file(token_file, "token file", _AUTH_REMEDY).strip()
        if not token:
            raise AuthError(f"token file {token_file} is empty: {_AUTH_REMEDY}")
        check_token(token, f"token file {token_file}")
        return token
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        raise AuthError("no Twin24 token: set TWIN24_TOKEN or pass --token-file FILE")
    check_token(token, TOKEN_ENV)
    return token


def read_secret_file(path: Path, what: str, remedy: str) -> str:
    """The text of a secret file (`--token-file`, `--password-file`), as it is. A symbolic
    link is followed (Kubernetes and CI mount secrets as links) but must end at a regular file
    of at most MAX_SECRET_BYTES: a FIFO, a device (`/dev/zero`) or a folder is refused at once,
    never read. Messages name the file, never what it holds."""
    try:
        data = read_bounded(path, MAX_SECRET_BYTES, follow=True)
    except FileNotFoundError:
        raise AuthError(f"{what} {path} not found: {remedy}") from None
    except Unreadable as exc:
        raise AuthError(f"cannot read {what} {path} ({exc}): {remedy}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise AuthError(f"cannot read {what} {path} (it is not UTF-8 text): {remedy}") from None


def check_token(token: str, source: str) -> None:
    """Refuse tokens that cannot go into a header (httpx would quote them in its error)."""
    if not token:
        raise AuthError("no Twin24 token: set TWIN24_TOKEN or pass --token-file FILE")
    if any(not "!" <= ch <= "~" for ch in token):
        raise AuthError(
            f"the Twin24 token from {source} contains spaces or characters that cannot be sent "
            f"in an HTTP header: {_AUTH_REMEDY}"
        )


def _describe(status: int, error: Any, details: Any) -> str:
    def text(value: Any) -> str:
        return (
            value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        )

    error_text = f": {text(error)}" if error not in (None, "") else ""
    details_text = f" ({text(details)})" if details not in (None, "", [], {}) else ""
    return f"HTTP {status}{error_text}{details_text}"


def _utc_iso(moment: datetime) -> str:
    """ISO-8601 UTC with a Z, floored to the second (a floor only widens a "since" search)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _identity(value: Any) -> str | None:
    """An identity as the state records it: text without control characters (a NUL cannot be
    stored, a line break forges output), or an integer as its decimal text; else None."""
    if isinstance(value, str) and value and not _CONTROL.search(value):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _a_kind(value: Any) -> str:
    """`an object`, `a number`, `empty text`, `text with a control character`..."""
    if isinstance(value, str):
        return "empty text" if not value else "text with a control character"
    kinds = {dict: "an object", list: "a list", bool: "a boolean", float: "a decimal number"}
    return kinds.get(type(value), "null")


def _remote_task(item: dict[str, Any], fallback_identity: str | None = None) -> RemoteTask | None:
    """A task from an item whose id is `id`, `identity` or `id.identity`; None without one."""
    raw_id = item.get("id")
    identity = (
        (_identity(raw_id.get("identity")) if isinstance(raw_id, dict) else _identity(raw_id))
        or _identity(item.get("identity"))
        or fallback_identity
    )
    name, status = item.get("name"), item.get("status")
    if identity is None or not isinstance(name, str):
        return None  # fail closed: a task without a text name would escape the name guards
    created_at = item.get("createdAt", item.get("created_at"))
    return RemoteTask(
        identity=identity,
        name=name,
        status=status if isinstance(status, str) else None,
        created_at=created_at if isinstance(created_at, str) else None,
        raw=dict(item),
    )
