"""yamlio: YAML 1.2 core-schema scalars, positions, and what is refused (with where)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from reconciler.config.yamlio import (
    MAX_FILE_BYTES,
    Document,
    display_path,
    load_bytes,
    load_file,
    resolve_plain,
)
from reconciler.errors import Location


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # null
        ("", None),
        ("~", None),
        ("null", None),
        ("Null", None),
        ("NULL", None),
        ("nULL", "nULL"),
        # booleans: only true/false; YAML 1.1's yes/no/on/off/y/n stay text
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("FALSE", False),
        ("tRUE", "tRUE"),
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("n", "n"),
        # integers: a leading 0 is decimal; 0o and 0x are the only prefixes
        ("0", 0),
        ("-17", -17),
        ("+5", 5),
        ("0777", 777),
        ("0o17", 15),
        ("0x1F", 31),
        ("0X1F", "0X1F"),
        ("0b101", "0b101"),
        ("1_000", "1_000"),
        # sexagesimal numbers and timestamps do not exist in YAML 1.2
        ("1:30", "1:30"),
        ("190:20:30", "190:20:30"),
        ("2030-06-02", "2030-06-02"),
        ("2030-06-02 10:00", "2030-06-02 10:00"),
        ("2030-06-02T10:00:00Z", "2030-06-02T10:00:00Z"),
        # floats
        ("1.03", 1.03),
        ("-.5", -0.5),
        ("1e3", 1000.0),
        ("1.5E-2", 0.015),
        (".inf", math.inf),
        ("-.Inf", -math.inf),
        ("+.INF", math.inf),
        # text
        ("3/s", "3/s"),
        ("Spring promo", "Spring promo"),
        ("-", "-"),
        (".", "."),
    ],
)
def test_plain_scalars_resolve_by_yaml_12_core_schema(text: str, value: Any) -> None:
    resolved = resolve_plain(text)
    assert (type(resolved), resolved) == (type(value), value)


def test_nan() -> None:
    assert math.isnan(resolve_plain(".nan"))
    assert resolve_plain(".nAn") == ".nAn"


def test_quoted_and_block_scalars_stay_text() -> None:
    doc = load_bytes(b"a: \"123\"\nb: 'true'\nc: |\n  no\n  1:30\nd: >-\n  0777\n", "f.yaml")

    assert doc.problems == []
    assert doc.data == {"a": "123", "b": "true", "c": "no\n1:30\n", "d": "0777"}


POSITIONS = b"""\
name: x
list:
  - a
  - k: v
    j: [1, 2]
