"""The sandbox's list answers, and the ways it can be told to get them wrong (for tests and for
rehearsing what `reconcile` does with a list endpoint it cannot trust).

Paging faults (`SandboxOptions`): `page_cap` (at most N items a page, whatever `limit` asks;
`page` counts pages of that size), `ignore_page` (every page is the first), `repeat_page` (page
N answers with page N-1's items), `count_extra` (a `count` that many higher than the tasks
there are: a count that never arrives). Shapes (`list_shape`): `bare` (a list of tasks, which
`reconcile` reads), and shapes it must refuse: `no-items`, `items-not-list`,
`items-not-objects`, `html`, `empty`, `not-json`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from reconciler.sandbox.tasks import ListQuery

if TYPE_CHECKING:
    from reconciler.sandbox.api import SandboxOptions

LIST_SHAPES = (
    "bare",
    "no-items",
    "items-not-list",
    "items-not-objects",
    "html",
    "empty",
    "not-json",
)
HTML_PAGE = b"<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1></body></html>\n"


def paged(query: ListQuery, page: int | None, options: SandboxOptions) -> ListQuery:
    """The query with the paging faults applied (`page` as asked, None when `offset` was)."""
    limit = min(query.limit, options.page_cap) if options.page_cap else query.limit
    if page is None:
        return replace(query, limit=limit)
    if options.ignore_page:
        page = 0
    elif options.repeat_page is not None and page == options.repeat_page:
        page -= 1
    return replace(query, offset=page * limit, limit=limit)


def body(
    count: int, items: list[dict[str, Any]], options: SandboxOptions
) -> tuple[Any, bytes | None]:
    """The JSON body of a list answer, or raw bytes for the shapes that are not JSON."""
    count += options.count_extra
    shape = options.list_shape
    if shape == "bare":
        return items, None
    if shape == "no-items":
        return {"count": count, "data": items}, None
    if shape == "items-not-list":
        return {"count": count, "items": {str(i): t for i, t in enumerate(items)}}, None
    if shape == "items-not-objects":
        return {"count": count, "items": [t["id"] for t in items]}, None
    if shape == "html":
        return None, HTML_PAGE
    if shape == "empty":
        return None, b""
    if shape == "not-json":
        return None, f"count={count}; items={len(items)}\n".encode()
    return {"count": count, "items": items}, None
