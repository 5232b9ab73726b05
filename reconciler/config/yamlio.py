"""The only ruamel.yaml user: safe YAML 1.2 loading with limits, and positions.

`load_file` reads one file into plain data plus the 1-based location of every key and value,
or into problems. It drives libyaml's C event parser (about 0.08 ms per 1 KB file) and builds
the data itself, so that:

- scalars resolve by the YAML 1.2 core schema (`no`, `on` stay text, `0777` is 777, `1:30` is
  text, `2030-06-02 10:00` is text: there are no timestamps);
- anchors, aliases, explicit tags, a `%YAML` directive other than 1.2, several documents,
  duplicate keys, non-text keys, an empty file and a root that is not a mapping are problems;
- files over 1 MiB are refused before parsing, and bytes that are not UTF-8 are reported at
  the line and column where they stand (a UTF-8 BOM is fine).

`fmt` uses ruamel's round-trip loader separately (see `fmt.py`).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import Location, Problem

MAX_FILE_BYTES = 1024 * 1024
FieldPath = tuple[str | int, ...]

_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"^[-+]?[0-9]+$")
_OCT = re.compile(r"^0o[0-7]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(inf|Inf|INF)$")
_NAN = re.compile(r"^\.(nan|NaN|NAN)$")


def resolve_plain(text: str) -> Any:
    """Resolve a plain (unquoted, untagged) scalar by the YAML 1.2 core schema."""
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    first = text[0]
    if first.isdigit() or first in "-+.":
        if _INT.match(text):
            return int(text)
        if _FLOAT.match(text):
            return float(text)
        if _INF.match(text):
            return float("-inf") if first == "-" else float("inf")
        if _NAN.match(text):
            return float("nan")
    if first == "0" and len(text) > 2:
        if _OCT.match(text):
            return int(text[2:], 8)
        if _HEX.match(text):
            return int(text[2:], 16)
    return text


def display_path(path: FieldPath) -> str:
    """`("webhookUrls", 0, "url")` -> `webhookUrls[0].url`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(file)"


@dataclass
class Document:
    """One loaded file: data (None when it has errors), positions, problems."""

    file: str
    data: Any = None
    keys: dict[FieldPath, Location] = field(default_factory=dict)
    values: dict[FieldPath, Location] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def at(self, path: FieldPath, key: bool = False) -> Location:
        """Location of the key (or value) at `path`, else of its nearest ancestor."""
        table = self.keys if key else self.values
        while path:
            if path in table:
                return table[path]
            if path in self.keys:
                return self.keys[path]
            path = path[:-1]
        return Location(self.file, 1, 1)


class _Refused(Exception):
    def __init__(self, line: int, col: int, message: str) -> None:
        self.line, self.col, self.message = line, col, message


def load_file(path: Path, file: str, root: str = "mapping") -> Document:
    """Load one YAML file; `file` is the name shown in problems; `root`: mapping or list."""
    doc = Document(file)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return _fail(doc, 1, 1, f"file is {size} bytes, over the 1 MiB limit; not parsed")
        raw = path.read_bytes()
    except OSError as exc:
        return _fail(doc, 1, 1, f"cannot read file: {exc.strerror}")
    return load_bytes(raw, file, root)


def load_bytes(raw: bytes, file: str, root: str = "mapping") -> Document:
    """Load YAML from bytes; see the module docstring for what is refused."""
    doc = Document(file)
    if len(raw) > MAX_FILE_BYTES:
        return _fail(doc, 1, 1, f"file is {len(raw)} bytes, over the 1 MiB limit; not parsed")
    # A leading BOM is fine and not part of line 1 (ruamel's columns do not count it either).
    body = raw[len(codecs.BOM_UTF8) :] if raw.startswith(codecs.BOM_UTF8) else raw
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = body[: exc.start]
        line = before.count(b"\n") + 1
        # Columns count characters, like every other problem's column, not bytes.
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8")) + 1
        return _fail(doc, line, col, "file is not UTF-8 text (invalid byte here)")
    try:
        doc.data = _compose(text, doc, root)
    except _Refused as refused:
        doc.data = None
        doc.keys.clear()
        doc.values.clear()
        return _fail(doc, refused.line, refused.col, refused.message)
    return doc


