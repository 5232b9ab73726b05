"""What the sandbox answers, without sockets: the Twin24 call-task API plus fault injection.

Endpoints (under `/api/v1/telephony/autoCall`, bearer token required on each):

    POST ""                         create: 200 {"id": {"identity": ...}}; 400 bad JSON; 422
    GET  ""                         list: {"count", "items"}; query as in `tasks.ListQuery`;
                                    faults and other shapes as in `listing`
    GET  "/{id}"                    one task, or 404
    POST "/{id}/halted|pause|play"  status HALTED, PAUSED, PROCESS (HALTED is final: 400)

and `POST /api/v1/auth/login`, the sandbox's IAM (`auth.py`): its tokens are accepted too.

Every error body is `{"error": ..., "details": ...}`. A create meets, in this order: the token
check (401); a queued `fail_next`/`rate_limit_next` fault, else the rate limit (429 with
`Retry-After`), else `fail_rate` (500), none of which store anything; JSON and
`models.check_body` (400, 422); the task is stored; then a queued `hang_next`/`drop_next`
fault, else `hang_seconds` and `drop_after_receive_rate`. Every authorised create draws
exactly two numbers from the seeded generator, so the k-th create's fate depends only on the
seed, the rates and the order of arrival.
"""

from __future__ import annotations

import hmac
import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from reconciler.config import models
from reconciler.errors import ReconcileError
from reconciler.sandbox import listing
from reconciler.sandbox.auth import Issuer
from reconciler.sandbox.tasks import ListQuery, QueryError, TaskStore, TransitionError, utc_now

API_PREFIX = "/api/v1"
TASKS_PATH = f"{API_PREFIX}/telephony/autoCall"
LOGIN_PATH = f"{API_PREFIX}/auth/login"
STATUS_ACTIONS = {"halted": "HALTED", "pause": "PAUSED", "play": "PROCESS"}


