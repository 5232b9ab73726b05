"""Campaign keys, `_defaults.yaml` chains and `_moved.yaml` (spec sections 1 and 9.6).

A campaign key is the file's path below the campaigns folder without `.yaml`/`.yml`, with `/`
separators. Files and folders whose names start with `_` or `.` are not campaigns.

A checkout may be hostile (a pull request from a fork), so the walk (spec 9.6):
- follows no symlink and descends into no symlinked folder: every symlink, FIFO, device or
  socket below the folder is an error naming it; one named like a campaign, `_defaults.yaml`
  or `_moved.yaml` is listed as such, and `files.read_regular` refuses it there (never
  following or opening it), so a broken `_defaults.yaml` is reported once, by itself;
- refuses a name that would make an unsafe key: control characters (newlines included),
  a backtick, `<`, `>`, `&`, bidirectional-text controls, invisible format characters
  (a zero-width space), or bytes that are not UTF-8 (`os.scandir` hands them over
  surrogate-escaped); the message shows the name escaped;
- refuses two keys that differ only in letter case or Unicode composition (NFC): they look
  the same, and macOS and Windows keep them as one file;
- reports a file named like a campaign in another letter case (`x.YAML`) or with a space or a
  dot after its suffix (`x.yaml.`): it would otherwise be skipped silently.
Names starting with `.` are never looked at (editors keep lock files and folders there).
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.config.files import kind, special_message
from reconciler.config.yamlio import Document, load_file
from reconciler.errors import Location, Problem

SUFFIXES = (".yaml", ".yml")
DEFAULTS_NAMES = ("_defaults.yaml", "_defaults.yml")
MOVED_NAMES = ("_moved.yaml", "_moved.yml")
POLICY_NAMES = ("_policy.yaml", "_policy.yml")

# Characters no campaign key may hold: C0/C1 controls, line and paragraph separators,
# bidirectional-text controls (they reorder what a reviewer sees), surrogate escapes of bytes
# that are not UTF-8, U+FFFE and U+FFFF (no YAML file may hold them, so no `_moved.yaml` line
# could name the key), and what Markdown or HTML would read: ` < > &.
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f`<>&\u061c\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\udc80-\udcff"
    "\ufffe\uffff]"
)


def _unsafe(name: str) -> bool:
    """A character no key may hold: `UNSAFE`, or an invisible format character (Unicode
    category Cf: a zero-width space or joiner, a soft hyphen) that makes two keys look alike."""
    return bool(UNSAFE.search(name)) or (
        not name.isascii() and any(unicodedata.category(c) == "Cf" for c in name)
    )


def key_problem(key: str) -> str | None:
    """Why `key` can be no campaign's key (the path below the campaigns folder, without
    `.yaml`), for a key typed on the command line (`state mv OLD NEW`); None when it can."""
    if not key:
        return "it is empty"
    if _unsafe(key):
        return (
            "it has a character no campaign key may hold (a control character or newline, a "
            "backtick, angle brackets, an ampersand, a bidirectional-text control or an "
            "invisible format character)"
        )
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\\" in key:
        return "it is not a relative path below the campaigns folder (like survey/nps-q3)"
    if any(part[0] in "_." for part in parts):
        return "a name or folder starting with _ or . is never read as a campaign"
    if key.lower().endswith((".yaml", ".yml")):
        return f"a key is the file's path without .yaml ({key.rsplit('.', 1)[0]})"
    return None


def folded(key: str) -> str:
    """`key` as compared for uniqueness: NFC, then case-folded (`A` and `a`, a composed and a
    decomposed `é` are one key: they look the same, and some file systems make them one)."""
    return unicodedata.normalize("NFC", key).casefold()


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def escaped(text: str) -> str:
    """`text` safe to print anywhere: unsafe characters as `\\n`, `\\u003c`, `\\xff` (a byte
    that is not UTF-8), and a backslash doubled."""
    if not _unsafe(text) and "\\" not in text:
        return text
    out = []
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif _unsafe(char):
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def display(path: Path | str) -> str:
    """A path as shown to users: relative to the working folder when below it, `/`-separated."""
    text = os.path.normpath(path)
    if os.path.isabs(text):
        rel = os.path.relpath(text)
        text = text if rel.startswith("..") else rel
    return text.replace(os.sep, "/")


@dataclass(frozen=True)
class CampaignFile:
    """One campaign file and the `_defaults.yaml` files above it, farthest first."""

    key: str
    fs_path: str  # for the OS; a string, since large repositories have many
    file: str
    defaults: tuple[Path, ...]

    @property
    def path(self) -> Path:
        return Path(self.fs_path)


@dataclass(frozen=True)
class Move:
    """One `- {from: OLD, to: NEW}` line of `_moved.yaml`."""

    old: str
    new: str
    location: Location


@dataclass
class Layout:
    """What is in a campaigns folder."""

    campaigns: list[CampaignFile] = field(default_factory=list)
    defaults: list[Path] = field(default_factory=list)
    moved: Path | None = None
    policy: Path | None = None
    problems: list[Problem] = field(default_factory=list)


def discover(root: Path) -> Layout:
    """Find every campaign file below `root`, sorted by key, with its defaults chain."""
    layout = Layout()
    if os.path.islink(root):
        layout.problems.append(
            Problem(
                Location(escaped(display(root))),
                "(folder)",
                "the campaigns folder is a symbolic link, which is never followed; pass the "
                "folder itself with --campaigns DIR",
            )
        )
        return layout
    if not root.is_dir():
        layout.problems.append(
            Problem(
                Location(escaped(display(root))),
                "(folder)",
                "campaigns folder not found; pass --campaigns DIR or set RECONCILE_CAMPAIGNS",
            )
        )
        return layout
    by_key: dict[str, CampaignFile] = {}
    by_folded: dict[str, CampaignFile] = {}
    todo: list[tuple[str, str, tuple[Path, ...]]] = [(str(root), "", ())]
    while todo:
        folder, prefix, parent = todo.pop()
        shown = display(folder) + "/"
        shown = "" if shown == "./" else shown
        files, dirs = _scan(folder, shown, layout.problems)
        here = Path(folder)
        found = _one_of(here, DEFAULTS_NAMES, files, layout.problems)
        layout.defaults += found
        chain = parent + tuple(found)
        if not prefix:
            moved = _one_of(here, MOVED_NAMES, files, layout.problems)
            layout.moved = moved[0] if moved else None
            policy = _one_of(here, POLICY_NAMES, files, layout.problems)
            layout.policy = policy[0] if policy else None
        else:
            layout.problems += _misplaced_policy(here, root, files)
        for name in files:
            if name.startswith("_") or not name.endswith(SUFFIXES):
                continue
            key = prefix + name.rsplit(".", 1)[0]
            campaign = CampaignFile(key, os.path.join(folder, name), shown + name, chain)
            if key in by_key:
                layout.problems.append(
                    Problem(
                        Location(campaign.file),
                        "(file)",
                        f"campaign key {key!r} is also defined by {by_key[key].file}; "
                        "keep one file per key",
                    )
                )
                continue
            other = by_folded.get(folded(key))
            if other is not None:
                layout.problems.append(
                    Problem(
                        Location(campaign.file),
                        "(file)",
                        f"campaign key {key!a} differs from {other.key!a} of {other.file} "
                        "only in letter case or in how its letters are composed (Unicode "
                        "NFC); keys must be unique ignoring both (macOS and Windows keep such "
                        "names as one file): rename one",
                    )
                )
                continue
            by_key[key] = by_folded[folded(key)] = campaign
        todo += [(os.path.join(folder, d), f"{prefix}{d}/", chain) for d in reversed(dirs)]
    layout.campaigns = [by_key[k] for k in sorted(by_key)]
    return layout


def _scan(folder: str, shown: str, problems: list[Problem]) -> tuple[list[str], list[str]]:
    """The names in `folder` to read as files and to walk as folders, sorted; every entry
    that may not be there is a problem."""
    files: list[str] = []
    dirs: list[str] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as exc:
        problems.append(
            Problem(Location(shown or "."), "(folder)", f"cannot list folder: {exc.strerror}")
        )
        return files, dirs
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        where = Location(shown + escaped(name))
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            is_file = not is_dir and entry.is_file(follow_symlinks=False)
            what = None if is_dir or is_file else kind(entry.stat(follow_symlinks=False).st_mode)
        except OSError as exc:
            problems.append(Problem(where, "(file)", f"cannot read it: {exc.strerror}"))
            continue
        read = is_dir and not name.startswith("_")
        yaml_like = not is_dir and name.lower().endswith(SUFFIXES) and _wanted(name.lower())
        if _unsafe(name):
            if read or yaml_like or what:
                problems.append(Problem(where, "(file)", _UNSAFE_NAME))
            continue
        trimmed = name.rstrip(" .")
        lower = trimmed.lower()
        if not is_dir and trimmed != name and _wanted(lower) and lower.endswith(SUFFIXES):
            problems.append(
                Problem(
                    where,
                    "(file)",
                    f"{name!r} ends in a space or a dot, so it is not read: rename it to "
                    f"{escaped(trimmed)}",
                )
            )
            continue
        if yaml_like and not name.endswith(SUFFIXES):
            stem, _, suffix = name.rpartition(".")
            # `_Defaults.YAML` is read as `_defaults.yaml` only: lower the whole name then.
            renamed = name.lower() if name.startswith("_") else f"{stem}.{suffix.lower()}"
            problems.append(
                Problem(
                    where,
                    "(file)",
                    f"the suffix .{suffix} is not read (only .yaml and .yml, in lower case): "
                    f"rename it to {escaped(renamed)}",
                )
            )
            continue
        if is_dir:
            if read:
                dirs.append(name)
        elif is_file or yaml_like:
            files.append(name)  # a special file named so is refused when read (files.py)
        else:
            problems.append(Problem(where, "(file)", special_message(what or "not a file")))
    return files, dirs


_UNSAFE_NAME = (
    "this name has a character no campaign key may hold (a control character or newline, a "
    "backtick, angle brackets, an ampersand, a bidirectional-text control, an invisible "
    "format character such as a zero-width space, or bytes that are not UTF-8; shown escaped "
    "here): rename it; it is not read"
)


def _wanted(lower: str) -> bool:
    """A YAML name this tool reads: a campaign, `_defaults.yaml`, `_moved.yaml`, `_policy.yaml`."""
    return not lower.startswith("_") or lower in DEFAULTS_NAMES + MOVED_NAMES + POLICY_NAMES


def _one_of(
    folder: Path, names: tuple[str, ...], files: list[str], problems: list[Problem]
) -> list[Path]:
    found = [folder / n for n in names if n in files]
    if len(found) > 1:
        problems.append(
            Problem(
                Location(display(found[1])), "(file)", f"both {names[0]} and {names[1]}; keep one"
            )
        )
    return found[:1]


def _misplaced_policy(folder: Path, root: Path, files: list[str]) -> list[Problem]:
    # One policy per campaigns folder: a nested one that was silently ignored would look
    # like a rule that holds.
    return [
        Problem(
            Location(display(folder / name)),
            "(file)",
            f"only {display(root / POLICY_NAMES[0])} is read as the calling policy; move this "
            "file there or delete it",
        )
        for name in POLICY_NAMES
        if name in files
    ]


def load_moves(path: Path, keys: set[str]) -> tuple[list[Move], list[Problem]]:
    """Read `_moved.yaml`: a list of `{from: OLD_KEY, to: NEW_KEY}` mappings."""
    doc: Document = load_file(path, display(path), root="list")
    if doc.problems:
        return [], doc.problems
    moves: list[Move] = []
    problems: list[Problem] = []
    seen_old: dict[str, int] = {}
    seen_new: dict[str, int] = {}
    for i, item in enumerate(doc.data):
        where = doc.at((i,))
        if not isinstance(item, dict) or set(item) != {"from", "to"}:
            problems.append(
                Problem(where, f"[{i}]", "expected a mapping with exactly `from` and `to` keys")
            )
            continue
        old, new = item["from"], item["to"]
        bad = next((k for k in ("from", "to") if not isinstance(item[k], str) or not item[k]), None)
        if bad:
            problems.append(
                Problem(doc.at((i, bad)), f"[{i}].{bad}", "expected a campaign key (text)")
            )
            continue
        why = {k: key_problem(item[k]) for k in ("from", "to")}
        unsafe = next((k for k in ("from", "to") if why[k] is not None), None)
        if unsafe:
            problems.append(
                Problem(
                    doc.at((i, unsafe)),
                    f"[{i}].{unsafe}",
                    f"{escaped(item[unsafe])} is not a campaign key: {why[unsafe]}",
                )
            )
            continue
        for name, value, seen in (("from", old, seen_old), ("to", new, seen_new)):
            if value in seen:
                problems.append(
                    Problem(
                        doc.at((i, name)),
                        f"[{i}].{name}",
                        f"{value!r} is already moved at line {seen[value]}; list each key once",
                    )
                )
            seen[value] = doc.at((i, name)).line
        if old == new:
            problems.append(Problem(where, f"[{i}]", f"moves {old!r} onto itself"))
        elif new not in keys:
            problems.append(
                Problem(
                    doc.at((i, "to")),
                    f"[{i}].to",
                    f"no campaign file has the key {new!r}; a move needs the new file",
                )
            )
        else:
            moves.append(Move(old, new, where))
    return moves, problems
