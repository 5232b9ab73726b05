"""End to end: the `reconcile` console script in a subprocess against the sandbox over loopback.

Every test counts the tasks on the server afterwards: a duplicated create rings people twice.
Each test that uses the `backend` fixture runs twice: with the state file reconcile.state.json
in its working folder, and with a fresh workspace of a throw-away PostgreSQL server
(tests/pg_fixtures.py). Checks of the file's own artefacts (journal, backup, lock) run for the
file only. The helpers at the top are shared with `test_crash.py`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import StartSandbox, edit
from pg_fixtures import StateBackend

from reconciler.sandbox import Sandbox
from reconciler.state.model import loads

RECONCILE = Path(sys.executable).parent / "reconcile"
EXAMPLES = Path(__file__).resolve().parent.parent / "campaigns"
TOKEN = "t0ken-SECRET-123"
WRONG_TOKEN = "wr0ng-T0KEN-456"
STATE = Path("reconcile.state.json")
JOURNAL = Path("reconcile.state.json.journal")
BACKUP = Path("reconcile.state.json.backup")
SERVER_FIELDS = ("id", "status", "createdAt", "updatedAt")
PROXY_VARS = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}


# --- helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli_env(token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    """The subprocess environment: no proxies, no colour, the token unless None."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in PROXY_VARS}
    env["NO_COLOR"] = "1"
    if token is not None:
        env["TWIN24_TOKEN"] = token
    env.update(extra)
    return env


