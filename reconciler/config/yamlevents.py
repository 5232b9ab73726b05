"""YAML events -> plain data and positions, under this tool's rules (see `yamlio`).

`compose` reads a text with libyaml's C event parser (fast: about 0.1 ms for a 1 KB file) and
builds the data itself. When libyaml refuses the text, or meets a construct it would misread
(`{ ?foo: bar }`), the text is read again by `yaml12.PureParser` (ruamel's pure-Python parser
reading YAML 1.2); when both refuse it, the error that stands further into the file is
reported (libyaml's own when the two agree on where), since a parser that got further saw
valid YAML where the other stopped.

Every refusal is a `Refused` with a 1-based position inside the text; nothing here raises
anything else for any input (limits are explicit: nesting, key and text lengths, numbers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from reconciler.config import yaml12
from reconciler.config.scalars import KINDS, NOT_TEXT, NULL, ScalarError, resolve_plain
from reconciler.errors import Location

MAX_DEPTH = yaml12.MAX_DEPTH  # nested mappings and lists, the top-level mapping included
MAX_KEY_CHARS = 256  # (written as a literal in the hot loop of `mapping`)
MAX_TEXT_CHARS = 65_536

FieldPath = tuple[str | int, ...]
# The fallback parser reads about 50 KiB a second: a file libyaml refuses is read again by it
# only up to this size, so that a checkout of many large files cannot eat the plan job.
FALLBACK_MAX_BYTES = 256 * 1024
FALLBACK_MAX_CHARS = FALLBACK_MAX_BYTES // 4  # below it, the bytes need not be counted
FALLBACK_NOTE = (
    " (this file is over 256 KiB, so only the fast YAML reader reads it; it refuses some valid "
    "YAML 1.2 that the slower reader takes, such as a URL inside [...] or {...}: quote such "
    "values, or split the file)"
)


class Refused(Exception):
    """The text is refused at a 1-based `line` and `col`."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line, self.col, self.message = line, col, message


class _Misread(Exception):
    """libyaml would misread the text (0-based position); read it with the 1.2 parser."""

    def __init__(self, line: int, col: int) -> None:
        super().__init__("misread")
        self.line, self.col = line, col


Composed = tuple[Any, dict[FieldPath, Location], dict[FieldPath, Location], str]


def compose(text: str, file: str, root: str, fast: bool = True) -> Composed:
    """Data, key locations, value locations of `text`, and which parser read it (`libyaml`
    or `yaml12`); raises `Refused`, always at a position inside the text (past its end: the
    end of its last line). `fast=False`: the fallback parser alone (for tests)."""
    builder = _Builder(text, file, root)
    try:
        return _compose(text, builder, fast)
    except Refused as refused:
        raise builder.clamp(refused.line - 1, refused.col - 1, refused.message) from None
    except yaml12.Invalid as invalid:
        raise builder.clamp(invalid.line, invalid.col, invalid.message) from None


def _compose(text: str, builder: _Builder, fast: bool) -> Composed:
    from _ruamel_yaml import CParser  # type: ignore[import-not-found]

    first: Exception = _Misread(0, 0)
    if fast:
        try:
            data = builder.build(CParser(text).get_event, fast=True)
            yaml12.check_comments(text, yaml12.c_tokens(text))
            return data, builder.keys, builder.values, "libyaml"
        except (YAMLError, _Misread) as fast_error:
            first = fast_error
        if len(text) > FALLBACK_MAX_CHARS and len(text.encode("utf-8")) > FALLBACK_MAX_BYTES:
            refused = builder.refusal(first, first)
            raise Refused(refused.line, refused.col, refused.message + FALLBACK_NOTE)
    slow = _Builder(text, builder.file, builder.root)
    try:
        data = slow.build(yaml12.PureParser(text).get_event, fast=False)
        yaml12.check_comments(text, yaml12.pure_tokens(text))
        return data, slow.keys, slow.values, "yaml12"
    except (Refused, yaml12.Invalid):
        raise
    except Exception as exc:  # the pure parser's own bugs too: fall back on libyaml's error
        second: Exception = exc
    raise builder.refusal(first, second)