@dataclass
class SandboxOptions:
    """What `reconcile sandbox` and `--sandbox` configure; rates are fractions 0..1."""

    host: str = "127.0.0.1"
    port: int = 8024  # 0 picks a free port
    token: str = "sandbox"
    data_file: Path | None = None
    latency: float = 0.0  # seconds added to every request
    fail_rate: float = 0.0  # creates answered 500, nothing created
    drop_after_receive_rate: float = 0.0  # creates stored, then the connection is cut
    rate_limit: float | None = None  # creates per second; above it 429 + Retry-After
    hang_seconds: float | None = None  # sleep after storing a create, before answering
    seed: int | None = None
    verbose: bool = False
    # The list endpoint's faults (see `listing`): its shape, and paging that does not add up.
    list_shape: str | None = None
    page_cap: int | None = None
    ignore_page: bool = False
    repeat_page: int | None = None
    count_extra: int = 0
    clock_skew: float = 0.0  # seconds the sandbox's clock is ahead of ours (negative: behind)
    # Logins (`auth.py`): every login answered with this status; a login's token good for
    # this many task requests.
    login_status: int | None = None
    token_uses: int | None = None
    password: str = "sandbox"  # what a login must give (tests use their own canary)

    def __post_init__(self) -> None:
        for name in ("fail_rate", "drop_after_receive_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ReconcileError(f"sandbox {name} must be 0..1, not {getattr(self, name)}")
        for name in ("latency", "hang_seconds", "rate_limit"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ReconcileError(f"sandbox {name} must be a number >= 0, not {value}")
        if self.rate_limit == 0:
            raise ReconcileError("sandbox rate_limit must be above 0 (leave it unset for none)")
        if not self.token or any(c.isspace() for c in self.token):
            raise ReconcileError("sandbox token must be a non-empty text without spaces")
        if self.list_shape is not None and self.list_shape not in listing.LIST_SHAPES:
            raise ReconcileError(
                f"sandbox list_shape must be one of {', '.join(listing.LIST_SHAPES)}, "
                f"not {self.list_shape!r}"
            )
        for name, least in (("page_cap", 1), ("repeat_page", 1), ("count_extra", 0)):
            value = getattr(self, name)
            if value is not None and value < least:
                raise ReconcileError(f"sandbox {name} must be {least} or more, not {value}")
        if not math.isfinite(self.clock_skew):
            raise ReconcileError(f"sandbox clock_skew must be a number, not {self.clock_skew}")
        if self.login_status is not None and not 300 <= self.login_status <= 599:
            raise ReconcileError(
                f"sandbox login_status must be a failing HTTP status (3xx-5xx), not "
                f"{self.login_status}"
            )
        if self.token_uses is not None and self.token_uses < 0:
            raise ReconcileError(f"sandbox token_uses must be 0 or more, not {self.token_uses}")


@dataclass
class Reply:
    """What the handler sends: status and JSON body, or nothing at all (`drop`)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to wait before answering (or dropping)
    drop: bool = False  # cut the connection instead of answering
    gate: threading.Event | None = None  # answer only once it is set (`hold_next`)
    raw: bytes | None = None  # sent as it is (text/html) instead of `body` as JSON


def error(status: int, message: str, details: Any = None, **headers: str) -> Reply:
    return Reply(status, {"error": message, "details": details}, dict(headers))


class _RateLimiter:
    """A token bucket: `rate` creates per second, bursts up to max(1, rate)."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._stamp = time.monotonic()

    def take(self) -> float | None:
        """None when admitted, else the seconds until the next create would be."""
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return (1.0 - self._tokens) / self._rate


class SandboxApi:
    """The API's behaviour, socket-free: `handle()` turns one request into a `Reply`.

    Test hooks queue faults for the next creates, each queue in call order: `fail_next`,
    `rate_limit_next` (answered before anything is stored); `drop_next`, `hang_next` (applied
    to the next creates that store a task).
    """

    def __init__(
        self, options: SandboxOptions | None = None, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.options = options or SandboxOptions()
        skew = timedelta(seconds=self.options.clock_skew)
        base = clock or utc_now
        self.store = TaskStore(self.options.data_file, lambda: base() + skew)
        self.issuer = Issuer(
            lambda: base() + skew,
            self.options.token_uses,
            self.options.login_status,
            self.options.password,
        )
        self._skew = skew
        self._lock = threading.Lock()
        self._random = random.Random(self.options.seed)
        self._limiter = _RateLimiter(self.options.rate_limit) if self.options.rate_limit else None
        self._before: deque[Reply] = deque()
        self._after: deque[Reply] = deque()
        self._create_requests = 0
        self._requests = 0
        self._stopping = threading.Event()  # set while stopping: wakes latency and hangs

    # -- test hooks and counters -----------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """The next `n` creates get `status`; nothing is created."""
        self._queue(self._before, n, error(status, _phrase(status), "sandbox: fail_next"))

    def rate_limit_next(self, n: int = 1, retry_after: float = 1) -> None:
        """The next `n` creates get 429 with `Retry-After: retry_after`; nothing is created."""
        self._queue(
            self._before,
            n,
            error(
                429,
                "Too Many Requests",
                "sandbox: rate_limit_next",
                **{"Retry-After": f"{retry_after:g}"},
            ),
        )

    def drop_next(self, n: int = 1) -> None:
        """The next `n` valid creates are stored, then the connection is cut unanswered."""
        self._queue(self._after, n, Reply(0, drop=True))

    def hang_next(self, n: int, seconds: float) -> None:
        """The next `n` valid creates are stored, then answered `seconds` later."""
        self._queue(self._after, n, Reply(0, hang=seconds))

    def hold_next(self, n: int = 1) -> threading.Event:
        """The next `n` valid creates are stored, then answered once the returned event is set:
        a test decides when a create in flight ends, whatever the machine's speed."""
        gate = threading.Event()
        self._queue(self._after, n, Reply(0, gate=gate))
        return gate

    @property
    def create_requests(self) -> int:
        """Create POSTs received, whatever their outcome."""
        with self._lock:
            return self._create_requests

    @property
    def requests(self) -> int:
        """Requests received on any path (logins too), whatever their outcome."""
        with self._lock:
            return self._requests

    def fail_login_next(self, n: int = 1, status: int = 503) -> None:
        """The next `n` logins get `status`; no token is issued."""
        self.issuer.fail_login_next(n, status)

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        """A copy of every stored task by id."""
        return self.store.snapshot()

    def _queue(self, queue: deque[Reply], n: int, reply: Reply) -> None:
        with self._lock:
            queue.extend(
                Reply(
                    reply.status,
                    reply.body,
                    dict(reply.headers),
                    reply.hang,
                    reply.drop,
                    gate=reply.gate,
                )
                for _ in range(n)
            )

    def now(self) -> datetime:
        """The sandbox's own clock (for its Date header): ours plus `clock_skew`."""
        return utc_now() + self._skew

    def pause(self, seconds: float | None, gate: threading.Event | None = None) -> None:
        """Sleep (and wait for `gate`, if any), but wake up when the sandbox stops."""
        if seconds:
            self._stopping.wait(seconds)
        while gate is not None and not gate.is_set() and not self._stopping.is_set():
            gate.wait(0.05)

    # -- the API ---------------------------------------------------------------------------

    def handle(self, method: str, target: str, authorization: str | None, body: bytes) -> Reply:
        """Answer one request (everything but the socket work)."""
        with self._lock:
            self._requests += 1
        parts = urlsplit(target)
        path = parts.path.rstrip("/")
        if path == LOGIN_PATH:
            if method != "POST":
                return error(405, "Method not allowed", "use POST", Allow="POST")
            status, answer = self.issuer.login(body)
            extra = {"Location": "https://iam.example.invalid/api/v1/auth/login"}
            return Reply(status, answer, extra if 300 <= status < 400 else {})
        if path != TASKS_PATH and not path.startswith(TASKS_PATH + "/"):
            return error(404, "Not found", f"no endpoint {method} {parts.path}")
        segments = [unquote(s) for s in path[len(TASKS_PATH) :].split("/")[1:]]
        if not segments:
            allowed = "GET, POST"
        elif len(segments) == 1:
            allowed = "GET"
        elif len(segments) == 2 and segments[1] in STATUS_ACTIONS:
            allowed = "POST"
        else:
            return error(404, "Not found", f"no endpoint {method} {parts.path}")
        if method not in allowed.split(", "):
            return error(405, "Method not allowed", f"use {allowed}", Allow=allowed)
        if not segments and method == "POST":
            return self._create(authorization, body)
        if not self._authorized(authorization):
            return _unauthorized(authorization)
        if not segments:
            params = dict(parse_qsl(parts.query, keep_blank_values=True))
            try:
                query = ListQuery.parse(params)
            except QueryError as exc:
                return error(400, "Bad request", str(exc))
            page = int(params["page"] or 0) if "page" in params else None
            count, items = self.store.query(listing.paged(query, page, self.options))
            data, raw = listing.body(count, items, self.options)
            return Reply(200, data, raw=raw)
        if len(segments) == 1:
            task = self.store.get(segments[0])
        else:
            try:
                task = self.store.set_status(segments[0], STATUS_ACTIONS[segments[1]])
            except TransitionError as exc:
                return error(400, "Bad request", str(exc))
        return Reply(200, task) if task is not None else error(404, "Not found")

    def _authorized(self, authorization: str | None) -> bool:
        """The fixed token (`--token`), or a token a login issued (and still good)."""
        expected = f"Bearer {self.options.token}".encode()
        given = authorization or ""
        if hmac.compare_digest(given.encode(), expected):
            return True
        return given.startswith("Bearer ") and self.issuer.accepts(given.removeprefix("Bearer "))

    def _create(self, authorization: str | None, body: bytes) -> Reply:
        with self._lock:
            self._create_requests += 1
        if not self._authorized(authorization):
            return _unauthorized(authorization)
        with self._lock:
            fail_roll, drop_roll = self._random.random(), self._random.random()
            refusal = self._before.popleft() if self._before else None
            if refusal is None and self._limiter is not None:
                wait = self._limiter.take()
                if wait is not None:
                    refusal = error(
                        429,
                        "Too Many Requests",
                        "sandbox: rate limit",
                        **{"Retry-After": str(max(1, math.ceil(wait)))},
                    )
        if refusal is None and fail_roll < self.options.fail_rate:
            refusal = error(500, "Internal Server Error", "sandbox: fail_rate")
        if refusal is not None:
            return refusal
        try:
            payload = json.loads(body, parse_constant=_no_constants)
        except (ValueError, UnicodeDecodeError) as exc:
            return error(400, "Invalid JSON", f"the body is not JSON: {exc}")
        problems = models.check_body(payload)
        if problems:
            details = [{"path": path, "message": message} for path, message in problems]
            return error(422, "Validation failed", details)
        try:
            task = self.store.create(payload)
        except OSError as exc:
            return error(500, "Internal Server Error", f"sandbox data file: {exc.strerror}")
        reply = Reply(200, {"id": {"identity": task["id"]}})
        with self._lock:
            fault = self._after.popleft() if self._after else None
        if fault is not None:
            reply.hang, reply.drop, reply.gate = fault.hang, fault.drop, fault.gate
        else:
            reply.hang = self.options.hang_seconds or 0.0
            reply.drop = drop_roll < self.options.drop_after_receive_rate
        return reply


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _unauthorized(authorization: str | None) -> Reply:
    if not authorization:
        return error(401, "Unauthorized", "missing bearer token", **{"WWW-Authenticate": "Bearer"})
    return error(401, "Token is expired.", None, **{"WWW-Authenticate": "Bearer"})


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
