"""Tests for reconciler.apply.client: status and exception mapping, paging, token hygiene."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.apply.client import (
    DEFAULT_API_URL,
    Created,
    InDoubt,
    NotSent,
    RateLimited,
    Refused,
    RemoteTask,
    Timeouts,
    Twin24Client,
    Unauthorized,
    parse_retry_after,
    read_token,
)
from reconciler.apply.listing import MAX_LIST_PAGES
from reconciler.errors import ApiError, AuthError, ListAnswerError

TOKEN = "s3cret-token-XYZ"
BASE = "https://api.test/api/v1"
PAYLOAD = {"name": "spring-promo", "cps": 1.03, "additionalOptions": {"recordCall": False}}

Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, base_url: str = BASE, **kwargs: Any) -> Twin24Client:
    return Twin24Client(base_url, TOKEN, transport=httpx.MockTransport(handler), **kwargs)


def respond(status: int, body: Any = None, text: str | None = None, **headers: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return handler


def raising(exc_type: type[httpx.RequestError], message: str = "boom") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type(message, request=request)

    return handler


# -- create: statuses ----------------------------------------------------------------------


def test_create_200_posts_json_with_bearer_over_a_closing_connection() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": {"identity": "task-1"}})

    with make_client(handler) as client:
        assert client.create(PAYLOAD) == Created("task-1")
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://api.test/api/v1/telephony/autoCall"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Connection"] == "close"
    assert json.loads(request.content) == PAYLOAD


@pytest.mark.parametrize("base", ["https://api.test/api/v1", "https://api.test/api/v1/"])
def test_base_url_with_or_without_slash(base: str) -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url.copy_with(params=None)))
        if request.method == "POST":
            return httpx.Response(200, json={"id": {"identity": "t"}})
        if request.url.path.endswith("/autoCall"):
            return httpx.Response(200, json={"count": 0, "items": []})
        return httpx.Response(200, json={"id": "a/b", "name": "n"})

    with make_client(handler, base_url=base) as client:
        client.create(PAYLOAD)
        client.list_tasks()
        client.get_task("a/b")
    assert urls == [
        "https://api.test/api/v1/telephony/autoCall",
        "https://api.test/api/v1/telephony/autoCall",
        "https://api.test/api/v1/telephony/autoCall/a%2Fb",
    ]


def test_explicit_timeouts_reach_every_request() -> None:
    seen: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={"id": {"identity": "t"}, "count": 0, "items": []})

    with make_client(handler, timeouts=Timeouts(connect=1, read=2, write=3, pool=4)) as client:
        client.create(PAYLOAD)
        client.list_tasks()
    assert seen == [{"connect": 1, "read": 2, "write": 3, "pool": 4}] * 2


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({}, None),
        ({"id": {}}, None),
        ({"id": "task-1"}, None),
        ({"id": {"identity": ""}}, None),
        ({"id": {"identity": True}}, None),
        ({"id": {"identity": 4.2}}, None),
        ([{"id": {"identity": "x"}}], None),
        (None, "<html>created?</html>"),
        (None, ""),
    ],
)
def test_create_200_without_identity_is_in_doubt(body: Any, text: str | None) -> None:
    with make_client(respond(200, body, text)) as client:
        outcome = client.create(PAYLOAD)
    assert isinstance(outcome, InDoubt)
    assert "HTTP 200" in outcome.reason


@pytest.mark.parametrize("status", [400, 402, 403, 404, 405, 422])
def test_create_refused_carries_error_and_details(status: int) -> None:
    body = {"error": "Validation failed", "details": [{"field": "cps", "message": "bad"}]}
    with make_client(respond(status, body)) as client:
        outcome = client.create(PAYLOAD)
    assert outcome == Refused(status, "Validation failed", body["details"])
    assert isinstance(outcome, Refused)
    assert (
        outcome.message
        == f'HTTP {status}: Validation failed ([{{"field": "cps", "message": "bad"}}])'
    )


def test_create_refused_with_non_json_body_keeps_200_chars() -> None:
    with make_client(respond(422, text="x" * 500)) as client:
        assert client.create(PAYLOAD) == Refused(422, "x" * 200, None)
    with make_client(respond(400, text="")) as client:
        assert client.create(PAYLOAD) == Refused(400, "Bad Request", None)


def test_create_401_is_unauthorized_with_the_api_text() -> None:
    with make_client(respond(401, {"error": "Token is expired.", "details": None})) as client:
        assert client.create(PAYLOAD) == Unauthorized("HTTP 401: Token is expired.")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Retry-After": "7"}, 7.0), ({"Retry-After": "later"}, None), ({}, None)],
)
def test_create_429_is_rate_limited(headers: dict[str, str], expected: float | None) -> None:
    with make_client(respond(429, {"error": "Too many requests"}, **headers)) as client:
        assert client.create(PAYLOAD) == RateLimited(expected)


def test_create_429_with_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    header = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    with make_client(respond(429, None, **{"Retry-After": header})) as client:
        outcome = client.create(PAYLOAD)
    assert isinstance(outcome, RateLimited)
    assert outcome.retry_after is not None
    assert 110 <= outcome.retry_after <= 120


@pytest.mark.parametrize("status", [500, 502, 503, 504, 302, 409, 408])
def test_create_other_statuses_are_in_doubt(status: int) -> None:
    with make_client(respond(status, {"error": "upstream gone", "details": {"id": 9}})) as client:
        outcome = client.create(PAYLOAD)
    assert isinstance(outcome, InDoubt)
    assert outcome.reason.startswith(f'HTTP {status}: upstream gone ({{"id": 9}})')
    assert "may have created" in outcome.reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("-3", None),
        ("nan", None),
        ("", None),
        (None, None),
        ("Wed, 01 May 2024 10:01:30 GMT", 90.0),
        ("Wed, 01 May 2024 09:00:00 GMT", 0.0),
        ("Wed, 99 Foo 2024", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


# -- create: exceptions --------------------------------------------------------------------

EXCEPTION_CASES: list[tuple[type[httpx.RequestError], type, str]] = [
    (httpx.ConnectError, NotSent, "could not connect (ConnectError: boom): nothing was sent"),
    (httpx.ConnectTimeout, NotSent, "connect timeout after 5s: nothing was sent"),
    (httpx.PoolTimeout, NotSent, "no free connection within 5s: nothing was sent"),
    (httpx.ReadTimeout, InDoubt, "read timeout after 30s: the server may have created the task"),
    (httpx.WriteTimeout, InDoubt, "write timeout after 30s while sending"),
    (httpx.RemoteProtocolError, InDoubt, "connection closed mid-way (RemoteProtocolError: boom)"),
    (httpx.ReadError, InDoubt, "connection lost reading (ReadError: boom)"),
    (httpx.WriteError, InDoubt, "connection lost while sending (WriteError: boom)"),
    (httpx.CloseError, InDoubt, "request failed (CloseError: boom)"),
    (httpx.LocalProtocolError, InDoubt, "request failed (LocalProtocolError: boom)"),
    (httpx.ProxyError, InDoubt, "request failed (ProxyError: boom)"),
    (httpx.DecodingError, InDoubt, "request failed (DecodingError: boom)"),
]


@pytest.mark.parametrize(("exc_type", "kind", "reason"), EXCEPTION_CASES)
def test_create_maps_each_exception(
    exc_type: type[httpx.RequestError], kind: type, reason: str
) -> None:
    with make_client(raising(exc_type)) as client:
        outcome = client.create(PAYLOAD)
    assert type(outcome) is kind
    assert isinstance(outcome, NotSent | InDoubt)
    assert outcome.reason.startswith(reason)
    if kind is InDoubt:
        assert outcome.reason.endswith("the server may have created the task")


# -- list and get --------------------------------------------------------------------------


def test_list_tasks_pages_with_keyword_and_from() -> None:
    pages: list[list[Any]] = [
        [
            {"id": "a", "name": "promo", "status": "READY", "createdAt": "2024-05-01T10:00:00Z"},
            {"identity": "b", "name": "promo"},
        ],
        [
            {"id": {"identity": "c"}, "name": "promo", "status": "PAUSED"},
            {"id": 17, "name": "", "status": 3},
        ],
        [{"id": "a", "name": "seen again"}, {"id": "d", "name": "promo"}],
    ]
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        page = int(request.url.params["page"])
        items = pages[page] if page < len(pages) else []  # after a full page: one more read
        return httpx.Response(200, json={"count": 5, "items": items})

    since = datetime(2024, 5, 1, 13, 0, 5, 999_000, tzinfo=timezone(timedelta(hours=3)))
    with make_client(handler) as client:
        tasks = client.list_tasks(keyword="promo", since=since, page_size=2)
    assert [dict(r.url.params) for r in requests] == [
        {"limit": "2", "keyword": "promo", "from": "2024-05-01T10:00:05Z", "page": str(n)}
        for n in range(4)
    ]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in requests)
    assert [(t.identity, t.name, t.status, t.created_at) for t in tasks] == [
        ("a", "promo", "READY", "2024-05-01T10:00:00Z"),
        ("b", "promo", None, None),
        ("c", "promo", "PAUSED", None),
        ("17", "", None, None),
        ("d", "promo", None, None),
    ]
    assert tasks[0].raw == pages[0][0]


def pages_of(tasks: int, *, cap: int | None = None, count: int | None = None) -> Handler:
    """A list endpoint holding `tasks` tasks that honours `page` and `limit` (capped at `cap`)
    and reports `count` (default: the truth); `requests` records (page, limit) asked."""

    def handler(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        limit = min(limit, cap) if cap else limit
        page = int(request.url.params["page"])
        handler.requests.append((page, int(request.url.params["limit"])))  # type: ignore[attr-defined]
        items = [{"id": f"t{i}", "name": f"n{i}"} for i in range(tasks)]
        total = tasks if count is None else count
        return httpx.Response(
            200, json={"count": total, "items": items[page * limit : (page + 1) * limit]}
        )

    handler.requests = []  # type: ignore[attr-defined]
    return handler


def test_list_tasks_stops_when_count_is_reached_on_a_short_page() -> None:
    handler = pages_of(3)
    with make_client(handler) as client:
        tasks = client.list_tasks(page_size=2)
    assert handler.requests == [(0, 2), (1, 2)]  # type: ignore[attr-defined]
    assert len(tasks) == 3


def test_a_full_page_is_never_the_last_even_when_count_is_reached() -> None:
    """Finding F5: `count` may mean "items on this page"; a full page is always followed by
    one more read, which must come back empty."""
    handler = pages_of(4)
    with make_client(handler) as client:
        tasks = client.list_tasks(page_size=2)
    assert handler.requests == [(0, 2), (1, 2), (2, 2)]  # type: ignore[attr-defined]
    assert len(tasks) == 4


def per_page_count(tasks: int, empty_count: int | None = None) -> Handler:
    """A list endpoint whose `count` is the number of items on the page it sends."""

    def handler(request: httpx.Request) -> httpx.Response:
        limit, page = int(request.url.params["limit"]), int(request.url.params["page"])
        items = [{"id": f"t{i}", "name": f"n{i}"} for i in range(tasks)]
        items = items[page * limit : (page + 1) * limit]
        count = len(items) if items or empty_count is None else empty_count
        return httpx.Response(200, json={"count": count, "items": items})

    return handler


def test_a_count_of_the_page_s_items_is_refused_not_read_as_the_end() -> None:
    with make_client(per_page_count(1005)) as client, pytest.raises(ListAnswerError) as info:
        client.list_tasks()
    assert "its count changed between pages (1000 -> 5)" in str(info.value)
    assert "or its count is not the number of all tasks" in str(info.value)


@pytest.mark.parametrize("empty_count", [0, 1000, None], ids=["zero", "total", "page"])
def test_an_empty_page_after_a_full_one_that_reached_count_ends_the_listing(
    empty_count: int | None,
) -> None:
    with make_client(per_page_count(1000, empty_count)) as client:
        assert len(client.list_tasks()) == 1000


def test_an_empty_page_whose_count_says_more_tasks_is_refused() -> None:
    with make_client(per_page_count(1000, 1200)) as client, pytest.raises(ListAnswerError) as info:
        client.list_tasks()
    assert "its pages ended after 1000 tasks, but its count says 1200" in str(info.value)


def test_a_server_that_caps_its_pages_is_read_to_the_end_with_its_page_size() -> None:
    """The first page is shorter than asked while `count` says more exist: the server caps
    pages, so the next ones are asked for at that size (issue 12: 150 tasks, pages of 100)."""
    handler = pages_of(150, cap=100)
    with make_client(handler) as client:
        tasks = client.list_tasks()
    assert handler.requests == [(0, 1000), (1, 100)]  # type: ignore[attr-defined]
    assert [t.identity for t in tasks] == [f"t{i}" for i in range(150)]


def bare_pages(tasks: int, cap: int | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        limit = min(limit, cap) if cap else limit
        page = int(request.url.params["page"])
        items = [{"id": f"t{i}", "name": f"n{i}"} for i in range(tasks)]
        return httpx.Response(200, json=items[page * limit : (page + 1) * limit])

    return handler


@pytest.mark.parametrize(("tasks", "cap"), [(0, None), (3, None), (7, 3), (6, 3)])
def test_a_bare_list_is_read_until_an_empty_page(tasks: int, cap: int | None) -> None:
    with make_client(bare_pages(tasks, cap)) as client:
        found = client.list_tasks(page_size=5)
    assert [t.identity for t in found] == [f"t{i}" for i in range(tasks)]


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (pages_of(5, count=7), "its pages ended after 5 tasks, but its count says 7"),
        (pages_of(5, count=3), "its pages hold 4 different tasks, more than its count 3"),
        (
            respond(
                200, {"count": 5, "items": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]}
            ),
            "page 1 brought no task that earlier pages did not",
        ),
        (
            respond(200, [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]),
            "page 1 brought no task that earlier pages did not",
        ),
    ],
    ids=["count-never-arrives", "more-than-count", "page-ignored", "bare-list-page-ignored"],
)
def test_pages_that_do_not_add_up_are_refused(handler: Handler, reason: str) -> None:
    with make_client(handler) as client, pytest.raises(ListAnswerError) as info:
        client.list_tasks(page_size=2)
    assert reason in str(info.value)
    assert "cannot be read completely" in str(info.value)


def test_a_count_that_changes_between_pages_is_refused() -> None:
    counts = iter([3, 4])

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        items = [{"id": f"p{page}", "name": "N"}]
        return httpx.Response(200, json={"count": next(counts), "items": items})

    with make_client(handler) as client, pytest.raises(ListAnswerError, match=r"3 -> 4"):
        client.list_tasks(page_size=1)


def test_list_tasks_gives_up_after_the_page_cap() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, json=[{"id": f"t{len(calls)}", "name": "N"}])

    with make_client(handler) as client, pytest.raises(ListAnswerError, match="after 1000 pages"):
        client.list_tasks(page_size=1)
    assert len(calls) == MAX_LIST_PAGES


def test_list_tasks_without_since_or_keyword_sends_neither() -> None:
    params: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params.append(dict(request.url.params))
        return httpx.Response(200, json={"count": 0, "items": []})

    with make_client(handler) as client:
        assert client.list_tasks() == []
        naive = datetime(2024, 5, 1, 10, 0)  # naive is taken as UTC
        client.list_tasks(since=naive)
    assert params == [
        {"limit": "1000", "page": "0"},
        {"limit": "1000", "page": "0", "from": "2024-05-01T10:00:00Z"},
    ]


@pytest.mark.parametrize(
    ("handler", "error", "match"),
    [
        (
            respond(401, {"error": "Token is expired."}),
            AuthError,
            r"refused the token \(HTTP 401: Token is expired\.\)",
        ),
        (
            respond(500, {"error": "db down", "details": "x"}),
            ApiError,
            r"list endpoint failed \(HTTP 500: db down \(x\)\)",
        ),
        (respond(404, text="no such route"), ApiError, r"HTTP 404: no such route"),
        (
            raising(httpx.ConnectError, "refused"),
            ApiError,
            r"list endpoint is unavailable \(ConnectError: refused\)",
        ),
        (raising(httpx.ReadTimeout, "timed out"), ApiError, "list endpoint is unavailable"),
    ],
)
def test_list_tasks_failures_raise(handler: Handler, error: type[Exception], match: str) -> None:
    with make_client(handler) as client, pytest.raises(error, match=match) as info:
        client.list_tasks()
    assert type(info.value) is error


@pytest.mark.parametrize(
    ("handler", "shape"),
    [
        (respond(200, {"count": 1, "tasks": [{"id": "a"}]}), "a JSON object without `items`"),
        (respond(200, {"count": 1, "items": "a"}), "whose `items` is a string, not a list"),
        (respond(200, {"count": 1, "items": {"a": {}}}), "whose `items` is an object"),
        (respond(200, {"count": 2, "items": ["a", "b"]}), "holding a string at [0]"),
        (respond(200, [{"id": "a"}, 7]), "a list holding a number at [1]"),
        (respond(200, {"count": 1, "items": [{"name": "x"}]}), "a task object without an id"),
        (respond(200, {"items": [{"id": "a"}]}), "with `items` but no `count`"),
        (respond(200, {"count": "1", "items": []}), "whose `count` is a string"),
        (respond(200, {"count": -1, "items": []}), "whose `count` is -1, not a number >= 0"),
        (respond(200, {"count": 5.0, "items": []}), "whose `count` is 5.0, not a whole number"),
        (respond(200, {"count": True, "items": []}), "whose `count` is a boolean"),
        (respond(200, "tasks"), "a JSON string"),
        (respond(200, text="null"), "a JSON null"),
        (respond(200, text="<!DOCTYPE html><html>502</html>"), "an HTML page"),
        (respond(200, text=""), "an empty body"),
        (respond(200, text="count=1"), "a body that is not JSON"),
    ],
)
def test_a_list_answer_in_an_unknown_shape_is_refused_naming_the_shape(
    handler: Handler, shape: str
) -> None:
    with make_client(handler) as client, pytest.raises(ListAnswerError) as info:
        client.list_tasks()
    assert shape in str(info.value)
    assert 'reads only {"count": N, "items": [...]} or a list of tasks' in str(info.value)


def test_the_date_header_of_list_answers_measures_the_clock_skew() -> None:
    behind = datetime.now(UTC) - timedelta(minutes=15)
    date = behind.strftime("%a, %d %b %Y %H:%M:%S GMT")
    dates = iter([date, "not a date"])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"count": 0, "items": []}, headers={"Date": next(dates)})

    with make_client(handler) as client:
        assert client.clock_skew is None
        client.list_tasks()
        first = client.clock_skew
        assert first is not None
        assert timedelta(minutes=15) <= first < timedelta(minutes=15, seconds=5)
        client.list_tasks()  # a Date that does not parse keeps the last measure
        assert client.clock_skew == first


def test_list_tasks_rejects_bad_page_size() -> None:
    empty = respond(200, {"count": 0, "items": []})
    with make_client(empty) as client, pytest.raises(ValueError):
        client.list_tasks(page_size=0)


def test_get_task_200_and_404() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/t-1"):
            return httpx.Response(200, json={"name": "promo", "status": "PROCESS"})
        return httpx.Response(404, json={"error": "Not found"})

    with make_client(handler) as client:
        assert client.get_task("t-1") == RemoteTask(
            "t-1", "promo", "PROCESS", None, {"name": "promo", "status": "PROCESS"}
        )
        assert client.get_task("t-2") is None


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (respond(401, {"error": "no"}), AuthError),
        (respond(503, {"error": "busy"}), ApiError),
        (respond(200, ["x"]), ApiError),
        (raising(httpx.ConnectError), ApiError),
    ],
)
def test_get_task_failures_raise(handler: Handler, error: type[Exception]) -> None:
    with make_client(handler) as client, pytest.raises(error, match="Twin24") as info:
        client.get_task("t-1")
    assert type(info.value) is error


# -- the token never leaks -----------------------------------------------------------------


def echo_token(status: int) -> Handler:
    """A hostile server that quotes the request's Authorization header back."""

    def handler(request: httpx.Request) -> httpx.Response:
        auth = request.headers["Authorization"]
        body = {
            "error": f"bad header {auth}",
            "details": {auth: [auth, {"h": dict(request.headers)}]},
        }
        return httpx.Response(status, json=body, headers={"Retry-After": "1"})

    return handler


