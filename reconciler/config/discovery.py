"""Campaign keys, `_defaults.yaml` chains and `_moved.yaml` (spec section 1).

A campaign key is the file's path below the campaigns folder without `.yaml`/`.yml`, with `/`
separators. Files and folders whose names start with `_` or `.` are not campaigns.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.config.yamlio import Document, load_file
from reconciler.errors import Location, Problem

SUFFIXES = (".yaml", ".yml")
DEFAULTS_NAMES = ("_defaults.yaml", "_defaults.yml")
MOVED_NAMES = ("_moved.yaml", "_moved.yml")
POLICY_NAMES = ("_policy.yaml", "_policy.yml")


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
    if not root.is_dir():
        layout.problems.append(
            Problem(
                Location(display(root)),
                "(folder)",
                "campaigns folder not found; pass --campaigns DIR or set RECONCILE_CAMPAIGNS",
            )
        )
        return layout
    by_key: dict[str, CampaignFile] = {}
    defaults_of: dict[Path, tuple[Path, ...]] = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        parent = defaults_of.get(here.parent, ()) if here != root else ()
        found = _one_of(here, DEFAULTS_NAMES, files, layout.problems)
        layout.defaults += found
        chain = parent + tuple(found)
        defaults_of[here] = chain
        if here == root:
            moved = _one_of(here, MOVED_NAMES, files, layout.problems)
            layout.moved = moved[0] if moved else None
            policy = _one_of(here, POLICY_NAMES, files, layout.problems)
            layout.policy = policy[0] if policy else None
        else:
            layout.problems += _misplaced_policy(here, root, files)
        # Strings, not Path methods, in this loop: it runs once per file of a large repo.
        prefix = os.path.relpath(folder, root).replace(os.sep, "/") + "/"
        prefix = "" if prefix == "./" else prefix
        shown = display(folder) + "/"
        shown = "" if shown == "./" else shown
        for name in sorted(files):
            if name.startswith(("_", ".")) or not name.endswith(SUFFIXES):
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
            by_key[key] = campaign
    layout.campaigns = [by_key[k] for k in sorted(by_key)]
    return layout


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
