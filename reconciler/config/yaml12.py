"""What libyaml's YAML 1.1 scanner gets wrong, and the YAML 1.2 fallback parser.

libyaml (the fast path of `yamlevents`) refuses some valid YAML 1.2, such as
`webhookUrls: [https://hooks.example.com/x]`, misreads a little (`{ ?foo: bar }` as the key
`foo`) and accepts a few invalid files. This module holds:

- `PureParser`: ruamel.yaml's pure-Python parser set to YAML 1.2, with `?` fixed to be the key
  indicator only before a space (YAML 1.2, flow context included). `yamlevents` uses it for a
  file that libyaml refused or would misread; the official test suite
  (tests/test_yaml_suite.py) checks that it brings in no misread of its own;
- checks that both parsers need: a comment must follow a space (`"value"# x`, `[a]#x`,
  `>#x` are invalid), the lines of a value that spans lines must be indented more than its key
  or dash, and a block scalar's leading empty lines may not be more indented than its text.

Positions here are 0-based line and column like the parsers' marks; `yamlevents` adds 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ruamel.yaml.loader import BaseLoader
from ruamel.yaml.scanner import ScannerError
from ruamel.yaml.tokens import FlowMappingEndToken, FlowSequenceEndToken, ScalarToken

MAX_DEPTH = 32  # nested mappings and lists, the top-level mapping included
DEPTH_MESSAGE = f"lists and mappings nested more than {MAX_DEPTH} levels deep; flatten it"
_END_SPACE_TAB = "\0 \t\r\n\x85\u2028\u2029"
_FLOW_INDICATORS = ",[]{}"


class Invalid(Exception):
    """Invalid YAML that a parser accepted; 0-based position."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line, self.col, self.message = line, col, message