def reconcile(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
    """Run the console script in the current folder and wait for it."""
    proc = subprocess.run(
        [str(RECONCILE), *args],
        capture_output=True,
        text=True,
        env=env if env is not None else cli_env(),
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def apply_args(url: str, *extra: str) -> list[str]:
    return ["apply", "--api-url", url, "--auto-approve", "--rate", "0", *extra]


def apply(url: str, *extra: str, env: dict[str, str] | None = None) -> Result:
    return reconcile(*apply_args(url, *extra), env=env)


def start_apply(url: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start an apply in the background (the caller waits or signals it)."""
    return subprocess.Popen(
        [str(RECONCILE), *apply_args(url, *extra)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env if env is not None else cli_env(),
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> Result:
    stdout, stderr = proc.communicate(timeout=timeout)
    return Result(proc.returncode, stdout, stderr)


def campaign_text(i: int) -> str:
    """A small valid campaign named `E2E campaign NNN`, starting some day in 2031."""
    start = f'startType: time\nstartMoment: "2031-{1 + i % 12:02d}-{1 + i // 12 % 28:02d} 10:00"\n'
    return edit("startType: manual\n", start, edit("Spring promo", f"E2E campaign {i:03d}"))


def name_of(key: str) -> str:
    return f"E2E campaign {int(key[1:]):03d}"


def write_campaigns(folder: Path, count: int, first: int = 0) -> list[str]:
    """Campaign files `c000.yaml`... below `folder/campaigns`; returns their keys."""
    root = folder / "campaigns"
    root.mkdir(parents=True, exist_ok=True)
    keys = []
    for i in range(first, first + count):
        (root / f"c{i:03d}.yaml").write_text(campaign_text(i), encoding="utf-8")
        keys.append(f"c{i:03d}")
    return keys


def read_state(path: Path = STATE) -> dict[str, Any]:
    """The state file as JSON, after checking it parses as a state."""
    text = path.read_text(encoding="utf-8")
    loads(text, str(path))
    data: dict[str, Any] = json.loads(text)
    return data


def ids_by_name(sandbox: Sandbox) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for identity, task in sandbox.tasks.items():
        names.setdefault(task["name"], []).append(identity)
    return names


def body_of(task: dict[str, Any]) -> dict[str, Any]:
    """What the client sent, as the server stored it (without the fields the server adds)."""
    return {k: v for k, v in task.items() if k not in SERVER_FIELDS}


def assert_in_sync(sandbox: Sandbox, keys: list[str], backend: StateBackend) -> None:
    """Exactly one task per campaign on the server, and the state maps each key to it (for a
    file: the file itself does, not only its journal)."""
    names = ids_by_name(sandbox)
    assert len(sandbox.tasks) == len(keys), names
    entries = backend.read_json()["campaigns"]
    if backend.kind == "file":
        assert read_state(Path(backend.state))["campaigns"] == entries
    else:
        assert not STATE.exists()  # the workspace was used, not a file
    assert sorted(entries) == sorted(keys)
    for key in keys:
        assert len(names.get(name_of(key), [])) == 1, (key, names)
        assert entries[key]["status"] == "created", (key, entries[key])
        assert entries[key]["identity"] == names[name_of(key)][0]


def wait_for(
    condition: Callable[[], bool],
    timeout: float = 30,
    what: str = "",
    proc: subprocess.Popen[str] | None = None,
) -> None:
    """Poll `condition`; fail after `timeout`, or at once (with its output) if `proc` ended."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"ended before {what}: {finish(proc)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.005)


def use(backend: StateBackend, monkeypatch: pytest.MonkeyPatch) -> StateBackend:
    """Select `backend` for every `reconcile` started from now on (`cli_env` copies the
    environment: RECONCILE_STATE and RECONCILE_WORKSPACE)."""
    for name, value in backend.env().items():
        monkeypatch.setenv(name, value)
    return backend


def unfolded(backend: StateBackend) -> bool:
    """Whether the state has records not yet folded into a written state: a journal beside the
    file, or a workspace's count of records since its last write."""
    if backend.kind == "file":
        return Path(backend.state + ".journal").exists()
    import psycopg

    with psycopg.connect(backend.state, autocommit=True) as conn:
        sql = "SELECT records FROM reconcile.workspaces WHERE name = %s"
        row = conn.execute(sql, (backend.workspace,)).fetchone()
    return bool(row and row[0])


def nothing_written(backend: StateBackend) -> bool:
    """No state at all: no file (not even an empty one), or a workspace never written to."""
    if backend.kind == "file":
        return not Path(backend.state).exists()
    state = backend.read()
    return not state.exists and not state.campaigns


def lose_the_state(backend: StateBackend, monkeypatch: pytest.MonkeyPatch) -> StateBackend:
    """The state is gone: the file deleted, or (PostgreSQL) a fresh workspace selected."""
    if backend.kind == "file":
        Path(backend.state).unlink()
        return backend
    return use(replace(backend, workspace=backend.workspace + "-lost"), monkeypatch)


def halt(sandbox: Sandbox, identity: str) -> None:
    response = httpx.post(
        f"{sandbox.url}/telephony/autoCall/{identity}/halted",
        headers={"Authorization": f"Bearer {TOKEN}"},
        trust_env=False,
    )
    assert response.status_code == 200, response.text


@pytest.fixture
def start_sandbox(sandboxes: StartSandbox) -> StartSandbox:
    """Loopback sandboxes that take this module's token (conftest's `sandboxes`)."""
    return partial(sandboxes, token=TOKEN)


@pytest.fixture
def sandbox(start_sandbox: StartSandbox) -> Sandbox:
    return start_sandbox()


@pytest.fixture
def backend(state_backend: StateBackend, monkeypatch: pytest.MonkeyPatch) -> StateBackend:
    """This test's state, once as a file and once as a PostgreSQL workspace (the test runs
    for each), selected for every `reconcile` the test starts."""
    return use(state_backend, monkeypatch)


@pytest.fixture
def three(workdir: Path) -> list[str]:
    """Three campaigns in the (current) working folder."""
    return write_campaigns(workdir, 3)


def assert_plan_empty(url: str) -> None:
    result = reconcile("plan", "--api-url", url, "--detailed-exitcode")
    assert result.code == 0, result.output
    assert "Plan: 0 to create, 0 to replace" in result.stdout


# --- 1. the happy path ----------------------------------------------------------------------


def test_creates_send_the_plan_payloads_and_a_second_apply_sends_nothing(
    sandbox: Sandbox, backend: StateBackend, three: list[str]
) -> None:
    planned = json.loads(reconcile("plan", "--format", "json").stdout)
    payloads = {a["key"]: a["payload"] for a in planned["actions"]}
    assert sorted(payloads) == three

    result = apply(sandbox.url)

    assert result.code == 0, result.output
    assert "Apply: 3 created, 0 adopted, 0 moved, 0 refused, 0 in doubt." in result.stdout
    assert sandbox.create_requests == 3
    assert_in_sync(sandbox, three, backend)
    state = backend.read_json()
    for key in three:
        task = sandbox.tasks[state["campaigns"][key]["identity"]]
        assert body_of(task) == payloads[key] == state["campaigns"][key]["payload"]
    assert state["api_url"] == sandbox.url
    assert not unfolded(backend)

    again = apply(sandbox.url)
    assert again.code == 0, again.output
    assert "Apply: 0 created, 0 adopted, 0 moved, 0 refused, 0 in doubt." in again.stdout
    assert sandbox.create_requests == 3
    assert len(sandbox.tasks) == 3
    assert_plan_empty(sandbox.url)


# --- 2. a refused create ------------------------------------------------------------------


def test_a_refused_create_is_reported_at_its_file_and_the_others_go_on(
    sandbox: Sandbox, backend: StateBackend, three: list[str]
) -> None:
    sandbox.fail_next(1, status=422)  # parallelism 1: the first key in order gets it

    result = apply(sandbox.url, "--parallelism", "1")

    assert result.code == 1, result.output
    assert re.search(
        r"^campaigns/c000\.yaml:1:1: error: c000: refused .*HTTP 422", result.stderr, re.M
    )
    assert "Apply: 2 created, 0 adopted, 0 moved, 1 refused, 0 in doubt." in result.stdout
    assert len(sandbox.tasks) == 2
    assert sorted(backend.read_json()["campaigns"]) == ["c001", "c002"]
    assert name_of("c000") not in ids_by_name(sandbox)

    again = apply(sandbox.url)  # the fault is spent: the refused one is created now
    assert again.code == 0, again.output
    assert sandbox.create_requests == 4
    assert_in_sync(sandbox, three, backend)
    assert_plan_empty(sandbox.url)


# --- 3. the token -----------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [[], ["--no-remote-check"]], ids=["check", "no-check"])
def test_a_wrong_token_stops_apply_before_any_create(
    sandbox: Sandbox, backend: StateBackend, three: list[str], extra: list[str]
) -> None:
    if extra:  # --no-remote-check is refused outright while the state has no entries (F3)
        seeded = apply(sandbox.url, "--target", three[0])
        assert seeded.code == 0, seeded.output
    before = backend.read()
    result = apply(sandbox.url, *extra, env=cli_env(WRONG_TOKEN))

    assert result.code == 1, result.output
    assert "error: nothing was created: the token is missing, wrong or expired" in result.stderr
    assert "--no-remote-check" not in result.stderr  # it would not help
    assert len(sandbox.tasks) == sandbox.create_requests == len(before.campaigns)
    assert WRONG_TOKEN not in result.output
    assert backend.read() == before
    assert nothing_written(backend) == (not extra)


def test_a_saved_plan_stays_fresh_after_an_apply_that_changed_nothing(
    sandbox: Sandbox, backend: StateBackend, three: list[str]
) -> None:
    saved = reconcile("plan", "--api-url", sandbox.url, "--out", "plan.json")
    assert saved.code == 0, saved.output

    failed = apply(sandbox.url, "plan.json", env=cli_env(WRONG_TOKEN))
    assert failed.code == 1 and "token is missing, wrong or expired" in failed.stderr

    retried = apply(sandbox.url, "plan.json")  # the pipeline's retry with the fixed secret
    assert retried.code == 0, retried.output
    assert_in_sync(sandbox, three, backend)


def test_a_401_on_a_create_stops_the_creates_not_yet_started(
    sandbox: Sandbox, backend: StateBackend, three: list[str]
) -> None:
    sandbox.fail_next(1, status=401)  # as if the token expired between the list and the create

    result = apply(sandbox.url, "--parallelism", "1")

    assert result.code == 1, result.output
    assert "the token is missing, wrong or expired; stopping" in result.stderr
    assert "stopped: the API answered 401" in result.stderr
    assert sandbox.tasks == {} and sandbox.create_requests == 1
    assert backend.read_json()["campaigns"] == {}
    assert TOKEN not in result.output

    again = apply(sandbox.url)
    assert again.code == 0, again.output
    assert_in_sync(sandbox, three, backend)


def test_the_token_never_appears_in_output_state_journal_backup_or_plan_file(
    sandbox: Sandbox, backend: StateBackend, workdir: Path
) -> None:
    keys = write_campaigns(workdir, 2)
    token_file = workdir / "token.txt"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    no_env = cli_env(token=None)
    outputs: list[str] = []

    saved = reconcile("plan", "--api-url", sandbox.url, "--out", "plan.json", env=no_env)
    outputs.append(saved.output)
    first = apply(sandbox.url, "plan.json", "--token-file", str(token_file), env=no_env)
    outputs.append(first.output)
    assert first.code == 0, first.output

    # A held create keeps its pending record (journal file, or workspace row) long enough
    # to read it.
    keys += write_campaigns(workdir, 1, first=2)
    gate = sandbox.hold_next(1)
    proc = start_apply(sandbox.url, "--token-file", str(token_file), env=no_env)
    try:
        wait_for(lambda: sandbox.create_requests == 3, what="the held create", proc=proc)
        during = reconcile("state", "pull")  # the state as a file, on either backend
        assert during.code == 0 and backend.pending() == ["c002"], during.output
        stored = [during.stdout]
        if backend.kind == "file":
            stored.append(JOURNAL.read_text(encoding="utf-8"))
            assert '"op":"pending"' in stored[-1]
    finally:
        gate.set()
    held = finish(proc)
    outputs.append(held.output)
    assert held.code == 0, held.output

    wrong = workdir / "wrong.txt"
    wrong.write_text(WRONG_TOKEN, encoding="utf-8")
    refused = apply(sandbox.url, "--token-file", str(wrong), env=cli_env(WRONG_TOKEN))
    outputs.append(refused.output)
    assert refused.code == 0, refused.output  # nothing to do: no request at all

    pulled = reconcile("state", "pull")
    assert pulled.code == 0 and sorted(loads(pulled.stdout, "pulled").campaigns) == keys
    stored += [pulled.stdout, Path("plan.json").read_text()]
    if backend.kind == "file":  # and the files beside the state file
        stored += [p.read_text() for p in (STATE, BACKUP)]
    for text in [*outputs, *stored]:
        assert TOKEN not in text
        assert WRONG_TOKEN not in text
    assert_in_sync(sandbox, keys, backend)


def test_a_token_file_with_a_wrong_token_says_so(
    sandbox: Sandbox, backend: StateBackend, three: list[str]
) -> None:
    Path("token.txt").write_text(WRONG_TOKEN, encoding="utf-8")

    result = apply(sandbox.url, "--token-file", "token.txt", env=cli_env(token=None))

    assert result.code == 1
    assert "token is missing, wrong or expired" in result.stderr
    assert WRONG_TOKEN not in result.output
    assert sandbox.tasks == {} and nothing_written(backend)


def test_no_token_at_all_says_so(sandbox: Sandbox, backend: StateBackend, three: list[str]) -> None:
    result = apply(sandbox.url, env=cli_env(token=None))
    assert result.code == 1
    assert "no Twin24 token: set TWIN24_TOKEN or pass --token-file FILE" in result.stderr
    assert sandbox.create_requests == 0 and sandbox.tasks == {}
    assert nothing_written(backend)


# --- 4, 5. the create reached the server, the answer was lost: adopted next time ----------


def lose_the_answer(sandbox: Sandbox, how: str) -> dict[str, str]:
    """Queue a fault for the next create; returns the env the apply needs."""
    if how == "drop":
        sandbox.drop_next(1)
        return cli_env()
    sandbox.hang_next(1, 3.0)
    return cli_env(RECONCILE_READ_TIMEOUT="0.5")


@pytest.mark.parametrize("how", ["drop", "hang"])
def test_a_create_whose_answer_is_lost_is_pending_then_adopted(
    sandbox: Sandbox, backend: StateBackend, three: list[str], how: str
) -> None:
    env = lose_the_answer(sandbox, how)

    result = apply(sandbox.url, "--parallelism", "1", env=env)

    assert result.code == 1, result.output
    assert "c000: outcome unknown" in result.stderr
    assert "Apply: 2 created, 0 adopted, 0 moved, 0 refused, 1 in doubt." in result.stdout
    entry = backend.read_json()["campaigns"]["c000"]
    assert entry["status"] == "pending" and entry["identity"] is None
    assert len(sandbox.tasks) == 3  # the server did create it
    assert sandbox.create_requests == 3
    plan = reconcile("plan", "--api-url", sandbox.url)
    assert "? in doubt" in plan.stdout or "in doubt" in plan.stdout

    again = apply(sandbox.url, env=env)

    assert again.code == 0, again.output
    [identity] = ids_by_name(sandbox)[name_of("c000")]
    assert f"c000: found on the platform as {identity}; adopted" in again.stdout
    assert sandbox.create_requests == 3
    assert_in_sync(sandbox, three, backend)
    assert_plan_empty(sandbox.url)


# --- 6. 5xx: in doubt and not on the platform; 429: retried -------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_create_is_never_resent_without_retry_pending(
    sandbox: Sandbox, backend: StateBackend, three: list[str], status: int
) -> None:
    sandbox.fail_next(1, status=status)

    result = apply(sandbox.url, "--parallelism", "1")

    assert result.code == 1, result.output
    assert f"c000: outcome unknown (HTTP {status}" in result.stderr
    assert backend.pending() == ["c000"]
    assert len(sandbox.tasks) == 2 and sandbox.create_requests == 3

    soon = apply(sandbox.url)  # within the grace period: "not there" is not believed yet
    assert soon.code == 1, soon.output
    assert f"c000: not on the platform yet; run `reconcile apply --api-url {sandbox.url}` " in (
        soon.stdout
    )
    assert sandbox.create_requests == 3

    later = apply(sandbox.url, env=cli_env(RECONCILE_PENDING_GRACE="0"))  # no --retry-pending
    assert later.code == 1, later.output
    assert (
        f"re-send it with `reconcile apply --api-url {sandbox.url} --retry-pending c000`"
        in later.stdout
    )
    assert sandbox.create_requests == 3
    assert backend.pending() == ["c000"]

    retried = apply(
        sandbox.url, "--retry-pending", "c000", env=cli_env(RECONCILE_PENDING_GRACE="0")
    )
    assert retried.code == 0, retried.output
    assert "c000: not on the platform; re-creating (--retry-pending)" in retried.stdout
    assert "Apply: 1 created, 0 adopted, 0 moved, 0 refused, 0 in doubt." in retried.stdout
    assert sandbox.create_requests == 4
    assert_in_sync(sandbox, three, backend)
    assert_plan_empty(sandbox.url)


@pytest.mark.slow
def test_a_429_with_retry_after_is_retried_and_created_once(
    sandbox: Sandbox, backend: StateBackend, three: list[str]
) -> None:
    sandbox.rate_limit_next(1, retry_after=1)
    started = time.monotonic()

    result = apply(sandbox.url, "--parallelism", "1")

    assert result.code == 0, result.output
    assert time.monotonic() - started >= 1.0  # it honoured Retry-After
    assert sandbox.create_requests == 4
    assert_in_sync(sandbox, three, backend)


def test_a_retry_after_past_the_cap_stops_apply(
    sandbox: Sandbox, backend: StateBackend, three: list[str]
) -> None:
    sandbox.rate_limit_next(1, retry_after=3600)
    started = time.monotonic()

    result = apply(sandbox.url, "--parallelism", "1")

    assert time.monotonic() - started < 20
    assert result.code == 1, result.output
    assert "more than the 60s cap" in result.output
    assert sandbox.create_requests == 1 and sandbox.tasks == {}
    assert backend.read_json()["campaigns"] == {}


# --- 8. two applies at once ---------------------------------------------------------------


@pytest.mark.slow
def test_two_applies_at_once_one_fails_on_the_lock_or_waits(
    start_sandbox: StartSandbox, backend: StateBackend, three: list[str]
) -> None:
    sandbox = start_sandbox()
    gate = sandbox.hold_next(1)  # the first create stays in flight until the test says so
    first = start_apply(sandbox.url, "--parallelism", "1")
    try:
        wait_for(
            lambda: sandbox.create_requests == 1 and backend.lock_holder_pid() == first.pid,
            what="the held create",
            proc=first,
        )
        waiting = start_apply(sandbox.url, "--lock-timeout", "60")

        at_once = apply(sandbox.url)

        assert at_once.code == 1
        assert f"state is locked by pid {first.pid} on host " in at_once.stderr
        assert "(reconcile apply)" in at_once.stderr
        gate.set()
        done = finish(first)
        waited = finish(waiting)
    finally:
        gate.set()
        if first.poll() is None:
            first.kill()
    assert done.code == 0, done.output
    assert waited.code == 0, waited.output
    assert "Apply: 0 created, 0 adopted, 0 moved, 0 refused, 0 in doubt." in waited.stdout
    assert sandbox.create_requests == 3
    assert_in_sync(sandbox, three, backend)
    assert backend.lock_holder_pid() is None


# --- 9. a lost state (file deleted, or another workspace) --------------------------------


def test_a_lost_state_refuses_every_create_and_names_the_import_commands(
    sandbox: Sandbox, backend: StateBackend, three: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert apply(sandbox.url).code == 0
    tasks = sandbox.tasks
    backend = lose_the_state(backend, monkeypatch)

    result = apply(sandbox.url)

    assert result.code == 1, result.output
    commands = re.findall(r"run `(reconcile import [^`]+)`", result.stderr)
    assert len(commands) == 3, result.stderr
    assert sandbox.tasks == tasks and sandbox.create_requests == 3
    assert nothing_written(backend)  # nothing happened, so nothing was written
    for command in commands:  # run as printed: the --api-url of the apply comes along
        words = shlex.split(command)
        assert words[:4] == ["reconcile", "import", "--api-url", sandbox.url], command
        key, identity = words[4:]
        assert tasks[identity]["name"] == name_of(key)
        imported = reconcile(*words[1:])
        assert imported.code == 0, imported.output
    assert_plan_empty(sandbox.url)
    assert_in_sync(sandbox, three, backend)
    assert apply(sandbox.url).code == 0
    assert sandbox.create_requests == 3


def test_the_import_hint_repeats_the_token_file_and_works_as_printed(
    sandbox: Sandbox, three: list[str]
) -> None:
    """A hint of a run that read its token from --token-file names that file: run as printed
    (no TWIN24_TOKEN in the environment) it is not refused for want of a token."""
    Path("token.txt").write_text(TOKEN, encoding="utf-8")
    no_token = cli_env(token=None)
    assert apply(sandbox.url, "--token-file", "token.txt", env=no_token).code == 0
    STATE.unlink()

    result = apply(sandbox.url, "--token-file", "token.txt", env=no_token)

    assert result.code == 1, result.output
    commands = re.findall(r"run `(reconcile import [^`]+)`", result.stderr)
    assert len(commands) == 3, result.stderr
    for command in commands:
        words = shlex.split(command)
        assert words[2:6] == ["--api-url", sandbox.url, "--token-file", "token.txt"], command
        imported = reconcile(*words[1:], env=no_token)
        assert imported.code == 0, imported.output
    assert sandbox.create_requests == 3


def test_an_apply_with_nothing_to_do_folds_a_journal_left_by_a_killed_run(
    sandbox: Sandbox, backend: StateBackend, three: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert apply(sandbox.url).code == 0
    entries = backend.read().campaigns
    backend = lose_the_state(backend, monkeypatch)  # only the killed run's records remain
    store = backend.store()
    with store.lock("a run killed after its last create was recorded"):
        journal = store.journal()
        for key, entry in entries.items():
            journal.pending(key, replace(entry, status="pending", identity=None))
            journal.created(key, entry)
    assert not backend.read().exists and unfolded(backend)
    assert backend.kind != "file" or (not STATE.exists() and JOURNAL.exists())

    result = apply(sandbox.url)  # every key reads as unchanged: nothing to create

    assert result.code == 0, result.output
    assert "Apply: 0 created, 0 adopted, 0 moved, 0 refused, 0 in doubt." in result.stdout
    assert not unfolded(backend)  # the state (the file a pipeline commits) has the entries now
    assert backend.read().exists
    assert_in_sync(sandbox, three, backend)
    assert sandbox.create_requests == 3


# --- 10. signals ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 143)],
    ids=["SIGTERM", "SIGINT", "SIGHUP"],
)
def test_a_signal_starts_no_new_create_and_records_the_ones_in_flight(
    start_sandbox: StartSandbox, backend: StateBackend, workdir: Path, signum: int, code: int
) -> None:
    keys = write_campaigns(workdir, 5)
    sandbox = start_sandbox(latency=0.3)
    proc = start_apply(sandbox.url, "--parallelism", "1")
    try:
        wait_for(lambda: sandbox.create_requests >= 1, what="the first create", proc=proc)
        received = sandbox.create_requests
        proc.send_signal(signum)
        result = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert result.code == code, result.output
    assert f"{signal.Signals(signum).name} received" in result.stderr
    assert sandbox.create_requests <= received + 1  # at most the one in flight
    entries = backend.read_json()["campaigns"]
    assert 1 <= len(entries) < 5
    for entry in entries.values():
        assert entry["status"] == "created"
        assert sandbox.tasks[entry["identity"]]["name"] == entry["payload"]["name"]
    assert len(sandbox.tasks) == len(entries)

    rest = apply(sandbox.url)
    assert rest.code == 0, rest.output
    assert_in_sync(sandbox, keys, backend)


# --- 11. the README's first command ---------------------------------------------------------


# File only: `--sandbox` without --state uses its own state file (.reconcile/sandbox.state.json),
# and this is about that first run in a fresh folder, where no state backend is configured.
def test_apply_sandbox_in_a_fresh_folder_works_and_a_second_run_creates_nothing(
    workdir: Path,
) -> None:
    shutil.copytree(EXAMPLES, workdir / "campaigns")
    env = cli_env(token=None)
    tasks_file = Path(".reconcile/sandbox.tasks.json")

    first = reconcile("apply", "--sandbox", "--auto-approve", env=env)

    assert first.code == 0, first.output
    assert "Apply: 5 created, 0 adopted, 0 moved, 0 refused, 0 in doubt." in first.stdout
    tasks = json.loads(tasks_file.read_text(encoding="utf-8"))["tasks"]
    assert len(tasks) == 5
    state = read_state(Path(".reconcile/sandbox.state.json"))
    assert {e["identity"] for e in state["campaigns"].values()} == {t["id"] for t in tasks}
    assert not STATE.exists()  # the sandbox never touches the real state

    second = reconcile("apply", "--sandbox", "--auto-approve", env=env)

    assert second.code == 0, second.output
    assert "Apply: 0 created, 0 adopted, 0 moved, 0 refused, 0 in doubt." in second.stdout
    assert len(json.loads(tasks_file.read_text(encoding="utf-8"))["tasks"]) == 5
    assert reconcile("plan", "--sandbox", "--detailed-exitcode", env=env).code == 0
    checked = reconcile("check-remote", "--sandbox", env=env)
    assert checked.code == 0, checked.output


# --- 12. check-remote -----------------------------------------------------------------------


def test_check_remote_finds_halted_tasks_and_unknown_remote_tasks(
    sandbox: Sandbox, backend: StateBackend, three: list[str], workdir: Path
) -> None:
    assert apply(sandbox.url).code == 0
    check = ["check-remote", "--api-url", sandbox.url]

    clean = reconcile(*check)
    assert clean.code == 0, clean.output
    assert "check-remote: 0 difference(s), 3 remote task(s)." in clean.stdout

    halted = backend.read_json()["campaigns"]["c001"]["identity"]
    halt(sandbox, halted)
    found = reconcile(*check)
    assert found.code == 2, found.output
    assert f"! c001: task {halted} is HALTED on the platform" in found.stdout

    # A campaign created on the platform by hand (or by a run whose state was lost).
    write_campaigns(workdir, 1, first=3)
    payload = json.loads(reconcile("plan", "--format", "json").stdout)["actions"][-1]["payload"]
    response = httpx.post(
        f"{sandbox.url}/telephony/autoCall",
        json=payload,
        headers={"Authorization": f"Bearer {TOKEN}"},
        trust_env=False,
    )
    assert response.status_code == 200, response.text
    stray = response.json()["id"]["identity"]
    both = reconcile(*check)
    assert both.code == 2, both.output
    assert (
        f"+ c003: remote task {stray} named 'E2E campaign 003' is not in the state" in both.stdout
    )
    assert f"`reconcile import --api-url {sandbox.url} c003 {stray}`" in both.stdout
    assert "check-remote: 2 difference(s), 4 remote task(s)." in both.stdout
    assert len(sandbox.tasks) == 4

    wrong = reconcile(*check, env=cli_env(WRONG_TOKEN))
    assert wrong.code == 1 and "refused the token" in wrong.stderr
