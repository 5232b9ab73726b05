"""Spec 9.6 through the command line: hostile checkouts and hostile answers (issue 13).

In-process (`main` under CliRunner isolation) against the sandbox over real loopback HTTP; the
sandbox is made hostile by a subclass that rewrites some of its answers. Covered: injection
into stdout, stderr, the step summary and the plan comment (item 1), a symlinked state path
(item 3), and secrets in --state values and in API answers (item 4).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import VALID_CAMPAIGN, WriteFiles, edit
from test_apply_e2e import RECONCILE, cli_env, finish, start_apply, write_campaigns
from test_cli_plan import Result, run
from test_escape import FENCE_KEY, FORGED, HTML_KEY, RAW

from reconciler.config.campaign import fingerprint
from reconciler.errors import LockHeld, StateError
from reconciler.sandbox import Sandbox, SandboxOptions
from reconciler.sandbox.api import Reply, error
from reconciler.state.file.store import FileStore
from reconciler.state.model import Entry, State, dumps

TOKEN = "hostile-T0KEN-9f8e7d"
IDENTITY = "x\n::warning::pwn"
ODD_IDENTITY = "x ::warning::pwn ##[error]<b>"  # odd, but text: taken, and shown escaped
API_ERROR = "bad\n::error file=x::pwn"
STATE = "reconcile.state.json"
COMMAND = re.compile(r"(notice|warning|error) file=[^:,\n]*,line=\d+,col=\d+::[^\n]*")


def assert_no_injected_line(*outputs: str) -> None:
    """Every line that a GitHub runner would read as a workflow command is one of ours, and
    no raw control character is left (a line break for some reader)."""
    for out in outputs:
        assert not RAW.search(out), RAW.findall(out)
        for line in out.split("\n"):
            stripped = line.lstrip()
            if stripped.startswith("::"):
                assert COMMAND.fullmatch(stripped[2:]), line
            assert "##[" not in line, line


class HostileSandbox(Sandbox):
    """The sandbox, but some answers are rewritten: `identities` replace the identity of the
    next created tasks (the task itself is stored under its real id), `refusals` answer the
    next creates with a 422 whose error text is given."""

    def __init__(self, options: SandboxOptions) -> None:
        super().__init__(options)
        self.identities: list[str] = []
        self.refusals: list[str] = []

    def handle(self, method: str, target: str, authorization: str | None, body: bytes) -> Reply:
        if method == "POST" and self.refusals:
            return error(422, self.refusals.pop(0), [{"path": "name", "message": API_ERROR}])
        reply = super().handle(method, target, authorization, body)
        if method == "POST" and reply.status == 200 and self.identities:
            reply.body = {"id": {"identity": self.identities.pop(0)}}
        return reply


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileSandbox]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with HostileSandbox(SandboxOptions(port=0, token=TOKEN)) as server:
        monkeypatch.setenv("TWIN24_TOKEN", TOKEN)
        monkeypatch.setenv("TWIN24_API_URL", server.url)
        yield server


def named(name: str) -> str:
    return edit("name: Spring promo", f"name: {name}", VALID_CAMPAIGN)


def hostile_state(path: str = STATE) -> None:
    """A committed state (in a pull request from a fork) whose keys, sources and identities
    are the attacker's: they come back as orphans in the plan."""
    payload = {"name": "Gone"}
    entries = {
        key: Entry(
            "created",
            IDENTITY,
            fingerprint(payload),
            payload,
            f"campaigns/{key}",
            "2026-01-01T00:00:00Z",
        )
        for key in (FENCE_KEY, HTML_KEY, "x\n::stop-commands::pwn\n")
    }
    Path(path).write_text(dumps(State("l-1", 3, None, entries)), encoding="utf-8")


# --- 1. injection -------------------------------------------------------------------------


def test_a_file_name_cannot_stop_workflow_commands_under_github_actions(
    write_campaigns: WriteFiles, workdir: Path
) -> None:
    write_campaigns({"x\n::stop-commands::pwn\n.yaml": named("A"), "b.yaml": named("B")})
    summary = workdir / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    outputs = []
    for fmt in ("text", "markdown", "json"):
        result = run("plan", "--format", fmt, env=env)
        outputs += [result.stdout, result.stderr]
        validated = run("validate", "--format", "github", env=env)
        outputs += [validated.stdout, validated.stderr]
    if summary.exists():
        outputs.append(summary.read_text(encoding="utf-8"))
    assert_no_injected_line(*outputs)
    assert any("stop-commands" in out for out in outputs)  # shown, escaped