class PureParser(BaseLoader):
    """ruamel.yaml's pure-Python event parser reading YAML 1.2."""

    def __init__(self, text: str) -> None:
        self._taken: Any = None  # the last token the parser took
        super().__init__(text, version=(1, 2))

    def check_key(self) -> Any:
        # YAML 1.2: `?` starts an explicit key only before white space, in flow context too
        # (ruamel, like libyaml, takes any `?` in [...] or {...} as one: `{?foo: 1}` -> foo).
        return self.reader.peek(1) in _END_SPACE_TAB

    def fetch_flow_collection_start(self, token_class: Any, to_push: str) -> None:
        # The scanner looks ahead over a whole [[[[... before the parser sees its first `[`,
        # in time quadratic in the depth: stop where the nesting limit would anyway.
        if len(self.indents) + self.flow_level >= MAX_DEPTH:  # open block ones + flow ones
            mark = self.reader.get_mark()
            raise Invalid(mark.line, mark.column, DEPTH_MESSAGE)
        super().fetch_flow_collection_start(token_class, to_push)

    def stale_possible_simple_keys(self) -> None:
        # YAML 1.2 lets a key of a {...} mapping and its `:` stand on different lines
        # (`{"foo"\n: bar}`); keys elsewhere stay limited to one line. All to 1024 characters.
        for level in list(self.possible_simple_keys):
            key = self.possible_simple_keys[level]
            in_mapping = level > 0 and self.flow_context[level - 1] == "{"
            moved_on = key.line != self.reader.line and not in_mapping
            if moved_on or self.reader.index - key.index > 1024:
                if key.required:
                    raise ScannerError(
                        "while scanning a simple key",
                        key.mark,
                        "could not find expected ':'",
                        self.reader.get_mark(),
                    )
                del self.possible_simple_keys[level]

    def check_value(self) -> Any:
        # YAML 1.2 inside [...] or {...}: `:` before white space or `,[]{}` is the value
        # indicator (`[b, c1:]` is a list holding the pair c1: null; ruamel took `:` as text
        # there and scanned an empty text forever); `:` glued to the text after it is the
        # indicator only right after a JSON-like key (`{"a":b}`); else it starts a text
        # (`{x: :x}` -> ":x").
        if not self.flow_level:
            return super().check_value()
        if self.reader.peek(1) in _END_SPACE_TAB + _FLOW_INDICATORS:
            return True
        return self._after_json_key()

    def _after_json_key(self) -> bool:
        # The token before: a quoted text or the end of a [...] or {...} (comments and line
        # breaks may stand between it and the `:`).
        last = self.tokens[-1] if self.tokens else self._taken
        if type(last) is ScalarToken:
            return not last.plain
        return type(last) in (FlowSequenceEndToken, FlowMappingEndToken)

    def get_token(self) -> Any:
        self._taken = super().get_token()
        return self._taken

    def scan_plain_spaces(self, indent: Any, start_mark: Any) -> Any:
        # YAML 1.2 takes tabs as white space inside a text on one line (`time\t:600` in
        # {...} is one text, as `time :600` is; ruamel skipped spaces only, so the tab ended
        # the text and the `:` became the value indicator: `time: 600`, a misread).
        peek = self.reader.peek
        length = 0
        while peek(length) in " \t":
            length += 1
        if length and peek(length) not in _END_SPACE_TAB:
            if peek(length) == "#":
                self.reader.forward(length)
                return []  # a comment follows: the text ends before the white space
            spaces = self.reader.prefix(length)
            self.reader.forward(length)
            return [spaces]
        return super().scan_plain_spaces(indent, start_mark)

    def scan_plain(self) -> Any:
        # ruamel's own, less its comment tokens, with one YAML 1.2 fix: inside [...] or {...}
        # a `:` before `,[]{}` ends the text (`{omitted value:,}` has the key `omitted value`;
        # ruamel read `omitted value:`).
        peek, forward = self.reader.peek, self.reader.forward
        flow = bool(self.flow_level)
        stops = _END_SPACE_TAB + (_FLOW_INDICATORS if flow else "")
        chunks: list[str] = []
        start_mark = end_mark = self.reader.get_mark()
        indent = self.indent + 1
        spaces: list[str] = []
        while peek() != "#":
            length = 0
            while True:
                ch = peek(length)
                if (ch == ":" and peek(length + 1) not in stops) or ch == "?":
                    pass
                elif ch in _END_SPACE_TAB or ch == ":" or (flow and ch in _FLOW_INDICATORS):
                    break
                length += 1
            if length == 0:
                if not chunks:  # never an empty text that does not move on (it loops)
                    mark = self.reader.get_mark()
                    raise ScannerError(
                        "while scanning a plain scalar",
                        start_mark,
                        f"found unexpected {peek()!r}",
                        mark,
                    )
                break
            self.allow_simple_key = False
            chunks.extend(spaces)
            chunks.append(self.reader.prefix(length))
            forward(length)
            end_mark = self.reader.get_mark()
            spaces = self.scan_plain_spaces(indent, start_mark)
            if not spaces or peek() == "#" or (not flow and self.reader.column < indent):
                break
        return ScalarToken("".join(chunks), True, start_mark, end_mark)

    def check_plain(self) -> Any:
        if super().check_plain():
            return True
        peek = self.reader.peek
        return (
            peek() == "?"
            and bool(self.flow_level)
            and peek(1) not in _END_SPACE_TAB + _FLOW_INDICATORS
        )


def c_tokens(text: str) -> Callable[[], Any]:
    """libyaml's `get_token` over `text`."""
    from _ruamel_yaml import CParser  # type: ignore[import-not-found]

    parser: Any = CParser(text)
    return parser.get_token  # type: ignore[no-any-return]


def pure_tokens(text: str) -> Callable[[], Any]:
    """The fallback scanner's `get_token` over `text`."""
    return PureParser(text).get_token


