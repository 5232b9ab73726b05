"""`validate PATH...` and `fmt PATH...`: the files of the campaigns folder named on the command
line (pre-commit passes the changed ones), and whose problems concern them (spec 9.4).

A named file is checked fully, with everything it takes part in: a campaign file with the
`_defaults.yaml` files merged into it, a `_defaults.yaml` with every campaign below it, the
`_policy.yaml` with every campaign (the policy applies to all), `_moved.yaml` by itself. Names
are unique across all campaigns, so a clash with a file that was not named is still reported at
the named one. A path outside the campaigns folder, a missing file, a folder, or a file the tool
does not read (`README.md`, `_drafts/x.yaml`) is a problem at that path: never silently skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.config.discovery import SUFFIXES, Layout, display, escaped
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
    """The selection of `paths` in the campaigns folder `root`, as `discover(root)` laid out."""
    chosen = Selection()
    campaigns = {c.file: c for c in layout.campaigns}
    defaults = {display(p): p for p in layout.defaults}
    special = {display(p) for p in (layout.moved, layout.policy) if p is not None}
    reported = {p.location.file for p in layout.problems}
    top = os.path.abspath(root)
    for path in paths:
        shown = display(os.fspath(path))
        where = Location(escaped(shown))
        absolute = os.path.abspath(path)
        if absolute != top and not absolute.startswith(top.rstrip(os.sep) + os.sep):
            chosen.problems.append(
                Problem(
                    where,
                    "(file)",
                    f"not below the campaigns folder {escaped(display(root))}/, so it is not "
                    "checked; pass that folder with --campaigns DIR",
                )
            )
            continue
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
            chosen.problems.append(Problem(where, "(file)", _not_read(Path(path))))
    chosen.problems.sort()
    return chosen


def _not_read(path: Path) -> str:
    if not os.path.lexists(path):
        return "no such file"
    if path.is_dir():
        return "a folder: name the files in it, or name none to check the whole campaigns folder"
    if not path.name.endswith(SUFFIXES):
        return "not a campaign file: only .yaml and .yml files are read below the campaigns folder"
    return (
        "not read by reconcile, so not checked: it is not a campaign file, _defaults.yaml, "
        "_moved.yaml or _policy.yaml (names and folders starting with _ or . are skipped)"
    )
