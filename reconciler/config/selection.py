"""`validate PATH...` and `fmt PATH...`: the files of the campaigns folder named on the command
line (pre-commit passes the changed ones), and whose problems concern them (spec 9.4).

A named file is checked fully, with everything it takes part in: a campaign file with the
`_defaults.yaml` files merged into it, a `_defaults.yaml` with every campaign below it, the
`_policy.yaml` with every campaign (the policy applies to all), `_moved.yaml` by itself. Names
are unique across all campaigns, so a clash with a file that was not named is still reported at
the named one. A path outside the campaigns folder, a missing file, a folder, or a file the tool
does not read (`README.md`, `_drafts/x.yaml`, anything through a symbolic link inside the folder)
is a problem at that path: never silently skipped. A path is recognised however it is spelled.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.config.discovery import SUFFIXES, Layout, display, escaped
from reconciler.config.files import kind, special_message
from reconciler.errors import Location, Problem


@dataclass
class Selection:
    """What the named paths select."""

    named: set[str] = field(default_factory=set)  # the files named (as `display` shows them)
    files: set[str] = field(default_factory=set)  # files whose problems are reported
    keys: set[str] = field(default_factory=set)  # campaigns checked
    everything: bool = False  # the calling policy was named: every campaign is checked
    formattable: list[Path] = field(default_factory=list)  # named campaign and defaults files
    problems: list[Problem] = field(default_factory=list)  # paths that name nothing to check
    given: set[str] = field(default_factory=set)  # every distinct path named (checked once)

    def concerns(self, problem: Problem) -> bool:
        """True when `problem` is reported for this selection."""
        return (
            self.everything
            or problem.location.file in self.files
            or problem.path == "(folder)"  # the campaigns folder itself
        )

    def only(self, problems: Iterable[Problem]) -> list[Problem]:
        return [p for p in problems if self.concerns(p)]


def select(layout: Layout, root: Path, paths: Sequence[str | os.PathLike[str]]) -> Selection:
    """The selection of `paths` in the campaigns folder `root`, as `discover(root)` laid out.

    A path is matched however it is spelled (relative or absolute, through `..` or a symbolic
    link above the campaigns folder): what counts is where it lies in the folder, spelled as
    `discover` spells its files. Below the folder nothing is resolved: a symbolic link there is
    never followed. A path named twice is checked once.
    """
    chosen = Selection()
    campaigns = {c.file: c for c in layout.campaigns}
    defaults = {display(p): p for p in layout.defaults}
    special = {display(p) for p in (layout.moved, layout.policy) if p is not None}
    reported = {p.location.file for p in layout.problems}
    for path in paths:
        inside = _inside(root, path)
        if inside is None:
            shown = display(os.fspath(path))
            if shown not in chosen.given:
                chosen.given.add(shown)
                chosen.problems.append(
                    Problem(
                        Location(escaped(shown)),
                        "(file)",
                        f"not below the campaigns folder {escaped(display(root))}/, so it is "
                        "not checked; pass that folder with --campaigns DIR",
                    )
                )
            continue
        shown = display(inside)
        if shown in chosen.given:
            continue
        chosen.given.add(shown)
        chosen.named.add(escaped(shown))
        if shown in campaigns:
            campaign = campaigns[shown]
            chosen.keys.add(campaign.key)
            chosen.files |= {shown, *(display(d) for d in campaign.defaults)}
            chosen.formattable.append(campaign.path)
        elif shown in defaults:
            below = [c for c in layout.campaigns if defaults[shown] in c.defaults]
            chosen.keys |= {c.key for c in below}
            chosen.files |= {shown, *(c.file for c in below)}
            chosen.formattable.append(defaults[shown])
        elif shown in special:
            chosen.files.add(shown)
            if layout.policy is not None and shown == display(layout.policy):
                chosen.everything = True
                chosen.keys |= {c.key for c in layout.campaigns}
        elif escaped(shown) in reported:  # a symlink, `x.YAML`, a misplaced _policy.yaml...
            chosen.files.add(escaped(shown))
        else:
            problem = _not_read(root, inside)
            chosen.problems.append(Problem(Location(escaped(shown)), "(file)", problem))
    chosen.problems.sort()
    return chosen


def _inside(root: Path, path: str | os.PathLike[str]) -> str | None:
    """`path` spelled from `root` as `discover(root)` spells its files, or None when it does
    not lie in the campaigns folder. Only the part of `path` that leads to the folder is
    resolved (the shortest that is the folder itself), never what lies below it."""
    absolute, top = os.path.abspath(path), os.path.abspath(root)
    if absolute == top or absolute.startswith(top.rstrip(os.sep) + os.sep):
        return os.path.join(root, os.path.relpath(absolute, top))  # the common case: no I/O
    real_top = os.path.realpath(top)
    parts = Path(absolute).parts
    for length in range(1, len(parts) + 1):
        if os.path.realpath(os.path.join(*parts[:length])) == real_top:
            return os.path.join(root, *parts[length:])
    return None


def _not_read(root: Path, path: str) -> str:
    top = os.path.normpath(root)
    link = next((p for p in _folders_between(top, path) if os.path.islink(p)), None)
    if link is not None:
        return (
            f"below {escaped(display(link))}, which is not a folder but a symbolic link; only "
            "regular files and folders are read below the campaigns folder, and it is never "
            "followed: replace it with a regular folder or remove it"
        )
    with contextlib.suppress(OSError):
        special = kind(os.lstat(path).st_mode)  # a symbolic link in a folder never read...
        if special is not None:
            return special_message(special)
    if not os.path.lexists(path):
        return "no such file"
    if os.path.isdir(path):
        return "a folder: name the files in it, or name none to check the whole campaigns folder"
    if not path.endswith(SUFFIXES):
        return "not a campaign file: only .yaml and .yml files are read below the campaigns folder"
    return (
        "not read by reconcile, so not checked: it is not a campaign file, _defaults.yaml, "
        "_moved.yaml or _policy.yaml (names and folders starting with _ or . are skipped)"
    )


def _folders_between(top: str, path: str) -> list[str]:
    """The folders from `top` (excluded) down to the one holding `path`."""
    parts = Path(os.path.relpath(os.path.normpath(path), top)).parts[:-1]
    return [os.path.join(top, *parts[: i + 1]) for i in range(len(parts))]
