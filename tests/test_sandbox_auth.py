"""The sandbox's login (reconciler.sandbox.auth) over real loopback HTTP: the tokens it issues,
their expiry and use limit, and the login faults."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from conftest import StartSandbox

from reconciler.cli.main import cli
from reconciler.errors import ReconcileError
from reconciler.sandbox import Sandbox, SandboxOptions

TASKS = "/telephony/autoCall"
LOGIN = "/auth/login"
CREDENTIALS = {"email": "ops@example.com", "password": "sandbox", "ttl": 3600}


@pytest.fixture
def start(sandboxes: StartSandbox) -> StartSandbox:
    return sandboxes


def login(box: Sandbox, body: Any = None, **kwargs: Any) -> httpx.Response:
    return httpx.post(box.url + LOGIN, json=CREDENTIALS if body is None else body, **kwargs)


def tasks(box: Sandbox, token: str) -> httpx.Response:
    return httpx.get(box.url + TASKS, headers={"Authorization": f"Bearer {token}"})


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def test_a_login_issues_a_jwt_the_task_api_accepts(start: StartSandbox) -> None:
    box = start()
    answer = login(box)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"token", "refreshToken"}
    token = body["token"]
    assert claims(token)["sub"] == "ops@example.com"
    assert claims(token)["exp"] - claims(token)["iat"] == 3600
    assert tasks(box, token).json() == {"count": 0, "items": []}
    assert tasks(box, body["refreshToken"]).status_code == 401  # never a bearer token
    assert tasks(box, token[:-2] + "xx").status_code == 401  # the signature is checked
    assert box.issuer.logins == 1 and box.requests == 4


def test_the_ttl_sets_exp_and_an_expired_token_is_refused(start: StartSandbox) -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    box = start(clock=lambda: now[0])
    token = login(box, {**CREDENTIALS, "ttl": 60}).json()["token"]
    assert claims(token)["exp"] == int(now[0].timestamp()) + 60
    assert tasks(box, token).status_code == 200
    now[0] += timedelta(seconds=61)
    refused = tasks(box, token)
    assert refused.status_code == 401 and refused.json()["error"] == "Token is expired."


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({**CREDENTIALS, "password": "wrong"}, 401, "Invalid credentials"),
        ({"email": "", "password": "sandbox"}, 422, "Validation failed"),
        ({"email": "a@b", "password": 7}, 422, "Validation failed"),
        ({**CREDENTIALS, "ttl": True}, 422, "Validation failed"),
        ({**CREDENTIALS, "ttl": 0}, 422, "Validation failed"),
        ([1, 2], 400, "Invalid JSON"),
    ],
)
def test_bad_logins_are_refused_in_the_apis_error_shape(
    start: StartSandbox, body: Any, status: int, error: str
) -> None:
    box = start()
    answer = login(box, body)
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert "token" not in answer.json() and box.issuer.logins == 0


def test_a_login_needs_post(start: StartSandbox) -> None:
    box = start()
    answer = httpx.get(box.url + LOGIN)
    assert answer.status_code == 405 and answer.headers["Allow"] == "POST"


def test_token_uses_then_a_new_login_goes_on(start: StartSandbox) -> None:
    box = start(token_uses=2)
    first = login(box).json()["token"]
    assert [tasks(box, first).status_code for _ in range(3)] == [200, 200, 401]
    second = login(box).json()["token"]
    assert tasks(box, second).status_code == 200
    assert tasks(box, "sandbox").status_code == 200  # the fixed token is not limited


@pytest.mark.parametrize("status", [302, 401, 503])
def test_fail_logins_answers_every_login_with_its_status(start: StartSandbox, status: int) -> None:
    box = start(login_status=status)
    answer = login(box, follow_redirects=False)
    assert answer.status_code == status and box.issuer.logins == 0
    assert ("Location" in answer.headers) is (status == 302)


def test_fail_login_next_fails_only_the_next_ones(start: StartSandbox) -> None:
    box = start()
    box.fail_login_next(1, 500)
    assert [login(box).status_code for _ in range(2)] == [500, 200]


def test_another_password_for_tests(start: StartSandbox) -> None:
    box = start(password="pw-CANARY")
    assert login(box).status_code == 401
    assert login(box, {**CREDENTIALS, "password": "pw-CANARY"}).status_code == 200


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"login_status": 200}, "login_status must be a failing HTTP status"),
        ({"token_uses": -1}, "token_uses must be 0 or more"),
    ],
)
def test_bad_login_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ReconcileError, match=message):
        SandboxOptions(**options)


def test_the_cli_takes_the_login_knobs() -> None:
    command = cli.commands["sandbox"]
    options = {o.name: o for o in command.params}
    assert options["login_status"].opts == ["--fail-logins"]
    assert options["token_uses"].opts == ["--token-uses"]
    refused = CliRunner().invoke(cli, ["sandbox", "--fail-logins", "200"])
    assert refused.exit_code != 0 and "200 is not in the range 300<=x<=599" in refused.output
