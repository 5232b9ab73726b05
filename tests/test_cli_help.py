"""What the command line tells about itself: a help line for every option, the defaults that
matter, the version with the name to install, and shell completion of campaign keys.

Completion is tested through click's own completion API in-process (what `_RECONCILE_COMPLETE`
runs), and once through `main` with the variables the bash script sets.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import click
import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner

from reconciler import DISTRIBUTION, __version__
from reconciler.cli.main import cli, main
from reconciler.config.validate import load_config
from reconciler.state.file.store import FileStore
from reconciler.state.model import Entry, State

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_KEYS = [
    "2030/debt-reminder",
    "2030/spring-promo",
    "onboarding-welcome",
    "survey/csat-callback",
    "survey/nps-q3",
]


def run(*args: str) -> tuple[int, str, str]:
    """`reconcile ARGS` through `main`, as the console script runs it: (code, stdout, stderr)."""
    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue().decode(), err.getvalue().decode()


def commands(
    command: click.Command, path: str = "reconcile"
) -> Iterator[tuple[str, click.Command]]:
    """Every command below `command`, with the words that call it."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from commands(sub, f"{path} {name}")


def without_help(command: click.Command) -> list[str]:
    """Options with no help text, and commands with no help line, below `command`."""
    missing = []
    for path, cmd in commands(command):
        if not (cmd.help or cmd.short_help or "").strip():
            missing.append(path)
        for param in cmd.params:
            if (
                isinstance(param, click.Option)
                and not param.hidden
                and not (param.help or "").strip()
            ):
                missing.append(f"{path} {param.opts[-1]}")
    return missing


def test_every_command_and_option_has_a_help_line() -> None:
    assert without_help(cli) == []


def test_the_help_check_catches_what_it_should() -> None:
    @click.group(help="A group.")
    def group() -> None: ...

    @group.command(help="A command.")
    @click.option("--quiet", is_flag=True)
    @click.option("--level", type=int, help="How loud.")
    @click.argument("thing")
    def sub(quiet: bool, level: int, thing: str) -> None: ...

    @group.command()
    def bare() -> None: ...

    assert without_help(group) == ["reconcile bare", "reconcile sub --quiet"]


def test_the_default_rate_is_in_help_and_in_the_readme() -> None:
    code, helped, _ = run("apply", "--help")
    assert code == 0
    assert "At most N creates per second (0: no limit)." in helped
    assert "[default: 5;" in " ".join(helped.split())
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`--rate N`: at most N creates per second (default 5; 0: no limit)" in readme


def test_version_names_the_package_to_install() -> None:
    assert run("--version") == (
        0,
        f"reconcile, version {__version__} (pip package {DISTRIBUTION})\n",
        "",
    )
    assert f"pip install {DISTRIBUTION}" in (ROOT / "README.md").read_text(encoding="utf-8")


# --- completion ----------------------------------------------------------------------------


def complete(*words: str) -> list[str]:
    """What Tab offers after `reconcile WORDS...`; the last word is the one being typed."""
    completion = ShellComplete(cli, {}, "reconcile", "_RECONCILE_COMPLETE")
    *args, incomplete = words
    return [item.value for item in completion.get_completions(args, incomplete)]


@pytest.fixture
def repo(workdir: Path) -> Path:
    """The example campaigns and a state file that knows two of them."""
    shutil.copytree(ROOT / "campaigns", workdir / "campaigns")
    config = load_config(workdir / "campaigns")
    entries = {}
    for key, identity in (("survey/nps-q3", "42"), ("2030/spring-promo", "43")):
        c = config.campaigns[key]
        entries[key] = Entry(
            "created", identity, c.fingerprint, c.payload, c.source, "2030-01-01T00:00:00Z"
        )
    store = FileStore(workdir / "reconcile.state.json")
    with store.lock("test"):
        store.write(State(api_url="https://cis.twin24.ai/api/v1", campaigns=entries))
    return workdir


def test_target_and_replace_complete_campaign_keys(repo: Path) -> None:
    assert complete("plan", "--target", "") == EXAMPLE_KEYS
    assert complete("plan", "--target", "2030/") == ["2030/debt-reminder", "2030/spring-promo"]
    assert complete("apply", "--replace", "surv") == ["survey/csat-callback", "survey/nps-q3"]
    assert complete("plan", "--target", "nothing") == []
    assert complete("import", "onb") == ["onboarding-welcome"]


