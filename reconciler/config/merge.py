"""Deep-merge `_defaults.yaml` files under a campaign, remembering who supplied each value.

Mappings merge key by key; lists and scalars replace. A nearer file wins over a farther one,
the campaign file over all. The result keeps, for every path, the location of the key and of
the value in the file that supplied it, so problems point at the right file and line.
"""

from __future__ import annotations

from typing import Any

from reconciler.config.yamlio import Document, FieldPath


def merge(docs: list[Document]) -> Document:
    """Merge loaded documents, farthest `_defaults.yaml` first and the campaign file last.

    The result is a `Document` named after the campaign file, whose `keys`/`values` locations
    may point into any of the merged files. With one document, it is returned as it is.
    """
    if len(docs) == 1:
        return docs[0]
    campaign = docs[-1]
    merged = Document(campaign.file, data={})
    for doc in docs:
        _overlay(merged, doc, merged.data, doc.data, ())
    return merged


def _overlay(
    merged: Document, doc: Document, target: dict[str, Any], source: dict[str, Any], path: FieldPath
) -> None:
    for key, value in source.items():
        here = (*path, key)
        merged.keys[here] = doc.keys[here]
        current = target.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged.values[here] = doc.values[here]
            _overlay(merged, doc, current, value, here)
            continue
        if key in target:
            _forget_below(merged, here)
        target[key] = _copy(value)
        _take_below(merged, doc, here)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _forget_below(merged: Document, path: FieldPath) -> None:
    n = len(path)
    for table in (merged.keys, merged.values):
        for stale in [p for p in table if p[:n] == path and len(p) > n]:
            del table[stale]


def _take_below(merged: Document, doc: Document, path: FieldPath) -> None:
    n = len(path)
    merged.values[path] = doc.values[path]
    for source, table in ((doc.keys, merged.keys), (doc.values, merged.values)):
        for p, location in source.items():
            if p[:n] == path and len(p) > n:
                table[p] = location