class _Builder:
    def __init__(self, text: str, file: str, root: str) -> None:
        self.text, self.file, self.root = text, file, root
        self.keys: dict[FieldPath, Location] = {}
        self.values: dict[FieldPath, Location] = {}
        self.lines = yaml12.Lines(text)
        self.question = "?" in text

    def build(self, get_event: Callable[[], Any], fast: bool) -> Any:
        self.get_event, self.fast = get_event, fast
        get_event()  # StreamStart
        event = get_event()
        root = self.root
        if type(event) is StreamEndEvent:
            raise Refused(1, 1, f"file is empty: expected one {root}")
        version = event.version
        if version is not None and tuple(version) != (1, 2):
            raise self.refuse(
                event,
                f"%YAML {version[0]}.{version[1]} directive is not supported: files are read "
                "as YAML 1.2; remove the directive",
            )
        if getattr(event, "tags", None):
            raise self.refuse(event, "%TAG directives are not allowed")
        top = get_event()
        wanted = MappingStartEvent if root == "mapping" else SequenceStartEvent
        if type(top) is not wanted:
            self.check_event(top)
            if type(top) is ScalarEvent and top.implicit[0] and top.value in NULL:
                raise Refused(1, 1, f"file is empty: expected one {root}")
            if root == "mapping":
                raise self.refuse(top, "file must hold one mapping (key: value lines)")
            raise self.refuse(top, "file must hold one list (- from: ... lines)")
        data = self.node(top, (), 0)
        get_event()  # DocumentEnd
        event = get_event()
        if type(event) is not StreamEndEvent:
            raise self.refuse(
                event, "several YAML documents in one file; keep one (no `---` between)"
            )
        return data

    def refuse(self, event: Any, message: str) -> Refused:
        # The parsers' marks are 0-based; positions become 1-based here and in `node` only.
        mark = event.start_mark
        return Refused(mark.line + 1, mark.column + 1, message)

    def check_event(self, event: Any) -> None:
        if type(event) is AliasEvent:
            raise self.refuse(
                event, f"alias *{event.anchor} is not allowed: share values with _defaults.yaml"
            )
        if event.anchor is not None:
            raise self.refuse(
                event, f"anchor &{event.anchor} is not allowed: share values with _defaults.yaml"
            )
        if event.tag is not None:
            tag = str(event.tag).replace("tag:yaml.org,2002:", "!!")
            raise self.refuse(event, f"explicit tag {tag} is not allowed: write plain values")

    def node(self, event: Any, path: FieldPath, indent: int) -> Any:
        """Build one node. `indent`: the spaces a further line of this node needs (one more
        than the column of its key or dash) in block context, or -1 inside [...] or {...}."""
        # The hot loop of every validate: type identity, few attribute reads.
        cls = type(event)
        if cls is AliasEvent or event.anchor is not None or event.tag is not None:
            self.check_event(event)
        mark = event.start_mark
        if self.question:
            self.check_question(mark)
        self.values[path] = Location(self.file, mark.line + 1, mark.column + 1)
        if cls is ScalarEvent:
            text = event.value
            if (
                event.style  # quoted or block: '' or None when plain
                or len(text) > MAX_TEXT_CHARS
                or event.end_mark.line != mark.line
                or (indent < 0 and text and text[0] in "-?:")
            ):
                return self.scalar(event, mark, indent)
            try:
                return resolve_plain(text)  # plain, untagged
            except ScalarError as exc:
                raise self.refuse(event, str(exc)) from None
        if len(path) >= MAX_DEPTH and cls in (SequenceStartEvent, MappingStartEvent):
            raise self.refuse(event, yaml12.DEPTH_MESSAGE)
        flow = indent >= 0 and event.flow_style
        inner = -1 if flow or indent < 0 else mark.column + 1
        get_event = self.get_event
        if cls is SequenceStartEvent:
            items: list[Any] = []
            while type(event := get_event()) is not SequenceEndEvent:
                items.append(self.node(event, (*path, len(items)), inner))
            if flow and event.end_mark.line != mark.line:
                yaml12.check_continuation(
                    self.lines, mark.line, event.end_mark.line, indent, True, "[...] list"
                )
            return items
        if cls is MappingStartEvent:
            return self.mapping(path, mark, indent, flow, inner)
        raise self.refuse(event, f"unexpected YAML event {cls.__name__}")

    def mapping(self, path: FieldPath, mark: Any, indent: int, flow: bool, inner: int) -> Any:
        mapping: dict[str, Any] = {}
        keys, get_event = self.keys, self.get_event
        while type(event := get_event()) is not MappingEndEvent:
            if type(event) is not ScalarEvent:
                self.check_event(event)
                raise self.refuse(event, "a key must be plain text, not a list or mapping")
            if event.anchor is not None or event.tag is not None:
                self.check_event(event)
            key = event.value
            if inner < 0 and key in ("-", "?", ":") and not event.style:
                self.check_lone_indicator(event)
            if event.style or key in NOT_TEXT or key[:1] in "0123456789-+." or len(key) > 256:
                key = self.key(event)  # quoted, or it might not be text, or too long
            here = (*path, key)
            if key in mapping:
                raise self.refuse(
                    event, f"duplicate key {key!r} (first at line {keys[here].line}); keep one"
                )
            key_mark = event.start_mark
            if self.question:
                self.check_question(key_mark)
            keys[here] = Location(self.file, key_mark.line + 1, key_mark.column + 1)
            mapping[key] = self.node(get_event(), here, inner)
        if flow and event.end_mark.line != mark.line:
            yaml12.check_continuation(
                self.lines, mark.line, event.end_mark.line, indent, True, "{...} mapping"
            )
        return mapping

    def check_lone_indicator(self, event: Any) -> None:
        # `{-}`, `{-, a: 1}`: a plain `-` (`?`, `:`) in {...} must go on with text-safe
        # characters (`{-: 1}` is the key "-"); both parsers took `-` before `,` or `}`.
        after = self.text[event.end_mark.index : event.end_mark.index + 1]
        if after in ("", " ", "\t", "\r", "\n", ",", "[", "]", "{", "}"):
            raise self.refuse(event, f"a plain {event.value} in [...] or {{...}} must be quoted")

    def key(self, event: Any) -> str:
        text: str = event.value
        if event.implicit[0]:
            try:
                value = resolve_plain(text)
            except ScalarError as exc:
                raise self.refuse(event, f"key: {exc}") from None
            if not isinstance(value, str):
                shown = text or "(empty)"
                raise self.refuse(
                    event,
                    f"key {shown} is {KINDS.get(type(value), 'not text')}, not text: keys are "
                    f"field names (write '{text}' in quotes if you mean the text)",
                )
        if len(text) > MAX_KEY_CHARS:
            raise self.refuse(
                event, f"a key of {len(text)} characters is over the limit of {MAX_KEY_CHARS}"
            )
        return text

    def scalar(self, event: Any, mark: Any, indent: int) -> Any:
        text: str = event.value
        if len(text) > MAX_TEXT_CHARS:
            raise self.refuse(
                event,
                f"a value of {len(text)} characters is over the limit of {MAX_TEXT_CHARS}",
            )
        style = event.style
        if style == "|" or style == ">":
            if mark.column < indent:  # on a line of its own, not right of its key or dash
                raise self.refuse(
                    event,
                    f"a {style} text that starts on the line below its key or dash must be "
                    f"indented by at least {indent} space(s), more than the key or dash",
                )
            header = self.lines[mark.line][mark.column :]
            if not any(c.isdigit() for c in header[1:3]):
                yaml12.check_block_scalar(self.lines, mark.line, indent - 1)
        elif indent >= 0:
            if event.end_mark.line != mark.line:
                yaml12.check_continuation(
                    self.lines, mark.line, event.end_mark.line, indent, False, "text"
                )
        elif text and text[0] in "-?:" and text[1:2] in ("", " ", "\t") and event.implicit[0]:
            raise self.refuse(event, f"a plain {text[:1]} in [...] or {{...}} must be quoted")
        if not event.implicit[0]:
            return text
        try:
            return resolve_plain(text)
        except ScalarError as exc:
            raise self.refuse(event, str(exc)) from None

    def check_question(self, mark: Any) -> None:
        # libyaml (and ruamel) take `?` before a value in [...] or {...} as the key indicator;
        # YAML 1.2 reads `?foo` as text. The value then starts right after a `?`.
        index = mark.index
        if index and self.text[index - 1] == "?":
            if self.fast:
                raise _Misread(mark.line, mark.column)
            raise Refused(
                mark.line + 1,
                mark.column,
                "`?` right before a value in [...] or {...} is read differently by YAML "
                "versions; quote the text",
            )

    def refusal(self, first: Exception, second: Exception) -> Refused:
        """The error to report when both parsers refused the text."""
        fast = _where(first)
        slow = _where(second)
        if slow is not None and (fast is None or slow > fast):
            chosen, (line, col) = second, slow
        else:
            chosen, (line, col) = first, fast or (0, 0)
        if isinstance(chosen, _Misread):
            return Refused(
                chosen.line + 1,
                chosen.col,
                "`?` right before a value in [...] or {...} is read differently by YAML "
                "versions; quote the text",
            )
        special = self.directive() or self.empty()
        if special:
            return special
        text = self.lines[line]
        if text[col : col + 1] == "\t" and not text[:col].strip(" \t-?:"):
            # Both parsers stop at such a tab; YAML 1.2 would take it as white space.
            message = (
                "a tab where only spaces are read (before the text of a line, or after -, ? "
                "or :); replace it with spaces"
            )
        else:
            message = _describe(chosen)
        return self.clamp(line, col, message)

    def directive(self) -> Refused | None:
        """A `%YAML` directive other than 1.2 (libyaml gives up on 1.3 and later)."""
        for number in range(len(self.lines)):
            line = self.lines[number]
            if line.startswith("%YAML"):
                version = line[5:].split("#")[0].strip()
                if version != "1.2":
                    return Refused(
                        number + 1,
                        1,
                        f"%YAML {version} directive is not supported: files are read as "
                        "YAML 1.2; remove the directive",
                    )
            elif line.strip() and not line.startswith(("%", "#")):
                return None
        return None

    def empty(self) -> Refused | None:
        """Only comments and document markers (`---`, `...`): an empty file."""
        for number in range(len(self.lines)):
            line = self.lines[number].strip()
            if line and not line.startswith("#"):
                marker, _, rest = line.partition(" ")
                if marker not in ("---", "...") or (rest.strip() and rest.strip()[0] != "#"):
                    return None
        return Refused(1, 1, f"file is empty: expected one {self.root}")

    def clamp(self, line: int, col: int, message: str) -> Refused:
        """A 1-based position inside the file from a 0-based one: past the end of the file,
        the end of its last line; past the end of a line, just after its last character."""
        count = max(len(self.lines), 1)
        if line >= count:
            line, col = count - 1, len(self.lines[count - 1])
        col = max(0, min(col, len(self.lines[line])))
        return Refused(line + 1, col + 1, message)


def _where(error: Exception) -> tuple[int, int] | None:
    if isinstance(error, _Misread):
        return error.line, error.col
    if isinstance(error, MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        if mark is not None:
            return mark.line, mark.column
    return None


def _describe(error: Exception) -> str:
    if isinstance(error, MarkedYAMLError):
        what = error.problem or "invalid YAML"
        context = f" ({error.context})" if error.context else ""
        return f"invalid YAML: {what}{context}"
    if isinstance(error, YAMLError):
        return f"invalid YAML: {error}".splitlines()[0]
    return "invalid YAML"