def _fail(doc: Document, line: int, col: int, message: str) -> Document:
    doc.problems.append(Problem(Location(doc.file, line, col), "(file)", message))
    return doc


def _compose(text: str, doc: Document, root: str) -> Any:
    from _ruamel_yaml import CParser  # type: ignore[import-not-found]
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.events import (
        AliasEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
    )

    parser = CParser(text)
    file = doc.file

    def refuse(event: Any, message: str) -> _Refused:
        # ruamel's marks are 0-based; positions become 1-based here and in `node` only.
        mark = event.start_mark
        return _Refused(mark.line + 1, mark.column + 1, message)

    def check(event: Any) -> None:
        if type(event) is AliasEvent:
            raise refuse(
                event, f"alias *{event.anchor} is not allowed: share values with _defaults.yaml"
            )
        if event.anchor is not None:
            raise refuse(
                event, f"anchor &{event.anchor} is not allowed: share values with _defaults.yaml"
            )
        if event.tag is not None:
            tag = str(event.tag).replace("tag:yaml.org,2002:", "!!")
            raise refuse(event, f"explicit tag {tag} is not allowed: write plain values")

    def kind(event: Any) -> str:
        return type(event).__name__

    get_event = parser.get_event
    values, keys = doc.values, doc.keys

    def node(event: Any, path: FieldPath) -> Any:
        # The hot loop of every validate: type identity, no getattr, one Location per node.
        cls = type(event)
        if cls is AliasEvent or event.anchor is not None or event.tag is not None:
            check(event)
        mark = event.start_mark
        values[path] = Location(file, mark.line + 1, mark.column + 1)
        if cls is ScalarEvent:
            return resolve_plain(event.value) if event.implicit[0] else event.value
        if cls is SequenceStartEvent:
            items: list[Any] = []
            while type(event := get_event()) is not SequenceEndEvent:
                items.append(node(event, (*path, len(items))))
            return items
        if cls is MappingStartEvent:
            mapping: dict[str, Any] = {}
            while type(event := get_event()) is not MappingEndEvent:
                if type(event) is not ScalarEvent:
                    check(event)
                    raise refuse(event, "a key must be plain text, not a list or mapping")
                if event.anchor is not None or event.tag is not None:
                    check(event)
                key = event.value
                here = (*path, key)
                if key in mapping:
                    raise refuse(
                        event, f"duplicate key {key!r} (first at line {keys[here].line}); keep one"
                    )
                mark = event.start_mark
                keys[here] = Location(file, mark.line + 1, mark.column + 1)
                mapping[key] = node(get_event(), here)
            return mapping
        raise refuse(event, f"unexpected YAML event {kind(event)}")

    try:
        event = parser.get_event()  # StreamStart
        event = parser.get_event()
        if kind(event) == "StreamEndEvent":
            raise _Refused(1, 1, f"file is empty: expected one {root}")
        version = event.version
        if version is not None and tuple(version) != (1, 2):
            raise refuse(
                event,
                f"%YAML {version[0]}.{version[1]} directive is not supported: files are read "
                "as YAML 1.2; remove the directive",
            )
        if getattr(event, "tags", None):
            raise refuse(event, "%TAG directives are not allowed")
        root_event = parser.get_event()
        wanted = "MappingStartEvent" if root == "mapping" else "SequenceStartEvent"
        if kind(root_event) != wanted:
            check(root_event)
            if kind(root_event) == "ScalarEvent" and root_event.implicit[0]:
                value = resolve_plain(root_event.value)
                if value is None:
                    raise refuse(root_event, f"file is empty: expected one {root}")
            if root == "mapping":
                raise refuse(root_event, "file must hold one mapping (key: value lines)")
            raise refuse(root_event, "file must hold one list (- from: ... lines)")
        data = node(root_event, ())
        parser.get_event()  # DocumentEnd
        event = parser.get_event()
        if kind(event) != "StreamEndEvent":
            raise refuse(event, "several YAML documents in one file; keep one (no `---` between)")
        return data
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        raise _Refused(line, col, f"invalid YAML: {what}{context}") from None
