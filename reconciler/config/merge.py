"""Deep-merge `_defaults.yaml` files under a campaign, remembering who supplied each value.

Mappings merge key by key; lists and scalars replace. A nearer file wins over a farther one,
the campaign file over all. The result keeps, for every path, the location of the key and of
the value in the file that supplied it, so problems point at the right file and line.
"""

from __future__ import annotations

from collections.abc import Iterator
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
    # Linear in the size of the documents: what is forgotten or taken below a key is found by
    # walking that key's value, never by scanning the location tables (a file of 16k keys
    # merged with a one-line _defaults.yaml once took a minute).
    for key, value in source.items():
        here = (*path, key)
        merged.keys[here] = doc.keys[here]
        current = target.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged.values[here] = doc.values[here]
            _overlay(merged, doc, current, value, here)
            continue
        if key in target:
            _forget_below(merged, here, current)
        target[key] = _copy(value)
        merged.values[here] = doc.values[here]
        _take_below(merged, doc, here, value)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _below(path: FieldPath, value: Any) -> Iterator[FieldPath]:
    """Every path strictly below `path` inside `value`, depth first."""
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for part, sub in items:
        here = (*path, part)
        yield here
        yield from _below(here, sub)


def _forget_below(merged: Document, path: FieldPath, old: Any) -> None:
    for stale in _below(path, old):
        merged.keys.pop(stale, None)
        merged.values.pop(stale, None)


def _take_below(merged: Document, doc: Document, path: FieldPath, value: Any) -> None:
    for p in _below(path, value):
        if p in doc.keys:
            merged.keys[p] = doc.keys[p]
        if p in doc.values:
            merged.values[p] = doc.values[p]
