"""The only YAML reader: safe YAML 1.2 loading with limits, and positions.

`load_file` reads one file into plain data plus the 1-based location of every key and value,
or into problems; it never raises for any input (spec 9.1). Here the bytes become text:

- files over 1 MiB are refused before parsing (and never read past the limit: `files.py`);
- UTF-16 and UTF-32 (with or without a byte order mark) and bytes that are not UTF-8 are
  reported where they stand (a UTF-8 BOM is fine);
- characters YAML does not allow (control characters such as `\\x00`, `\\x07`, `\\x1c`),
  and those YAML 1.1 tools read as line breaks (U+0085, U+2028, U+2029), are refused where
  they stand: libyaml and ruamel would take the latter as line breaks, YAML 1.2 as text;
- a carriage return that is not part of a CRLF line end (a lone CR, or a file with CR line
  ends) is refused where it stands: a terminal and `git diff` draw what follows it over the
  line, so a value can hide behind what looks like a comment;
- a last line with no line break gets one: the end of the file ends the line, as in the YAML
  test suite (L24T, JEF9), so `a: |` over a last line `  x` is "x\n" as with a line break
  (libyaml and ruamel drop that line feed under clip and keep).

`yamlevents` turns the text into data: scalars and keys resolve by the YAML 1.2 core schema
(`no`, `on` stay text, `0777` is 777, `1:30` is text, `2030-06-02 10:00` is text: there are no
timestamps); anchors, aliases, explicit tags, a `%YAML` directive other than 1.2, several
documents, duplicate keys, keys that are not text (`1:`, `~:`, `true:`), an empty file, a root
that is not a mapping, nesting deeper than 32 levels, numbers over 100 characters, floats that
overflow, keys over 256 and values over 65,536 characters are problems.

`fmt` uses ruamel's round-trip loader separately (see `fmt.py`).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.config import scalars, yamlevents
from reconciler.config.files import Unreadable, over_limit, read_regular
from reconciler.config.yaml12 import position
from reconciler.errors import Location, Problem

MAX_FILE_BYTES = 1024 * 1024
# Bump when the same bytes may read as other data or problems (the validation cache keys on
# it): 2 = YAML 1.2 as the official suite reads it (`{ ?foo: 1 }`, keys under the core schema).
READER_VERSION = 2
FieldPath = yamlevents.FieldPath
ScalarError = scalars.ScalarError

resolve_plain = scalars.resolve_plain


def visible(text: str) -> str:
    """`text` with every character that is not printable ASCII as `\\uXXXX`: field names are
    ASCII, so a look-alike (`nаme` with a Cyrillic а) or an invisible character shows why a
    name is unknown."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(
        c
        if c.isascii() and c.isprintable()
        else f"\\u{ord(c):04x}"
        if ord(c) < 0x10000
        else f"\\U{ord(c):08x}"
        for c in text
    )


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
    parser: str = ""  # which parser read it: `libyaml`, or `yaml12` (the fallback)

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


def load_file(path: Path | str, file: str, root: str = "mapping") -> Document:
    """Load one YAML file; `file` is the name shown in problems; `root`: mapping or list.

    Only a regular file is read (never through a symlink, never a FIFO or device), and never
    more than 1 MiB of it.
    """
    try:
        raw = read_regular(path, MAX_FILE_BYTES)
    except Unreadable as exc:
        return _fail(Document(file), 1, 1, str(exc))
    return load_bytes(raw, file, root)


