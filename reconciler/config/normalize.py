"""Friendly forms to API values, and API values back to words for plan annotations.

- `cps`: `"3/s"` -> 1.03 (N calls per second), `"1/60s"` -> 0.4 (1 call every N seconds).
- call-time fields: `"09:00"` / `"09:00:30"` -> seconds since midnight.
- webhook URLs: detect and mask credentials (`user:pass@`, `?token=...`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus

# (100 + N) / 100 is a correctly rounded division, so 114 / 100 is exactly the double that
# the literal 1.14 denotes (never 1.1400000000000001).
CPS_PER_SECOND = {n: (100 + n) / 100 for n in range(1, 100)}
CPS_EVERY_SECONDS = {n: (100 - n) / 100 for n in range(1, 100)}
CPS_VALUES = frozenset(CPS_PER_SECOND.values()) | frozenset(CPS_EVERY_SECONDS.values())
CPS_VALUES_SORTED = tuple(sorted(CPS_VALUES))

# Exactly what the file schema accepts (schema.py uses these patterns too).
# (plain groups: JSON Schema patterns are ECMA regexes, with no named groups)
# "N/s" or "1/Ns": the schema must refuse "2/60s" as parse_rate does, so the 1 is in the text.
RATE_PATTERN = r"^ *([1-9][0-9]?) */ *s *$|^ *1 */ *([1-9][0-9]?) *s *$"
TIME_PATTERN = r"^([01][0-9]|2[0-3]):([0-5][0-9])(:([0-5][0-9]))?$"
# Used with fullmatch: Python's `$` also matches before a trailing newline, the schema's
# ECMA `$` (what editors check) does not, so "3/s\n" must be refused here as well.
_RATE = re.compile(RATE_PATTERN)
_TIME = re.compile(TIME_PATTERN)
TIME_FIELDS = ("allowCallTimeFrom", "allowCallTimeTo")
SECRET_PARAM = re.compile(r"token|key|secret|sig|signature|password|passwd|auth", re.IGNORECASE)

CPS_HINT = (
    'expected a rate text "N/s" (N calls per second) or "1/Ns" (1 call every N seconds) with '
    "N from 1 to 99, or the encoded number (1.01..1.99 or 0.01..0.99)"
)
TIME_HINT = (
    'expected seconds since midnight (0..86399) or a time of day "HH:MM" or "HH:MM:SS", '
    'e.g. "09:00"'
)


def parse_rate(text: str) -> float | None:
    """`"3/s"` -> 1.03, `"1/60s"` -> 0.4; None when the text is not an encodable rate."""
    match = _RATE.fullmatch(text)
    if not match:
        return None
    if match[1]:
        return CPS_PER_SECOND[int(match[1])]
    return CPS_EVERY_SECONDS[int(match[2])]


def cps_meaning(cps: Any) -> str | None:
    """1.03 -> `3 calls/s`, 0.4 -> `1 call / 60 s`; None for a value with no meaning."""
    if isinstance(cps, bool) or not isinstance(cps, int | float) or cps not in CPS_VALUES:
        return None
    n = round(abs(cps - 1) * 100)
    if cps > 1:
        return f"{n} call/s" if n == 1 else f"{n} calls/s"
    return f"1 call / {n} s"


def parse_time_of_day(text: str) -> int | None:
    """`"09:00"` -> 32400; None when the text is not a valid time of day."""
    match = _TIME.fullmatch(text)
    if not match:
        return None
    h, m, s = int(match[1]), int(match[2]), int(match[4] or 0)
    return h * 3600 + m * 60 + s


def time_meaning(seconds: Any) -> str | None:
    """32400 -> `09:00`, 32430 -> `09:00:30`; None outside 0..86399."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds < 86400:
        return None
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


def normalize(data: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[tuple[str, ...], str]]]:
    """Replace friendly forms by API values in a merged campaign (a new dict).

    Returns the data and `(path, message)` problems for friendly texts that do not parse.
    Values of other types are left for the model to reject with its own message.
    """
    problems: list[tuple[tuple[str, ...], str]] = []
    out = dict(data)
    cps = out.get("cps")
    if isinstance(cps, str):
        value = parse_rate(cps)
        if value is None:
            problems.append((("cps",), f"cps {cps!r} is not an encodable rate: {CPS_HINT}"))
        else:
            out["cps"] = value
    options = out.get("additionalOptions")
    if isinstance(options, dict) and any(isinstance(options.get(f), str) for f in TIME_FIELDS):
        options = dict(options)
        for name in TIME_FIELDS:
            text = options.get(name)
            if isinstance(text, str):
                seconds = parse_time_of_day(text)
                if seconds is None:
                    problems.append(
                        (("additionalOptions", name), f"{text!r} is not a time of day: {TIME_HINT}")
                    )
                else:
                    options[name] = seconds
        out["additionalOptions"] = options
    return out, problems


def url_has_secret(url: str) -> bool:
    """True when a URL carries credentials: `user:pass@`, or a parameter named like a secret
    in its query or fragment (`&` or `;` between parameters; names percent-decoded)."""
    userinfo, _, query, fragment = _url_parts(url)
    return userinfo is not None or _secret_named(query) or _secret_named(fragment)


def mask_url(url: str) -> str:
    """The URL as written, with user:password and the values of secret-named parameters (in
    the query and the fragment) replaced by `***`; nothing is percent-decoded."""
    userinfo, head, query, fragment = _url_parts(url)
    out = head if userinfo is None else head.replace(userinfo + "@", "***@", 1)
    if query is not None:
        out += "?" + _mask(query)
    if fragment is not None:
        out += "#" + _mask(fragment)
    return out


_PARAM = re.compile(r"([^&;=]*)(=?)([^&;]*)")


def _url_parts(url: str) -> tuple[str | None, str, str | None, str | None]:
    """(userinfo, scheme+authority+path, query, fragment) of `url`, split as written."""
    head, hash_, fragment = url.partition("#")
    head, question, query = head.partition("?")
    userinfo = None
    scheme_end = head.find("://")
    if scheme_end != -1:
        authority = head[scheme_end + 3 :].split("/", 1)[0]
        if "@" in authority:
            userinfo = authority.rsplit("@", 1)[0]
    return userinfo, head, query if question else None, fragment if hash_ else None


def _secret_spans(part: str | None) -> list[tuple[int, int]]:
    """Where the non-empty values of secret-named parameters of `part` stand."""
    if not part:
        return []
    spans = []
    for match in _PARAM.finditer(part):
        name = unquote_plus(match.group(1))
        if match.group(2) and match.group(3) and SECRET_PARAM.search(name):
            spans.append(match.span(3))
    return spans


def _secret_named(part: str | None) -> bool:
    """A parameter of `part` named like a secret, even with an empty value (`?password=`)."""
    return any(
        m.group(2) and SECRET_PARAM.search(unquote_plus(m.group(1)))
        for m in _PARAM.finditer(part or "")
    )


def _mask(part: str) -> str:
    out, last = [], 0
    for start, end in _secret_spans(part):
        out += [part[last:start], "***"]
        last = end
    return "".join(out) + part[last:]
