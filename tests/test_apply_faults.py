"""Spec 9.6, "no internal errors": disk full, permission denied, read-only folders, hostile
JSON in API answers and state files, non-UTF-8 file names (issue 13, item 5).

In-process (`main` under CliRunner isolation) against the sandbox over real loopback HTTP.
Disk faults are injected where the file backend writes (`write_all`, `os.open`): a full disk
or a read-only mount cannot be made without root. Each case must end in a clear error that
says what was and was not done, the `Apply:` line when apply ran, and a journal that is kept
whenever it holds the only record of a create.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_apply_e2e import write_campaigns
from test_cli_plan import Result, run
from test_hostile_cli import HostileSandbox

from reconciler.sandbox import SandboxOptions
from reconciler.sandbox.api import Reply
from reconciler.state.file import journal as journal_module
from reconciler.state.file import store as store_module
from reconciler.state.model import loads

TOKEN = "faults-token"
STATE = Path("reconcile.state.json")
JOURNAL = Path("reconcile.state.json.journal")
APPLY = ("apply", "--auto-approve", "--rate", "0", "--parallelism", "1")


class FaultySandbox(HostileSandbox):
    """Answers the next list requests or creates with `bodies` (after storing a create)."""

    def __init__(self, options: SandboxOptions) -> None:
        super().__init__(options)
        self.list_bodies: list[Any] = []
        self.create_bodies: list[Any] = []

    def handle(self, method: str, target: str, authorization: str | None, body: bytes) -> Reply:
        reply = super().handle(method, target, authorization, body)
        queue = self.create_bodies if method == "POST" else self.list_bodies
        if reply.status == 200 and queue:
            reply.body = queue.pop(0)
        return reply


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> Iterator[FaultySandbox]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with FaultySandbox(SandboxOptions(port=0, token=TOKEN)) as server:
        monkeypatch.setenv("TWIN24_TOKEN", TOKEN)
        monkeypatch.setenv("TWIN24_API_URL", server.url)
        yield server


@pytest.fixture
def three(workdir: Path) -> list[str]:
    return write_campaigns(workdir, 3)


def fail_writes_after(monkeypatch: pytest.MonkeyPatch, allowed: int, code: int) -> list[int]:
    """Every write of the file backend after the first `allowed` fails with `code`."""
    real = journal_module.write_all
    calls: list[int] = []

    def write_all(fd: int, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) > allowed:
            raise OSError(code, os.strerror(code))
        real(fd, data)

    monkeypatch.setattr(journal_module, "write_all", write_all)
    monkeypatch.setattr(store_module, "write_all", write_all)
    return calls


def refuse_creating(
    monkeypatch: pytest.MonkeyPatch, code: int, which: Callable[[str], bool]
) -> None:
    """`os.open` with O_CREAT fails with `code` for the paths `which` picks."""
    real = os.open

    def fake(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if flags & os.O_CREAT and which(os.fspath(path)):
            raise OSError(code, os.strerror(code), os.fspath(path))
        return real(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", fake)


def assert_clear(result: Result) -> None:
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\nerror: ") + result.stderr.startswith("error: ") == 1


# --- disk full, permission denied, read-only folders --------------------------------------


def test_disk_full_before_any_create(sandbox: FaultySandbox, three: list[str]) -> None:
    with pytest.MonkeyPatch.context() as faults:
        fail_writes_after(faults, 0, errno.ENOSPC)
        result = run(*APPLY)
    assert result.code == 1
    assert_clear(result)
    assert result.stdout.endswith("Apply: 0 created, 0 adopted, 0 moved, 0 refused, 0 in doubt.\n")
    assert result.stderr.endswith(
        "error: reconcile.state.json.journal: cannot write the journal (No space left on "
        "device); nothing was sent\n"
    )
    assert sandbox.create_requests == 0 and not STATE.exists()
    assert run(*APPLY).code == 0 and len(sandbox.tasks) == 3  # space again


def test_disk_full_after_creates_were_sent_keeps_the_journal_and_says_so(
    sandbox: FaultySandbox, three: list[str]
) -> None:
    # begin, pending c000, created c000, pending c001, created c001: then the disk is full
    with pytest.MonkeyPatch.context() as faults:
        fail_writes_after(faults, 5, errno.ENOSPC)
        result = run(*APPLY)
    assert result.code == 1
    assert_clear(result)
    assert result.stdout.endswith("Apply: 2 created, 0 adopted, 0 moved, 0 refused, 0 in doubt.\n")
    assert result.stderr.endswith(
        "error: reconcile.state.json.journal: cannot record pending for 'c002' (No space left "
        "on device); nothing more was sent. reconcile.state.json: cannot write the state file "
        "(No space left on device); it was left as it was. Done: created c000, c001. This "
        "run's records are in reconcile.state.json.journal: keep that file (never delete it); "
        "once the cause is fixed, `reconcile apply` replays it and looks for every pending "
        "create on the platform before it sends anything. Not sent: c002; run `reconcile "
        "apply` again for them.\n"
    )
    assert sandbox.create_requests == 2 and not STATE.exists()
    records = [json.loads(line) for line in JOURNAL.read_text(encoding="utf-8").splitlines()]
    assert [(r["op"], r.get("key")) for r in records] == [
        ("begin", None),
        ("pending", "c000"),
        ("created", "c000"),
        ("pending", "c001"),
        ("created", "c001"),
    ]
    again = run(*APPLY)  # space again: the journal is replayed, c002 is created, once
    assert again.code == 0, again.stderr
    assert "Apply: 1 created, 0 adopted, 0 moved, 0 refused, 0 in doubt." in again.stdout
    names = sorted(task["name"] for task in sandbox.tasks.values())
    assert len(names) == len(set(names)) == 3
    assert sorted(loads(STATE.read_text(), "s").campaigns) == three and not JOURNAL.exists()


def test_disk_full_when_a_create_is_to_be_recorded_leaves_it_pending_then_adopted(
    sandbox: FaultySandbox, three: list[str]
) -> None:
    # begin, pending c000, created c000, pending c001: the create of c001 is sent, its
    # `created` record fails
    with pytest.MonkeyPatch.context() as faults:
        fail_writes_after(faults, 4, errno.ENOSPC)
        result = run(*APPLY)
    assert result.code == 1
    assert_clear(result)
    assert result.stdout.endswith("Apply: 1 created, 0 adopted, 0 moved, 0 refused, 1 in doubt.\n")
    assert "Done: created c000; outcome unknown (kept pending) c001." in result.stderr
    assert "Not sent: c002" in result.stderr
    again = run(*APPLY)
    assert again.code == 0, again.stderr
    assert "? c001: found on the platform as" in again.stdout  # adopted, not re-sent
    assert sandbox.create_requests == 3 and len(sandbox.tasks) == 3


@pytest.mark.parametrize(
    ("code", "text"),
    [(errno.EACCES, "Permission denied"), (errno.EROFS, "Read-only file system")],
)
def test_a_journal_that_cannot_be_created_stops_before_any_create(
    sandbox: FaultySandbox,
    three: list[str],
    code: int,
    text: str,
) -> None:
    with pytest.MonkeyPatch.context() as faults:
        refuse_creating(faults, code, lambda path: not path.endswith(".lock"))
        result = run(*APPLY)
    assert result.code == 1
    assert_clear(result)
    assert result.stdout.endswith("Apply: 0 created, 0 adopted, 0 moved, 0 refused, 0 in doubt.\n")
    assert result.stderr.endswith(
        f"error: reconcile.state.json.journal: cannot write the journal ({text}); nothing "
        "was sent\n"
    )
    assert sandbox.create_requests == 0


def test_a_state_that_cannot_be_written_after_creates_keeps_the_journal(
    sandbox: FaultySandbox, three: list[str]
) -> None:
    with pytest.MonkeyPatch.context() as faults:
        refuse_creating(faults, errno.EROFS, lambda path: path.endswith(".tmp"))
        result = run(*APPLY)
    assert result.code == 1
    assert_clear(result)
    assert result.stdout.endswith("Apply: 3 created, 0 adopted, 0 moved, 0 refused, 0 in doubt.\n")
    assert result.stderr.endswith(
        "error: reconcile.state.json: cannot write the state file (Read-only file system); it "
        "was left as it was. Done: created c000, c001, c002. This run's records are in "
        "reconcile.state.json.journal: keep that file (never delete it); once the cause is "
        "fixed, `reconcile apply` replays it and looks for every pending create on the "
        "platform before it sends anything.\n"
    )
    assert JOURNAL.exists() and not STATE.exists()
    assert run("state", "list").stdout.count("\tcreated\t") == 3  # replayed from the journal


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_folder_without_write_permission(
    sandbox: FaultySandbox, three: list[str], workdir: Path
) -> None:
    run(*APPLY, "--target", "c000")
    workdir.chmod(0o555)
    try:
        result = run(*APPLY)
    finally:
        workdir.chmod(0o755)
    assert result.code == 1
    assert_clear(result)
    assert "Permission denied" in result.stderr and "nothing was sent" in result.stderr
    assert "Apply: 0 created" in result.stdout and sandbox.create_requests == 1


# --- hostile JSON in API answers ------------------------------------------------------------


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"id": value}
    return value


def test_a_deeply_nested_list_answer_is_a_clear_error(
    sandbox: FaultySandbox, three: list[str]
) -> None:
    sandbox.list_bodies.append(deep(200))
    result = run(*APPLY)
    assert result.code == 1
    assert_clear(result)
    assert "Apply: 0 created, 0 adopted, 0 moved, 0 refused, 0 in doubt." in result.stdout
    assert (
        "error: cannot trust the remote task list, so apply cannot check for lost state or "
        "in-doubt creates: the Twin24 list endpoint answered with JSON nested deeper than 64 "
        "levels"
    ) in result.stderr
    assert sandbox.create_requests == 0


def test_a_deeply_nested_create_answer_is_in_doubt(
    sandbox: FaultySandbox, three: list[str]
) -> None:
    sandbox.create_bodies.append(deep(200))
    result = run(*APPLY)
    assert result.code == 1
    assert "Apply: 2 created, 0 adopted, 0 moved, 0 refused, 1 in doubt." in result.stdout
    assert "c000: outcome unknown (HTTP 200 with JSON nested deeper than 64 levels" in result.stderr
    assert loads(STATE.read_text(), "s").campaigns["c000"].status == "pending"


# --- hostile state files --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"version": 1, "lineage": "l", "serial": ' + "9" * 5000 + "}", "a number with"),
        ('{"x": ' * 100_000 + "1" + "}" * 100_000, "nested deeper than 64 levels"),
        ('{"x": ' * 100 + "1" + "}" * 100, "nested deeper than 64 levels"),
        ('{"version": 0, "lineage": "l", "serial": 1, "campaigns": {}}', "version 0: versions"),
        ('{"version": -7, "lineage": "l", "serial": 1, "campaigns": {}}', "version -7:"),
        ('{"version": true, "lineage": "l", "serial": 1, "campaigns": {}}', "no integer"),
        (
            '{"version": 1, "lineage": "l", "serial": 1, "campaigns": {"\\udcff": {}}}',
            "lone UTF-16 surrogate",
        ),
    ],
    ids=["5000-digits", "deeper", "deep", "version-0", "version-minus-7", "version-true", "sur"],
)
def test_a_hostile_state_file_is_refused_and_left_untouched(
    sandbox: FaultySandbox, three: list[str], text: str, reason: str
) -> None:
    STATE.write_text(text, encoding="utf-8")
    for args in (("plan",), APPLY, ("state", "list")):
        result = run(*args)
        assert result.code == 1, args
        assert_clear(result)
        assert "error: reconcile.state.json: not a valid state file (" in result.stderr
        assert reason in result.stderr, result.stderr
    assert STATE.read_text(encoding="utf-8") == text
    assert sandbox.create_requests == 0


# --- non-UTF-8 file names -------------------------------------------------------------------


def test_non_utf8_state_and_plan_file_names(sandbox: FaultySandbox, three: list[str]) -> None:
    state, plan = os.fsdecode(b"st\xff.json"), os.fsdecode(b"pl\xfe.json")
    saved = run("plan", "--state", state, "--out", plan)
    assert saved.code == 0, saved.stderr
    assert (
        "Saved the plan to pl\\udcfe.json; `reconcile apply --state 'st\\udcff.json' "
        "'pl\\udcfe.json'`" in saved.stderr
    )
    applied = run("apply", plan, "--state", state, "--rate", "0")
    assert applied.code == 0, applied.stderr
    assert run("state", "list", "--state", state).stdout.count("\tcreated\t") == 3
    stale = run("apply", plan, "--state", state)
    assert stale.code == 1 and "error: the saved plan pl\\udcfe.json is stale" in stale.stderr
    missing = run("apply", os.fsdecode(b"no\xfd.json"), "--state", state)
    assert missing.code == 1
    assert_clear(missing)
    assert "no\\udcfd.json" in missing.stderr
    Path(os.fsdecode(b"st\xff.json")).write_text("{", encoding="utf-8")
    broken = run("plan", "--state", state)
    assert broken.code == 1
    assert broken.stderr.startswith("error: st\\udcff.json: not a valid state file (")


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (json.dumps(deep(100)), "nested deeper than 64 levels"),
        ('{"x": ' * 100_000 + "1" + "}" * 100_000, "nested deeper than 64 levels"),
        ('{"status": "created", "identity": "\\udcff"}', "lone UTF-16 surrogate"),
        ('{"serial": ' + "9" * 5000 + "}", "a number with thousands of digits"),
    ],
    ids=["deep", "deeper", "surrogate", "5000-digits"],
)
def test_a_hostile_journal_beside_the_state_is_refused(
    sandbox: FaultySandbox, three: list[str], entry: str, reason: str
) -> None:
    assert run(*APPLY, "--target", "c000").code == 0
    serial = json.loads(STATE.read_text(encoding="utf-8"))["serial"]
    lineage = json.loads(STATE.read_text(encoding="utf-8"))["lineage"]
    begin = json.dumps({"op": "begin", "lineage": lineage, "serial": serial})
    text = f'{begin}\n{{"op": "created", "key": "c001", "entry": {entry}}}\n'
    JOURNAL.write_text(text, encoding="utf-8")
    for args in (("plan",), APPLY):
        result = run(*args)
        assert result.code == 1, args
        assert_clear(result)
        assert "reconcile.state.json.journal:2: corrupt journal record (" in result.stderr
        assert reason in result.stderr
    assert JOURNAL.read_text(encoding="utf-8") == text and sandbox.create_requests == 1
