"""Tests for reconciler.sandbox: the Twin24 API over real loopback HTTP, faults, persistence."""

from __future__ import annotations

import copy
import email.utils
import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import StartSandbox

from reconciler.config import models
from reconciler.errors import ReconcileError
from reconciler.sandbox import Sandbox, SandboxOptions

TOKEN = "sandbox"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TASKS = "/telephony/autoCall"
START = datetime(2030, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BODY: dict[str, Any] = {
    "name": "Spring promo 2030",
    "defaultExec": "robot",
    "defaultExecData": "3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70",
    "secondExec": "ch",
    "secondExecData": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "cidType": "pool",
    "cidData": "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
    "startType": "time",
    "startMoment": "2030-03-02 10:00",
    "cps": 1.03,
    "additionalOptions": {
        "fullListMethod": "reject",
        "fullListTime": 30,
        "recordCall": True,
        "recTrimLeft": 0,
    },
    "redialStrategyOptions": {
        "redialStrategyEn": True,
        "busy": {"redial": True, "time": 600, "count": 3},
        "noAnswer": {"redial": False},
        "answerMash": {"redial": False},
        "congestion": {"redial": False},
        "answerNoList": {"redial": False},
    },
}


def body(name: str = "Spring promo 2030", **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(BODY), "name": name, **changes}


class Clock:
    """A clock that moves one second per reading."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def start(sandboxes: StartSandbox) -> StartSandbox:
    return sandboxes


@pytest.fixture
def sandbox(start: StartSandbox) -> Sandbox:
    return start(clock=Clock())


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, headers=AUTH, timeout=5) as client:
        yield client


def create_many(client: httpx.Client, *names: str) -> list[str]:
    identities = []
    for name in names:
        response = client.post(TASKS, json=body(name))
        assert response.status_code == 200, response.text
        identities.append(response.json()["id"]["identity"])
    return identities


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def test_the_test_body_is_valid() -> None:
    assert models.check_body(BODY) == []


def test_create_answers_identity_and_the_task_is_listed(
    sandbox: Sandbox, api: httpx.Client
) -> None:
    response = api.post(TASKS, json=BODY)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    identity = response.json()["id"]["identity"]
    assert re.fullmatch(r"[0-9a-f-]{36}", identity)
    listed = api.get(TASKS).json()
    assert listed["count"] == 1
    task = listed["items"][0]
    assert list(task)[:5] == ["id", "name", "status", "createdAt", "updatedAt"]
    assert (task["id"], task["name"], task["status"]) == (identity, BODY["name"], "BLANK")
    assert ISO_MS.match(task["createdAt"]) and task["updatedAt"] == task["createdAt"]
    assert {k: v for k, v in task.items() if k in BODY} == BODY
    assert sandbox.tasks == {identity: task}
    assert sandbox.create_requests == 1
    assert sandbox.url == f"http://127.0.0.1:{sandbox.port}/api/v1"


def test_invalid_body_is_422_naming_the_path(sandbox: Sandbox, api: httpx.Client) -> None:
    bad = body()
    del bad["additionalOptions"]["fullListTime"]

    response = api.post(TASKS, json={**bad, "cps": 2.5})

    assert response.status_code == 422
    payload = response.json()
    assert payload["error"] == "Validation failed"
    paths = [d["path"] for d in payload["details"]]
    assert paths == ["cps", "additionalOptions.fullListTime"]
    assert all(d["message"] for d in payload["details"])
    assert sandbox.tasks == {} and sandbox.create_requests == 1


@pytest.mark.parametrize("content", [b"{not json", b'{"cps": NaN}', b"\xff\xfe"])
def test_a_body_that_is_not_json_is_400(
    sandbox: Sandbox, api: httpx.Client, content: bytes
) -> None:
    response = api.post(TASKS, content=content, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"] == "Invalid JSON"
    assert sandbox.tasks == {}


@pytest.mark.parametrize(
    ("headers", "error"),
    [({}, "Unauthorized"), ({"Authorization": "Bearer wrong"}, "Token is expired.")],
)
@pytest.mark.parametrize(("method", "path"), [("POST", TASKS), ("GET", TASKS)])
def test_a_missing_or_wrong_token_is_401(
    sandbox: Sandbox, headers: dict[str, str], error: str, method: str, path: str
) -> None:
    response = httpx.request(method, sandbox.url + path, json=BODY, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == error and "details" in response.json()
    assert sandbox.tasks == {}


def test_paging_by_page_or_offset_never_both(api: httpx.Client) -> None:
    create_many(api, "t1", "t2", "t3", "t4", "t5")

    page = api.get(TASKS, params={"page": 1, "limit": 2})
    assert (page.json()["count"], names(page)) == (5, ["t3", "t4"])
    assert names(api.get(TASKS, params={"offset": 3, "limit": 2})) == ["t4", "t5"]
    assert names(api.get(TASKS, params={"page": 2, "limit": 2})) == ["t5"]
    assert names(api.get(TASKS, params={"sort": "-createdAt", "limit": 2})) == ["t5", "t4"]
    for params in (
        {"page": 0, "offset": 0},
        {"limit": 0},
        {"limit": 1001},
        {"page": -1},
        {"sort": "secret"},
        {"status": "DONE"},
        {"from": "yesterday"},
    ):
        response = api.get(TASKS, params=params)
        assert response.status_code == 400, params
        assert response.json()["error"] == "Bad request" and response.json()["details"]


def test_paging_faults_cap_ignore_or_repeat_pages_and_overstate_the_count(
    start: StartSandbox,
) -> None:
    def listed(box: Sandbox, **params: Any) -> tuple[int, list[str]]:
        response = httpx.get(f"{box.url}{TASKS}", params=params, headers=AUTH)
        return response.json()["count"], names(response)

    boxes = {
        "cap": start(page_cap=2),
        "ignore": start(ignore_page=True),
        "repeat": start(repeat_page=1),
        "extra": start(count_extra=3),
    }
    for box in boxes.values():
        with httpx.Client(base_url=box.url, headers=AUTH) as client:
            create_many(client, "t1", "t2", "t3", "t4", "t5")
    # The cap wins over `limit`, and `page` counts pages of the capped size.
    assert listed(boxes["cap"], limit=1000) == (5, ["t1", "t2"])
    assert listed(boxes["cap"], page=1, limit=1000) == (5, ["t3", "t4"])
    assert listed(boxes["cap"], offset=3, limit=1000) == (5, ["t4", "t5"])
    assert listed(boxes["ignore"], page=2, limit=2) == (5, ["t1", "t2"])
    assert listed(boxes["repeat"], page=1, limit=2) == (5, ["t1", "t2"])
    assert listed(boxes["repeat"], page=2, limit=2) == (5, ["t5"])
    assert listed(boxes["extra"], limit=2) == (8, ["t1", "t2"])


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("bare", lambda task: [task]),
        ("no-items", lambda task: {"count": 1, "data": [task]}),
        ("items-not-list", lambda task: {"count": 1, "items": {"0": task}}),
        ("items-not-objects", lambda task: {"count": 1, "items": [task["id"]]}),
    ],
)
def test_the_list_can_answer_in_another_json_shape(
    start: StartSandbox, shape: str, expected: Callable[[dict[str, Any]], Any]
) -> None:
    box = start(list_shape=shape)
    with httpx.Client(base_url=box.url, headers=AUTH) as client:
        [identity] = create_many(client, "t1")
        response = client.get(TASKS)
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == expected(box.tasks[identity])


@pytest.mark.parametrize(
    ("shape", "body"),
    [("html", b"<!DOCTYPE html>"), ("empty", b""), ("not-json", b"count=0; items=0")],
)
def test_the_list_can_answer_with_a_body_that_is_not_json(
    start: StartSandbox, shape: str, body: bytes
) -> None:
    box = start(list_shape=shape)
    response = httpx.get(f"{box.url}{TASKS}", headers=AUTH)
    assert response.status_code == 200
    assert response.content.startswith(body) and (body or response.content == b"")
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"


def test_a_clock_15_minutes_behind_shows_in_the_date_header_and_created_at(
    start: StartSandbox,
) -> None:
    box = start(clock_skew=-900)
    with httpx.Client(base_url=box.url, headers=AUTH) as client:
        [identity] = create_many(client, "late")
        response = client.get(TASKS)
    now = datetime.now(UTC)
    date = email.utils.parsedate_to_datetime(response.headers["Date"])
    created = datetime.fromisoformat(box.tasks[identity]["createdAt"].replace("Z", "+00:00"))
    for moment in (date, created):
        assert timedelta(minutes=14, seconds=50) < now - moment < timedelta(minutes=15, seconds=10)


def test_the_cli_offers_every_list_shape() -> None:
    from reconciler.cli.sandbox import LIST_SHAPES as OFFERED
    from reconciler.sandbox.listing import LIST_SHAPES

    assert OFFERED == LIST_SHAPES


def test_keyword_status_from_and_to_filter(sandbox: Sandbox, api: httpx.Client) -> None:
    first, _, third = create_many(api, "Spring promo", "NPS survey", "spring PROMO wave 2")
    api.post(f"{TASKS}/{first}/halted")
    created = {t["name"]: t["createdAt"] for t in sandbox.tasks.values()}

    assert names(api.get(TASKS, params={"keyword": "PROMO"})) == [
        "Spring promo",
        "spring PROMO wave 2",
    ]
    assert names(api.get(TASKS, params={"status": "BLANK,PAUSED"})) == [
        "NPS survey",
        "spring PROMO wave 2",
    ]
    since = created["NPS survey"]
    assert names(api.get(TASKS, params={"from": since})) == ["NPS survey", "spring PROMO wave 2"]
    assert names(api.get(TASKS, params={"to": since})) == ["Spring promo", "NPS survey"]
    # The client sends whole seconds in UTC, with an offset or a Z.
    moment = datetime.fromisoformat(created["spring PROMO wave 2"]).replace(microsecond=0)
    assert names(api.get(TASKS, params={"from": moment.isoformat(), "keyword": "promo"})) == [
        "spring PROMO wave 2"
    ]
    assert third in sandbox.tasks


def test_get_one_task_and_not_found(sandbox: Sandbox, api: httpx.Client) -> None:
    (identity,) = create_many(api, "one")

    assert api.get(f"{TASKS}/{identity}").json() == sandbox.tasks[identity]
    missing = api.get(f"{TASKS}/00000000-0000-4000-8000-000000000000")
    assert (missing.status_code, missing.json()) == (404, {"error": "Not found", "details": None})
    unknown = api.get("/telephony/autoCallCandidate/batch")
    assert unknown.status_code == 404 and unknown.json()["error"] == "Not found"
    wrong = api.delete(f"{TASKS}/{identity}")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET")
    assert set(wrong.json()) == {"error", "details"}


def test_halted_pause_and_play_change_the_status(api: httpx.Client) -> None:
    (identity,) = create_many(api, "one")

    for action, status in (("play", "PROCESS"), ("pause", "PAUSED"), ("halted", "HALTED")):
        response = api.post(f"{TASKS}/{identity}/{action}")
        assert (response.status_code, response.json()["status"]) == (200, status)
    task = api.get(f"{TASKS}/{identity}").json()
    assert task["status"] == "HALTED" and task["updatedAt"] > task["createdAt"]
    assert api.post(f"{TASKS}/{identity}/play").status_code == 400
    assert api.post(f"{TASKS}/nope/halted").status_code == 404


def test_fail_next_answers_500_and_creates_nothing(sandbox: Sandbox, api: httpx.Client) -> None:
    sandbox.fail_next(2, status=503)

    statuses = [api.post(TASKS, json=body(f"t{i}")).status_code for i in range(3)]

    assert statuses == [503, 503, 200]
    assert [t["name"] for t in sandbox.tasks.values()] == ["t2"]
    assert sandbox.create_requests == 3


def test_drop_next_cuts_the_connection_after_creating(sandbox: Sandbox, api: httpx.Client) -> None:
    sandbox.drop_next(1)

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        api.post(TASKS, json=body("dropped"))

    assert [t["name"] for t in sandbox.tasks.values()] == ["dropped"]
    assert api.post(TASKS, json=body("after")).status_code == 200


def test_hang_next_outlasts_a_read_timeout_and_the_task_exists(sandbox: Sandbox) -> None:
    sandbox.hang_next(1, seconds=5)
    timeout = httpx.Timeout(5, read=0.2)

    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(sandbox.url + TASKS, json=body("slow"), headers=AUTH, timeout=timeout)

    assert time.monotonic() - started < 2
    assert [t["name"] for t in sandbox.tasks.values()] == ["slow"]


def test_rate_limit_next_answers_429_with_retry_after(sandbox: Sandbox, api: httpx.Client) -> None:
    sandbox.rate_limit_next(1, retry_after=3)

    limited = api.post(TASKS, json=BODY)

    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert sandbox.tasks == {}
    assert api.post(TASKS, json=BODY).status_code == 200


def test_rate_limit_option_refuses_creates_above_the_rate(start: StartSandbox) -> None:
    sandbox = start(rate_limit=2)
    with httpx.Client(base_url=sandbox.url, headers=AUTH) as client:
        responses = [client.post(TASKS, json=body(f"t{i}")) for i in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 429, 429]
    assert responses[2].headers["retry-after"] == "1"
    assert len(sandbox.tasks) == 2


def test_fail_rate_with_a_seed_is_deterministic(start: StartSandbox) -> None:
    def outcomes(sandbox: Sandbox) -> list[int]:
        with httpx.Client(base_url=sandbox.url, headers=AUTH) as client:
            return [client.post(TASKS, json=body(f"t{i}")).status_code for i in range(20)]

    first = outcomes(start(fail_rate=0.5, seed=7))
    second_sandbox = start(fail_rate=0.5, seed=7)
    second = outcomes(second_sandbox)

    assert first == second
    assert set(first) == {200, 500}
    assert len(second_sandbox.tasks) == first.count(200)


def test_drop_after_receive_rate_creates_then_drops(start: StartSandbox) -> None:
    sandbox = start(drop_after_receive_rate=1.0)

    for i in range(2):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            httpx.post(sandbox.url + TASKS, json=body(f"t{i}"), headers=AUTH)

    assert len(sandbox.tasks) == 2


def test_the_data_file_persists_across_a_restart(start: StartSandbox, tmp_path: Path) -> None:
    data_file = tmp_path / "sub" / "tasks.json"
    first = start(data_file=data_file)
    with httpx.Client(base_url=first.url, headers=AUTH) as client:
        a, _ = create_many(client, "a", "b")
        client.post(f"{TASKS}/{a}/halted")
    first.stop()

    second = start(data_file=data_file)

    assert second.tasks == first.tasks
    assert second.tasks[a]["status"] == "HALTED"
    with httpx.Client(base_url=second.url, headers=AUTH) as client:
        assert names(client.get(TASKS)) == ["a", "b"]
        create_many(client, "c")
    assert len(json.loads(data_file.read_text())["tasks"]) == 3
    assert [p.name for p in data_file.parent.iterdir()] == ["tasks.json"]


def test_a_broken_data_file_is_a_clear_error(tmp_path: Path) -> None:
    data_file = tmp_path / "tasks.json"
    data_file.write_text("[1, 2")

    with pytest.raises(ReconcileError, match=r"sandbox data file .*tasks\.json cannot be read"):
        Sandbox(SandboxOptions(port=0, data_file=data_file))


def test_keep_alive_serves_several_requests_on_one_connection(sandbox: Sandbox) -> None:
    request = (
        f"GET /api/v1/telephony/autoCall HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}"
        "\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as conn:
        reader = conn.makefile("rb")
        for _ in range(3):
            conn.sendall(request)
            assert reader.readline() == b"HTTP/1.1 200 OK\r\n"
            headers = {}
            while (line := reader.readline()) != b"\r\n":
                key, _, value = line.decode().partition(":")
                headers[key.lower()] = value.strip()
            content = reader.read(int(headers["content-length"]))
            assert json.loads(content) == {"count": 0, "items": []}


def test_stop_is_prompt_with_an_idle_keep_alive_connection(start: StartSandbox) -> None:
    sandbox = start()
    with httpx.Client(base_url=sandbox.url, headers=AUTH) as client:
        client.get(TASKS)
        started = time.monotonic()
        sandbox.stop()
        assert time.monotonic() - started < 1
        with pytest.raises(httpx.TransportError):
            client.get(TASKS)


def test_the_token_is_never_logged(start: StartSandbox, capfd: pytest.CaptureFixture[str]) -> None:
    secret = "tok-3f9a1c"
    quiet = start(token=secret)
    httpx.get(quiet.url + TASKS, headers={"Authorization": f"Bearer {secret}"})
    assert capfd.readouterr().err == ""

    loud = start(token=secret, verbose=True)
    httpx.get(loud.url + TASKS, headers={"Authorization": f"Bearer {secret}"})
    err = capfd.readouterr().err
    assert "GET /api/v1/telephony/autoCall HTTP/1.1" in err and "200" in err
    assert secret not in err


@pytest.mark.parametrize(
    "options",
    [
        {"fail_rate": 1.5},
        {"drop_after_receive_rate": -0.1},
        {"rate_limit": 0},
        {"token": ""},
        {"list_shape": "xml"},
        {"page_cap": 0},
        {"repeat_page": 0},
        {"count_extra": -1},
        {"clock_skew": float("nan")},
    ],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ReconcileError, match="sandbox"):
        SandboxOptions(**options)


def test_a_taken_port_is_a_clear_error(sandbox: Sandbox) -> None:
    with pytest.raises(ReconcileError, match=r"cannot listen on 127\.0\.0\.1"):
        Sandbox(SandboxOptions(port=sandbox.port)).start()


def test_serve_forever_prints_one_line_and_stops_on_sigterm() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "from reconciler.sandbox import SandboxOptions, serve_forever; "
        f"serve_forever(SandboxOptions(port={port}))"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None and process.stdout is not None
        try:
            line = process.stderr.readline()
            assert line == (
                f"sandbox listening on http://127.0.0.1:{port}/api/v1 (token: sandbox; logins: "
                "any e-mail, the password sandbox)\n"
            )
            response = httpx.get(f"http://127.0.0.1:{port}/api/v1{TASKS}", headers=AUTH)
            assert response.json() == {"count": 0, "items": []}
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0
            assert process.stderr.read() == "" and process.stdout.read() == ""
        finally:
            process.kill()
