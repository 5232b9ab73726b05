"""`reconcile fmt`: campaign and `_defaults.yaml` files in canonical form, comments kept.

Canonical: keys in the API page's order (`models.field_order`) at the top and in every nested
object the models know, unknown keys after them in their own order; mappings indented 2,
sequences 4 with the dash at 2; no wrapping; quotes and flow/block style as written; no
`---`/`%YAML` lines; one trailing newline; the line endings (LF or CRLF) and a byte-order mark
kept as found. ruamel files a full-line comment under whatever
*precedes* it (the end of the previous value, however deep), so `_map`/`_seq` first give each
comment line to the key that *follows* it, reorder, then write every comment back. Guards: the
data read back by `yamlio` must be unchanged and no comment may be lost (ruamel drops those
inside `[...]`/`{...}`); otherwise the file is reported and never rewritten.
"""

from __future__ import annotations

import difflib
import io
import itertools
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString
from ruamel.yaml.tokens import CommentToken

from reconciler.config import models
from reconciler.config.discovery import discover, display
from reconciler.config.files import Unreadable, read_regular
from reconciler.config.selection import select
from reconciler.config.yamlio import MAX_FILE_BYTES, load_bytes
from reconciler.errors import Location, Problem

Lines = list[str]
_MARKER = re.compile(r"^(---|\.\.\.)(?=\s|$)(.*)$")


class FmtError(ValueError):
    """The text cannot be formatted safely; `line` is 1-based."""

    def __init__(self, message: str, line: int = 1) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class FmtResult:
    """One file: its text ("" when it does not load), its canonical text (None when there is
    a problem) and the problem."""

    path: Path
    file: str
    original: str
    formatted: str | None
    problem: Problem | None = None

    @property
    def changed(self) -> bool:
        return self.formatted is not None and self.formatted != self.original


def format_text(text: str) -> str:
    """Canonical form of one campaign or `_defaults.yaml` file; raises FmtError when unsafe."""
    doc = load_bytes(text.encode("utf-8"), "<text>")
    if doc.problems:
        raise FmtError(doc.problems[0].message, doc.problems[0].location.line)
    return _format(text, doc.data)


def format_files(
    root: Path, named: Sequence[str | os.PathLike[str]] | None = None
) -> list[FmtResult]:
    """Format every campaign file and every `_defaults.yaml` below `root`, or only those of
    `named` (`_moved.yaml` and `_policy.yaml` are accepted there and left as they are; a path
    that names nothing to format is a problem). Nothing is written.

    Never raises for any file: one that cannot be read, loaded or rewritten safely is a result
    with a problem (and is never written); the others are still formatted.
    """
    layout = discover(root)
    if named is None:
        problems = layout.problems
        paths = {c.path for c in layout.campaigns} | set(layout.defaults)
    else:
        chosen = select(layout, root, named)
        problems = [p for p in layout.problems if p.location.file in chosen.named]
        problems += chosen.problems
        paths = set(chosen.formattable)
    results = [FmtResult(root, p.location.file, "", None, p) for p in problems]
    for path in sorted(paths, key=display):
        results.append(_format_file(path, display(path)))
    return results


def _format_file(path: Path, file: str) -> FmtResult:
    try:
        raw = read_regular(path, MAX_FILE_BYTES)
    except Unreadable as exc:
        return FmtResult(path, file, "", None, Problem(Location(file), "(file)", str(exc)))
    doc = load_bytes(raw, file)
    if doc.problems:
        return FmtResult(path, file, "", None, doc.problems[0])
    original = raw.decode("utf-8")
    try:
        return FmtResult(path, file, original, _as_found(_format(original, doc.data), original))
    except FmtError as exc:
        message, line = f"{exc}; file left as it is", exc.line
    except Exception as exc:  # ruamel's round trip: NotImplementedError and others
        message = (
            f"fmt cannot rewrite this file safely (ruamel: {type(exc).__name__}); "
            "file left as it is"
        )
        line = 1
    return FmtResult(path, file, original, None, Problem(Location(file, line), "(file)", message))


