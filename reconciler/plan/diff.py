"""Field-level diff of two payloads; deepdiff stays behind `field_diff`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from reconciler.config.yamlio import display_path

ABSENT: Any = None  # what `old`/`new` hold for a field that is not there (see `kind`)


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: `kind` says whether it was added, removed or changed."""

    path: str
    kind: Literal["added", "removed", "changed"]
    old: Any
    new: Any

    def data(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "old": self.old, "new": self.new}


def field_diff(old: dict[str, Any], new: dict[str, Any]) -> list[FieldChange]:
    """The fields that differ between two payloads, nested paths, sorted by path."""
    from deepdiff import DeepDiff

    tree = DeepDiff(old, new, view="tree", verbose_level=2)
    changes: list[FieldChange] = []
    for report, items in tree.items():
        for item in items:
            path = display_path(tuple(item.path(output_format="list")))
            if report.endswith("_added"):
                changes.append(FieldChange(path, "added", ABSENT, item.t2))
            elif report.endswith("_removed"):
                changes.append(FieldChange(path, "removed", item.t1, ABSENT))
            else:
                changes.append(FieldChange(path, "changed", item.t1, item.t2))
    return sorted(changes, key=lambda c: c.path)