def load_bytes(raw: bytes, file: str, root: str = "mapping", *, fast: bool = True) -> Document:
    """Load YAML from bytes; see the module docstring for what is refused.

    `fast=False` reads with the YAML 1.2 fallback parser alone (the suite test measures it).
    """
    doc = Document(file)
    if len(raw) > MAX_FILE_BYTES:
        return _fail(doc, 1, 1, over_limit(len(raw), MAX_FILE_BYTES))
    wrong = _wrong_encoding(raw)
    if wrong:
        return _fail(doc, 1, 1, wrong)
    # A leading BOM is fine and not part of line 1 (ruamel's columns do not count it either).
    body = raw[len(codecs.BOM_UTF8) :] if raw.startswith(codecs.BOM_UTF8) else raw
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Columns count characters, like every other problem's column, not bytes.
        before = body[: exc.start].decode("utf-8")
        line, col = position(before, len(before))
        return _fail(doc, line + 1, col + 1, "file is not UTF-8 text (invalid byte here)")
    bad = _bad_character(body, text)
    if bad:
        line, col = position(text, bad.start())
        return _fail(doc, line + 1, col + 1, _character_message(bad.group()))
    lone = _LONE_CR.search(text) if b"\r" in body else None
    if lone:
        line, col = position(text, lone.start())
        return _fail(doc, line + 1, col + 1, _LONE_CR_MESSAGE)
    if text and text[-1] != "\n":
        text += "\n"  # see the module docstring; no position moves
    try:
        doc.data, doc.keys, doc.values, doc.parser = yamlevents.compose(text, file, root, fast)
    except yamlevents.Refused as refused:
        return _fail(doc, refused.line, refused.col, refused.message)
    except Exception as exc:  # a bug of this reader: still one positioned problem, never a crash
        return _fail(
            doc,
            1,
            1,
            f"the YAML reader failed on this file ({type(exc).__name__}); please report it",
        )
    return doc


# A carriage return that does not end a CRLF line: YAML reads a line break there, but a
# terminal, a log and `git diff` show what follows it over the start of the same line, so
# `cps: 1.50\r# cps: 1.02` looks like a comment and is read as `cps: 1.50`.
_LONE_CR = re.compile("\r(?!\n)")
_LONE_CR_MESSAGE = (
    "a carriage return (CR) that is not part of a CRLF line end: a terminal and `git diff` "
    "show what follows it over the start of the line, hiding what the line holds; save the "
    "file with LF or CRLF line ends"
)


def _fail(doc: Document, line: int, col: int, message: str) -> Document:
    doc.data = None
    doc.keys, doc.values = {}, {}
    doc.problems.append(Problem(Location(doc.file, line, col), "(file)", message))
    return doc


_UTF_32 = (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")
_UTF_16 = (b"\xfe\xff", b"\xff\xfe")


def _wrong_encoding(raw: bytes) -> str | None:
    """Say so when the bytes are UTF-16 or UTF-32 (YAML 1.2 section 5.2 tells them apart)."""
    found = None
    if raw.startswith(_UTF_32):
        found = "UTF-32 text (it starts with a UTF-32 byte order mark)"
    elif raw.startswith(_UTF_16):
        found = "UTF-16 text (it starts with a UTF-16 byte order mark)"
    elif raw[:3] == b"\x00\x00\x00" or raw[1:4] == b"\x00\x00\x00":
        found = "UTF-32 text without a byte order mark"
    elif raw[:1] == b"\x00" or raw[1:2] == b"\x00":
        found = "UTF-16 text without a byte order mark"
    return f"file is {found}; campaign files must be UTF-8: save it as UTF-8" if found else None


# What YAML 1.2 does not allow (c-printable), plus U+0085, U+2028, U+2029 (line breaks to YAML
# 1.1 readers, text to YAML 1.2) and a byte order mark after the start.
_BAD_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
# Bytes that cannot start a character _BAD_CHARACTER matches: deleting them leaves nothing in
# a clean file (a C-speed pass; the regex runs only on text that is not ASCII, or to find one).
_FINE_BYTES = bytes([9, 10, 13, *range(0x20, 0x7F), *range(0x80, 0x100)])


def _bad_character(body: bytes, text: str) -> re.Match[str] | None:
    if body.translate(None, _FINE_BYTES) or not text.isascii():
        return _BAD_CHARACTER.search(text)
    return None


_NAMES = {"\x85": "NEXT LINE", "\u2028": "LINE SEPARATOR", "\u2029": "PARAGRAPH SEPARATOR"}


def _character_message(char: str) -> str:
    code = f"U+{ord(char):04X}"
    escape = f"\\u{ord(char):04x}"
    if char in _NAMES:
        return (
            f"character {code} ({_NAMES[char]}) is a line break to YAML 1.1 readers and text to "
            f"YAML 1.2, so it is not allowed; delete it (inside double quotes write {escape})"
        )
    if char == "\ufeff":
        return "a byte order mark (U+FEFF) may only stand at the very start of the file; delete it"
    if char in "\ufffe\uffff":
        return f"character {code} is not allowed in YAML; delete it"
    return (
        f"control character {code} is not allowed in YAML; delete it (inside double quotes "
        f"write {escape})"
    )