def _as_found(formatted: str, original: str) -> str:
    """`formatted` (LF, no BOM) with the original's line endings and byte-order mark."""
    newline = original.find("\n")
    if newline > 0 and original[newline - 1] == "\r":  # CRLF, as its first line ends
        formatted = formatted.replace("\n", "\r\n")
    return "\ufeff" + formatted if original.startswith("\ufeff") else formatted


def diff(result: FmtResult) -> list[str]:
    """A unified diff of what formatting would change in one file (no line endings)."""
    if result.formatted is None or not result.changed:
        return []
    before, after = (
        t.removeprefix("\ufeff").splitlines() for t in (result.original, result.formatted)
    )
    lines = difflib.unified_diff(before, after, f"a/{result.file}", f"b/{result.file}", lineterm="")
    return list(lines) or [f"{result.file}: only the line endings change (mixed: all as line 1)"]


def write_results(results: Iterable[FmtResult]) -> tuple[list[Path], list[Problem]]:
    """Atomically rewrite every changed file (temp file, fsync, os.replace); return those
    written and a problem for each that could not be (it is left as it was)."""
    written, problems = [], []
    for r in results:
        if r.problem is None and r.formatted is not None and r.changed:
            try:
                _replace(r.path, r.formatted.encode("utf-8"))
            except OSError as exc:
                message = f"cannot rewrite the file ({exc.strerror}); it is left as it was"
                problems.append(Problem(Location(r.file), "(file)", message))
                continue
            written.append(r.path)
    return written, problems


def _replace(path: Path, data: bytes) -> None:
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _format(text: str, data: Any) -> str:
    """Format `text`, whose data `yamlio` read as `data`; check nothing else changed."""
    source = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if source and source[-1] not in "\n\r":
        source += "\n"  # the end of the file ends the last line, as `yamlio` reads it
    yaml = YAML(typ="rt")
    yaml.version = (1, 2)
    yaml.preserve_quotes = True
    try:
        tree = yaml.load(_strip_markers(source))
    except YAMLError as exc:  # yamlio (libyaml) accepted it, ruamel's own parser did not
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise FmtError(f"ruamel cannot read this file: {exc}", line) from None
    if not isinstance(tree, CommentedMap):
        raise FmtError("file must hold one mapping")
    _root(tree)
    yaml.version = None  # else the dump adds `%YAML 1.2` and `---`
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 1 << 30
    out = io.StringIO()
    yaml.dump(tree, out)
    formatted = out.getvalue()
    after = load_bytes(formatted.encode("utf-8"), "<formatted>")
    if after.problems or json.dumps(after.data, sort_keys=True) != json.dumps(data, sort_keys=True):
        raise FmtError("formatting would change the data (a ruamel round-trip bug)")
    before, lines = _comments(yaml, source)
    lost = before - _comments(yaml, formatted)[0]
    if lost:
        raise FmtError(
            "fmt cannot keep this comment (ruamel drops comments inside [...] or {...} and "
            "between a key and its value); move it to its own line above the key",
            min(lines[c] for c in lost),
        )
    return formatted


def _root(tree: CommentedMap) -> None:
    """Sort the whole document; the comment block above the first key stays on top."""
    if not _block(tree):
        _flow(tree, models.CallTask)
        return
    eol, pre = tree.ca.comment or (None, None)
    lines = _pre_lines(pre)
    # Comments after the header's last blank line belong to the first key; with no blank
    # line, the whole block is the header.
    blank = max((i for i, line in enumerate(lines) if not line.strip()), default=len(lines))
    first, _ = _map(tree, models.CallTask, 0, lines[blank + 1 :], -1)
    header = _unblank(_reindent(lines[: blank + 1] + first, 0))
    tree.ca.comment = [eol, [_token("".join(header))] if header else None]


