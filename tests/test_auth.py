"""reconciler.apply.auth and secrets: reading credentials, the login, a JWT's expiry, and the
secrets kept out of every text. httpx.MockTransport for the login's answers; one loopback
server for the overall deadline (a server that drips its answer)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from tokens import b64, jwt

from reconciler.apply import auth, expiry
from reconciler.apply.auth import Credentials, read_credentials
from reconciler.apply.client import InDoubt, Timeouts, Twin24Client
from reconciler.apply.expiry import token_expiry
from reconciler.apply.secrets import Secrets
from reconciler.errors import ApiError, AuthError

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
IAM = "https://iam.test/api/v1"
PASSWORD = 'pw-CANARY-\u00e9/"9'  # a slash, a quote and a non-ASCII letter: every JSON escape
EMAIL = "ops@example.com"
LOGIN_ENV = {"TWIN24_LOGIN": EMAIL, "TWIN24_PASSWORD": PASSWORD}

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that records every request and answers with `answer`."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def issued(token: str = "tok-ISSUED-1", refresh: str = "refresh-CANARY-1") -> Handler:
    return lambda request: httpx.Response(200, json={"token": token, "refreshToken": refresh})


def credentials(
    env: dict[str, str], recorder: Recorder | None = None, **kwargs: Any
) -> Credentials:
    transport = recorder.transport if recorder is not None else None
    return read_credentials(env, transport=transport, now=lambda: NOW, iam_url=IAM, **kwargs)


# --- a JWT's expiry -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "jwt_", "expires"),
    [
        ("plain-token", False, None),
        (jwt(NOW), True, NOW),
        (jwt(NOW.timestamp() + 0.5), True, NOW + timedelta(seconds=0.5)),
        (jwt(), True, None),  # a JWT without exp
        (jwt("soon"), True, None),  # exp that is not a number
        (jwt(True), True, None),
        (jwt(1e300), True, None),  # past year 9999
        (f"{b64([1])}.{b64({'exp': 1})}.sig", False, None),  # header not an object
        (f"{b64({'alg': 'none'})}.not*base64.sig", False, None),
        (f"{b64({'alg': 'none'})}.{b64(b'not json')}.sig", False, None),
        ("a.b", False, None),
        ("a.b.c.d", False, None),
    ],
)
def test_token_expiry_reads_exp_only(token: str, jwt_: bool, expires: datetime | None) -> None:
    assert token_expiry(token) == expiry.TokenExpiry(jwt_, expires)


def test_when_says_the_utc_time_and_how_far() -> None:
    assert expiry.when(NOW + timedelta(hours=5), NOW) == "2030-06-01 17:00 UTC (in 5 h)"
    assert expiry.when(NOW - timedelta(days=4), NOW) == "2030-05-28 12:00 UTC (4 days ago)"
    assert expiry.when(NOW + timedelta(seconds=20), NOW) == "2030-06-01 12:00 UTC (in 1 min)"


# --- a token ------------------------------------------------------------------------------


def test_an_expired_jwt_is_refused_before_anything_is_sent() -> None:
    recorder = Recorder(issued())
    token = jwt(NOW - timedelta(hours=2))
    with pytest.raises(AuthError) as info:
        credentials({"TWIN24_TOKEN": token}, recorder)
    assert str(info.value) == (
        "the Twin24 token from TWIN24_TOKEN expired at 2030-06-01 10:00 UTC (2 h ago); nothing "
        "was sent: get a new token, or use a login (a login does not expire: set TWIN24_LOGIN "
        "and TWIN24_PASSWORD instead)"
    )
    assert token not in str(info.value) and recorder.requests == []


def test_a_jwt_expiring_within_a_day_warns_and_a_later_one_does_not() -> None:
    soon = credentials({"TWIN24_TOKEN": jwt(NOW + timedelta(hours=23))})
    assert soon.kind == "token" and soon.warnings == [
        "the Twin24 token from TWIN24_TOKEN expires at 2030-06-02 11:00 UTC (in 23 h): renew it "
        "before then (a login does not expire: set TWIN24_LOGIN and TWIN24_PASSWORD instead)"
    ]
    assert credentials({"TWIN24_TOKEN": jwt(NOW + timedelta(hours=25))}).warnings == []
    assert credentials({"TWIN24_TOKEN": "not-a-jwt"}).warnings == []


def test_doctor_can_read_an_expired_token_without_refusing_it() -> None:
    token = jwt(NOW - timedelta(hours=2))
    read = credentials({"TWIN24_TOKEN": token}, refuse_expired=False)
    assert read.token == token and read.expiry.expires == NOW - timedelta(hours=2)


def test_the_token_wins_over_a_login_with_a_warning_and_no_login_is_made(tmp_path: Path) -> None:
    recorder = Recorder(issued())
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n", encoding="utf-8")
    both = credentials({"TWIN24_TOKEN": "from-env", **LOGIN_ENV}, recorder, token_file=token_file)
    assert (both.kind, both.token, both.source) == (
        "token",
        "from-the-file",
        f"token file {token_file}",
    )
    assert both.warnings == [
        f"both a token (token file {token_file}) and a login (TWIN24_LOGIN, TWIN24_PASSWORD or "
        "--password-file) are set: the token is used; unset the one you do not mean"
    ]
    assert recorder.requests == [] and both.login is None
    with pytest.raises(AuthError, match="cannot be renewed"):
        both.renew()


def test_no_credentials_at_all_names_both_ways() -> None:
    with pytest.raises(AuthError) as info:
        credentials({})
    assert str(info.value) == (
        "no Twin24 token: set TWIN24_TOKEN or pass --token-file FILE, or log in with "
        "TWIN24_LOGIN and TWIN24_PASSWORD (or --password-file FILE)"
    )


# --- a login ------------------------------------------------------------------------------


def test_a_login_posts_email_password_and_ttl_and_uses_the_answers_token() -> None:
    recorder = Recorder(issued())
    read = credentials(LOGIN_ENV, recorder)
    (request,) = recorder.requests
    assert (request.method, str(request.url)) == ("POST", f"{IAM}/auth/login")
    assert json.loads(request.content) == {"email": EMAIL, "password": PASSWORD, "ttl": 3600}
    assert "Authorization" not in request.headers
    assert (read.kind, read.token, read.warnings) == ("login", "tok-ISSUED-1", [])
    assert read.source == f"TWIN24_LOGIN and TWIN24_PASSWORD, at {IAM}/auth/login"
    for secret in (PASSWORD, "tok-ISSUED-1", "refresh-CANARY-1"):
        assert read.secrets.holds(f"x{secret}x")
        assert secret not in repr(read) and secret not in repr(read.login)


def test_renew_logs_in_again_and_checks_the_new_token() -> None:
    answers = iter([issued("first"), issued("second"), issued(jwt(NOW - timedelta(seconds=1)))])
    recorder = Recorder(lambda request: next(answers)(request))
    read = credentials(LOGIN_ENV, recorder)
    assert read.renew() == "second" and read.token == "second"
    with pytest.raises(AuthError, match=r"gave a token that expired at .* check this machine's"):
        read.renew()
    assert read.token == "second" and len(recorder.requests) == 3


def test_a_login_token_is_checked_but_never_warned_about() -> None:
    hour = credentials(LOGIN_ENV, Recorder(issued(jwt(NOW + timedelta(hours=1)))))
    assert hour.warnings == []  # each run logs in: a short life is what was asked for
    with pytest.raises(AuthError, match=r"expired at 2030-06-01 11:00 UTC \(1 h ago\)"):
        credentials(LOGIN_ENV, Recorder(issued(jwt(NOW - timedelta(hours=1)))))


def echo(status: int, **headers: str) -> Handler:
    """A hostile IAM that quotes the request (the password) and tokens back in its answer."""

    def handler(request: httpx.Request) -> httpx.Response:
        sent = request.content.decode()
        body = {"error": f"no such user {sent}", "details": sent, "token": "tok-ECHO-CANARY"}
        return httpx.Response(status, json=body, headers=headers)

    return handler


LOGIN_FAILURES = [
    (echo(401), "was refused (HTTP 401: no such user"),
    (echo(403), "was refused (HTTP 403: no such user"),
    (echo(500), "was refused (HTTP 500: no such user"),
    (
        echo(302, Location=f"https://elsewhere.test/?p={quote(PASSWORD)}"),
        "(to https://elsewhere.test)",
    ),
    (lambda r: httpx.Response(503, text=f"down {PASSWORD}"), "was refused (HTTP 503: down ***)"),
    (lambda r: httpx.Response(200, text="<html>"), "HTTP 200 with a body that is not JSON"),
    (lambda r: httpx.Response(200, json={"refreshToken": "r"}), "no `token` in its answer"),
    (lambda r: httpx.Response(200, json=[1]), "no `token` in its answer"),
    (lambda r: httpx.Response(200, json={"token": ""}), "no `token` in its answer"),
    (lambda r: httpx.Response(200, json={"token": "tok EN-x"}), "cannot be sent in an HTTP header"),
    (lambda r: httpx.Response(204), "HTTP 204"),
]


@pytest.mark.parametrize(("handler", "expected"), LOGIN_FAILURES)
def test_a_failed_login_names_the_iam_url_and_status_and_never_a_secret(
    handler: Handler, expected: str
) -> None:
    recorder = Recorder(handler)
    with pytest.raises(AuthError) as info:
        credentials(LOGIN_ENV, recorder)
    message = str(info.value)
    assert message.startswith(f"the login at {IAM}/auth/login ")
    assert expected in message
    assert "nothing was sent to the task API" in message
    assert len(recorder.requests) == 1  # a redirect is never followed
    for secret in (PASSWORD, quote(PASSWORD), json.dumps(PASSWORD)[1:-1], "tok-ECHO-CANARY"):
        assert secret not in message


def test_a_network_error_is_scrubbed_and_named() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused while sending {request.content.decode()}")

    with pytest.raises(AuthError) as info:
        credentials(LOGIN_ENV, Recorder(handler))
    message = str(info.value)
    assert message.startswith(f"the login at {IAM}/auth/login failed (ConnectError: refused")
    assert "check --iam-url / TWIN24_IAM_URL and the network" in message
    assert PASSWORD not in message and json.dumps(PASSWORD)[1:-1] not in message


@pytest.fixture
def dripping() -> Iterator[str]:
    """A loopback server that answers a login one byte every 0.1 s: no single read times
    out, only the overall deadline ends it."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            while not stop.is_set():
                try:
                    connection.sendall(b" ")
                except OSError:
                    return
                time.sleep(0.1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/api/v1"
    stop.set()
    server.close()
    thread.join(5)


def test_a_login_has_the_clients_overall_deadline(dripping: str) -> None:
    timeouts = Timeouts(read=5, deadline=0.5)
    started = time.monotonic()
    with pytest.raises(AuthError) as info:
        read_credentials(LOGIN_ENV, iam_url=dripping, timeouts=timeouts)
    assert time.monotonic() - started < 3
    assert str(info.value) == (
        f"the login at {dripping}/auth/login failed (no complete answer within the 0.5s "
        "deadline); nothing was sent to the task API: check --iam-url / TWIN24_IAM_URL and the "
        "network, then run again"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://iam.example.com/api/v1", "is plain http: a password is sent only over https"),
        ("ftp://iam.example.com", r"IAM URL \(--iam-url or TWIN24_IAM_URL\) is not a full"),
        ("iam.example.com/api/v1", r"IAM URL \(--iam-url or TWIN24_IAM_URL\) is not a full"),
        ("https://me:pw@iam.example.com", "must not carry a user name or password"),
    ],
)
def test_a_password_goes_only_over_https_or_to_this_machine(url: str, message: str) -> None:
    recorder = Recorder(issued())
    with pytest.raises(AuthError, match=message):
        read_credentials(LOGIN_ENV, iam_url=url, transport=recorder.transport)
    assert recorder.requests == []
    for local in ("http://127.0.0.1:8024/api/v1", "http://localhost:1/x", "http://[::1]:1/x"):
        assert auth.check_iam_url(local) == local


