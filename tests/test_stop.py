"""Spec 9.6 and 5: every request has an overall deadline, a stop signal ends a waiting create
within seconds, and a signal during start-up exits like one during the run (issue 13, items
6 and 7).

The console script in a subprocess, as CI runs it, against a real loopback server that
answers list requests at once and drips its create answers one byte a second (a read timeout
never trips on it: only the overall deadline does). Start-up signals are sent at a known
moment: while the command waits on a FIFO token file (after validation and the plan, before
apply's own handlers), or from an import hook (during imports and validation).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_apply_e2e import RECONCILE, cli_env, finish, start_apply, wait_for, write_campaigns

from reconciler.state.model import loads

STATE = Path("reconcile.state.json")
SIGNALS = [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 143)]


class _Dripping(ThreadingHTTPServer):
    daemon_threads = True
    creates = 0
    stopping = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Dripping

    def do_GET(self) -> None:  # the list endpoint: no task, at once
        body = json.dumps({"count": 0, "items": []}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # a create: one byte a second
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.creates += 1
        body = b'{"id": {"identity": "dripped-1"}}'
        data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        for byte in data:
            if self.server.stopping.wait(1.0):
                return
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return  # the client gave up
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def dripping() -> Iterator[_Dripping]:
    server = _Dripping(("127.0.0.1", 0), _Handler)
    server.stopping = threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.stopping.set()
    server.shutdown()
    server.server_close()
    thread.join()


def url_of(server: _Dripping) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/api/v1"


def pending_keys() -> list[str]:
    state = loads(STATE.read_text(encoding="utf-8"), str(STATE))
    return sorted(k for k, e in state.campaigns.items() if e.status == "pending")


# --- the overall deadline -----------------------------------------------------------------


def test_a_dripped_create_answer_ends_in_doubt_at_the_deadline(
    dripping: _Dripping, workdir: Path
) -> None:
    write_campaigns(workdir, 2)
    started = time.monotonic()
    proc = start_apply(
        url_of(dripping), "--parallelism", "1", env=cli_env(RECONCILE_REQUEST_DEADLINE="2")
    )
    result = finish(proc, timeout=30)  # the whole answer would take about 70 s
    took = time.monotonic() - started
    assert result.code == 1, result.output
    assert "c000: outcome unknown (no complete answer within the 2s deadline" in result.stderr
    assert "Apply: 0 created, 0 adopted, 0 moved, 0 refused, 2 in doubt." in result.stdout
    assert pending_keys() == ["c000", "c001"]  # recorded, never re-sent blindly
    assert dripping.creates == 2
    assert took < 25


def test_sigterm_during_a_waiting_create_stops_within_seconds(
    dripping: _Dripping, workdir: Path
) -> None:
    write_campaigns(workdir, 3)
    proc = start_apply(url_of(dripping), "--parallelism", "1")  # the default 60 s deadline
    try:
        wait_for(lambda: dripping.creates == 1, what="the first create", proc=proc)
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        result = finish(proc, timeout=30)
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
    assert result.code == 143, result.output
    assert took < 9  # CI kills about 10 s after its signal
    assert "SIGTERM received" in result.stderr
    assert "c000: outcome unknown (apply was stopped while the create was under way" in (
        result.stderr
    )
    assert "Apply: 0 created, 0 adopted, 0 moved, 0 refused, 1 in doubt." in result.stdout
    assert dripping.creates == 1 and pending_keys() == ["c000"]


# --- signals during start-up --------------------------------------------------------------


# The signal arrives exactly while apply reads its token (before the plan, spec 9.3, and before
# its own handlers). A FIFO token file no longer holds it there: it is refused at once.
AT_THE_TOKEN = """
import os, signal, sys
from reconciler.apply import auth

number = getattr(signal, sys.argv[1])

def read_token(*args, **kwargs):
    os.kill(os.getpid(), number)
    return "not-reached"

auth.read_token = read_token
sys.argv = ["reconcile", *sys.argv[2:]]
from reconciler.cli import run
run()
"""


@pytest.mark.parametrize(("name", "code"), SIGNALS)
def test_a_signal_before_apply_s_handlers_exits_like_one_during_the_run(
    workdir: Path, name: str, code: int
) -> None:
    write_campaigns(workdir, 2)
    args = ["apply", "--api-url", "http://127.0.0.1:9/api/v1", "--token-file", "token"]
    proc = subprocess.run(
        [sys.executable, "-c", AT_THE_TOKEN, name, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(None),
    )
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.endswith(f"{name} received: stopped.\n")
    assert "Traceback" not in proc.stderr and "Aborted" not in proc.stderr
    assert proc.stdout == "" and not STATE.exists()  # credentials come before the plan
    again = subprocess.run(  # the lock went with the process
        [str(RECONCILE), "state", "rm", "c000"], capture_output=True, text=True, timeout=60
    )
    assert "locked" not in again.stderr and "no state entry 'c000'" in again.stderr


HOOKED = """
import os, signal, sys

module, number = sys.argv[1], getattr(signal, sys.argv[2])

class SignalOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == module:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), number)
        return None

sys.meta_path.insert(0, SignalOnImport())
sys.argv = ["reconcile", *sys.argv[3:]]
from reconciler.cli import run
run()
"""


@pytest.mark.parametrize(("name", "code"), SIGNALS)
@pytest.mark.parametrize(
    ("module", "args"),
    [("reconciler.cli.main", ("--version",)), ("reconciler.config.validate", ("plan",))],
    ids=["imports", "validation"],
)
def test_a_signal_during_start_up_exits_130_or_143_without_a_traceback(
    workdir: Path, module: str, args: tuple[str, ...], name: str, code: int
) -> None:
    write_campaigns(workdir, 1)
    proc = subprocess.run(
        [sys.executable, "-c", HOOKED, module, name, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
    )
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.endswith(f"{name} received: stopped.\n"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_an_ignored_signal_stays_ignored() -> None:
    """nohup, or a background job of a script, ignores SIGHUP or SIGINT on purpose."""
    from reconciler.cli import interrupt

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with interrupt.exit_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back
    finally:
        signal.signal(signal.SIGHUP, before)