def test_a_hostile_state_cannot_break_out_of_the_plan_comment(workdir: Path) -> None:
    hostile_state()
    Path("campaigns").mkdir()
    summary = workdir / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    md = run("plan", "--format", "markdown", env=env)
    text = run("plan", env=env)
    listed = run("state", "list")
    assert md.code == text.code == listed.code == 0, md.stderr
    tabbed = listed.stdout.replace("\t", " ")  # state list separates its columns with tabs
    assert_no_injected_line(md.stdout, md.stderr, text.stdout, text.stderr, tabbed)
    assert summary.read_text(encoding="utf-8") == (md.stdout + "\n") * 2  # both plans
    lines = md.stdout.split("\n")
    assert [line for line in lines if line.startswith("**")] == [lines[1]]  # not FORGED
    assert FORGED not in lines and lines[1].startswith("**Plan: 0 to create, 0 to replace")
    assert lines.count("</details>") == len([x for x in lines if x.startswith("<details>")]) == 3
    assert lines.count("```diff") == 3 and lines.count("```") == 3
    assert "&lt;img src=x onerror=alert(1)&gt;/&lt;b&gt;team&lt;/b&gt;/c" in md.stdout
    assert "x\\u000a```\\u000a</details>\\u000a\\u000a**Plan: 0 to create" in md.stdout
    assert "! orphan x\\u000a::stop-commands::pwn\\u000a  (campaigns/x\\u000a" in text.stdout
    assert len(listed.stdout.split("\n")) == 4  # three entries, one line each
    assert "\tx\\u000a::warning::pwn" in listed.stdout


