"""Crash consistency: an apply killed with SIGKILL at many points never duplicates a task.

Each kill point starts a fresh sandbox (latency 0.05 s, so creates are in flight) and a fresh
state (a folder with its own state file, or a PostgreSQL workspace of its own), starts an
apply of six campaigns with --parallelism 2, waits until the server has received k creates
(k = 0 waits for the first `pending` record), sleeps a seeded random moment and kills the
process. Then apply runs again (and with --retry-pending for what is still pending, the grace
period set to 0 once the server has settled) until it exits 0. The server must end with
exactly one task per campaign and the state must map each key to it. It runs once per state
backend, each with all the kill points.
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest
from pg_fixtures import StateBackend
from test_apply_e2e import (
    JOURNAL,
    TOKEN,
    Result,
    apply,
    assert_in_sync,
    cli_env,
    start_apply,
    unfolded,
    use,
    wait_for,
    write_campaigns,
)

from reconciler.sandbox import Sandbox, SandboxOptions

CAMPAIGNS = 6
KILL_POINTS = 21  # k = 0..6, three times each with different random delays
LATENCY = 0.05
SEED = 20261127


def has_pending(backend: StateBackend) -> bool:
    """A `pending` record was written: in the journal file, or in the workspace."""
    if backend.kind == "postgres":
        return bool(backend.pending())
    try:
        return b'"op":"pending"' in JOURNAL.read_bytes()
    except FileNotFoundError:
        return False


def kill_after(sandbox: Sandbox, backend: StateBackend, k: int, delay: float) -> None:
    """Start an apply, SIGKILL it `delay` seconds after the server received `k` creates."""
    proc = start_apply(sandbox.url, "--parallelism", "2")
    try:
        if k == 0:
            wait_for(lambda: has_pending(backend) or proc.poll() is not None)
        else:
            wait_for(lambda: sandbox.create_requests >= k or proc.poll() is not None)
        time.sleep(delay)
        proc.kill()  # nothing, if the apply has already finished
    finally:
        proc.communicate(timeout=30)


def recover(sandbox: Sandbox, backend: StateBackend) -> list[Result]:
    """Apply until it exits 0, re-sending only what the server provably does not have."""
    runs = [apply(sandbox.url, "--parallelism", "2")]
    for _ in range(3):
        if runs[-1].code == 0:
            return runs
        pending = backend.pending()
        assert pending, runs[-1].output  # the only acceptable reason to fail here
        # A create in flight at the kill lands on the server after the client is gone: wait
        # until the server has answered everything, so --retry-pending only re-sends what the
        # server provably does not have.
        wait_for(lambda: sandbox.in_flight == 0, what="the server to settle")
        retry = [arg for key in pending for arg in ("--retry-pending", key)]
        runs.append(apply(sandbox.url, *retry, env=cli_env(RECONCILE_PENDING_GRACE="0")))
    assert runs[-1].code == 0, [r.output for r in runs]
    return runs


@pytest.mark.slow
def test_an_apply_killed_at_any_point_never_duplicates_a_task(
    state_backend: StateBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(SEED)
    template = tmp_path / "template"
    keys = write_campaigns(template, CAMPAIGNS)
    killed_with_pending = adopted = retried = 0
    for point in range(KILL_POINTS):
        k = point % (CAMPAIGNS + 1)
        folder = tmp_path / f"kill-{point:02d}-after-{k}"
        shutil.copytree(template / "campaigns", folder / "campaigns")
        monkeypatch.chdir(folder)
        backend = state_backend  # the file: reconcile.state.json in this point's folder
        if backend.kind == "postgres":
            backend = replace(backend, workspace=f"{backend.workspace}-{point:02d}")
        use(backend, monkeypatch)
        sandbox = Sandbox(SandboxOptions(port=0, token=TOKEN, seed=point, latency=LATENCY))
        sandbox.start()
        try:
            kill_after(sandbox, backend, k, rng.uniform(0, 2 * LATENCY))
            if backend.pending():  # read-only (a file's journal is replayed in memory)
                killed_with_pending += 1

            runs = recover(sandbox, backend)

            text = "".join(r.stdout for r in runs)
            adopted += text.count("; adopted")
            retried += text.count("re-creating (--retry-pending)")
            assert_in_sync(sandbox, keys, backend)
            assert not unfolded(backend) and backend.lock_holder_pid() is None
            if backend.kind == "file":  # no temporary file left beside the state file
                assert not list(folder.glob(".reconcile.state.json*.tmp"))
        finally:
            sandbox.stop()
    # The kill points did hit creates in flight, and those were found again, not re-sent.
    # (--retry-pending is rarely needed here: a create journaled as pending is almost always
    # already on the wire when the kill lands; test_apply_e2e covers that path with 5xx.)
    assert killed_with_pending >= 3, killed_with_pending
    assert adopted >= 3, (adopted, retried)