def _map(node: CommentedMap, model: Any, col: int, head: Lines, owner: int) -> tuple[Lines, Lines]:
    """Sort a block mapping whose keys print at `col` (its parent key or dash stood at column
    `owner`); `head`: the lines above its first key. Returns the lines for above its new first
    key, and the lines after it that belong to what follows it.
    """
    keys = list(node)
    lead: dict[Any, Lines] = {keys[0]: head + _adopt_strays(node, keys)}
    for key, following in itertools.pairwise([*keys, None]):
        value, sub = node[key], _child_model(model, key)
        lines = _take(node, key, value)
        if isinstance(value, CommentedMap) and _block(value):
            first, after = _map(value, sub, col + 2, lines, node.lc.col)
            _add(node, key, first)
        elif _block(value):
            first, after = _seq(value, sub, col + 2, node.lc.col)
            _add(node, key, _reindent(lines, col + 2) + first)
        else:
            _flow(value, sub)
            after = lines
        lead[following] = after
    inner, outer = _split_tail(lead.pop(None), owner + 1)
    order = models.field_order(model) if model else {}
    new = sorted(keys, key=lambda k: order.get(k, len(order)))
    for key in new:
        node.move_to_end(key)
    for key, following in itertools.pairwise(new):
        _append_end(node, key, _reindent(lead[following], col))
    _append_end(node, new[-1], _reindent(inner, col))
    return _head(lead[new[0]], col), outer


def _seq(node: CommentedSeq, model: Any, col: int, owner: int) -> tuple[Lines, Lines]:
    """Sort the mappings in a block sequence with its dashes at `col`; items keep their order."""
    before = [_adopt_strays(node, list(range(len(node))))] + [[] for _ in node]
    for j, item in enumerate(node):
        if isinstance(item, CommentedMap) and _block(item):
            first, before[j + 1] = _map(item, model, col + 2, [], node.lc.col)
            before[j] += first  # lines above a new first key go above the dash
        elif _block(item):
            first, before[j + 1] = _seq(item, model, col + 2, node.lc.col)
            before[j] += first
        else:
            _flow(item, model)
            before[j + 1] = _take(node, j, item)
    inner, outer = _split_tail(before[-1], owner + 1)
    for j in range(1, len(node)):
        _append_end(node, j - 1, _reindent(before[j], col))
    _append_end(node, len(node) - 1, _reindent(inner, col))
    return _head(before[0], col), outer


def _flow(value: Any, model: Any) -> None:
    """Sort the keys of flow mappings (and of mappings inside flow sequences)."""
    if isinstance(value, CommentedMap):
        order = models.field_order(model) if model else {}
        for key in sorted(value, key=lambda k: order.get(k, len(order))):
            value.move_to_end(key)
        for key in value:
            _flow(value[key], _child_model(model, key))
    elif isinstance(value, CommentedSeq):
        for item in value:
            _flow(item, model)


def _child_model(model: Any, key: Any) -> Any:
    """The model of the object (or of the list items) at `key` of `model`, if any."""
    if model is None or key not in model.model_fields:
        return None
    todo = [model.model_fields[key].annotation]
    while todo:
        annotation = todo.pop()
        if isinstance(annotation, type) and issubclass(annotation, models.ApiModel):
            return annotation
        todo.extend(get_args(annotation))
    return None


def _block(value: Any) -> bool:
    """A non-empty block (not flow) mapping or sequence."""
    return (
        isinstance(value, CommentedMap | CommentedSeq)
        and len(value) > 0
        and not value.fa.flow_style()
    )


def _slot(node: Any) -> int:
    # A mapping keeps the comment after a value at index 2 of `ca.items[key]`, a sequence at 0.
    return 2 if isinstance(node, CommentedMap) else 0


def _adopt_strays(node: Any, keys: list[Any]) -> Lines:
    """Lines that follow a flow or empty value are filed before the next key or item, or at
    the end of the collection: move them to the end of that value; return those above the
    first key."""
    strays = []
    for key in keys:
        slot = node.ca.items.get(key)
        pre = slot[1] if slot and isinstance(slot[1], list) else None
        if pre:
            slot[1] = None
        strays.append(_pre_lines(pre))
    strays.append(_pre_lines(node.ca.end))
    node.ca.end = []
    for key, lines in zip(keys, strays[1:], strict=True):
        _append_end(node, key, lines)
    return strays[0]