def test_the_default_iam_url_is_twin24s() -> None:
    recorder = Recorder(issued())
    read_credentials(LOGIN_ENV, transport=recorder.transport)
    assert str(recorder.requests[0].url) == "https://iam.twin24.ai/api/v1/auth/login"


# --- reading the password ----------------------------------------------------------------


def test_the_password_file_wins_and_loses_only_its_final_line_break(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text(" spaced pw \r\n", encoding="utf-8")
    recorder = Recorder(issued())
    read = credentials(LOGIN_ENV, recorder, password_file=path)
    assert json.loads(recorder.requests[0].content)["password"] == " spaced pw "
    assert read.source == f"TWIN24_LOGIN and --password-file {path}, at {IAM}/auth/login"


@pytest.mark.parametrize(
    ("env", "file", "message"),
    [
        ({"TWIN24_LOGIN": EMAIL}, None, "TWIN24_LOGIN is set, but no password: set TWIN24_PASS"),
        ({"TWIN24_LOGIN": EMAIL, "TWIN24_PASSWORD": "\n"}, None, "TWIN24_LOGIN is set, but no"),
        ({"TWIN24_PASSWORD": PASSWORD}, None, "TWIN24_PASSWORD is set, but no TWIN24_LOGIN"),
        ({}, "", "--password-file is set, but no TWIN24_LOGIN"),
        ({"TWIN24_LOGIN": EMAIL}, "missing", "password file .*missing not found"),
        ({"TWIN24_LOGIN": EMAIL}, "", "password file .* is empty"),
        ({"TWIN24_LOGIN": EMAIL}, "dir", "cannot read password file .*dir \\(it is a folder\\)"),
    ],
)
def test_an_incomplete_login_says_what_is_missing(
    tmp_path: Path, env: dict[str, str], file: str | None, message: str
) -> None:
    password_file = None
    if file is not None:
        password_file = tmp_path / (file or "empty")
        if file == "":
            password_file.write_text("\n", encoding="utf-8")
        elif file == "dir":
            password_file.mkdir()
    recorder = Recorder(issued())
    with pytest.raises(AuthError, match=message):
        credentials(env, recorder, password_file=password_file)
    assert recorder.requests == []


# --- --sandbox ------------------------------------------------------------------------------


def test_with_the_sandbox_no_token_is_read_and_a_login_goes_to_the_sandbox() -> None:
    recorder = Recorder(issued())
    env = {"TWIN24_TOKEN": "a-real-token"}
    fixed = read_credentials(env, sandbox_token="sandbox", iam_url="http://127.0.0.1:1/api/v1")
    assert (fixed.kind, fixed.token, fixed.warnings) == ("sandbox", "sandbox", [])
    logged = read_credentials(
        {**env, **LOGIN_ENV},
        sandbox_token="sandbox",
        iam_url="http://127.0.0.1:1/api/v1",
        transport=recorder.transport,
    )
    assert (logged.kind, logged.token) == ("login", "tok-ISSUED-1")
    assert str(recorder.requests[0].url) == "http://127.0.0.1:1/api/v1/auth/login"
    refused = Recorder(echo(401))
    with pytest.raises(AuthError, match="the embedded sandbox, which takes any e-mail and the"):
        read_credentials(
            LOGIN_ENV,
            sandbox_token="s",
            iam_url="http://127.0.0.1:1/a",
            transport=refused.transport,
        )


# --- secrets in the client ----------------------------------------------------------------


def test_secrets_are_scrubbed_in_every_json_form() -> None:
    secrets = Secrets([PASSWORD])
    for form in (
        PASSWORD,
        json.dumps(PASSWORD)[1:-1],
        json.dumps(PASSWORD, ensure_ascii=False)[1:-1],
    ):
        assert secrets.holds(f"<{form}>")
        assert secrets.scrub({f"k{form}": [f"v{form}"]}) == {"k***": ["v***"]}
    assert repr(secrets).startswith("Secrets(") and PASSWORD not in repr(secrets)
    assert Secrets([""]).scrub("anything") == "anything"


def test_the_client_scrubs_the_login_secrets_and_a_renewed_token() -> None:
    secrets = Secrets([PASSWORD, "refresh-CANARY-1"])
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        said = f"{request.headers['Authorization']} {PASSWORD} refresh-CANARY-1 old-tok"
        if request.method == "POST":
            return httpx.Response(200, json={"id": {"identity": "id-refresh-CANARY-1"}})
        return httpx.Response(422, json={"error": said, "details": json.dumps(said)})

    client = Twin24Client(IAM, "old-tok", transport=httpx.MockTransport(handler), secrets=secrets)
    client.use_token("new-tok")
    assert isinstance(client.create({"name": "x"}), InDoubt)  # an identity holding a secret
    with pytest.raises(ApiError) as info:
        client.list_tasks()
    assert seen == ["Bearer new-tok", "Bearer new-tok"]
    for secret in (PASSWORD, "refresh-CANARY-1", "old-tok", "new-tok"):
        assert secret not in str(info.value)
    with pytest.raises(AuthError):
        client.use_token("bad token")