flow: {a: 1}
"""


def test_positions_of_keys_and_values() -> None:
    doc = load_bytes(POSITIONS, "f.yaml")

    assert doc.problems == []
    assert doc.data == {"name": "x", "list": ["a", {"k": "v", "j": [1, 2]}], "flow": {"a": 1}}
    keys = {path: (loc.line, loc.col) for path, loc in doc.keys.items()}
    assert keys == {
        ("name",): (1, 1),
        ("list",): (2, 1),
        ("list", 1, "k"): (4, 5),
        ("list", 1, "j"): (5, 5),
        ("flow",): (6, 1),
        ("flow", "a"): (6, 8),
    }
    values = {path: (loc.line, loc.col) for path, loc in doc.values.items()}
    assert values == {
        (): (1, 1),
        ("name",): (1, 7),
        ("list",): (3, 3),
        ("list", 0): (3, 5),
        ("list", 1): (4, 5),
        ("list", 1, "k"): (4, 8),
        ("list", 1, "j"): (5, 8),
        ("list", 1, "j", 0): (5, 9),
        ("list", 1, "j", 1): (5, 12),
        ("flow",): (6, 7),
        ("flow", "a"): (6, 11),
    }
    assert all(loc.file == "f.yaml" for loc in [*doc.keys.values(), *doc.values.values()])


def test_at_falls_back_to_the_nearest_ancestor() -> None:
    doc = load_bytes(POSITIONS, "f.yaml")

    assert doc.at(("list", 1, "j", 1)) == Location("f.yaml", 5, 12)
    assert doc.at(("list", 1, "j"), key=True) == Location("f.yaml", 5, 5)
    # Not in the file: the nearest ancestor that is.
    assert doc.at(("list", 1, "missing")) == Location("f.yaml", 4, 5)
    assert doc.at(("flow", "b"), key=True) == Location("f.yaml", 6, 1)
    assert doc.at(("nothing", "here")) == Location("f.yaml", 1, 1)
    assert Document("g.yaml").at(("a",)) == Location("g.yaml", 1, 1)


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ((), "(file)"),
        (("cps",), "cps"),
        (("additionalOptions", "detectRobotMode"), "additionalOptions.detectRobotMode"),
        (("webhookUrls", 0), "webhookUrls[0]"),
        (("webhookUrls", 2, "url"), "webhookUrls[2].url"),
        ((0, "to"), "[0].to"),
    ],
)
def test_display_path(path: tuple[str | int, ...], shown: str) -> None:
    assert display_path(path) == shown


@pytest.mark.parametrize(
    ("raw", "line", "col", "fragment"),
    [
        (b"a: 1\n---\na: 2\n", 2, 1, "several YAML documents"),
        (b"a: 1\n...\n---\n", 3, 1, "several YAML documents"),
        (b"", 1, 1, "file is empty"),
        (b"\n\n   \n", 1, 1, "file is empty"),
        (b"~\n", 1, 1, "file is empty"),
        (b"---\n# nothing\n", 1, 1, "file is empty"),
        (b"- 1\n", 1, 1, "one mapping"),
        (b"42\n", 1, 1, "one mapping"),
        (b"a:\n  b: 1\n  b: 2\n", 3, 3, "duplicate key 'b' (first at line 2)"),
        (b"? [a, b]\n: 1\n", 1, 3, "a key must be plain text"),
        (b"? {a: 1}\n: 1\n", 1, 3, "a key must be plain text"),
        (b"a: !!map {b: 1}\n", 1, 4, "explicit tag !!map"),
        (b"!!str a: 1\n", 1, 1, "explicit tag !!str"),
        (b"a: !!int '1'\n", 1, 4, "explicit tag !!int"),
        (b"!!map\na: 1\n", 1, 1, "explicit tag !!map"),
        (b"a: &x [1]\nb: *x\n", 1, 4, "anchor &x"),
        (b"&top\na: 1\n", 1, 1, "anchor &top"),
        (b"%YAML 1.1\n---\na: 1\n", 1, 1, "%YAML 1.1 directive"),
        (b"%TAG !e! tag:example.com,2030:\n---\na: 1\n", 1, 1, "%TAG directives"),
        # At the end of the file: the end of the last line, never a line past it.
        (b"a: 'unterminated\n", 1, 17, "invalid YAML"),
        (b"a: b: c\n", 1, 5, "invalid YAML"),
        (b"\ta: 1\n", 1, 1, "a tab where only spaces are read"),
    ],
)
def test_refused_documents(raw: bytes, line: int, col: int, fragment: str) -> None:
    doc = load_bytes(raw, "f.yaml")

    assert doc.data is None
    assert (doc.keys, doc.values) == ({}, {})
    assert [(p.location, p.path) for p in doc.problems] == [
        (Location("f.yaml", line, col), "(file)")
    ]
    assert fragment in doc.problems[0].message
    assert all(p.level == "error" for p in doc.problems)


def test_billion_laughs_is_refused_at_the_first_anchor() -> None:
    lol = b"a: &a [lol, lol]\n" + b"".join(
        b"%c: &%c [*%c, *%c, *%c]\n" % (n, n, n - 1, n - 1, n - 1) for n in range(ord("b"), 123)
    )

    doc = load_bytes(lol, "lol.yaml")

    assert [(p.location.line, p.location.col) for p in doc.problems] == [(1, 4)]


def test_version_12_directive_and_document_markers_are_fine() -> None:
    doc = load_bytes(b"%YAML 1.2\n---\na: on\n...\n", "f.yaml")

    assert (doc.problems, doc.data) == ([], {"a": "on"})


def test_list_root_for_moves() -> None:
    assert load_bytes(b"- {from: a, to: b}\n", "m.yaml", root="list").data == [
        {"from": "a", "to": "b"}
    ]
    doc = load_bytes(b"from: a\n", "m.yaml", root="list")
    assert "one list" in doc.problems[0].message
    assert "expected one list" in load_bytes(b"", "m.yaml", root="list").problems[0].message


@pytest.mark.parametrize(
    ("raw", "line", "col"),
    [
        (b"a: caf\xe9\n", 1, 7),
        (b"a: 1\nb: \xff\n", 2, 4),
        (b"\xff", 1, 1),
        # A BOM is not part of line 1; columns count characters, not bytes.
        (b"\xef\xbb\xbfa: 1\n\xe9\n", 2, 1),
        (b"\xef\xbb\xbfa: \xe9\n", 1, 4),
        ("a: Весна ".encode() + b"\xc0\n", 1, 10),
        # A truncated multi-byte character at the end of the file.
        (b"a: 1\nb: " + "ж".encode()[:1], 2, 4),
    ],
)
def test_not_utf8_is_reported_where_the_bad_byte_stands(raw: bytes, line: int, col: int) -> None:
    doc = load_bytes(raw, "f.yaml")

    assert doc.data is None
    assert [(p.location.line, p.location.col) for p in doc.problems] == [(line, col)]
    assert "not UTF-8" in doc.problems[0].message


def test_a_bom_is_fine() -> None:
    doc = load_bytes(b"\xef\xbb\xbfname: x\ncps: 1.03\n", "f.yaml")

    assert doc.problems == []
    assert doc.data == {"name": "x", "cps": 1.03}
    assert doc.keys[("name",)] == Location("f.yaml", 1, 1)


def padded(size: int) -> bytes:
    head = b"name: x\n#"
    return head + b"y" * (size - len(head) - 1) + b"\n"


def test_size_limit_is_exactly_one_mib(tmp_path: Path) -> None:
    at_limit, over = tmp_path / "at.yaml", tmp_path / "over.yaml"
    at_limit.write_bytes(padded(MAX_FILE_BYTES))
    over.write_bytes(padded(MAX_FILE_BYTES + 1))

    assert MAX_FILE_BYTES == 1024 * 1024
    assert load_file(at_limit, "at.yaml").data == {"name": "x"}
    doc = load_file(over, "over.yaml")
    assert doc.data is None
    assert [(p.location, p.message) for p in doc.problems] == [
        (Location("over.yaml", 1, 1), "file is 1048577 bytes, over the 1 MiB limit; not parsed")
    ]
    assert "over the 1 MiB limit" in load_bytes(padded(MAX_FILE_BYTES + 1), "b").problems[0].message


def test_an_oversized_file_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(padded(MAX_FILE_BYTES + 1))

    def refuse(self: Path) -> bytes:
        raise AssertionError("an oversized file must be refused from its size alone")

    monkeypatch.setattr(Path, "read_bytes", refuse)

    assert "over the 1 MiB limit" in load_file(big, "big.yaml").problems[0].message


@pytest.mark.parametrize("make", ["missing", "folder"])
def test_unreadable_file(make: str, tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    if make == "folder":
        path.mkdir()

    doc = load_file(path, "x.yaml")

    assert doc.data is None
    assert [(p.location, p.path) for p in doc.problems] == [(Location("x.yaml", 1, 1), "(file)")]
    assert doc.problems[0].message.startswith("cannot read file: ")


# --- spec 9.1: never an internal error, never a misread ------------------------------------


def nested(depth: int) -> bytes:
    """A top-level mapping holding lists nested so that the deepest is at `depth`."""
    return b"a: " + b"[" * (depth - 1) + b"]" * (depth - 1) + b"\n"


@pytest.mark.parametrize(
    ("raw", "line", "col", "fragment"),
    [
        (b"a: x\x00y\n", 1, 5, "control character U+0000"),
        (b"a: 1\nb: \x7f\n", 2, 4, "control character U+007F"),
        ("a: \x85\n".encode(), 1, 4, "U+0085 (NEXT LINE) is a line break to YAML 1.1"),
        ("a: 1\n\ufeffb: 2\n".encode(), 2, 1, "byte order mark (U+FEFF) may only stand"),
        ("a: \uffff\n".encode(), 1, 4, "character U+FFFF is not allowed"),
        ("a: 1\n".encode("utf-32-le"), 1, 1, "UTF-32 text without a byte order mark"),
        ("a: 1\n".encode("utf-32"), 1, 1, "it starts with a UTF-32 byte order mark"),
        (b"a: 1" + b"0" * 100 + b"\n", 1, 4, "a number of 101 characters"),
        (b"a: -1e400\n", 1, 4, "the number -1e400 is too large"),
        (nested(33), 1, 35, "nested more than 32 levels deep"),
        (b"1: a\n", 1, 1, "key 1 is an integer"),
        (b"1.5: a\n", 1, 1, "key 1.5 is a number"),
        (b": a\n", 1, 1, "key (empty) is null"),
        (b"'1': a\n1: b\n", 2, 1, "key 1 is an integer"),
        (b"a: [b,\nc]\n", 2, 1, "must be indented by at least 1 space(s)"),
        (b"a: |\n\n   \n  x\n", 3, 1, "an empty line at the start of a | or > text has 3 spaces"),
        (b"a: ># c\n  x\n", 1, 5, "a comment needs a space before the #"),
        (b"a: 'x'#c\n", 1, 7, "a comment needs a space before the #"),
        (b"# a modeline first\na: 'x'#c\n", 2, 7, "a comment needs a space before the #"),
        (b"a: [b,#c\n  d]\n", 1, 7, "a comment needs a space before the #"),
        (b"a: [-]\n", 1, 5, "a plain - in [...] or {...} must be quoted"),
        (b"a:\n \tb: 1\n", 2, 2, "a tab where only spaces are read"),
        # invalid YAML 1.2 that both parsers accepted
        (b"a:\n|\n  hello\n", 2, 1, "a | text that starts on the line below its key or dash"),
        (b"a:\n- \n|\n", 3, 1, "a | text that starts on the line below its key or dash"),
        (b"a:\n  b: 1\n  c:\n  >\n   x\n", 4, 3, "must be indented by at least 3 space(s)"),
        (b"a: {-}\n", 1, 5, "a plain - in [...] or {...} must be quoted"),
        (b"a: {-, b: 1}\n", 1, 5, "a plain - in [...] or {...} must be quoted"),
        (b"a: 'b\n\t\n  c'\n", 2, 1, "must be indented by at least 1 space(s)"),
        (b'a: "b\n\t\n  c"\n', 2, 1, "must be indented by at least 1 space(s)"),
        (b"a: {foo # c\n  :bar}\n", 2, 3, "invalid YAML"),
        (b"%YAML 1.3\n---\na: 1\n", 1, 1, "%YAML 1.3 directive is not supported"),
        (b"# only\n...\n", 1, 1, "file is empty"),
    ],
)
def test_what_yaml_12_and_the_limits_refuse(raw: bytes, line: int, col: int, fragment: str) -> None:
    doc = load_bytes(raw, "f.yaml")

    assert doc.data is None
    assert [(p.location.line, p.location.col) for p in doc.problems] == [(line, col)]
    assert fragment in doc.problems[0].message


@pytest.mark.parametrize(
    ("raw", "data", "parser"),
    [
        (
            nested(32),
            {"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
            "libyaml",
        ),
        (b"a: 1" + b"0" * 99 + b"\n", {"a": 10**99}, "libyaml"),
        (b"a: .inf\nb: -.Inf\n", {"a": math.inf, "b": -math.inf}, "libyaml"),
        (b"a: +-.inf\nb: 0X1F\n", {"a": "+-.inf", "b": "0X1F"}, "libyaml"),
        (b"'1': a\n'01': b\n", {"1": "a", "01": "b"}, "libyaml"),
        (b"? a\n: 1\n", {"a": 1}, "libyaml"),
        (b"a: [https://h.example/x]\n", {"a": ["https://h.example/x"]}, "yaml12"),
        (b"a: {url: https://h.example/x}\n", {"a": {"url": "https://h.example/x"}}, "yaml12"),
        (b"a: {?b: 1, b: 2}\n", {"a": {"?b": 1, "b": 2}}, "yaml12"),
        (b"a: [?b]\n", {"a": ["?b"]}, "yaml12"),
        (b"a: {b: 1, c:,}\n", {"a": {"b": 1, "c": None}}, "yaml12"),
        (b'a: {"b"\n  : 1}\n', {"a": {"b": 1}}, "yaml12"),
        (b"a: |\n  x\n   ", {"a": "x\n \n"}, "libyaml"),
        (b"a: |+\n  x\n  ", {"a": "x\n\n"}, "libyaml"),
        (b"a: |\n  x", {"a": "x\n"}, "libyaml"),
        (b"a: x#y\nb: 'c' # d\n", {"a": "x#y", "b": "c"}, "libyaml"),
        (b"a: \t1\n", {"a": 1}, "libyaml"),
        (b'a: "x\\u2028y"\n', {"a": "x\u2028y"}, "libyaml"),
    ],
)
def test_what_yaml_12_reads(raw: bytes, data: Any, parser: str) -> None:
    doc = load_bytes(raw, "f.yaml")

    assert doc.problems == []
    assert (doc.data, doc.parser) == (data, parser)


# Read by both parsers (libyaml first, and the fallback alone) as YAML 1.2 reads them; the
# expected data is the YAML test suite's convention (L24T/01, JEF9/02: the end of the file
# ends the last line) and, for the flow cases, what a YAML 1.2 reader (`yaml` 2 for
# JavaScript) gives.
BOTH_PARSERS = [
    # a block scalar whose last line has no line break keeps its line feed (clip and keep)
    (b"a: |\n  Onboarding", {"a": "Onboarding\n"}),
    (b"a: >\n  x\n  y", {"a": "x y\n"}),
    (b"a: |+\n  x", {"a": "x\n"}),
    (b"a: >+\n  x", {"a": "x\n"}),
    (b"a: |-\n  x", {"a": "x"}),
    (b"a:\n- |\n  x", {"a": ["x\n"]}),
    (b"a: |", {"a": ""}),
    # a tab inside a plain text in [...] or {...} is white space: `:` glued to the text
    # after it continues the text (never `time: 600`)
    (
        b"busy: {redial: true, count: 2, time\t:600}\n",
        {"busy": {"redial": True, "count": 2, "time\t:600": None}},
    ),
    (b"a: {b\t:c}\n", {"a": {"b\t:c": None}}),
    (b"a: {url\t:https://a.example/b}\n", {"a": {"url\t:https://a.example/b": None}}),
    (b'a: {x"\t:bar}\n', {"a": {'x"\t:bar': None}}),
    (b"a: [b\t:c]\n", {"a": ["b\t:c"]}),
    (b"a: {ba\tr: 42}\n", {"a": {"ba\tr": 42}}),
    (b"a: {b\t: c}\n", {"a": {"b": "c"}}),
    (b"a: [b\t# c\n  ]\n", {"a": ["b"]}),
    # `:` in [...] or {...}: before `,]}` the value indicator, glued to text a text, right
    # after a quoted key the indicator
    (b"a: [b, c1:]\n", {"a": ["b", {"c1": None}]}),
    (b"a: {x: :x}\n", {"a": {"x": ":x"}}),
    (b"a: [:x]\n", {"a": [":x"]}),
    (b'a: {"b":c}\n', {"a": {"b": "c"}}),
    (b'a: {"b" :c}\n', {"a": {"b": "c"}}),
    (b'a: ["b"\t:c]\n', {"a": [{"b": "c"}]}),
    # what the checks above must still let through
    (b"a: 'b\n \t\n  c'\n", {"a": "b\nc"}),
    (b"a: [b,\n\t\n  c]\n", {"a": ["b", "c"]}),
    (b"a:\n |\n  x\n", {"a": "x\n"}),
    (b"a: [{-: 1}]\n", {"a": [{"-": 1}]}),
]


@pytest.mark.parametrize(("raw", "data"), BOTH_PARSERS, ids=[r[0].decode() for r in BOTH_PARSERS])
def test_both_parsers_read_yaml_12(raw: bytes, data: Any) -> None:
    for fast in (True, False):
        doc = load_bytes(raw, "f.yaml", fast=fast)

        assert (doc.problems, doc.data) == ([], data), f"fast={fast}"


def test_a_refusal_is_never_past_the_end_of_the_file() -> None:
    for raw in (b"a: [\n", b"a: 'x\n\n\n", b"a: b\n---\n", b"a:\n  - [\n", b"a: {\n"):
        doc = load_bytes(raw, "f.yaml")
        lines = raw.decode().splitlines()
        (problem,) = doc.problems
        assert 1 <= problem.location.line <= len(lines), raw
        assert problem.location.col <= len(lines[problem.location.line - 1]) + 1, raw