def test_keys_come_from_the_campaigns_folder_given(repo: Path) -> None:
    other = repo / "elsewhere" / "team"
    other.mkdir(parents=True)
    (other / "one.yaml").write_text("name: broken: yaml: [\n", encoding="utf-8")  # never parsed
    assert complete("plan", "--campaigns", "elsewhere", "--target", "") == ["team/one"]
    assert complete("plan", "--campaigns", "missing", "--target", "") == []


def test_state_commands_complete_the_keys_in_the_state(repo: Path) -> None:
    assert complete("state", "show", "") == ["2030/spring-promo", "survey/nps-q3"]
    assert complete("state", "rm", "s") == ["survey/nps-q3"]
    assert complete("state", "mv", "") == ["2030/spring-promo", "survey/nps-q3"]
    # Where an entry moves to: a campaign file the state does not know yet.
    assert complete("state", "mv", "survey/nps-q3", "") == [
        "2030/debt-reminder",
        "onboarding-welcome",
        "survey/csat-callback",
    ]
    (repo / "reconcile.state.json").rename(repo / "kept.json")
    assert complete("state", "show", "") == []
    assert complete("state", "show", "--state", "kept.json", "") == [
        "2030/spring-promo",
        "survey/nps-q3",
    ]


def test_keys_the_shell_would_need_quoted_are_never_offered(repo: Path) -> None:
    """The shell puts a completion on the command line unquoted: a state key holding
    `$(touch PWN)`, a newline or an escape character went there raw (a state is anyone's)."""
    store = FileStore(repo / "reconcile.state.json")
    with store.lock("test"):
        state = store.read()
        entry = state.campaigns["survey/nps-q3"]
        hostile = ["evil\nplain,$(touch PWN)\x1b[31m", "s p", "s'q", "s`x`", "--force", "-x"]
        store.write(replace(state, campaigns={**state.campaigns, **dict.fromkeys(hostile, entry)}))
    (repo / "campaigns" / "a b.yaml").write_text("name: x\n", encoding="utf-8")

    assert complete("state", "show", "") == ["2030/spring-promo", "survey/nps-q3"]
    assert complete("state", "rm", "s") == ["survey/nps-q3"]
    assert complete("state", "rm", "") == ["2030/spring-promo", "survey/nps-q3"]  # no -x
    assert "a b" not in complete("plan", "--target", "")
    assert complete("plan", "--target", "a") == []


def test_completion_never_fails_and_never_queries_a_database(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "reconcile.state.json").write_text('{"version": 1, "campaigns": {', encoding="utf-8")
    assert complete("state", "show", "") == []
    assert complete("state", "mv", "x", "")[:1] == ["2030/debt-reminder"]  # files still listed

    from reconciler.state.postgres import store

    def refuse(*_args: object) -> None:
        raise AssertionError("a completion connected to PostgreSQL")

    monkeypatch.setattr(store.PostgresStore, "__init__", refuse)
    monkeypatch.setenv("RECONCILE_STATE", "postgresql://reconcile@127.0.0.1:1/db")
    assert complete("state", "rm", "") == []

    from reconciler.config import discovery

    def unreadable(_root: Path) -> None:
        raise PermissionError("campaigns")

    monkeypatch.setattr(discovery, "discover", unreadable)
    assert complete("plan", "--target", "") == []


def test_bash_completion_through_the_console_entry_point(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the sourced bash function runs on Tab: `main` answers and prints nothing else."""
    monkeypatch.setenv("_RECONCILE_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "reconcile state rm su")
    monkeypatch.setenv("COMP_CWORD", "3")
    with pytest.raises(SystemExit) as stopped:
        main([])
    out, err = capsys.readouterr()
    assert (stopped.value.code, out, err) == (0, "plain,survey/nps-q3\n", "")

    monkeypatch.setenv("_RECONCILE_COMPLETE", "bash_source")
    with pytest.raises(SystemExit):
        main([])
    out, _ = capsys.readouterr()
    assert "_reconcile_completion()" in out and "complete -o nosort -F" in out
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'eval "$(_RECONCILE_COMPLETE=bash_source reconcile)"' in readme