def check_comments(text: str, tokens: Callable[[], Any]) -> None:
    """Raise `Invalid` for a `#` comment that does not follow white space.

    Between two tokens there is only white space and comments, so a `#` that starts such a gap
    right after a token (a closing quote, `]`, `,`) is a comment glued to it. Both parsers
    accept that; YAML 1.2 does not. Cheap: the token pass runs only when some `#` in the file
    follows something other than white space (a URL fragment, `C#`, or such a comment).
    """
    hash_at = text.find("#")
    while hash_at != -1 and (hash_at == 0 or text[hash_at - 1] in " \t\r\n"):
        hash_at = text.find("#", hash_at + 1)
    if hash_at == -1:
        return
    from ruamel.yaml.tokens import ScalarToken, StreamEndToken

    end = 0
    while True:
        token = tokens()
        start = token.start_mark.index
        if start > end and text[end] == "#" and end > 0 and text[end - 1] not in " \t\r\n":
            line, col = position(text, end)
            raise Invalid(line, col, "a comment needs a space before the #")
        if type(token) is ScalarToken and not token.plain and text[start] in "|>":
            header = _BLOCK_HEADER.match(text, start)
            if header and header.group(1) == "#":
                line, col = position(text, header.start(1))
                raise Invalid(line, col, "a comment needs a space before the #")
        end = max(end, token.end_mark.index)
        if type(token) is StreamEndToken:
            return


_BLOCK_HEADER = re.compile(r"[|>][1-9+-]{0,2}(#)?")


def position(text: str, index: int) -> tuple[int, int]:
    """0-based line and column of `text[index]` (YAML 1.2 line breaks: \\n, \\r\\n, \\r)."""
    before = text[:index]
    line = before.count("\n") + before.count("\r") - before.count("\r\n")
    start = max(before.rfind("\n"), before.rfind("\r")) + 1
    return line, index - start


class Lines:
    """The lines of a text, split on first use (only a value that spans lines needs them)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._lines: list[str] | None = None

    def _all(self) -> list[str]:
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines

    def __getitem__(self, index: int) -> str:
        lines = self._all()
        return lines[index] if index < len(lines) else ""

    def __len__(self) -> int:
        return len(self._all())


def check_continuation(
    lines: Lines, first: int, last: int, need: int, comments: bool, what: str
) -> None:
    """Raise `Invalid` unless lines `first+1 .. last` start with at least `need` spaces.

    YAML 1.2 requires every further line of a quoted or plain scalar, or of a [...] or {...},
    that is the value of a block mapping or sequence to be indented more than its key or dash
    (tabs do not count as indentation). Lines of only spaces, and white-space or comment
    lines of a [...] or {...} (`comments`), may stand anywhere; in a text, a line of white
    space with a tab needs the full indent before the tab (YAML 1.2 l-empty).
    """
    for number in range(first + 1, last + 1):
        line = lines[number]
        stripped = line.lstrip(" ")
        rest = stripped.lstrip("\t")
        spaces = len(line) - len(stripped)
        if not rest and (comments or spaces >= need or not stripped):
            continue  # an empty line: spaces only, or a full indent and then tabs
        if comments and rest.startswith("#"):
            continue
        if spaces < need:
            raise Invalid(
                number,
                spaces,
                f"this line of a {what} that spans lines must be indented by at least {need} "
                "space(s), more than its key or dash (tabs do not count)",
            )


def check_block_scalar(lines: Lines, header_line: int, owner: int) -> None:
    """Raise `Invalid` when a block scalar (`|`, `>`) with no indentation digit has a leading
    empty line with more spaces than its first text line (YAML 1.2 section 8.1.1.1); `owner`
    is the column of its key or dash (its text must be indented more)."""
    widest, where = 0, 0
    for number in range(header_line + 1, len(lines)):
        line = lines[number]
        stripped = line.lstrip(" ")
        if stripped:
            indent = len(line) - len(stripped)
            if indent > owner and widest > indent:
                raise Invalid(
                    where,
                    0,
                    f"an empty line at the start of a | or > text has {widest} spaces, more "
                    f"than the {indent} of its first line; remove the spaces",
                )
            return
        if len(line) > widest:
            widest, where = len(line), number
