"""Spec section 5: apply asks for `yes` on a TTY, needs --auto-approve without one, and asks
nothing when it carries out a saved plan. In-process, against the sandbox over loopback."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import click.testing
import pytest
from click.testing import CliRunner
from conftest import VALID_CAMPAIGN, WriteFiles

from reconciler.cli.main import cli
from reconciler.sandbox import Sandbox, SandboxOptions

TOKEN = "confirm-token"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with Sandbox(SandboxOptions(port=0, token=TOKEN)) as server:
        monkeypatch.setenv("TWIN24_TOKEN", TOKEN)
        monkeypatch.setenv("TWIN24_API_URL", server.url)
        yield server


@pytest.fixture
def project(workdir: Path, write_campaigns: WriteFiles, sandbox: Sandbox) -> Path:
    write_campaigns({"a.yaml": VALID_CAMPAIGN})
    return workdir


def on_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True)


def test_without_a_tty_apply_needs_auto_approve(project: Path, sandbox: Sandbox) -> None:
    result = CliRunner().invoke(cli, ["apply", "--rate", "0"])
    assert result.exit_code == 1
    assert "apply needs confirmation" in str(result.exception)
    assert "--auto-approve" in str(result.exception)
    assert sandbox.create_requests == 0 and sandbox.tasks == {}


@pytest.mark.parametrize("answer", ["no", "y", "YES", ""])
def test_on_a_tty_anything_but_yes_cancels(
    project: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    on_a_tty(monkeypatch)
    result = CliRunner().invoke(cli, ["apply", "--rate", "0"], input=f"{answer}\n")
    assert result.exit_code == 1
    assert "Do you want to create these tasks?" in result.stdout
    assert "cancelled" in str(result.exception)
    assert sandbox.create_requests == 0
    assert not Path("reconcile.state.json").exists()


def test_on_a_tty_yes_applies(
    project: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_a_tty(monkeypatch)
    before = signal.getsignal(signal.SIGTERM)
    result = CliRunner().invoke(cli, ["apply", "--rate", "0"], input="yes\n")
    assert result.exit_code == 0, result.output
    assert "Apply: 1 created, 0 adopted, 0 moved, 0 refused, 0 in doubt." in result.stdout
    assert len(sandbox.tasks) == 1
    assert signal.getsignal(signal.SIGTERM) is before  # apply put the handler back


def test_a_saved_plan_is_applied_without_a_question(project: Path, sandbox: Sandbox) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["plan", "--out", "plan.json"]).exit_code == 0
    result = runner.invoke(cli, ["apply", "plan.json", "--rate", "0"])  # no TTY, no flag
    assert result.exit_code == 0, result.output
    assert "Do you want" not in result.stdout
    assert len(sandbox.tasks) == 1
