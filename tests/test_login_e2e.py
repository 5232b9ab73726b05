"""End to end, credentials (spec 9.3): `reconcile` in-process against the sandbox over real
loopback HTTP, logging in at the sandbox's own IAM. Every test counts what reached the server:
an expired token or a failed login sends nothing to the task API, and a re-login after a 401
still makes exactly one task per campaign.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from conftest import StartSandbox
from inproc import STATE, Result, campaign, invoke, names, state, write
from tokens import jwt

from reconciler.sandbox import Sandbox

EMAIL = "ops@example.com"
ROOT = Path(__file__).resolve().parent.parent
SUMMARY = "Apply: {} created, 0 adopted, 0 moved, {} refused, 0 in doubt."


def run(*args: str, env: dict[str, str]) -> Result:
    """`reconcile ARGS` in-process with exactly the TWIN24_* of `env`."""
    return invoke(args, {"NO_COLOR": "1", **env})


def login(sandbox: Sandbox, password: str = "sandbox") -> dict[str, str]:
    """The environment of a pipeline that logs in (README's secrets), at the sandbox's IAM."""
    return {"TWIN24_LOGIN": EMAIL, "TWIN24_PASSWORD": password, "TWIN24_IAM_URL": sandbox.url}


def apply(sandbox: Sandbox, *extra: str, env: dict[str, str]) -> Result:
    return run("apply", "--api-url", sandbox.url, "--auto-approve", "--rate", "0", *extra, env=env)


@pytest.fixture
def start(sandboxes: StartSandbox, workdir: Path) -> StartSandbox:
    """Loopback sandboxes that take this module's token (conftest's `sandboxes`)."""
    return partial(sandboxes, token="fixed-T0KEN")


@pytest.fixture
def three(workdir: Path) -> list[str]:
    write({f"c{i}.yaml": campaign(f"Campaign {i}") for i in (1, 2, 3)})
    return ["c1", "c2", "c3"]


def one_task_each(sandbox: Sandbox, keys: list[str]) -> None:
    """One task per campaign on the server, and the state records exactly those."""
    assert names(sandbox) == {f"Campaign {k[1]}": [state().campaigns[k].identity] for k in keys}
    assert {e.status for e in state().campaigns.values()} == {"created"}
    assert not Path(f"{STATE}.journal").exists()  # folded into the state


def test_a_login_based_apply_creates_one_task_per_campaign(
    start: StartSandbox, three: list[str]
) -> None:
    sandbox = start()
    result = apply(sandbox, env=login(sandbox))
    assert result.code == 0, result.output
    assert result.stderr == ""
    assert SUMMARY.format(3, 0) in result.stdout
    assert sandbox.issuer.logins == 1
    one_task_each(sandbox, three)
    again = run("plan", "--api-url", sandbox.url, env={})  # a plan needs no credentials
    assert again.code == 0 and "No changes." in again.stdout


EXPIRED = jwt(datetime.now(UTC) - timedelta(days=4))


@pytest.mark.parametrize(
    "command",
    [
        ["apply", "--auto-approve"],
        ["apply", "--auto-approve", "--token-file", "token.txt"],
        ["check-remote"],
        ["import", "--all"],
        ["import", "c1", "some-identity"],
    ],
    ids=["apply", "apply-token-file", "check-remote", "import-all", "import"],
)
def test_an_expired_jwt_is_refused_with_nothing_sent(
    start: StartSandbox, three: list[str], command: list[str]
) -> None:
    sandbox = start(token=EXPIRED)  # the sandbox would even accept it
    Path("token.txt").write_text(EXPIRED + "\n", encoding="utf-8")
    env = {} if "--token-file" in command else {"TWIN24_TOKEN": EXPIRED}

    result = run(*command, "--api-url", sandbox.url, env=env)

    assert result.code == 1, result.output
    assert result.stdout == ""  # not even the plan: the token is read first
    source = "token file token.txt" if env == {} else "TWIN24_TOKEN"
    assert result.stderr.startswith(f"error: the Twin24 token from {source} expired at ")
    assert " UTC (4 days ago); nothing was sent: get a new token, or use a login" in result.stderr
    assert sandbox.requests == 0 and sandbox.tasks == {}
    assert not STATE.exists()
    assert EXPIRED not in result.output


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (401, "was refused (HTTP 401: Login failed)"),
        (503, "was refused (HTTP 503: Login failed)"),
        (302, "is never followed with a password"),
    ],
)
def test_a_failed_login_stops_before_the_plan_with_nothing_sent(
    start: StartSandbox, three: list[str], status: int, said: str
) -> None:
    sandbox = start(login_status=status)

    result = apply(sandbox, env=login(sandbox))

    assert result.code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: the login at {sandbox.url}/auth/login ")
    assert said in result.stderr and "nothing was sent to the task API" in result.stderr
    assert sandbox.requests == 1 and sandbox.create_requests == 0  # the login alone
    assert not STATE.exists()


def test_a_wrong_password_is_refused_by_the_sandbox(start: StartSandbox, three: list[str]) -> None:
    sandbox = start()
    result = apply(sandbox, env=login(sandbox, password="not-it"))
    assert result.code == 1
    assert "was refused (HTTP 401: Invalid credentials)" in result.stderr
    assert "not-it" not in result.output and sandbox.create_requests == 0


def test_the_token_wins_over_a_login_with_a_warning(start: StartSandbox, three: list[str]) -> None:
    sandbox = start()
    result = apply(sandbox, env={**login(sandbox), "TWIN24_TOKEN": "fixed-T0KEN"})
    assert result.code == 0, result.output
    assert result.stderr == (
        "warning: both a token (TWIN24_TOKEN) and a login (TWIN24_LOGIN, TWIN24_PASSWORD or "
        "--password-file) are set: the token is used; unset the one you do not mean\n"
    )
    assert sandbox.issuer.logins == 0
    one_task_each(sandbox, three)


@pytest.mark.parametrize("parallelism", ["1", "4"])
def test_a_401_during_the_apply_logs_in_again_once_and_goes_on(
    start: StartSandbox, three: list[str], parallelism: str
) -> None:
    """The first token is good for the list and one create: the next create's 401 brings a
    new login, and every create it refused is sent again, once, and recorded."""
    sandbox = start(token_uses=2)

    result = apply(sandbox, "--parallelism", parallelism, env=login(sandbox))

    assert result.code == 0, result.output
    assert SUMMARY.format(3, 0) in result.stdout
    assert result.stderr == "warning: the API answered 401: logged in again; going on\n"
    assert sandbox.issuer.logins == 2
    refused = sandbox.create_requests - 3  # creates the old token sent after its last use
    assert refused == 1 if parallelism == "1" else 1 <= refused <= 2
    one_task_each(sandbox, three)


def test_a_401_after_the_new_login_stops_the_apply(start: StartSandbox, three: list[str]) -> None:
    sandbox = start(token_uses=1)  # each token: one request (the list, then one create)

    result = apply(sandbox, "--parallelism", "1", env=login(sandbox))

    assert result.code == 1
    assert SUMMARY.format(1, 1) in result.stdout
    assert "also after logging in again; stopping (check the login's access" in result.stderr
    assert "stopped: the API answered 401" in result.stderr
    assert sandbox.issuer.logins == 2 and len(sandbox.tasks) == 1
    (created,) = [k for k, e in state().campaigns.items() if e.status == "created"]
    assert sorted(state().campaigns) == [created] == ["c1"]


def test_a_failed_new_login_stops_the_apply(
    start: StartSandbox, three: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = start(token_uses=2)
    real = sandbox.issuer.login
    seen: list[bytes] = []

    def first_login_only(body: bytes) -> Any:
        seen.append(body)
        return real(body) if len(seen) == 1 else (503, {"error": "IAM down", "details": None})

    monkeypatch.setattr(sandbox.issuer, "login", first_login_only)

    result = apply(sandbox, "--parallelism", "1", env=login(sandbox))

    assert result.code == 1
    assert SUMMARY.format(1, 1) in result.stdout
    assert "the token expired and logging in again failed; stopping: the login at " in (
        result.stderr
    )
    assert "(HTTP 503: IAM down)" in result.stderr
    assert len(seen) == 2 and len(sandbox.tasks) == 1


def test_check_remote_and_import_log_in_too(start: StartSandbox, three: list[str]) -> None:
    sandbox = start()
    assert apply(sandbox, env=login(sandbox)).code == 0
    checked = run("check-remote", "--api-url", sandbox.url, env=login(sandbox))
    assert checked.code == 0, checked.output
    assert checked.stdout.endswith("check-remote: 0 difference(s), 3 remote task(s).\n")
    STATE.unlink()
    imported = run("import", "--all", "--api-url", sandbox.url, env=login(sandbox))
    assert imported.code == 0, imported.output
    assert sandbox.issuer.logins == 3 and sorted(state().campaigns) == three


@pytest.fixture
def examples(workdir: Path) -> Path:
    shutil.copytree(ROOT / "campaigns", workdir / "campaigns")
    return workdir


def test_the_sandbox_flag_logs_in_at_the_embedded_sandbox(examples: Path) -> None:
    """README's login rehearsal: no account, no network, the login path end to end."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\nTWIN24_LOGIN=me@example.com TWIN24_PASSWORD=sandbox reconcile apply --sandbox " in (
        readme
    )
    env = {"TWIN24_LOGIN": "me@example.com", "TWIN24_PASSWORD": "sandbox"}
    wrong = run("apply", "--sandbox", "--auto-approve", env={**env, "TWIN24_PASSWORD": "x"})
    assert wrong.code == 1 and wrong.stdout == ""
    assert (
        "(with --sandbox the login goes to the embedded sandbox, which takes any e-mail and "
        "the password `sandbox`; or unset TWIN24_LOGIN to use its own token)"
    ) in wrong.stderr

    result = run("apply", "--sandbox", "--auto-approve", env=env)
    assert result.code == 0, result.output
    assert result.stdout.endswith(SUMMARY.format(5, 0) + "\n")
    # The first command of README, with no credentials at all, still runs as before.
    again = run("apply", "--sandbox", "--auto-approve", env={"TWIN24_TOKEN": "ignored"})
    assert again.code == 0 and again.stdout.endswith(SUMMARY.format(0, 0) + "\n")
