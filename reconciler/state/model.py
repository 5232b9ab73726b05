"""The state model and its file format. Pure: no I/O here. (The payload fingerprint is
`config.campaign`'s: the state records it, the config defines it.)

File format (spec section 3): JSON, sorted keys, indent 2, trailing newline::

    {"version": 1, "lineage": "<uuid4>", "serial": 7, "api_url": "...",
     "campaigns": {"KEY": {"status": "created" | "pending", "identity": "..." | null,
                           "fingerprint": "sha256:...", "payload": {...},
                           "source": "campaigns/KEY.yaml", "created_at": "...Z",
                           "replaced": ["old identity", ...]   # only when non-empty
                           }}}

For a `pending` entry `created_at` is the moment the create was sent (the outcome is unknown).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any, Literal

from reconciler.errors import StateError

STATE_VERSION = 1
MAX_DEPTH = 64  # objects and lists in a state file: a payload nests four levels below an entry
Status = Literal["created", "pending"]
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_ISO_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z", re.ASCII)
MAX_SERIAL = 2**53  # no real state gets near it; a larger one is tampering, refused on read


@dataclass(frozen=True)
class Entry:
    """What the state remembers about one campaign key."""

    status: Status
    identity: str | None
    fingerprint: str
    payload: dict[str, Any]
    source: str
    created_at: str
    replaced: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status,
            "identity": self.identity,
            "fingerprint": self.fingerprint,
            "payload": self.payload,
            "source": self.source,
            "created_at": self.created_at,
        }
        if self.replaced:
            data["replaced"] = list(self.replaced)
        return data

    @classmethod
    def from_json(cls, key: str, data: Any, where: str) -> Entry:
        """An entry read from a state file, a journal record or a database row, every field
        checked (type and format): StateError naming `where` and the key otherwise."""
        if not isinstance(data, dict):
            raise StateError(f"{where}: entry {key!r} is not an object")
        missing = next(
            (
                f
                for f in ("status", "fingerprint", "payload", "source", "created_at")
                if f not in data
            ),
            None,
        )
        if missing is not None:
            raise StateError(f"{where}: entry {key!r} has no {missing!r}")
        problem = _entry_problem(data)
        if problem is not None:
            raise StateError(f"{where}: entry {key!r}: {problem}")
        return cls(
            status=data["status"],
            identity=data.get("identity"),
            fingerprint=data["fingerprint"],
            payload=data["payload"],
            source=data["source"],
            created_at=data["created_at"],
            replaced=tuple(data.get("replaced") or ()),
        )


def _entry_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with an entry's fields, or None."""
    status, identity, replaced = data["status"], data.get("identity"), data.get("replaced", [])
    payload = data["payload"]
    checks = [
        (status in ("created", "pending"), "status must be 'created' or 'pending'"),
        (
            identity is None or (isinstance(identity, str) and identity != ""),
            "identity must be a non-empty string (or null while pending)",
        ),
        (status != "created" or bool(identity), "a created entry needs an identity"),
        (isinstance(payload, dict), "payload must be an object"),
        (
            not isinstance(payload, dict)
            or (isinstance(payload.get("name"), str) and payload["name"] != ""),
            "payload must have a text 'name' (the create's body always has one)",
        ),
        (isinstance(data["fingerprint"], str), "fingerprint must be a string"),
        (isinstance(data["source"], str), "source must be a string"),
        (
            isinstance(data["created_at"], str) and parse_time(data["created_at"]) is not None,
            "created_at must be an ISO-8601 UTC time ending in Z, such as 2030-01-01T10:00:00Z",
        ),
        (
            replaced is None
            or (isinstance(replaced, list) and all(isinstance(i, str) and i for i in replaced)),
            "replaced must be a list of non-empty strings (identities)",
        ),
    ]
    return next((message for ok, message in checks if not ok), None)


def parse_time(text: str) -> datetime | None:
    """The moment of an ISO-8601 UTC time ending in `Z` (`2030-01-01T10:00:00Z`; the seconds
    may be left out or carry a fraction), or None for anything else."""
    if not _ISO_Z.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00")
    except ValueError:
        return None


@dataclass(frozen=True)
class State:
    """The whole state. `lineage` is None only for a state that was never written."""

    lineage: str | None = None
    serial: int = 0
    api_url: str | None = None
    campaigns: dict[str, Entry] = field(default_factory=dict)
    version: int = STATE_VERSION

    @property
    def exists(self) -> bool:
        return self.lineage is not None

    def with_entries(self, campaigns: dict[str, Entry]) -> State:
        return replace(self, campaigns=campaigns)

    def next_serial(self) -> State:
        """The state as it is written next: serial + 1, lineage chosen on first write."""
        return replace(self, lineage=self.lineage or str(uuid.uuid4()), serial=self.serial + 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "lineage": self.lineage,
            "serial": self.serial,
            "api_url": self.api_url,
            "campaigns": {key: e.to_json() for key, e in sorted(self.campaigns.items())},
        }


def dumps(state: State) -> str:
    """The file text of `state`: sorted keys, two-space indent, trailing newline.

    Byte for byte what `json.dumps(..., sort_keys=True, indent=2, ensure_ascii=False)` writes,
    in half its time: with `indent` the json module falls back to its pure-Python generator,
    and the state of a large repository is tens of megabytes, written at the end of every apply.
    """
    out: list[str] = []
    _pretty(state.to_json(), "", out.append)
    out.append("\n")
    return "".join(out)


