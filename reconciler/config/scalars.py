"""Plain scalars by the YAML 1.2 core schema, with this tool's limits (spec 9.1).

`no`, `on` stay text, `0777` is 777, `0o17` is 15, `0x1F` is 31, `1:30` and
`2030-06-02 10:00` are text (there are no timestamps). A number longer than 100 characters
(Python refuses to convert ints past 4,300 digits, JSON cannot carry them) and a float that
overflows to infinity are `ScalarError`s, never a `ValueError` from deep inside.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_NUMBER_CHARS = 100

NULL = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
NOT_TEXT = NULL | _TRUE | _FALSE  # with the texts starting like a number: maybe not text
KINDS = {int: "an integer", float: "a number", bool: "true or false", type(None): "null"}

_INT = re.compile(r"^[-+]?[0-9]+$").match
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$").match
_OCT_HEX = re.compile(r"^0o[0-7]+$|^0x[0-9a-fA-F]+$").match
_INF = (".inf", ".Inf", ".INF")


class ScalarError(ValueError):
    """A plain scalar this tool will not read (a number too long or too large)."""


def resolve_plain(text: str) -> Any:
    """Resolve a plain (unquoted, untagged) scalar by the YAML 1.2 core schema.

    Raises `ScalarError` for a number over 100 characters or a float that overflows.
    """
    if text in NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    first = text[0]
    if first.isdigit() or first in "-+.":
        if _INT(text):
            return _number(text, int)
        if _FLOAT(text):
            return _number(text, float)
        if (text[1:] if first in "-+" else text) in _INF:
            return float("-inf") if first == "-" else float("inf")
        if text in (".nan", ".NaN", ".NAN"):
            return float("nan")
    if first == "0" and len(text) > 2 and _OCT_HEX(text):
        return _number(text[2:], lambda digits: int(digits, 8 if text[1] == "o" else 16))
    return text


def _number(text: str, convert: Callable[[str], Any]) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        raise ScalarError(
            f"a number of {len(text)} characters is over the limit of {MAX_NUMBER_CHARS}; "
            "quote it if it is text"
        )
    value = convert(text)
    if isinstance(value, float) and not _held_as_written(text, value):
        # `1.9999999999999999` is the float 2.0 (a count of 2), `1.0499999999999999999` is
        # 1.05 (a rate of 5/s): the text is not the number read.
        shown = f"{value:.0f}" if value.is_integer() else repr(value)
        raise ScalarError(
            f"the number {text} is read as {shown}: a float holds no more than about 16 "
            "digits; write the number you mean"
        )
    if value in (float("inf"), float("-inf")):
        # No field takes infinity, so the message does not suggest `.inf`.
        raise ScalarError(
            f"the number {text} is too large to read (the largest is about 1.8e308); quote it "
            "if it is text"
        )
    return value


def _held_as_written(text: str, value: float) -> bool:
    """Whether the float `value` read from `text` is the number written: its shortest form
    (`repr`) has the same decimal value as the text (`0.1`, `1e30`, `105e-2` are; a text
    with more digits than a float holds, rounded to a number it does not say, is not)."""
    if value != value or value in (float("inf"), float("-inf")):
        return True  # .nan, .inf and overflow: other checks' business
    try:
        return Decimal(text.replace("_", "")) == Decimal(repr(value))
    except (InvalidOperation, ValueError):
        return True


INT_MAX = 2**31 - 1  # the bound of every count and duration (the API's 32-bit integers)
EXACT_FLOAT = 2**53  # above it a float is no longer the whole number that was written


def whole(value: Any) -> int | None:
    """`value` as a whole number: an integer (`6`, `0x1F`), or a float with nothing after the
    point that is exactly the number written (`6.0`, `1e5`: JSON and JSON Schema's "integer"
    read them so); None otherwise (`2.5`, `true`, `.inf`, `1e30`)."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) <= EXACT_FLOAT else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None
