"""A hostile Twin24 API for end-to-end tests: the project's sandbox behind a raw HTTP server
whose answers a test rewrites on the wire. Not a test module: helpers only.

The sandbox (`SandboxApi`, socket-free) decides every answer as the real contract does; this
server only changes what the sandbox cannot: the status line's reason phrase, the `Date`
header, and the body of list answers (`rewrite_list(body) -> body`, after the sandbox paged
it). `fail_list` answers list requests with a fixed status and body instead, `fail_create`
the next creates (nothing stored). A create the sandbox queued as `drop_next` is stored, then
its connection is cut unanswered.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from reconciler.sandbox.api import TASKS_PATH, Reply, SandboxApi, SandboxOptions
from reconciler.sandbox.tasks import utc_now


class HostileApi:
    """The sandbox's behaviour, answers rewritten; start with `with HostileApi(token) as api`."""

    def __init__(self, token: str) -> None:
        self.sandbox = SandboxApi(SandboxOptions(token=token, seed=1))
        self.reason: str | None = None  # the reason phrase of every answer
        self.date: Callable[[], str | None] = lambda: format_datetime(utc_now(), usegmt=True)
        self.rewrite_list: Callable[[Any], Any] | None = None
        self.fail_list: tuple[int, bytes] | None = None
        self.fail_create: list[tuple[int, bytes]] = []
        self.creates = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HostileApi:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v1"

    def names(self) -> list[str]:
        """The names of the tasks on the server, sorted (a duplicate shows twice)."""
        return sorted(str(task["name"]) for task in self.sandbox.tasks.values())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                listing = self.command == "GET" and urlsplit(self.path).path == TASKS_PATH
                if self.command == "POST":
                    api.creates += 1
                    if api.fail_create:
                        self._send(*api.fail_create.pop(0))
                        return
                if listing and api.fail_list is not None:
                    self._send(*api.fail_list)
                    return
                reply = api.sandbox.handle(
                    self.command, self.path, self.headers.get("Authorization"), body
                )
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                data = reply.body
                if listing and reply.status == 200 and api.rewrite_list is not None:
                    data = api.rewrite_list(data)
                self._send(reply.status, json.dumps(data).encode(), reply)

            def _send(self, status: int, data: bytes, reply: Reply | None = None) -> None:
                self.send_response_only(status, api.reason)
                date = api.date()
                if date is not None:
                    self.send_header("Date", date)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (reply.headers if reply else {}).items():
                    self.send_header(name, value)
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

        return Handler
