"""The official YAML test suite, every case, through the loader (spec 9.1).

Each case of `../shared/yaml-test-suite/data` is classified:

- `read`: valid, read, and the data equals `in.json` (or, where the suite has no `in.json`,
  the data its `test.event` describes);
- `refused: REASON`: valid, but refused for a reason this tool refuses on purpose: the spec's
  (not a mapping at the top or empty, anchors, aliases, tags, several documents, directives,
  complex keys) and this tool's explicit caps (keys that are not text, spec 9.1; a tab where
  both parsers read only spaces). The case must really use what the message names;
- `invalid refused`: marked invalid (`error`) and refused;
- and the failures: `MISREAD` (read as other data), `INVALID ACCEPTED`, `REFUSED FOR ANOTHER
  REASON`, `INTERNAL ERROR`.

The same cases are read a second time with the YAML 1.2 fallback parser alone (what a file
libyaml refuses is read with), to show that it brings in no misread and accepts nothing
invalid. `pytest -s tests/test_yaml_suite.py` prints the counts.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.config.yamlio import ScalarError, load_bytes, resolve_plain

REPO = Path(__file__).resolve().parent.parent


def suite_folder() -> Path | None:
    """`<repo>/../shared/...` (CI: main cloned beside shared/), else `/work/shared/...`."""
    for base in (REPO.parent / "shared", Path("/work/shared")):
        data = base / "yaml-test-suite" / "data"
        if data.is_dir():
            return data
    return None


DATA = suite_folder()
pytestmark = pytest.mark.skipif(
    DATA is None,
    reason="the YAML test suite is not there: expected ../shared/yaml-test-suite/data beside "
    "the repository (or /work/shared/yaml-test-suite/data)",
)


@dataclass
class Case:
    id: str
    folder: Path

    @property
    def raw(self) -> bytes:
        return (self.folder / "in.yaml").read_bytes()

    @property
    def invalid(self) -> bool:
        return (self.folder / "error").exists()

    @property
    def events(self) -> list[str]:
        return (self.folder / "test.event").read_text(encoding="utf-8").splitlines()


def cases() -> list[Case]:
    assert DATA is not None
    found = []
    for folder in sorted(DATA.iterdir()):
        subs = [folder] if (folder / "in.yaml").exists() else sorted(folder.iterdir())
        for sub in subs:
            if (sub / "in.yaml").exists():
                name = folder.name if sub == folder else f"{folder.name}/{sub.name}"
                found.append(Case(name, sub))
    return found


# --- what a case holds, from its test.event -------------------------------------------------

_EVENT_SCALAR = re.compile(r"=VAL (?:&\S+ )?(?:<[^>]*> )?([:'\"|>])(.*)$")
_ESCAPES = {"\\\\": "\\", "\\n": "\n", "\\t": "\t", "\\r": "\r", "\\b": "\b", "\\0": "\0"}


def _unescape(text: str) -> str:
    return re.sub(r"\\[\\ntrb0]", lambda m: _ESCAPES[m.group()], text)


@dataclass
class Features:
    documents: int
    root: str  # MAP, SEQ, VAL, ALI or "" (no document)
    empty_root: bool
    anchors: bool
    aliases: bool
    tags: bool
    complex_keys: bool
    non_text_keys: bool
    data: Any  # the first document's data, built from the events


def features(case: Case) -> Features:
    """The case's documents, root kind, the features this tool refuses, and the data."""
    events = case.events
    docs = [e for e in events if e.startswith("+DOC")]
    roots = [events[i + 1] for i, e in enumerate(events[:-1]) if e.startswith("+DOC")]
    root = roots[0][1:4] if roots else ""
    anchors = any(re.match(r"[+=]\S+ &", e) for e in events)
    tags = any(re.search(r" <[^>]*>", e) for e in events)
    complex_keys = non_text = False
    stack: list[list[Any]] = []  # [container, kind, pending key or marker]
    data: Any = None
    done = False

    def add(value: Any) -> None:
        nonlocal data, done
        if not stack:
            if not done:
                data, done = value, True
            return
        top = stack[-1]
        if top[1] == "SEQ":
            top[0].append(value)
        elif top[2] is _NO_KEY:
            top[2] = value
        else:
            key, top[2] = top[2], _NO_KEY
            if isinstance(key, str):
                top[0][key] = value

    for event in events:
        kind = event[:4]
        at_key = bool(stack) and stack[-1][1] == "MAP" and stack[-1][2] is _NO_KEY
        if kind in ("+MAP", "+SEQ"):
            complex_keys |= at_key
            stack.append([{} if kind == "+MAP" else [], kind[1:], _NO_KEY])
        elif kind in ("-MAP", "-SEQ"):
            add(stack.pop()[0])
        elif kind == "=VAL":
            match = _EVENT_SCALAR.match(event)
            assert match, event
            style, text = match.group(1), _unescape(match.group(2))
            value: Any = text
            if style == ":" and not re.search(r" <[^>]*>", event):
                try:
                    value = resolve_plain(text)
                except ScalarError:
                    value = _NOT_TEXT
            non_text |= at_key and not isinstance(value, str)
            add(value)
        elif kind == "=ALI":
            add(_NOT_TEXT)
    empty_root = roots[0].startswith("=VAL :") and roots[0].strip() == "=VAL :" if roots else True
    return Features(
        len(docs),
        root,
        empty_root,
        anchors,
        any(e.startswith("=ALI") for e in events),
        tags,
        complex_keys,
        non_text,
        data,
    )


