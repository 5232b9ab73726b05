"""`reconcile plan`, `state ...` and `import` through the entry point (`reconciler.cli.main`).

Every command runs in-process under click's CliRunner isolation, asserting the exit code,
stdout and stderr together. `main` is used (not the click group) because it is what maps
usage errors to exit 1 and prints `error: MESSAGE` for a ReconcileError.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import click.testing
import pytest
from click.testing import CliRunner
from conftest import WriteFiles, edit
from inproc import Result, invoke

from reconciler.cli.main import cli, main
from reconciler.state.model import State, dumps, loads

REPO = Path(__file__).resolve().parents[1]
STATE = "reconcile.state.json"
DEFAULT_API_URL = "https://cis.twin24.ai/api/v1"
CREATED_AT = "2030-01-01T00:00:00Z"
NOTHING = "Plan: 0 to create, 0 to replace, 0 to move, 0 drifted, 0 orphaned, 0 in doubt."


def run(*args: str, env: dict[str, str] | None = None, color: bool = False) -> Result:
    """Run `reconcile ARGS` through `main`, as the console script does."""
    return invoke(args, env, color)


def timed(name: str, moment: str = "2099-06-02 10:00") -> str:
    """A valid campaign that starts at `moment` (Europe/Moscow by default); line 7 is the start."""
    text = edit("name: Spring promo", f"name: {name}")
    return edit("startType: manual\n", f'startType: time\nstartMoment: "{moment}"\n', text)


@pytest.fixture
def project(write_campaigns: WriteFiles, workdir: Path) -> Path:
    """Two campaigns that start far in the future; no state yet."""
    write_campaigns({"a.yaml": timed("A"), "sub/b.yaml": timed("B")})
    return workdir


def imported(*pairs: tuple[str, str]) -> None:
    """Record each KEY as applied with IDENTITY and its current payload, one state write each
    (what `import` records, without a platform to read the task from)."""
    from reconciler.config.validate import load_config
    from reconciler.state.file.store import FileStore
    from reconciler.state.model import Entry

    campaigns = load_config(Path("campaigns")).campaigns
    store = FileStore(Path(STATE))
    for key, identity in pairs:
        c = campaigns[key]
        entry = Entry("created", identity, c.fingerprint, c.payload, c.source, CREATED_AT)
        with store.lock("test"):
            current = store.read()
            entries = {**current.campaigns, key: entry}
            store.write(replace(current, campaigns=entries, api_url=DEFAULT_API_URL))


def state_bytes(path: str = STATE) -> bytes:
    return Path(path).read_bytes()


def read_state(path: str = STATE) -> State:
    return loads(Path(path).read_text(encoding="utf-8"), path)


# --- plan and its exit codes ---------------------------------------------------------------


def test_plan_shows_the_creates_and_exits_0(project: Path) -> None:
    result = run("plan")
    assert result.code == 0, result.stderr
    assert "+ create a  (campaigns/a.yaml)" in result.stdout
    assert "+ create sub/b  (campaigns/sub/b.yaml)" in result.stdout
    assert result.stdout.endswith(
        "Plan: 2 to create, 0 to replace, 0 to move, 0 drifted, 0 orphaned, 0 in doubt.\n"
    )
    assert result.stderr == ""
    assert not Path(STATE).exists()  # plan never writes state


def test_detailed_exitcode_is_2_with_creates_and_0_with_nothing_to_do(project: Path) -> None:
    result = run("plan", "--detailed-exitcode")
    assert (result.code, result.stderr) == (2, "")
    imported(("a", "1001"), ("sub/b", "1002"))
    result = run("plan", "--detailed-exitcode")
    assert (result.code, result.stderr) == (0, "")
    assert result.stdout == (f"No changes. The platform matches the campaign files.\n{NOTHING}\n")


def test_detailed_exitcode_is_0_for_drift_and_orphans_and_2_for_a_replace(
    project: Path, write_campaigns: WriteFiles
) -> None:
    imported(("a", "1001"), ("sub/b", "1002"))
    write_campaigns({"a.yaml": timed("A").replace("cps: 1.03", "cps: 1.05")})
    Path("campaigns/sub/b.yaml").unlink()
    result = run("plan", "--detailed-exitcode")
    assert result.code == 0, result.stderr
    assert "~ drift a" in result.stdout and "! orphan sub/b" in result.stdout
    assert "    cps: 1.03 -> 1.05  # 3 calls/s -> 5 calls/s" in result.stdout
    result = run("plan", "--detailed-exitcode", "--replace", "a")
    assert result.code == 2, result.stderr
    assert "-/+ replace a  (campaigns/a.yaml)" in result.stdout


def test_detailed_exitcode_is_1_on_an_error(project: Path, write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": timed("A").replace("cps: 1.03", "cps: 7")})
    result = run("plan", "--detailed-exitcode")
    assert result.code == 1
    assert result.stdout == ""
    assert "campaigns/a.yaml:8:6: error: cps:" in result.stderr
    assert result.stderr.endswith(
        "error: 1 problem(s) in the campaign files; nothing was changed\n"
    )


def test_a_past_start_moment_fails_the_plan_at_its_line(write_campaigns: WriteFiles) -> None:
    write_campaigns({"late.yaml": timed("Late", "2020-01-01 10:00")})
    result = run("plan", "--detailed-exitcode")
    assert result.code == 1
    assert result.stderr.startswith(
        "campaigns/late.yaml:7:14: error: startMoment: starts 2020-01-01 10:00 (Europe/Moscow), "
        "which is already in the past; move startMoment into the future\n"
    )
    assert result.stderr.endswith("error: the plan has 1 problem(s).\n")
    env_zone = run("plan", env={"TWIN24_TIMEZONE": "Asia/Tokyo"})
    assert env_zone.code == 1 and "(Asia/Tokyo)" in env_zone.stderr
    flag_zone = run("plan", "--timezone", "UTC", env={"TWIN24_TIMEZONE": "Asia/Tokyo"})
    assert flag_zone.code == 1 and "(UTC)" in flag_zone.stderr


def test_an_unknown_target_is_an_error(project: Path) -> None:
    result = run("plan", "--target", "nope", "--detailed-exitcode")
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == (
        "error: --target nope: no campaign file and no state entry has that key\n"
    )
    limited = run("plan", "--target", "sub/b")
    assert limited.code == 0
    assert "sub/b" in limited.stdout and "create a " not in limited.stdout


def test_a_probable_rename_is_shown_with_the_state_mv_command(project: Path) -> None:
    imported(("a", "1001"))
    Path("campaigns/a.yaml").rename("campaigns/renamed.yaml")
    result = run("plan")
    assert result.code == 0, result.stderr
    assert "! orphan a" in result.stdout
    assert "run `reconcile state mv a renamed`" in result.stdout


def test_a_renamed_file_listed_in_moved_yaml_is_a_move(
    project: Path, write_campaigns: WriteFiles
) -> None:
    imported(("a", "1001"))
    Path("campaigns/a.yaml").rename("campaigns/renamed.yaml")
    write_campaigns({"_moved.yaml": "- {from: a, to: renamed}\n"})
    result = run("plan", "--target", "renamed")
    assert result.code == 0, result.stderr
    assert "> moved renamed  (campaigns/renamed.yaml)" in result.stdout
    assert "the state entry is renamed from a; no API call." in result.stdout
    assert result.stdout.endswith(
        "Plan: 0 to create, 0 to replace, 1 to move, 0 drifted, 0 orphaned, 0 in doubt.\n"
    )


def test_max_creates_is_shown_but_never_blocks_the_plan(project: Path) -> None:
    result = run("plan", "--max-creates", "1", "--detailed-exitcode")
    assert result.code == 2
    assert "  WARNING: 2 creates exceed --max-creates 1; apply will refuse" in result.stdout


# --- usage errors: exit 1, never 2 ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--bogus"], "No such option '--bogus'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["plan", "--format", "yaml"], "Invalid value for '--format'"),
        (["plan", "--timezone", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["state", "rm"], "Missing argument 'KEY...'"),
        (["state", "mv", "a"], "Missing argument 'NEW'"),
        (["import", "a"], "Missing argument 'IDENTITY'"),
    ],
)
def test_usage_errors_exit_1(project: Path, args: list[str], message: str) -> None:
    result = run(*args)
    assert result.code == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_help_and_version_exit_0() -> None:
    assert run("--help").code == 0
    version = run("--version")
    assert version.code == 0 and version.stdout.startswith("reconcile, version ")


# --- formats and colour --------------------------------------------------------------------


def test_json_format_prints_only_json_on_stdout(write_campaigns: WriteFiles) -> None:
    secret = timed("A").replace(
        "cidType: default\n", 'cidType: default\nwebhookUrls: ["https://h/x?token=abc"]\n'
    )
    write_campaigns({"a.yaml": secret})
    result = run("plan", "--format", "json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["format_version"] == 1
    assert data["summary"]["create"] == 1
    assert [a["key"] for a in data["actions"]] == ["a"]
    assert "warning: webhookUrls[0]" in result.stderr  # warnings stay off stdout


def test_markdown_format(project: Path) -> None:
    result = run("plan", "--format", "markdown")
    assert result.code == 0
    assert result.stdout.splitlines()[1] == (
        "**Plan: 2 to create, 0 to replace, 0 to move, 0 drifted, 0 orphaned, 0 in doubt.**"
    )
    assert result.stdout.count("<details>") == 2


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make CliRunner's stdout claim to be a terminal."""
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True)


def test_colour_only_on_a_terminal_without_no_color(project: Path, tty: None) -> None:
    coloured = run("plan", color=True)
    assert coloured.code == 0 and "\x1b[32m+ create a" in coloured.stdout
    for result in (
        run("plan", "--no-color", color=True),
        run("plan", color=True, env={"NO_COLOR": "1"}),
    ):
        assert result.code == 0
        assert "+ create a" in result.stdout and "\x1b[" not in result.stdout


def test_no_colour_when_not_a_terminal(project: Path) -> None:
    result = run("plan", color=True)  # click would keep colour codes: the command adds none
    assert result.code == 0 and "\x1b[" not in result.stdout


# --- GitHub Actions ------------------------------------------------------------------------


def test_github_actions_get_notices_and_a_step_summary(project: Path) -> None:
    summary = Path("summary.md")
    summary.write_text("# earlier step\n", encoding="utf-8")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = run("plan", env=env)
    assert result.code == 0, result.stderr
    notices = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert notices == [
        "::notice file=campaigns/a.yaml,line=1,col=1::+ create: starts 2099-06-02 10:00, 3 calls/s",
        "::notice file=campaigns/sub/b.yaml,line=1,col=1::+ create: starts 2099-06-02 10:00, "
        "3 calls/s",
    ]
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n<!-- reconcile-plan -->\n**Plan: 2 to create, ")
    assert text.count("<details>") == 2
    run("plan", env=env)
    assert summary.read_text(encoding="utf-8").count("<!-- reconcile-plan -->") == 2  # appended


def test_github_actions_get_error_annotations_for_bad_input(
    write_campaigns: WriteFiles,
) -> None:
    write_campaigns({"a.yaml": timed("A").replace("cps: 1.03", "cps: 7")})
    result = run("plan", env={"GITHUB_ACTIONS": "true"})
    assert result.code == 1
    assert result.stdout.startswith("::error file=campaigns/a.yaml,line=8,col=6::cps: cps 7")
    assert "campaigns/a.yaml:8:6: error: cps:" in result.stderr


def test_github_actions_get_error_annotations_for_a_past_start(
    write_campaigns: WriteFiles,
) -> None:
    write_campaigns({"late.yaml": timed("Late", "2020-01-01 10:00")})
    result = run("plan", env={"GITHUB_ACTIONS": "true"})
    assert result.code == 1
    assert (
        "::error file=campaigns/late.yaml,line=7,col=14::startMoment: starts 2020-01-01 10:00"
        in result.stdout
    )


def test_no_annotations_outside_github_actions(project: Path) -> None:
    result = run("plan", env={"GITHUB_STEP_SUMMARY": "summary.md"})
    assert "::notice" not in result.stdout
    assert not Path("summary.md").exists()


# --- state commands and import -------------------------------------------------------------


def test_import_refuses_an_unknown_key_and_a_known_one(project: Path) -> None:
    result = run("import", "nope", "1")
    assert (result.code, result.stderr) == (1, "error: no campaign file has the key 'nope'\n")
    imported(("a", "1001"))
    before = state_bytes()
    again = run("import", "a", "1002")
    assert again.code == 1
    assert "a is already in the state as 1001" in again.stderr
    assert state_bytes() == before


def test_state_list_and_show_read_without_writing(project: Path) -> None:
    imported(("a", "1001"), ("sub/b", "1002"))
    before = state_bytes()
    listed = run("state", "list")
    assert (listed.code, listed.stderr) == (0, "")
    assert listed.stdout == "a\tcreated\t1001\nsub/b\tcreated\t1002\n"
    shown = run("state", "show", "sub/b")
    assert shown.code == 0
    entry = json.loads(shown.stdout)
    assert (entry["identity"], entry["source"]) == ("1002", "campaigns/sub/b.yaml")
    missing = run("state", "show", "nope")
    assert missing.code == 1
    assert missing.stderr == "error: no state entry 'nope'; see `reconcile state list`\n"
    assert state_bytes() == before  # serial 2 still
    assert read_state().serial == 2


def test_state_rm_and_mv_bump_the_serial(project: Path) -> None:
    imported(("a", "1001"), ("sub/b", "1002"))
    lineage = read_state().lineage
    moved = run("state", "mv", "a", "c")
    assert (moved.code, moved.stdout) == (0, "Moved a to c (serial 3).\n")
    state = read_state()
    assert (state.serial, state.lineage, sorted(state.campaigns)) == (3, lineage, ["c", "sub/b"])
    assert state.campaigns["c"].identity == "1001"
    assert loads(Path(STATE + ".backup").read_text(), "backup").serial == 2
    removed = run("state", "rm", "sub/b")
    assert removed.code == 0
    assert removed.stdout == (
        "Removed sub/b from the state (serial 4); the task stays on the platform.\n"
    )
    state = read_state()
    assert (state.serial, state.lineage, sorted(state.campaigns)) == (4, lineage, ["c"])
    assert state_bytes() == dumps(state).encode()


def test_state_edits_that_cannot_apply_change_nothing(project: Path) -> None:
    imported(("a", "1001"), ("sub/b", "1002"))
    before = state_bytes()
    for args, message in (
        (("state", "rm", "nope"), "error: no state entry 'nope'; see `reconcile state list`\n"),
        (
            ("state", "mv", "nope", "x"),
            "error: no state entry 'nope'; see `reconcile state list`\n",
        ),
        (
            ("state", "mv", "a", "sub/b"),
            "error: the state already has 'sub/b'; if that entry is stale, `reconcile state rm "
            "sub/b` first; nothing was changed\n",
        ),
        (
            ("state", "mv", "a", "a"),
            "error: OLD and NEW are the same key ('a'); nothing to move\n",
        ),
        (
            ("state", "rm", "a", "nope", "sub/b", "gone"),
            "error: no state entries 'nope', 'gone'; see `reconcile state list`\n",
        ),
    ):
        result = run(*args)
        assert (result.code, result.stdout, result.stderr) == (1, "", message)
    assert state_bytes() == before


BROKEN = b'{"version": 1, "lineage": "x", "serial": 3, "campaigns": {\n'


@pytest.mark.parametrize(
    "args",
    [
        ("plan",),
        ("plan", "--detailed-exitcode"),
        ("state", "list"),
        ("state", "show", "a"),
        ("state", "rm", "a"),
        ("state", "mv", "a", "b"),
        ("import", "a", "1001"),
    ],
)
def test_a_broken_state_file_is_an_error_and_left_untouched(
    project: Path, args: tuple[str, ...]
) -> None:
    Path(STATE).write_bytes(BROKEN)
    result = run(*args)
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {STATE}: not a valid state file (")
    assert "it was left untouched" in result.stderr
    assert state_bytes() == BROKEN
    assert not Path(STATE + ".backup").exists()


def test_an_explicit_state_path_is_named_in_errors(project: Path) -> None:
    Path("other.json").write_text("[]\n", encoding="utf-8")
    result = run("plan", "--state", "other.json")
    assert result.code == 1
    assert result.stderr == "error: other.json: not a valid state file (expected a JSON object)\n"
    env = run("state", "list", env={"RECONCILE_STATE": "other.json"})
    assert env.code == 1 and "other.json" in env.stderr


# --- the lock, between two real processes --------------------------------------------------


HOLDER = """
import sys
from pathlib import Path
from reconciler.state.file.store import FileStore
with FileStore(Path(sys.argv[1])).lock("reconcile apply"):
    print("locked", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def holder(project: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds the state lock until a line is written to its stdin."""
    imported(("a", "1001"), ("sub/b", "1002"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(project / STATE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:  # closes the pipes and waits on the way out
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "locked\n"
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


def release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()


def test_a_held_lock_fails_at_once_naming_the_holder(holder: subprocess.Popen[str]) -> None:
    before = state_bytes()
    started = time.monotonic()
    result = run("state", "rm", "a")
    assert time.monotonic() - started < 5
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr.startswith(
        f"error: {STATE}: state is locked by pid {holder.pid} on host {socket.gethostname()} since "
    )
    assert "(reconcile apply)" in result.stderr
    assert "retry with --lock-timeout SECONDS" in result.stderr
    assert state_bytes() == before
    assert run("plan").code == 0  # plan reads without the lock


def test_lock_timeout_waits_for_the_holder(holder: subprocess.Popen[str]) -> None:
    timer = threading.Timer(0.5, release, (holder,))
    timer.start()
    try:
        started = time.monotonic()
        result = run("state", "rm", "a", "--lock-timeout", "20")
        waited = time.monotonic() - started
    finally:
        timer.join()
    assert result.code == 0, result.stderr
    assert 0.4 < waited < 20
    assert holder.wait(timeout=10) == 0
    assert read_state().serial == 3 and "a" not in read_state().campaigns


@pytest.mark.parametrize(
    "command", [["validate", "--format", "json"], ["plan", "--format", "json"]]
)
def test_json_output_stays_json_under_github_actions(
    command: list[str], workdir: Path, write_campaigns: WriteFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding: annotations appended to stdout broke `--format json` in a workflow."""
    from conftest import VALID_CAMPAIGN

    write_campaigns({"a.yaml": VALID_CAMPAIGN + "webhookUrls: ['https://h.example/x?token=1']\n"})
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # nothing but JSON on stdout
    assert "::warning file=campaigns/a.yaml" in result.stderr


def test_sandbox_port_out_of_range_is_a_usage_error() -> None:

    with pytest.raises(SystemExit) as exited:
        main(["sandbox", "--port", "99999"])
    assert exited.value.code == 1
