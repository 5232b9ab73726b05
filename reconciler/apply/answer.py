"""An API answer read whole, but bounded: its size and, for JSON, its nesting (spec 9.6).

A hostile or broken server can answer with gigabytes, or with JSON nested so deep that
decoding it (or walking it) exhausts the stack. `read_answer` stops reading past
`MAX_ANSWER_BYTES` (`AnswerTooLarge`); `Answer.json()` raises `ValueError` for JSON that is
invalid, nested deeper than `MAX_JSON_DEPTH`, holds a number too long to convert or a lone
surrogate (no state file could hold it), exactly as for any other body that is not JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from reconciler.state.model import lone_surrogate, too_deep

MAX_ANSWER_BYTES = 32 * 1024 * 1024  # a list page of 1,000 tasks is a few megabytes
MAX_JSON_DEPTH = 64  # the API's deepest answer is a task: four levels


class AnswerTooLarge(Exception):
    """The answer went past MAX_ANSWER_BYTES; the rest was not read."""


class UnusableJson(ValueError):
    """Valid JSON this tool will not take: too deeply nested, a number with thousands of
    digits, a lone surrogate. `str()` says which, as `JSON nested deeper than 64 levels`."""


@dataclass(frozen=True)
class Answer:
    """What the client keeps of a response: status, headers and the whole (bounded) body."""

    status_code: int
    reason_phrase: str
    headers: httpx.Headers
    content: bytes

    @property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not usable JSON."""
        return decode_json(self.content)


def read_answer(response: httpx.Response, limit: int = MAX_ANSWER_BYTES) -> Answer:
    """Read a streamed response whole, refusing more than `limit` bytes (decoded)."""
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            raise AnswerTooLarge(f"the answer is larger than {limit // (1024 * 1024)} MiB")
    return Answer(response.status_code, response.reason_phrase, response.headers, bytes(body))


def decode_json(data: bytes | str) -> Any:
    """JSON from `data`; ValueError for invalid, too deeply nested or unconvertible JSON."""
    deep = UnusableJson(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(data)
    except RecursionError:
        raise deep from None
    except json.JSONDecodeError:
        raise
    except ValueError:  # json's only other ValueError: an integer too long to convert
        raise UnusableJson("JSON with a number of thousands of digits") from None
    if too_deep(value, MAX_JSON_DEPTH):
        raise deep
    if lone_surrogate(data, value):
        raise UnusableJson("JSON with a lone UTF-16 surrogate in a string")
    return value