def _take(node: Any, key: Any, value: Any) -> Lines:
    """Leave only the end-of-line comment after `node[key]`; return the full lines after it."""
    own: list[Any] = [None, None]
    if isinstance(value, CommentedMap | CommentedSeq):  # ruamel may file them on either side
        own, value.ca.comment = value.ca.comment or own, None
    slot, index = node.ca.items.setdefault(key, [None] * 4), _slot(node)
    post, pre = slot[index] or own[0], (index == 2 and _block(value) and slot[3]) or own[1]
    slot[index] = None
    if index == 2 and _block(value):
        slot[3] = None
    if isinstance(value, LiteralScalarString | FoldedScalarString):
        return _pre_lines([post] if post else [])  # it ends its line: all lines are full
    eol, _, rest = post.value.partition("\n") if post else ("", "", "")
    if eol.strip():
        post.value = eol + "\n"
        slot[index] = post
    return _split(rest) + _pre_lines(pre)


def _append_end(node: Any, key: Any, lines: Lines) -> None:
    """Add full comment lines after the last line of `node[key]`, however deep it ends."""
    value = node[key]
    if _block(value):
        last = list(value)[-1] if isinstance(value, CommentedMap) else len(value) - 1
        _append_end(value, last, lines)
    elif isinstance(value, LiteralScalarString | FoldedScalarString) and value.endswith("\n\n"):
        _add(node, key, lines, keep=True)
    else:
        _add(node, key, lines)


def _add(node: Any, key: Any, lines: Lines, keep: bool = False) -> None:
    """Append `lines` to the comment after `node[key]` (a `|+` text: never a blank first)."""
    slot = node.ca.items.setdefault(key, [None] * 4)
    token = slot[_slot(node)]
    if keep and not (token and token.value.strip()):
        lines = _unblank(lines)  # a blank line after a `|+` text would become part of it
    if lines:
        block_scalar = isinstance(node[key], LiteralScalarString | FoldedScalarString)
        token = token or _token("" if block_scalar else "\n")
        token.value += "".join(lines)
        slot[_slot(node)] = token


def _token(value: str) -> CommentToken:
    return CommentToken(value, CommentMark(0))


def _pre_lines(tokens: Any) -> Lines:
    """Full comment lines from ruamel tokens whose first line lost its indentation."""
    text = ""
    for token in tokens or ():
        value = token.value
        text += " " * token.start_mark.column + value if value.startswith("#") else value
    return _split(text)


def _split(text: str) -> Lines:
    return [line if line.endswith("\n") else line + "\n" for line in text.splitlines(True)]


def _reindent(lines: Lines, col: int) -> Lines:
    return [" " * col + line.strip() + "\n" if line.strip() else "\n" for line in lines]


def _head(lines: Lines, col: int) -> Lines:
    """Lines for the top of a block: re-indented, no blank line right under its key."""
    return _unblank(_reindent(lines, col))


def _unblank(lines: Lines) -> Lines:
    return lines[next((i for i, line in enumerate(lines) if line.strip()), len(lines)) :]


def _split_tail(lines: Lines, col: int) -> tuple[Lines, Lines]:
    """Lines after a block: those indented past its owner (key or dash) at `col - 1` stay
    with it; the rest belong to what follows it."""
    cut = 0
    for i, line in enumerate(lines):
        if line.strip():
            if len(line) - len(line.lstrip()) < col:
                break
            cut = i + 1
    return lines[:cut], lines[cut:]


def _strip_markers(text: str) -> str:
    """Drop `%` directives and `---`/`...` lines (one document; their comments are kept)."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, x in enumerate(lines) if x.strip() and x[0] not in "#%"), 0)
    out = []
    for i, line in enumerate(lines):
        match = _MARKER.match(line)
        if i < start and line.startswith("%"):
            continue
        if match:
            rest = match.group(2).strip()
            if rest and not rest.startswith("#"):
                return text  # `--- value`: leave it to ruamel
            line = rest + "\n" if rest else ""
        out.append(line)
    return "".join(out)


def _comments(yaml: YAML, text: str) -> tuple[Counter[str], dict[str, int]]:
    """Every comment line of `text` (stripped), counted, and the 1-based line of each's first."""
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    for token in yaml.scan(text):
        for entry in getattr(token, "_comment", None) or ():
            for item in entry if isinstance(entry, list) else [entry]:
                start = item.start_mark.line + 1 if isinstance(item, CommentToken) else 1
                value = item.value if isinstance(item, CommentToken) else str(item or "")
                for i, line in enumerate(value.split("\n")):
                    if line.strip():
                        counts[line.strip()] += 1
                        first.setdefault(line.strip(), start + i)
    return counts, first