def test_a_hostile_target_value_is_shown_escaped(write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": named("A")})
    result = run("plan", "--target", "x\n::warning::pwn")
    assert result.code == 1
    assert_no_injected_line(result.stdout, result.stderr)
    assert "error: --target x\\u000a::warning::pwn: no campaign file" in result.stderr


def test_hostile_identities_and_api_messages_stay_on_their_line(
    hostile: HostileSandbox, workdir: Path
) -> None:
    keys = write_campaigns(workdir, 3)
    hostile.refusals.append("Validation\n::error::pwn ##[warning]legacy")  # c000
    hostile.identities.append(ODD_IDENTITY)  # the next create that succeeds: c001
    hostile.identities.append(IDENTITY)  # c002: a line break is no identity (finding F13)
    first = run("apply", "--auto-approve", "--rate", "0", "--parallelism", "1")
    assert first.code == 1, first.stderr  # c000 was refused, c002 is in doubt
    assert "Apply: 1 created, 0 adopted, 0 moved, 1 refused, 1 in doubt." in first.stdout
    assert "+ c001: created x ::warning::pwn ##\\u005berror]<b>" in first.stdout
    assert "Validation\\u000a::error::pwn ##\\u005bwarning]legacy" in first.stderr
    assert (
        "c002: outcome unknown (HTTP 200 with a control character in id.identity: not taken "
        "as an identity, so the outcome is unknown)"
    ) in first.stderr
    listed = run("state", "list")
    remote = run("check-remote")
    tabbed = listed.stdout.replace("\t", " ")
    assert_no_injected_line(first.stdout, first.stderr, tabbed, remote.stdout)
    assert "c001\tcreated\tx ::warning::pwn ##\\u005berror]<b>" in listed.stdout
    assert "c002\tpending\t-" in listed.stdout
    # the identity is data: kept exactly as the API gave it
    state = json.loads(Path(STATE).read_text())
    assert state["campaigns"]["c001"]["identity"] == ODD_IDENTITY
    assert sorted(state["campaigns"]) == keys[1:]


# --- 3. a symlinked state path ------------------------------------------------------------


def test_a_second_apply_through_a_symlinked_state_is_refused(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = write_campaigns(workdir, 6)
    Path("link.state.json").symlink_to(STATE)
    with Sandbox(SandboxOptions(port=0, token=TOKEN, seed=1)) as sandbox:
        sandbox.hang_next(1, 2.0)  # the first apply holds its lock while the second starts
        env = cli_env(TOKEN)
        first = start_apply(sandbox.url, "--state", STATE, env=env)
        via_link = ("--rate", "0", "--state", "link.state.json")
        second = subprocess.run(
            [str(RECONCILE), "apply", "--auto-approve", *("--api-url", sandbox.url), *via_link],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        done = finish(first)
        assert done.code == 0, done.stderr
        assert second.returncode == 1
        assert second.stderr == (
            "error: link.state.json: the state file is a symbolic link (to reconcile.state.json)"
            "; nothing was read or changed: give the file itself as --state (a link would be "
            "locked apart from the file it names)\n"
        )
        names = sorted(task["name"] for task in sandbox.tasks.values())
        assert len(names) == len(set(names)) == 6  # no duplicate
    assert Path("link.state.json").is_symlink()  # never replaced by a file
    assert sorted(json.loads(Path(STATE).read_text())["campaigns"]) == keys


def test_a_state_write_never_replaces_a_symlink(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    store = FileStore(path)
    with store.lock("test"):
        current = store.read()
        path.symlink_to(tmp_path / "elsewhere.json")  # made after the store was
        with pytest.raises(StateError, match="is a symbolic link"):
            store.write(current)
    assert path.is_symlink() and not (tmp_path / "elsewhere.json").exists()


def test_the_lock_is_taken_on_the_resolved_path(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    with (
        FileStore(real / "s.json").lock("first"),
        pytest.raises(LockHeld, match="state is locked by"),
        FileStore(tmp_path / "alias" / "s.json").lock("second"),
    ):
        pass


def test_state_files_are_never_followed_or_opened_as_special_files(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(StateError, match="not a regular file"):
        FileStore(fifo).read()  # would block forever if opened for reading
    target = tmp_path / "precious"
    target.write_text("keep me", encoding="utf-8")
    (tmp_path / "s.json.lock").symlink_to(target)
    (tmp_path / "s.json.journal").symlink_to(target)
    with pytest.raises(StateError, match="symbolic link"), FileStore(tmp_path / "s.json").lock("t"):
        pass
    os.unlink(tmp_path / "s.json.lock")
    store = FileStore(tmp_path / "s.json")
    with store.lock("test"), pytest.raises(StateError, match="symbolic link"):
        store.journal()
    assert target.read_text(encoding="utf-8") == "keep me"  # never truncated through a link


# --- 4. secrets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("postgresql://u:PW-1234@[::1/rc", "is a PostgreSQL URL that cannot be parsed"),
        ("postgresql:u:PW-1234@host/db", "is a PostgreSQL URL that cannot be parsed"),
        ("host=db.example password=PW-1234 dbname=rc", "is a libpq key=value connection string"),
        ("  user=u password=PW-1234", "is a libpq key=value connection string"),
        ("mysql://u:PW-1234@host/db", "is a URL but not a postgresql:// one"),
    ],
)
def test_a_state_value_that_may_hold_a_password_is_refused_unechoed(
    workdir: Path, value: str, says: str
) -> None:
    Path("campaigns").mkdir()
    outputs = []
    for args in (("plan",), ("state", "list"), ("apply", "--auto-approve")):
        result = run(*args, env={"RECONCILE_STATE": value})
        assert result.code == 1
        assert says in result.stderr
        assert "postgresql://USER@HOST:PORT/DB (the password in PGPASSWORD" in result.stderr
        outputs += [result.stdout, result.stderr]
    assert not [out for out in outputs if "PW-1234" in out]
    assert sorted(p.name for p in workdir.iterdir()) == ["campaigns"]  # no file made of it


@pytest.mark.parametrize("scheme", ["POSTGRESQL", "Postgres", "PostgreSQL"])
def test_a_postgres_url_in_any_letter_case_is_a_database(workdir: Path, scheme: str) -> None:
    Path("campaigns").mkdir()
    result = run("plan", "--state", f"{scheme}://nobody@127.0.0.1:1/rc")
    assert result.code == 1
    assert result.stderr.startswith(
        f"error: {scheme.lower()}://nobody@127.0.0.1:1/rc (workspace 'default'): cannot "
        "connect to PostgreSQL ("
    )
    assert sorted(p.name for p in workdir.iterdir()) == ["campaigns"]  # not taken as a file


def test_a_token_answered_as_the_identity_never_reaches_output_or_files(
    hostile: HostileSandbox, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = write_campaigns(workdir, 2)
    hostile.identities += [TOKEN, f"id-{TOKEN}-x"]
    outputs: list[Result] = [run("plan", "--out", "plan.json")]
    outputs.append(run("apply", "plan.json", "--rate", "0", "--parallelism", "1"))
    assert outputs[-1].code == 1
    assert "Apply: 0 created, 0 adopted, 0 moved, 0 refused, 2 in doubt." in outputs[-1].stdout
    assert "API token in id.identity: not taken as an identity" in outputs[-1].stderr
    outputs += [run("state", "list"), run("state", "pull"), run("plan")]
    files = [Path(name).read_text(encoding="utf-8") for name in (STATE, "plan.json")]
    # the next apply finds both tasks on the platform and adopts their real identities
    monkeypatch.setenv("RECONCILE_PENDING_GRACE", "0")
    outputs.append(run("apply", "--auto-approve", "--rate", "0"))
    assert outputs[-1].code == 0, outputs[-1].stderr
    outputs += [run("state", "list"), run("plan", "--out", "again.json")]
    files += [Path(name).read_text(encoding="utf-8") for name in (STATE, "again.json")]
    files.append(Path(STATE + ".backup").read_text(encoding="utf-8"))
    texts = [r.stdout + r.stderr for r in outputs] + files
    assert not [text for text in texts if TOKEN in text]
    state: dict[str, Any] = json.loads(files[-3])
    assert sorted(state["campaigns"]) == keys
    assert {e["identity"] for e in state["campaigns"].values()} == set(hostile.tasks)
