"""Issue 15 item 1 (spec 9.4): every command a message suggests acts on the same state.

The hints are taken from what the CLI prints and run AS PRINTED (split with shlex, through the
console entry point), against the embedded sandbox: a hint printed by a `--sandbox` run must
act on `.reconcile/sandbox.state.json` and never create `reconcile.state.json`; one printed
with a custom `--state` or `--campaigns` must act on those. Values that came from the
environment are not repeated: the hint works in the same shell.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from conftest import WriteFiles, edit
from inproc import Result, run

from reconciler.cli.main import cli
from reconciler.hints import Hints
from reconciler.state.model import State, loads

SANDBOX_STATE = Path(".reconcile/sandbox.state.json")
REAL_STATE = Path("reconcile.state.json")
SUMMARY = "Apply: {} created, {} adopted, {} moved, {} refused, {} in doubt."


def campaign(name: str) -> str:
    return edit("name: Spring promo", f"name: {name}")


def state_at(path: Path) -> State:
    return loads(path.read_text(encoding="utf-8"), str(path))


def hints_in(text: str, command: str) -> list[str]:
    """Every `reconcile COMMAND ...` between backticks in `text`."""
    return re.findall(rf"`(reconcile {command}[^`]*)`", text)


def run_as_printed(hint: str, **env: str) -> Result:
    words = shlex.split(hint)
    assert words[0] == "reconcile", hint
    return run(*words[1:], **env)


@pytest.fixture
def two(write_campaigns: WriteFiles) -> Path:
    return write_campaigns({"a.yaml": campaign("A"), "b.yaml": campaign("B")})


def test_the_saved_plan_hint_of_a_sandbox_plan_applies_to_the_sandbox(two: Path) -> None:
    planned = run("plan", "--sandbox", "--out", "plan.json")
    assert planned.code == 0, planned.output
    [hint] = hints_in(planned.stderr, "apply")
    assert hint == "reconcile apply --sandbox plan.json"
    applied = run_as_printed(hint)
    assert applied.code == 0, applied.output
    assert SUMMARY.format(2, 0, 0, 0, 0) in applied.stdout
    assert sorted(state_at(SANDBOX_STATE).campaigns) == ["a", "b"]
    assert not REAL_STATE.exists()


def test_the_orphan_hint_of_a_sandbox_plan_forgets_the_sandbox_entry(two: Path) -> None:
    assert run("apply", "--sandbox", "--auto-approve", "--rate", "0").code == 0
    (two / "b.yaml").unlink()
    planned = run("plan", "--sandbox")
    [hint] = hints_in(planned.stdout, "state rm")
    assert hint == "reconcile state rm --sandbox b"
    removed = run_as_printed(hint)
    assert removed.code == 0, removed.output
    assert sorted(state_at(SANDBOX_STATE).campaigns) == ["a"]
    assert not REAL_STATE.exists()


def test_the_import_hints_of_a_sandbox_apply_adopt_into_the_sandbox_state(two: Path) -> None:
    """The issue's case: the printed import created reconcile.state.json with the production
    URL and a sandbox task in it."""
    assert run("apply", "--sandbox", "--auto-approve", "--rate", "0").code == 0
    SANDBOX_STATE.unlink()  # a lost sandbox state; its tasks are still on the sandbox
    lost = run("apply", "--sandbox", "--auto-approve", "--rate", "0")
    assert lost.code == 1
    hints = hints_in(lost.stderr, "import")
    assert [shlex.split(h)[:3] for h in hints] == [["reconcile", "import", "--sandbox"]] * 2
    for hint in hints:
        imported = run_as_printed(hint)
        assert imported.code == 0, imported.output
    assert sorted(state_at(SANDBOX_STATE).campaigns) == ["a", "b"]
    assert state_at(SANDBOX_STATE).api_url == "sandbox:embedded"
    assert not REAL_STATE.exists()
    again = run("plan", "--sandbox", "--detailed-exitcode")
    assert again.code == 0, again.output


def test_a_custom_state_and_campaigns_folder_come_along_quoted(
    workdir: Path, write_campaigns: WriteFiles
) -> None:
    folder = workdir / "my campaigns"
    folder.mkdir()
    (folder / "a.yaml").write_text(campaign("A"), encoding="utf-8")
    (folder / "it's b.yaml").write_text(campaign("B"), encoding="utf-8")
    context = ("--sandbox", "--campaigns", "my campaigns", "--state", "our state.json")
    planned = run("plan", *context, "--out", "the plan.json")
    [hint] = hints_in(planned.stderr, "apply")
    assert hint == (
        "reconcile apply --sandbox --campaigns 'my campaigns' --state 'our state.json' "
        "'the plan.json'"
    )
    assert run_as_printed(hint).code == 0
    assert sorted(state_at(workdir / "our state.json").campaigns) == ["a", "it's b"]
    assert not REAL_STATE.exists() and not SANDBOX_STATE.exists()

    (folder / "it's b.yaml").unlink()
    [forget] = hints_in(run("plan", *context).stdout, "state rm")
    assert forget == "reconcile state rm --sandbox --state 'our state.json' 'it'\"'\"'s b'"
    assert run_as_printed(forget).code == 0
    assert sorted(state_at(workdir / "our state.json").campaigns) == ["a"]


def test_values_from_the_environment_are_not_repeated(two: Path) -> None:
    env = {"RECONCILE_STATE": "env.json", "RECONCILE_CAMPAIGNS": "campaigns"}
    planned = run("plan", "--sandbox", "--out", "plan.json", **env)
    [hint] = hints_in(planned.stderr, "apply")
    assert hint == "reconcile apply --sandbox plan.json"  # the same shell has the variables
    assert run_as_printed(hint, **env).code == 0
    assert sorted(state_at(Path("env.json")).campaigns) == ["a", "b"]
    # The same value given as a flag is repeated: another shell may not have the variable.
    flagged = run("plan", "--sandbox", "--state", "env.json", **env)
    assert flagged.code == 0
    (two / "b.yaml").unlink()
    [forget] = hints_in(run("plan", "--sandbox", "--state", "env.json").stdout, "state rm")
    assert forget == "reconcile state rm --sandbox --state env.json b"


def test_a_key_that_starts_with_a_dash_is_not_read_as_an_option(
    write_campaigns: WriteFiles,
) -> None:
    root = write_campaigns({"-x.yaml": campaign("X"), "a.yaml": campaign("A")})
    assert run("apply", "--sandbox", "--auto-approve", "--rate", "0").code == 0
    (root / "-x.yaml").unlink()
    [forget] = hints_in(run("plan", "--sandbox").stdout, "state rm")
    assert forget == "reconcile state rm --sandbox -- -x"
    assert run_as_printed(forget).code == 0
    assert sorted(state_at(SANDBOX_STATE).campaigns) == ["a"]


def test_the_stale_plan_advice_applies_against_the_api_the_plan_was_made_for(
    two: Path,
) -> None:
    """The issue's case: a sandbox plan applied without --sandbox; the advice said `plan`."""
    assert run("plan", "--sandbox", "--out", "plan.json").code == 0
    refused = run("apply", "plan.json")
    assert refused.code == 1
    message = refused.stderr.removeprefix("error: ").rstrip("\n")
    assert message.startswith(
        "the saved plan plan.json is stale: it was made against another API (sandbox:embedded "
        "-> https://cis.twin24.ai/api/v1)"
    )
    assert len(message) < 300
    [hint] = hints_in(message, "apply")
    assert message.endswith(f"It was made with --sandbox: run `{hint}`")
    assert hint == "reconcile apply --sandbox plan.json"
    assert run_as_printed(hint).code == 0
    assert sorted(state_at(SANDBOX_STATE).campaigns) == ["a", "b"]
    assert not REAL_STATE.exists()


