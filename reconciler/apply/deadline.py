"""The overall deadline of an API request: connect + send + the whole answer (spec 9.6).

httpx's timeouts bound each phase and each single read: a server that drips its answer one
byte a second never trips them. `Deadlines` holds, per thread, the moment the request that
thread is making must be done by, and one cut-off for every request (set when a signal stops
apply). `install` slips a network backend under an `httpx.Client` whose sockets never wait
past either: each connect, write and read gets at most the time left, and reads wait in
slices of `SLICE` seconds, so a cut-off set while a read waits takes effect within a slice.
A request past its deadline fails with the httpx timeout of the phase it was in (connect:
nothing was sent); `Deadlines.expired()` says which limit it was.

The backend sits inside httpx's connection pools (`_transport._pool._network_backend`, the
one place this module touches httpx and httpcore internals); `install` says how many pools it
reached, and the client's tests fail if an upgrade of either library moves them.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import httpcore
import httpx

SLICE = 0.2  # seconds a read waits before it looks at the deadline and the cut-off again
Phase = Literal["connect", "read", "write"]
_ERRORS: dict[Phase, type[httpcore.TimeoutException]] = {
    "connect": httpcore.ConnectTimeout,
    "read": httpcore.ReadTimeout,
    "write": httpcore.WriteTimeout,
}


class Deadlines:
    """When the current request of each thread must end, and a cut-off for all of them."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._cutoff: float | None = None

    @contextmanager
    def request(self, seconds: float) -> Iterator[None]:
        """Run one request (in this thread) that must end within `seconds`."""
        self._local.until = time.monotonic() + seconds
        self._local.expired = None
        try:
            yield
        finally:
            self._local.until = None

    def cut_short(self, seconds: float) -> None:
        """From now on no request, in flight or later, goes on for more than `seconds`."""
        cutoff = time.monotonic() + seconds
        if self._cutoff is None or cutoff < self._cutoff:
            self._cutoff = cutoff

    def expired(self) -> Literal["deadline", "cut-off"] | None:
        """Which limit ended this thread's last request, if one did."""
        expired: Literal["deadline", "cut-off"] | None = getattr(self._local, "expired", None)
        return expired

    def bound(self, timeout: float | None, phase: Phase) -> float | None:
        """`timeout` cut to the time left; raises the phase's timeout when none is left."""
        now = time.monotonic()
        limits = []
        until: float | None = getattr(self._local, "until", None)
        if until is not None:
            limits.append((until - now, "deadline"))
        if self._cutoff is not None:
            limits.append((self._cutoff - now, "cut-off"))
        if not limits:
            return timeout
        left, which = min(limits)
        if left <= 0:
            self._local.expired = which
            raise _ERRORS[phase](f"the {which} of the request passed")
        return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadlines: Deadlines) -> None:
        self._inner, self._deadlines = inner, deadlines

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        started = time.monotonic()
        while True:
            own = None if timeout is None else timeout - (time.monotonic() - started)
            if own is not None and own <= 0:
                raise httpcore.ReadTimeout("timed out")  # httpx's own read timeout
            left = self._deadlines.bound(own, "read")
            wait = SLICE if left is None else min(left, SLICE)
            try:
                return self._inner.read(max_bytes, wait)
            except httpcore.ReadTimeout:
                continue  # look at the limits again

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadlines.bound(timeout, "write"))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = self._deadlines.bound(timeout, "connect")
        return _Stream(
            self._inner.start_tls(ssl_context, server_hostname, bounded), self._deadlines
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, deadlines: Deadlines) -> None:
        self._inner, self._deadlines = inner, deadlines

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = self._deadlines.bound(timeout, "connect")
        stream = self._inner.connect_tcp(host, port, bounded, local_address, socket_options)
        return _Stream(stream, self._deadlines)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = self._deadlines.bound(timeout, "connect")
        stream = self._inner.connect_unix_socket(path, bounded, socket_options)
        return _Stream(stream, self._deadlines)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def install(client: httpx.Client, deadlines: Deadlines) -> int:
    """Put `deadlines` under every connection pool of `client`; returns how many it reached
    (0 for an injected transport such as `httpx.MockTransport`, which has no sockets)."""
    transports: list[Any] = [client._transport, *client._mounts.values()]
    reached = 0
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend) and not isinstance(backend, _Backend):
            pool._network_backend = _Backend(backend, deadlines)  # type: ignore[union-attr]
            reached += 1
    return reached
