"""No secret of a login ever reaches an output or a file (spec 5 and 9.3).

One pipeline's life against the sandbox, logging in with a canary password: validate and plan
under GitHub Actions (annotations, the step summary, a saved plan), an apply that logs in
again after a 401, an apply caught with its journal on disk, a hostile IAM that quotes the
password and tokens back, check-remote, doctor in both formats, the state commands, and an API
that answers a create with the token as the task's identity. Every login's token and refresh
token is recorded as the sandbox issues it; then every text and file is searched for every
secret, in every form a JSON answer could carry it: 0 hits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from conftest import PROXIES
from inproc import STATE, campaign, write

from reconciler.apply.secrets import forms
from reconciler.cli.main import main
from reconciler.sandbox import Sandbox, SandboxOptions

PASSWORD = 'pw-CANARY-\u00e9/"9z'
HOSTILE = ("tok-HOSTILE-CANARY", "refresh-HOSTILE-CANARY")
RECONCILE = Path(sys.executable).parent / "reconcile"


def run(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """`reconcile ARGS` in-process: (exit code, stdout + stderr)."""
    with CliRunner().isolation(env={"NO_COLOR": "1", **env}) as (out, err, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue().decode() + err.getvalue().decode()


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> Iterator[Sandbox]:
    for name in PROXIES:
        monkeypatch.delenv(name, raising=False)
    # Each token is good for two task requests: the first apply logs in again mid-way.
    with Sandbox(SandboxOptions(port=0, token="fixed", password=PASSWORD, token_uses=2)) as box:
        yield box


def test_no_secret_of_a_login_reaches_any_output_or_file(
    sandbox: Sandbox, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued: list[str] = []
    real_login = sandbox.issuer.login

    def recording(body: bytes) -> Any:
        status, answer = real_login(body)
        if status == 200:
            issued.extend([answer["token"], answer["refreshToken"]])
        return status, answer

    monkeypatch.setattr(sandbox.issuer, "login", recording)
    summary = workdir / "summary.md"
    env = {
        "TWIN24_LOGIN": "ops@example.com",
        "TWIN24_PASSWORD": PASSWORD,
        "TWIN24_IAM_URL": sandbox.url,
        "TWIN24_API_URL": sandbox.url,
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    texts: dict[str, str] = {}

    def step(name: str, *args: str, expect: int = 0) -> None:
        code, texts[name] = run(*args, env=env)
        assert code == expect, texts[name]

    write({f"c{i}.yaml": campaign(f"Campaign {i}") for i in (1, 2)})
    step("validate", "validate")
    step("plan", "plan", "--format", "markdown", "--out", "plan.json")
    assert "::notice file=campaigns/c1.yaml" in texts["plan"]  # the annotations were made
    step("apply", "apply", "plan.json")
    assert "logged in again" in texts["apply"] and len(issued) == 4

    # An apply caught with a create in flight: its journal is on disk.
    write({"c3.yaml": campaign("Campaign 3")})
    sandbox.hang_next(1, 1.5)
    subprocess_env = {k: v for k, v in os.environ.items() if k not in PROXIES}
    held = subprocess.Popen(
        [str(RECONCILE), "apply", "--auto-approve"],
        env={**subprocess_env, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while sandbox.create_requests < 4 and time.monotonic() < deadline and held.poll() is None:
        time.sleep(0.02)
    texts["journal"] = Path(f"{STATE}.journal").read_text(encoding="utf-8")
    assert '"op":"pending"' in texts["journal"]
    texts["held apply"] = held.communicate(timeout=30)[0]
    assert held.returncode == 0, texts["held apply"]

    step("check-remote", "check-remote")
    step("doctor", "doctor")
    step("doctor json", "doctor", "--format", "json")
    step("state list", "state", "list")
    step("state pull", "state", "pull")

    # A hostile IAM quotes the request (the password) and made-up tokens in its refusal.
    def hostile(body: bytes) -> Any:
        sent = body.decode()
        token, refresh = HOSTILE
        return 401, {
            "error": f"no {sent}",
            "details": sent,
            "token": token,
            "refreshToken": refresh,
        }

    monkeypatch.setattr(sandbox.issuer, "login", hostile)
    write({"c4.yaml": campaign("Campaign 4")})
    step("hostile login", "apply", "--auto-approve", expect=1)
    step("hostile doctor", "doctor", "--format", "json", expect=1)
    monkeypatch.setattr(sandbox.issuer, "login", recording)

    # An API that answers a create with this run's refresh token in the task's identity.
    real_create = sandbox.store.create

    def quoting(body: Any) -> dict[str, Any]:
        task = real_create(body)
        return {**task, "id": f"task-{issued[-1]}"}

    monkeypatch.setattr(sandbox.store, "create", quoting)
    step("quoted identity", "apply", "--auto-approve", expect=1)
    assert "outcome unknown" in texts["quoted identity"]

    for name in ("reconcile.state.json", "reconcile.state.json.backup", "plan.json"):
        texts[name] = Path(name).read_text(encoding="utf-8")
    texts["step summary"] = summary.read_text(encoding="utf-8")
    assert texts["step summary"].startswith("<!-- reconcile-plan -->")
    assert len(issued) == 14  # 7 logins made, each one's token and refresh token recorded

    secrets = [PASSWORD, *HOSTILE, *issued]
    shapes = {shape for secret in secrets for shape in forms(secret) | {quote(secret)}}
    hits = [(name, shape) for name, text in texts.items() for shape in shapes if shape in text]
    assert hits == []