def echo_token_text(status: int) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text=f"{'x' * 190}{request.headers['Authorization']}")

    return handler


def token_as_identity(status: int) -> Handler:
    """A hostile server that answers with the token as (or inside) every identity."""

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        ids = [token, f"id-{token}", {"identity": token}]
        if request.method == "POST":
            return httpx.Response(status, json={"id": {"identity": f"task-{token}"}})
        items = [{"id": i, "name": "promo", "note": token} for i in ids]
        if request.url.path.endswith("/t-1"):
            return httpx.Response(status, json={"id": token, "name": token})
        return httpx.Response(status, json={"count": len(items), "items": items})

    return handler


def raising_with_headers(exc_type: type[httpx.RequestError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type(f"failed {dict(request.headers)} {TOKEN}", request=request)

    return handler


LEAK_STATUSES = [200, 400, 401, 402, 403, 404, 405, 422, 429, 500, 502, 503, 504]


def test_token_never_appears_in_outcomes_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    handlers = [echo_token(s) for s in LEAK_STATUSES] + [echo_token_text(s) for s in LEAK_STATUSES]
    handlers += [raising_with_headers(exc_type) for exc_type, _, _ in EXCEPTION_CASES]
    handlers += [token_as_identity(200)]
    texts: list[str] = []
    for handler in handlers:
        with make_client(handler) as client:
            texts.append(repr(client))
            outcome = client.create(PAYLOAD)
            texts += [str(outcome), repr(outcome)]
            for call in (client.list_tasks, lambda c=client: c.get_task("t-1")):
                try:
                    texts.append(repr(call()))
                except ApiError as exc:
                    texts += [str(exc), repr(exc)]
    assert len(texts) > 3 * len(handlers)
    assert any("***" in t for t in texts)  # the hostile server did quote it back
    assert not [t for t in texts if TOKEN in t]
    assert TOKEN not in caplog.text


def test_bad_tokens_are_refused_without_being_quoted() -> None:
    for token in ("", "abc def", "abc\ndef", "tok\u0444en"):
        with pytest.raises(AuthError) as info:
            Twin24Client(BASE, token)
        assert (token or "\0") not in str(info.value)


def test_bad_base_url_is_refused() -> None:
    with pytest.raises(ApiError, match=r"is not a full http\(s\) URL"):
        Twin24Client("cis.twin24.ai/api/v1", TOKEN)
    assert DEFAULT_API_URL.startswith("https://")


# -- real loopback HTTP --------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    mode = "ok"

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.ports: dict[str, list[int]] = {"POST": [], "GET": []}

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client hung up on purpose (timeouts); nothing to report


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive is on unless the client asks otherwise
    server: _Server

    def _reply(self, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        ports = self.server.ports["POST"]
        ports.append(self.client_address[1])
        if self.server.mode == "drop":
            self.close_connection = True
            return
        if self.server.mode == "slow":
            time.sleep(0.4)
        self._reply({"id": {"identity": f"task-{len(ports)}"}})

    def do_GET(self) -> None:
        self.server.ports["GET"].append(self.client_address[1])
        self._reply({"count": 0, "items": []})

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx honours proxy variables; loopback tests must talk to loopback directly."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def server(no_proxy: None) -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


def _url(srv: _Server) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/api/v1"


def test_each_create_uses_a_fresh_connection(
    server: _Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with Twin24Client(_url(server), TOKEN) as client:
        assert client.create(PAYLOAD) == Created("task-1")
        assert client.create(PAYLOAD) == Created("task-2")
        client.list_tasks()
        client.list_tasks()
    assert len(set(server.ports["POST"])) == 2
    # The server does keep connections alive: lists reuse theirs, so the check above can fail.
    assert len(server.ports["GET"]) == 2 and len(set(server.ports["GET"])) == 1
    assert TOKEN not in caplog.text


def test_creates_from_several_threads(server: _Server) -> None:
    with Twin24Client(_url(server), TOKEN) as client:
        results: list[Any] = []
        threads = [
            threading.Thread(target=lambda: results.append(client.create(PAYLOAD)))
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(r.identity for r in results) == sorted(f"task-{n}" for n in range(1, 7))
    assert len(set(server.ports["POST"])) == 6


def test_real_read_timeout_is_in_doubt(server: _Server) -> None:
    server.mode = "slow"
    timeouts = Timeouts(connect=1, read=0.1, write=1, pool=1)
    with Twin24Client(_url(server), TOKEN, timeouts=timeouts) as client:
        assert client.create(PAYLOAD) == InDoubt(
            "read timeout after 0.1s: the server may have created the task"
        )


def test_real_dropped_connection_is_in_doubt(server: _Server) -> None:
    server.mode = "drop"
    with Twin24Client(_url(server), TOKEN) as client:
        outcome = client.create(PAYLOAD)
    assert isinstance(outcome, InDoubt)
    assert outcome.reason.startswith("connection closed mid-way (RemoteProtocolError")
    assert server.ports["POST"]  # the request did arrive


def test_real_connection_refused_is_not_sent(no_proxy: None) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Twin24Client(f"http://127.0.0.1:{port}/api/v1", TOKEN) as client:
        outcome = client.create(PAYLOAD)
        assert isinstance(outcome, NotSent)
        assert outcome.reason.startswith("could not connect (ConnectError")
        with pytest.raises(ApiError, match="list endpoint is unavailable"):
            client.list_tasks()


# -- read_token ----------------------------------------------------------------------------


def test_read_token_from_env_and_file(tmp_path: Path) -> None:
    assert read_token(None, {"TWIN24_TOKEN": f"  {TOKEN}\n"}) == TOKEN
    token_file = tmp_path / "token"
    token_file.write_text(f"\n{TOKEN}\n", encoding="utf-8")
    assert read_token(token_file, {}) == TOKEN
    assert read_token(token_file, {"TWIN24_TOKEN": "from-env"}) == TOKEN  # the flag wins


def test_read_token_without_any() -> None:
    for env in ({}, {"TWIN24_TOKEN": "  "}, {"OTHER": TOKEN}):
        with pytest.raises(AuthError) as info:
            read_token(None, env)
        assert str(info.value) == "no Twin24 token: set TWIN24_TOKEN or pass --token-file FILE"


def test_read_token_file_problems_name_the_file_not_its_contents(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(AuthError, match=f"token file {missing} not found"):
        read_token(missing, {"TWIN24_TOKEN": TOKEN})
    empty = tmp_path / "empty"
    empty.write_text(" \n", encoding="utf-8")
    with pytest.raises(AuthError, match=f"token file {empty} is empty"):
        read_token(empty, {})
    with pytest.raises(AuthError, match=f"cannot read token file {tmp_path}"):
        read_token(tmp_path, {})
    bad = tmp_path / "bad"
    bad.write_text(f"{TOKEN} {TOKEN}\n", encoding="utf-8")
    with pytest.raises(AuthError, match=f"token file {bad} contains spaces") as info:
        read_token(bad, {})
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize("status", [400, 401, 422])
def test_a_json_escaped_token_in_a_response_is_masked_too(status: int) -> None:
    """Review finding: a server that escapes `/` as `\\/` (PHP does) quoted the token back in
    a form the plain replace did not catch."""
    token = "abc/def+ghi"

    def handler(request: httpx.Request) -> httpx.Response:
        quoted = json.dumps({"message": f"bad token {request.headers['Authorization']}"})
        return httpx.Response(status, text=quoted.replace("/", "\\/"))

    client = Twin24Client(BASE, token, transport=httpx.MockTransport(handler))
    texts = [str(client.create(PAYLOAD))]
    try:
        client.list_tasks()
    except ApiError as exc:
        texts.append(str(exc))
    assert all("***" in t for t in texts), texts
    assert not [t for t in texts if "abc" in t or "ghi" in t], texts


# -- hostile answers: the token as an identity, huge or deep JSON, endless digits ----------


def test_an_identity_holding_the_token_is_no_identity() -> None:
    with make_client(token_as_identity(200)) as client:
        outcome = client.create(PAYLOAD)
        assert outcome == InDoubt(
            "HTTP 200 with the API token in id.identity: not taken as an identity, so the "
            "outcome is unknown"
        )
        with pytest.raises(ListAnswerError, match="a task object whose id holds the API token"):
            client.list_tasks()  # fails closed, never shown (nor skipped, which loses a task)
        assert client.get_task("t-1") is None  # ... and so does the one task asked for
    json_escaped = "abc/def"  # quoted back as abc\/def by a PHP server

    def php(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text='{"id": {"identity": "abc\\\\/def"}}')

    client = Twin24Client(BASE, json_escaped, transport=httpx.MockTransport(php))
    assert isinstance(client.create(PAYLOAD), InDoubt)


def nested(depth: int) -> str:
    return '{"id": ' * depth + "1" + "}" * depth


DEEP = "JSON nested deeper than 64 levels"


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (nested(100), DEEP),  # parses, but would exhaust every recursive walk after it
        (nested(100_000), DEEP),  # RecursionError in the JSON decoder itself
        ('{"id": {"identity": ' + "7" * 5000 + "}}", "JSON with a number of thousands of digits"),
        ('{"id": {"identity": "bad\\udcff"}}', "JSON with a lone UTF-16 surrogate in a string"),
    ],
    ids=["deep", "deeper", "5000-digits", "surrogate"],
)
def test_unusable_json_answers_are_in_doubt_or_clear_errors(body: str, what: str) -> None:
    """Each is said as it is (finding F13), never as "a body that is not JSON"."""
    with make_client(respond(200, text=body)) as client:
        outcome = client.create(PAYLOAD)
        assert outcome == InDoubt(f"HTTP 200 with {what}: the outcome is unknown")
        with pytest.raises(ApiError, match=f"list endpoint answered with {what}; this version"):
            client.list_tasks()
        with pytest.raises(ApiError, match=f"task endpoint returned HTTP 200 with {what}: check"):
            client.get_task("t-1")


def test_an_answer_too_large_is_not_read_to_the_end() -> None:
    big = b"[" + b"0," * (17 * 1024 * 1024) + b"0]"  # 34 MiB

    with make_client(lambda request: httpx.Response(200, content=big)) as client:
        assert client.create(PAYLOAD) == InDoubt(
            "the answer is larger than 32 MiB: the server may have created the task"
        )
        with pytest.raises(ApiError, match=r"list endpoint failed \(the answer is larger"):
            client.list_tasks()


# -- the overall deadline: a real loopback server that drips its answer --------------------

DRIP_BODY = b'{"count": 0, "items": [], "id": {"identity": "t-1"}}'
DRIP_SECONDS = 0.25 * (len(DRIP_BODY) + 38)  # 38: the status line and headers


class Dripper:
    """A server that reads a request, then answers one byte every `pause` seconds: its whole
    answer takes DRIP_SECONDS, and no single read waits anywhere near a read timeout."""

    def __init__(self, pause: float = 0.25) -> None:
        self.pause = pause
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.requests = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/api/v1"

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            self.requests += 1
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(DRIP_BODY)
            data = head + DRIP_BODY
            for byte in data:
                if self.stopped.wait(self.pause):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return  # the client gave up: what the deadline is for

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def dripper(no_proxy: None) -> Iterator[Dripper]:
    server = Dripper()
    yield server
    server.close()


def test_a_dripped_create_answer_is_in_doubt_at_the_deadline(dripper: Dripper) -> None:
    # Each byte comes well within the read timeout: only the overall deadline can end it.
    timeouts = Timeouts(connect=1, read=1, write=1, pool=1, deadline=1.0)
    with Twin24Client(dripper.url, TOKEN, timeouts=timeouts) as client:
        started = time.monotonic()
        outcome = client.create(PAYLOAD)
        took = time.monotonic() - started
    assert outcome == InDoubt(
        "no complete answer within the 1s deadline: the server may have created the task"
    )
    assert dripper.requests == 1
    assert 1.0 <= took < DRIP_SECONDS / 4  # generous: the machine may be busy


def test_a_dripped_list_answer_is_an_error_at_the_deadline(dripper: Dripper) -> None:
    timeouts = Timeouts(connect=1, read=1, write=1, pool=1, deadline=0.8)
    with Twin24Client(dripper.url, TOKEN, timeouts=timeouts) as client:
        started = time.monotonic()
        with pytest.raises(ApiError, match=r"no complete answer within the 0\.8s deadline"):
            client.list_tasks()
        assert time.monotonic() - started < DRIP_SECONDS / 4


def test_cut_short_ends_a_waiting_create_early(dripper: Dripper) -> None:
    with Twin24Client(dripper.url, TOKEN) as client:  # the default 60 s deadline
        threading.Timer(0.3, client.cut_short, args=(0.2,)).start()
        started = time.monotonic()
        outcome = client.create(PAYLOAD)
        took = time.monotonic() - started
    assert outcome == InDoubt(
        "apply was stopped while the create was under way: the server may have created the task"
    )
    assert took < DRIP_SECONDS / 4


def test_the_deadline_reaches_every_connection_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deadline sits inside httpx's pools (private attributes): an upgrade of httpx or
    httpcore that moves them must fail here, not silently drop the deadline."""
    from reconciler.apply import deadline

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # a proxy pool too
    reached: list[int] = []
    real = deadline.install
    monkeypatch.setattr(deadline, "install", lambda c, d: reached.append(real(c, d)) or 0)
    with Twin24Client(BASE, TOKEN) as client:
        client._create_client()
    assert reached and all(n >= 1 for n in reached), reached
    assert sum(reached) >= 3  # the plain pool and the proxy's, for lists and for creates


# -- the second attack round (findings F1, F2, F9, F10, F12, F13) ---------------------------


def with_reason(status: int, reason: str, body: bytes = b"") -> Handler:
    """Every answer has `status` with the reason phrase `reason` on its status line."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, extensions={"reason_phrase": reason.encode()})

    return handler


@pytest.mark.parametrize("status", [401, 422, 500, 502])
def test_the_reason_phrase_is_scrubbed_of_the_token_like_any_api_text(status: int) -> None:
    """F1: `HTTP/1.1 500 token=<TOKEN>` with an empty body."""
    with make_client(with_reason(status, f"token={TOKEN} Bearer {TOKEN}")) as client:
        outcome = client.create(PAYLOAD)
        with pytest.raises(ApiError) as listed:
            client.list_tasks()
    shown = outcome.message if isinstance(outcome, Refused) else str(outcome)
    texts = [shown, str(listed.value)]
    assert all(f"HTTP {status}: token=*** Bearer ***" in text for text in texts), texts
    assert not [text for text in texts if TOKEN in text]


def test_every_list_shape_message_is_scrubbed_of_the_token() -> None:
    """F1: the keys of an object without `items` are quoted in the message."""
    with (
        make_client(respond(200, {TOKEN: 1, "data": []})) as client,
        pytest.raises(ListAnswerError) as info,
    ):
        client.list_tasks()
    assert "its keys: data, ***" in str(info.value) and TOKEN not in str(info.value)


@pytest.mark.parametrize(
    ("item", "said"),
    [
        ({"id": "a", "title": "NPS"}, "a task object without a `name` (it has `title`)"),
        ({"id": "a"}, "a task object without a `name` (item [0])"),
        ({"id": "a", "name": None}, "a task object without a `name` (item [0])"),
        ({"id": "a", "name": {"value": "NPS"}}, "whose `name` is an object, not text"),
        ({"id": "a", "name": ["NPS"]}, "whose `name` is a list, not text"),
        ({"id": "a", "name": 7}, "whose `name` is null, not text"),
        ({"id": "a\nb", "name": "NPS"}, "whose id is text with a control character"),
        ({"id": "", "name": "NPS"}, "whose id is empty text, not usable text"),
        ({"id": 1.5, "name": "NPS"}, "whose id is a decimal number, not usable text"),
    ],
    ids=["title", "missing", "null", "object", "list", "number", "control", "empty", "float"],
)
def test_a_listed_task_without_a_text_name_or_a_usable_id_stops_the_listing(
    item: dict[str, Any], said: str
) -> None:
    """F2 (and F13): never read with the name "" (which no guard matches)."""
    with (
        make_client(respond(200, {"count": 1, "items": [item]})) as client,
        pytest.raises(ListAnswerError) as info,
    ):
        client.list_tasks()
    assert said in str(info.value)


def test_an_integer_identity_is_created_as_its_decimal_text() -> None:
    """F13: the list accepts integer ids, so the create answer does too."""
    with make_client(respond(200, {"id": {"identity": 42}})) as client:
        assert client.create(PAYLOAD) == Created("42")


@pytest.mark.parametrize("identity", ["a\x00b", "line\nbreak", "x\u2028y", "del\x7f"])
def test_an_identity_with_a_control_character_is_no_identity(identity: str) -> None:
    """F13: a NUL cannot be stored (PostgreSQL refuses it), a line break forges output."""
    with make_client(respond(200, {"id": {"identity": identity}})) as client:
        assert client.create(PAYLOAD) == InDoubt(
            "HTTP 200 with a control character in id.identity: not taken as an identity, so the "
            "outcome is unknown"
        )


def test_a_huge_count_is_described_not_echoed() -> None:
    """F13: a count of 400 digits is said by its size."""
    with (
        make_client(respond(200, {"count": 10**400, "items": []})) as client,
        pytest.raises(ListAnswerError) as info,
    ):
        client.list_tasks()
    assert "its count says a number of 401 digits" in str(info.value)
    assert "0" * 30 not in str(info.value)


@pytest.mark.parametrize(
    "date",
    [
        "Wed, 01 Jan 3000 00:00:00 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Mon, 01 Jan 0001 00:00:00 GMT",
        (datetime.now(UTC) + timedelta(hours=25)).strftime("%a, %d %b %Y %H:%M:%S GMT"),
        (datetime.now(UTC) - timedelta(hours=25)).strftime("%a, %d %b %Y %H:%M:%S GMT"),
    ],
    ids=["year-3000", "year-9999", "year-1", "25h-ahead", "25h-behind"],
)
def test_a_date_header_more_than_a_day_away_is_not_believed(date: str) -> None:
    """F9: the skew it would measure would move every in-doubt lookup by as much."""
    empty = {"count": 0, "items": []}
    with make_client(lambda r: httpx.Response(200, json=empty, headers={"Date": date})) as client:
        client.list_tasks()
    assert client.clock_skew is None
    assert client.clock_warning is not None
    assert "more than 24 h away from this machine's clock; it is not believed" in (
        client.clock_warning
    )


def test_a_date_header_an_hour_ahead_is_believed() -> None:
    date = (datetime.now(UTC) + timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    empty = {"count": 0, "items": []}
    with make_client(lambda r: httpx.Response(200, json=empty, headers={"Date": date})) as client:
        client.list_tasks()
    assert client.clock_skew is not None and client.clock_warning is None
    assert -timedelta(hours=1, seconds=5) < client.clock_skew < -timedelta(minutes=59)


SECRET = "Pa55w0rd-secret"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (f"https://me:{SECRET}@cis.twin24.ai/api/v1", "must not carry a user name or password"),
        (f"https://{SECRET}@cis.twin24.ai/api/v1", "must not carry a user name or password"),
        (f"https://cis.twin24.ai/api/v1?token={SECRET}", "must not carry a query or a fragment"),
        (f"https://cis.twin24.ai/api/v1#{SECRET}", "must not carry a query or a fragment"),
        (f"ftp://u:{SECRET}@x/", "must not carry a user name or password"),
        (f"ftp://x/{SECRET}", "is not a full http(s) URL"),
        (f"https://x:99999/{SECRET}", "is not a full http(s) URL"),
        (f"https://[{SECRET}/", "is not a full http(s) URL"),
    ],
)
def test_an_api_url_that_may_hold_a_secret_is_refused_without_being_shown(
    url: str, said: str
) -> None:
    """F12: such a URL would be stored in the state's api_url and echoed in errors."""
    with pytest.raises(ApiError) as info:
        Twin24Client(url, TOKEN)
    assert said in str(info.value) and SECRET not in str(info.value)
    assert str(info.value).startswith("the Twin24 API URL (--api-url or TWIN24_API_URL) ")


def test_a_token_file_is_a_regular_file_found_through_links(tmp_path: Path) -> None:
    """F10: a mounted secret is a link (Kubernetes, CI); its target is read."""
    target = tmp_path / "..data" / "token"
    target.parent.mkdir()
    target.write_text(f"{TOKEN}\n", encoding="utf-8")
    (tmp_path / "token").symlink_to(target)
    assert read_token(tmp_path / "token", {}) == TOKEN


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda p: os.mkfifo(p), "it is a FIFO (named pipe), not a regular file"),
        (lambda p: p.symlink_to("/dev/zero"), "it is a device, not a regular file"),
        (lambda p: p.write_bytes(b"x" * (64 * 1024 + 1)), "it is larger than 64 KiB"),
        (lambda p: p.mkdir(), "it is a folder"),
        (lambda p: p.write_bytes(b"\xff\xfe"), "it is not UTF-8 text"),
    ],
    ids=["fifo", "dev-zero", "too-large", "folder", "not-utf8"],
)
def test_a_token_file_that_is_not_a_small_regular_file_is_refused_at_once(
    tmp_path: Path, make: Callable[[Path], object], said: str
) -> None:
    """F10: /dev/zero was a MemoryError, a FIFO with no writer a hang."""
    path = tmp_path / "token"
    make(path)
    started = time.monotonic()
    with pytest.raises(AuthError) as info:
        read_token(path, {})
    assert time.monotonic() - started < 5
    assert str(info.value).startswith(f"cannot read token file {path} ({said})")
