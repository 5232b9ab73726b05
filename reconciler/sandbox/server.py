"""The sandbox on a socket: `ThreadingHTTPServer` over `SandboxApi`, and `serve_forever`.

HTTP/1.1 with keep-alive and exact Content-Length; one daemon thread per connection. Headers
and body leave in one send, and Nagle is off, so a create costs one round trip. `stop()` cuts
idle keep-alive connections and wakes requests that sleep for latency or a hang.

The Authorization header is never logged; the access log (request line and status only) is
silent unless `verbose`.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from reconciler.errors import ReconcileError
from reconciler.sandbox.api import API_PREFIX, Reply, SandboxApi, SandboxOptions, error

MAX_BODY_BYTES = 1 << 20
IDLE_TIMEOUT = 60.0  # seconds a keep-alive connection may sit idle
POLL_INTERVAL = 0.05  # how quickly stop() is noticed


class Sandbox(SandboxApi):
    """The Twin24-compatible API on loopback; `start()` serves it from a daemon thread.

    Fault hooks (`fail_next`, `drop_next`, `hang_next`, `hold_next`, `rate_limit_next`) and counters
    (`create_requests`, `tasks`) come from `SandboxApi`.
    """

    def __init__(
        self, options: SandboxOptions | None = None, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__(options, clock=clock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._busy = 0
        self._busy_lock = threading.Lock()

    def start(self) -> None:
        """Bind and serve in a background thread; raises ReconcileError if the port is taken."""
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        host, port = self.options.host, self.options.port
        try:
            self._server = _Server((host, port), self)
        except OSError as exc:
            raise ReconcileError(
                f"the sandbox cannot listen on {host}:{port} ({exc.strerror or exc}): pass "
                "another port (0 picks a free one)"
            ) from None
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name="twin24-sandbox",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, cut open connections, wake hanging requests; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Count a request as in flight while it is being answered."""
        with self._busy_lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._busy_lock:
                self._busy -= 1

    @property
    def in_flight(self) -> int:
        """Requests being answered now (a create of a killed client may still be landing)."""
        with self._busy_lock:
            return self._busy

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("sandbox not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The API base URL, e.g. `http://127.0.0.1:8024/api/v1`."""
        host = self.options.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}{API_PREFIX}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_activate(self) -> None:
        super().server_activate()
        # Never block in accept: a connection that is gone by then (a client killed after its
        # connect) left serve_forever waiting in accept, and stop() waiting on it for ever.
        self.socket.setblocking(False)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()  # BlockingIOError: nothing (serve ignores)
        connection.setblocking(True)
        with self._connections_lock:
            self._connections.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut every open connection (idle keep-alive ones would otherwise linger)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            _shutdown(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.sandbox.options.verbose:
            super().handle_error(request, client_address)


def _shutdown(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Twin24Sandbox/1"
    disable_nagle_algorithm = True
    wbufsize = -1  # headers and body leave in one send; flushed after each request
    timeout = IDLE_TIMEOUT
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        sandbox = self.server.sandbox
        with sandbox.serving():
            self._answer(sandbox)

    def _answer(self, sandbox: Sandbox) -> None:
        sandbox.pause(sandbox.options.latency)
        body = self._read_body()
        if body is None:
            return
        reply = sandbox.handle(self.command, self.path, self.headers.get("Authorization"), body)
        sandbox.pause(reply.hang, reply.gate)
        if reply.drop:
            self.log_message('"%s" stored, then the connection was cut', self.requestline)
            self.close_connection = True
            _shutdown(self.connection)
            return
        self._send(reply)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(error(411, "Length required", "send a Content-Length, not chunks"))
            return None
        length_text = self.headers.get("Content-Length", "0").strip()
        if not length_text.isdigit():
            self.close_connection = True
            self._send(error(400, "Bad request", "invalid Content-Length"))
            return None
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(error(413, "Payload too large", f"at most {MAX_BODY_BYTES} bytes"))
            return None
        return self.rfile.read(length) if length else b""

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header follows the sandbox's clock (its `clock_skew`), as createdAt does.
        return email.utils.formatdate(self.server.sandbox.now().timestamp(), usegmt=True)

    def _send(self, reply: Reply) -> None:
        if reply.raw is not None:  # a list answer in a shape that is not JSON (a fault)
            data, kind = reply.raw, "text/html"
        else:
            data, kind = json.dumps(reply.body, ensure_ascii=False).encode(), "application/json"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client went away (e.g. timed out during a hang)
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed requests (bad request line, headers too long...) get the API's error shape.
        self.close_connection = True
        self._send(error(code, message or self.responses.get(code, ("Error",))[0], explain))

    def log_message(self, format: str, *args: Any) -> None:
        # The request line and status only; headers (the token) are never logged.
        if self.server.sandbox.options.verbose:
            sys.stderr.write(f"sandbox: {self.address_string()} {format % args}\n")


def serve_forever(options: SandboxOptions) -> None:
    """Run the sandbox until SIGINT or SIGTERM (for `reconcile sandbox`)."""
    sandbox = Sandbox(options)
    sandbox.start()
    stopped = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    # A token other than the default is not echoed: it may be a real one reused.
    shown = options.token if options.token == SandboxOptions.token else "as configured"
    try:
        sys.stderr.write(
            f"sandbox listening on {sandbox.url} (token: {shown}; logins: any e-mail, the "
            "password sandbox)\n"
        )
        sys.stderr.flush()
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
