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

from reconciler.apply.answer import UnusableJson
from reconciler.errors import ListAnswerError

MAX_LIST_PAGES: Final = 1000
MAX_SHOWN_DIGITS: Final = 20  # a longer number from an answer is described, not echoed
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
    if isinstance(count, float) and count >= 0:
        raise unknown_shape(
            f"a JSON object whose `count` is {shown(count)}, not a whole number of tasks"
        )
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        number = isinstance(count, int | float) and not isinstance(count, bool)
        what = shown(count) if number and count is not None else _a(_kind(count))
        raise unknown_shape(f"a JSON object whose `count` is {what}, not a number >= 0")
    return _objects(items, "`items`"), count


def shown(number: int | float) -> str:
    """A number from an answer as a message shows it: in full when short, else its size."""
    if isinstance(number, bool) or not isinstance(number, int):
        text = repr(number)
        return text if len(text) <= MAX_SHOWN_DIGITS else "a decimal number"
    if abs(number) < 10**MAX_SHOWN_DIGITS:
        return str(number)
    return f"a number of {len(str(abs(number)))} digits"


def body_shape(text: str, problem: ValueError | None = None) -> str:
    """How a list answer that does not decode looks: empty, HTML, other text, or JSON that is
    refused (`problem`, an `answer.UnusableJson`: nested too deeply, endless digits...)."""
    if isinstance(problem, UnusableJson):
        return str(problem)
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
    reached: bool = False  # `count` tasks are held, after a full page: one more page to read

    def add(self, identities: list[str], tasks: list[Any], count: int | None) -> bool:
        """Take one page (its items' identities and tasks, its count); True when complete.

        A full page (as many items as asked for) is never the last: whatever `count` says,
        the next page is read too, and must be empty (a server whose `count` is the number of
        items on the page would otherwise end the listing after its first page).
        """
        full = bool(identities) and len(identities) >= self.limit
        if self.page > 0 and self.count is not None and self.reached and not identities:
            if count is None or count <= len(self.seen):
                return True  # the empty page after a full one: the end
            raise self._refuse(
                f"its pages ended after {len(self.seen)} tasks, but its count says {shown(count)}"
            )
        if self.page == 0:
            self.count = count
        elif count != self.count:
            raise self._refuse(
                f"its count changed between pages ({shown(self.count or 0)} -> "
                f"{'none' if count is None else shown(count)}): tasks were created or removed "
                "while it was read, or its count is not the number of all tasks; run again"
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
                    f"its pages hold {total} different tasks, more than its count "
                    f"{shown(self.count)}"
                )
            if total == self.count and not full:
                return True
            if not identities:
                raise self._refuse(
                    f"its pages ended after {total} tasks, but its count says {shown(self.count)}"
                )
            self.reached = total == self.count
        elif not identities:
            return True
        if not new:
            raise self._refuse(
                f"page {self.page} brought no task that earlier pages did not (a repeated "
                "page, or a server that ignores `page`)"
            )
        if not full:
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