# --- every context option is one the suggested command takes -------------------------------

EVERYTHING = Hints(
    sandbox=True,
    campaigns="c d",
    state="s.json",
    workspace="w",
    api_url="u",
    token_file="t f",
    password_file="p",
    iam_url="i",
)


@pytest.mark.parametrize(
    ("words", "args"),
    [
        ("plan", ()),
        ("apply", ("plan.json",)),
        ("import", ("k", "id")),
        ("check-remote", ()),
        ("doctor", ()),
        ("state list", ()),
        ("state show", ("k",)),
        ("state rm", ("k", "-j")),
        ("state mv", ("k", "j")),
        ("state unlock", ("lock-id",)),
        ("state pull", ()),
        ("state push", ("f.json",)),
        ("state init", ()),
        ("validate", ("campaigns/a.yaml",)),
        ("fmt", ("campaigns/a.yaml",)),
        ("schema", ()),
        ("show", ("plan.json",)),
    ],
)
def test_every_hint_parses_as_its_command(words: str, args: tuple[str, ...]) -> None:
    printed = EVERYTHING.command(words, *args)
    argv = shlex.split(printed)[1:]
    command: click.Command = cli
    while isinstance(command, click.Group):
        command = command.commands[argv.pop(0)]
    context = command.make_context(printed, argv)  # a usage error fails the test
    if "sandbox" in context.params:
        assert context.params["sandbox"] is True, printed
    if "state_path" in context.params:
        assert context.params["state_path"] == "s.json", printed
    if "token_file" in context.params:  # the commands that talk to the API
        assert str(context.params["token_file"]) == "t f", printed
        assert (context.params["password_file"], context.params["iam_url"]) == (Path("p"), "i")


def test_a_held_sandbox_lock_is_not_unlocked_through_a_hint(two: Path) -> None:
    from reconciler.state.file.store import FileStore

    assert run("apply", "--sandbox", "--auto-approve", "--rate", "0").code == 0
    with FileStore(SANDBOX_STATE).lock("reconcile apply") as held:
        blocked = run("state", "rm", "--sandbox", "a")
        assert blocked.code == 1
        assert "state unlock" not in blocked.stderr  # a live holder: stop it, never unlock
        assert "or stop that run" in blocked.stderr
        refused = run("state", "unlock", "--sandbox", held.id)  # acts on the sandbox lock
        assert refused.code == 1
        assert refused.stderr.startswith(
            f"error: {SANDBOX_STATE}: state is locked by pid {held.pid} on host "
        )
        assert "still running" in refused.stderr
    assert not REAL_STATE.exists() and not Path("reconcile.state.json.lock").exists()