def _pretty(value: Any, indent: str, emit: Any) -> None:
    if isinstance(value, str):
        emit(encode_basestring(value))
    elif value is None:
        emit("null")
    elif value is True:
        emit("true")
    elif value is False:
        emit("false")
    elif isinstance(value, int):
        emit(int.__repr__(value))
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} cannot be written to the state file")
        emit(float.__repr__(value))
    elif isinstance(value, dict | list) and not value:
        emit("{}" if isinstance(value, dict) else "[]")
    elif isinstance(value, dict):
        inner = indent + "  "
        emit("{\n")
        for i, key in enumerate(sorted(value)):
            emit(f",\n{inner}" if i else inner)
            emit(encode_basestring(key))
            emit(": ")
            _pretty(value[key], inner, emit)
        emit(f"\n{indent}}}")
    elif isinstance(value, list):
        inner = indent + "  "
        emit("[\n")
        for i, item in enumerate(value):
            emit(f",\n{inner}" if i else inner)
            _pretty(item, inner, emit)
        emit(f"\n{indent}]")
    else:
        raise TypeError(f"{type(value).__name__} cannot be written to the state file")


def loads(text: str, where: str, restore: str = "from git") -> State:
    """Parse a state file's text; `where` names the file in every error, `restore` says where
    a good copy may be found (`from git or from S.backup`)."""
    untouched = f"it was left untouched: restore it {restore}"
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        raise StateError(
            f"{where}: not a valid state file ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}); {untouched}"
        ) from None
    except ValueError as exc:
        raise StateError(f"{where}: not a valid state file ({exc}); {untouched}") from None
    if not isinstance(data, dict):
        raise StateError(f"{where}: not a valid state file (expected a JSON object)")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise StateError(f"{where}: not a valid state file (no integer 'version')")
    if version < 1:
        raise StateError(
            f"{where}: not a valid state file (version {version}: versions start at 1); {untouched}"
        )
    if version > STATE_VERSION:
        raise StateError(
            f"{where}: state version {version} was written by a newer reconcile (this one "
            f"knows version {STATE_VERSION}); upgrade reconcile, the file was left untouched"
        )
    lineage, serial, api_url = data.get("lineage"), data.get("serial"), data.get("api_url")
    campaigns = data.get("campaigns")
    if not isinstance(lineage, str) or not lineage:
        raise StateError(f"{where}: not a valid state file (no 'lineage')")
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
        raise StateError(f"{where}: not a valid state file (no non-negative 'serial')")
    if serial > MAX_SERIAL:
        raise StateError(
            f"{where}: not a valid state file ('serial' is beyond {MAX_SERIAL}, which no state "
            f"reaches); {untouched}"
        )
    if api_url is not None and not isinstance(api_url, str):
        raise StateError(f"{where}: not a valid state file ('api_url' is not a string)")
    if not isinstance(campaigns, dict):
        raise StateError(f"{where}: not a valid state file (no 'campaigns' object)")
    entries = {key: Entry.from_json(key, value, where) for key, value in campaigns.items()}
    return State(lineage=lineage, serial=serial, api_url=api_url, campaigns=entries)


def parse_json(text: str | bytes) -> Any:
    """JSON that a state (file or journal) can hold; ValueError with the reason otherwise.

    Refused: invalid JSON (`json.JSONDecodeError`), a key twice in one object (which one
    counts?), NaN, Infinity and numbers too large for a float, integers of thousands of digits,
    nesting deeper than MAX_DEPTH (every recursive walk after this one would exhaust the stack)
    and lone surrogates (no UTF-8 file can hold them: the next write would fail).
    """
    try:
        data = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError:
        raise
    except _Refused as exc:
        raise ValueError(str(exc)) from None
    except ValueError:  # json's only other ValueError: an integer too long to convert
        raise ValueError("a number with thousands of digits") from None
    except RecursionError:
        data = None
        deep = True
    else:
        deep = too_deep(data, MAX_DEPTH)
    if deep:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if lone_surrogate(text, data):
        raise ValueError("a string holds a lone UTF-16 surrogate, which no UTF-8 file can hold")
    return data


class _Refused(ValueError):
    """JSON that parses but that no state may hold (raised from the decoder's hooks)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return data


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number a state can hold")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Refused(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is too large")
    return value


def too_deep(value: Any, limit: int) -> bool:
    """True when objects and lists in `value` nest deeper than `limit`. Level by level, not
    recursive: a deep value would exhaust the stack of every recursive walk after this one."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 1
    while level:
        if depth > limit:
            return True
        below: list[Any] = []
        for item in level:
            for child in item.values() if type(item) is dict else item:
                if type(child) is dict or type(child) is list:
                    below.append(child)
        level, depth = below, depth + 1
    return False


def lone_surrogate(text: str | bytes, data: Any) -> bool:
    """Whether `data`, decoded from the JSON `text`, holds a lone UTF-16 surrogate (`\\ud800`
    alone): it can be printed escaped, but no UTF-8 file can hold it. Only a text with such an
    escape is encoded to find out."""
    raw = text if isinstance(text, str) else text.decode("latin-1")
    if not _SURROGATE_ESCAPE.search(raw):
        return False
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