_NO_KEY = object()
_NOT_TEXT = object()


def expected_documents(case: Case, feats: Features) -> list[Any]:
    path = case.folder / "in.json"
    if not path.exists():
        return [feats.data] * feats.documents
    text, decoder, out, i = path.read_text(encoding="utf-8"), json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        if i >= len(text):
            return out
        value, i = decoder.raw_decode(text, i)
        out.append(value)


def same(a: Any, b: Any) -> bool:
    """Equal as data, types included (1 is not 1.0 nor True); mapping order does not count."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


# --- why a valid case was refused, and whether it really uses that ----------------------------


def reason(message: str, case: Case, feats: Features) -> str | None:
    """The listed reason the message gives, if the case really has it; else None."""
    raw = case.raw
    checks = [
        ("file must hold one mapping", "not a mapping at the top", feats.root != "MAP"),
        ("file is empty", "not a mapping at the top", feats.root == "" or feats.empty_root),
        ("several YAML documents", "several documents", feats.documents > 1),
        ("anchor &", "anchors", feats.anchors),
        ("alias *", "aliases", feats.aliases),
        ("explicit tag", "tags", feats.tags),
        ("directive", "directives", re.search(rb"(?m)^%", raw) is not None),
        ("a key must be plain text", "complex keys", feats.complex_keys),
        ("not text: keys are field names", "non-text keys (cap, spec 9.1)", feats.non_text_keys),
        ("a tab where only spaces are read", "tab as separation (cap)", b"\t" in raw),
    ]
    for fragment, name, really in checks:
        if fragment in message:
            return name if really else None
    return None


def classify(case: Case, fast: bool = True) -> tuple[str, str]:
    """(class, detail) of one case."""
    try:
        doc = load_bytes(case.raw, "in.yaml", fast=fast)
    except Exception as exc:  # the loader must never raise
        return "INTERNAL ERROR", repr(exc)
    message = doc.problems[0].message if doc.problems else ""
    if "please report it" in message:
        return "INTERNAL ERROR", message
    if case.invalid:
        return ("invalid refused", message) if doc.problems else ("INVALID ACCEPTED", "")
    feats = features(case)
    if doc.problems:
        why = reason(message, case, feats)
        return (f"refused: {why}", message) if why else ("REFUSED FOR ANOTHER REASON", message)
    documents = expected_documents(case, feats)
    if len(documents) == 1 and same(doc.data, documents[0]):
        return f"read ({doc.parser})", ""
    return "MISREAD", f"read {doc.data!r}, expected {documents!r}"


FAILURES = ("MISREAD", "INVALID ACCEPTED", "REFUSED FOR ANOTHER REASON", "INTERNAL ERROR")


def report(title: str, results: dict[str, tuple[str, str]]) -> Counter[str]:
    counts = Counter(cls for cls, _ in results.values())
    print(f"\n{title}: {len(results)} cases")
    for cls, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {n:4d}  {cls}")
    return counts


def failures(results: dict[str, tuple[str, str]]) -> Iterator[str]:
    for case_id, (cls, detail) in results.items():
        if cls in FAILURES:
            yield f"{case_id}: {cls}: {detail[:200]}"


def test_every_case_of_the_yaml_suite() -> None:
    all_cases = cases()
    results = {case.id: classify(case) for case in all_cases}

    counts = report("YAML test suite through the loader", results)

    assert list(failures(results)) == []
    assert len(all_cases) > 350  # the whole suite, not a folder of it
    # The suite is about 3/4 valid: most valid cases are read or refused on purpose.
    assert counts["read (libyaml)"] > 70
    assert counts["read (yaml12)"] >= 10  # the flow-URL family libyaml refuses
    assert counts["invalid refused"] > 90


def test_the_fallback_parser_alone_misreads_nothing_and_accepts_nothing_invalid() -> None:
    """Every file libyaml refuses is read with the fallback: across the whole suite it must
    never read other data than `in.json` nor accept an invalid case (refusing is allowed)."""
    results = {case.id: classify(case, fast=False) for case in cases()}

    counts = report("YAML test suite through the fallback parser alone", results)

    bad = [
        line
        for line in failures(results)
        if "MISREAD" in line or "INVALID ACCEPTED" in line or "INTERNAL" in line
    ]
    assert bad == []
    assert counts["read (yaml12)"] > 75
