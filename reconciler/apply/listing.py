"""Reading the Twin24 task list completely, or not at all (spec section 9.2).

The list's envelope is not documented (`twin24-api.md` section 3), so only two shapes are read:
`{"count": N, "items": [{...}, ...]}` and a bare list of task objects. Anything else (an object
without `items`, `items` that is not a list or holds something other than objects, an item
without an id, HTML, an empty or non-JSON body) raises `ListAnswerError` naming the shape: a
shape this version does not know is never read as "no tasks".

`Pager` decides, page by page, whether the listing is complete. It reads until it holds `count`
distinct tasks (a bare list: until an empty page) and refuses when a page brings no new task
(a repeated page, a server that ignores `page`), when the pages end before `count`, or when
they disagree with it. A first page shorter than asked while more tasks exist is taken as the
server's page-size cap: the next pages are asked for with that size, so that `page` means the
same to the server and to us.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from reconciler.errors import ListAnswerError

MAX_LIST_PAGES: Final = 1000
KNOWN_SHAPES: Final = '{"count": N, "items": [...]} or a list of tasks'


def page_items(body: Any) -> tuple[list[dict[str, Any]], int | None]:
    """The task objects of one page and its `count` (None for a bare list); or raise."""
    if isinstance(body, list):
        return _objects(body, "a list"), None
    if not isinstance(body, dict):
        raise unknown_shape(f"a JSON {_kind(body)}")
    if "items" not in body:
        keys = ", ".join(sorted(map(str, body))[:6]) or "none"
        raise unknown_shape(f"a JSON object without `items` (its keys: {keys})")
    items, count = body["items"], body.get("count")
    if not isinstance(items, list):
        raise unknown_shape(f"a JSON object whose `items` is {_a(_kind(items))}, not a list")
    if "count" not in body:
        raise unknown_shape("a JSON object with `items` but no `count`")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise unknown_shape(f"a JSON object whose `count` is {_a(_kind(count))}, not a number >= 0")
    return _objects(items, "`items`"), count


def body_shape(text: str) -> str:
    """How a list answer that is not JSON looks: empty, HTML, or other text."""
    stripped = text.strip()
    if not stripped:
        return "an empty body"
    if stripped.startswith("<"):
        return "an HTML page"
    return "a body that is not JSON"


def unknown_shape(shape: str) -> ListAnswerError:
    return ListAnswerError(
        f"the Twin24 list endpoint answered with {shape}; this version reads only "
        f"{KNOWN_SHAPES}, so it cannot tell which tasks exist (check the API URL; report this "
        "if it is right)"
    )


@dataclass
class Pager:
    """The state of one listing: which page to ask for next, and what was read so far."""

    limit: int
    page: int = 0
    count: int | None = None
    seen: dict[str, Any] = field(default_factory=dict)  # identity -> task, in list order

    def add(self, identities: list[str], tasks: list[Any], count: int | None) -> bool:
        """Take one page (its items' identities and tasks, its count); True when complete."""
        if self.page == 0:
            self.count = count
        elif count != self.count:
            raise self._refuse(
                f"its count changed between pages ({self.count} -> {count}): tasks were "
                "created or removed while it was read; run again"
            )
        new = 0
        for identity, task in zip(identities, tasks, strict=True):
            if identity not in self.seen:
                self.seen[identity] = task
                new += 1
        total = len(self.seen)
        if self.count is not None:
            if total > self.count:
                raise self._refuse(
                    f"its pages hold {total} different tasks, more than its count {self.count}"
                )
            if total == self.count:
                return True
            if not identities:
                raise self._refuse(
                    f"its pages ended after {total} tasks, but its count says {self.count}"
                )
        elif not identities:
            return True
        if not new:
            raise self._refuse(
                f"page {self.page} brought no task that earlier pages did not (a repeated "
                "page, or a server that ignores `page`)"
            )
        if len(identities) < self.limit:
            if self.page == 0:
                self.limit = len(identities)  # the server's page-size cap: ask for that size
            elif self.count is None:
                return True  # a short page after full ones: the end of a bare list
        self.page += 1
        if self.page >= MAX_LIST_PAGES:
            raise self._refuse(f"it still had tasks after {MAX_LIST_PAGES} pages")
        return False

    def _refuse(self, reason: str) -> ListAnswerError:
        return ListAnswerError(
            f"the Twin24 list endpoint cannot be read completely: {reason}. Without every task "
            "the lost-state guard could miss one (report this if it persists)"
        )


def _objects(items: list[Any], where: str) -> list[dict[str, Any]]:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise unknown_shape(f"{where} holding {_a(_kind(item))} at [{index}], not task objects")
    return items


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind
