"""The sandbox's task store and list query: tasks in memory, optionally kept in a JSON file.

One lock guards the store. Task dicts are never changed once handed out (a status change
replaces the dict), so readers may serialise them after the lock is released. With a data
file, every change rewrites the file atomically (temporary file + `os.replace`); each task's
JSON text is cached so a rewrite joins strings instead of re-encoding every task.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.errors import ReconcileError

STATUSES = ("BLANK", "READY", "PROCESS", "PAUSED", "HALTED")
SORT_FIELDS = frozenset({"id", "name", "status", "createdAt", "updatedAt", "startMoment", "cps"})
DEFAULT_LIMIT = 100  # the API page does not say; 100 keeps check-remote's paging honest
MAX_LIMIT = 1000
DATA_VERSION = 1

Task = dict[str, Any]
Clock = Callable[[], datetime]


class QueryError(ValueError):
    """A list query the API answers with 400; `str()` says which parameter and why."""


class TransitionError(ValueError):
    """A status change the task's current status does not allow (answered with 400)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_ms(moment: datetime) -> str:
    """`2030-06-02T10:00:00.123Z`: ISO-8601 UTC with milliseconds, as the API writes times."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str, what: str) -> datetime:
    """An ISO-8601 time; naive means UTC. Raises QueryError naming `what`."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(
            f"{what}: {text!r} is not an ISO-8601 time such as 2030-06-02T10:00:00Z "
            "(URL-encode a '+' offset as %2B)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ListQuery:
    """The parameters of `GET /telephony/autoCall`, checked."""

    offset: int = 0
    limit: int = DEFAULT_LIMIT
    keyword: str | None = None
    statuses: frozenset[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: str = "createdAt"
    descending: bool = False

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ListQuery:
        """From query parameters (one value each); raises QueryError for what the API refuses."""
        if "page" in params and "offset" in params:
            raise QueryError("page and offset: give one or the other, not both")
        limit = _int(params, "limit", DEFAULT_LIMIT)
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit: must be 1..{MAX_LIMIT}, not {limit}")
        page = _int(params, "page", 0) if "page" in params else None
        offset = page * limit if page is not None else _int(params, "offset", 0)
        statuses = None
        if params.get("status"):
            statuses = frozenset(params["status"].split(","))
            unknown = sorted(statuses - set(STATUSES))
            if unknown:
                raise QueryError(
                    f"status: unknown {', '.join(unknown)}; expected a comma list of "
                    f"{', '.join(STATUSES)}"
                )
        sort = params.get("sort") or "createdAt"
        descending = sort.startswith("-")
        sort = sort.removeprefix("-")
        if sort not in SORT_FIELDS:
            raise QueryError(
                f"sort: unknown field {sort!r}; expected one of "
                f"{', '.join(sorted(SORT_FIELDS))}, optionally with '-'"
            )
        return cls(
            offset=offset,
            limit=limit,
            keyword=params.get("keyword") or None,
            statuses=statuses,
            since=parse_time(params["from"], "from") if params.get("from") else None,
            until=parse_time(params["to"], "to") if params.get("to") else None,
            sort=sort,
            descending=descending,
        )


def _int(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise QueryError(f"{name}: must be a whole number >= 0, not {text!r}")
    return int(text)


def _sort_key(field: str) -> Callable[[Task], tuple[int, Any]]:
    # Missing values sort last; numbers and texts never meet within one field.
    def key(task: Task) -> tuple[int, Any]:
        value = task.get(field)
        return (1, "") if value is None else (0, value)

    return key


class TaskStore:
    """Tasks by id, in creation order; thread-safe; persisted when `data_file` is given."""

    def __init__(self, data_file: Path | None = None, clock: Clock = utc_now) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._data_file = data_file
        self._tasks: dict[str, Task] = {}
        self._created: dict[str, datetime] = {}
        self._json: dict[str, str] = {}
        if data_file is not None and data_file.exists():
            self._load(data_file)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tasks)

    def create(self, body: Mapping[str, Any]) -> Task:
        """Store a new BLANK task made from a valid create body; return it."""
        now = self._clock().astimezone(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as precise as the text
        stamp = iso_ms(now)
        identity = str(uuid.uuid4())
        task: Task = {
            "id": identity,
            "name": body["name"],
            "status": "BLANK",
            "createdAt": stamp,
            "updatedAt": stamp,
        }
        task.update((k, v) for k, v in body.items() if k not in task)
        with self._lock:
            self._tasks[identity] = task
            self._created[identity] = now
            try:
                self._changed(identity)
            except OSError:
                del self._tasks[identity], self._created[identity]
                self._json.pop(identity, None)
                raise
        return task

    def get(self, identity: str) -> Task | None:
        with self._lock:
            return self._tasks.get(identity)

    def set_status(self, identity: str, status: str) -> Task | None:
        """Move a task to `status`; None when unknown. HALTED is final (TransitionError)."""
        with self._lock:
            task = self._tasks.get(identity)
            if task is None:
                return None
            if task["status"] == "HALTED" and status != "HALTED":
                raise TransitionError(f"task {identity} is HALTED; a halted task cannot restart")
            old = task
            task = {**task, "status": status, "updatedAt": iso_ms(self._clock())}
            self._tasks[identity] = task
            try:
                self._changed(identity)
            except OSError:
                self._tasks[identity] = old
                self._changed(identity, save=False)
                raise
            return task

    def snapshot(self) -> dict[str, Task]:
        """A deep copy of every task by id (for tests and inspection)."""
        with self._lock:
            tasks = list(self._tasks.values())
        return {t["id"]: json.loads(json.dumps(t)) for t in tasks}

    def query(self, query: ListQuery) -> tuple[int, list[Task]]:
        """`(count of all matches, the page of them)` for a list query."""
        with self._lock:
            tasks = list(self._tasks.values())
            created = dict(self._created) if query.since or query.until else {}
        if query.keyword:
            needle = query.keyword.casefold()
            tasks = [t for t in tasks if needle in str(t["name"]).casefold()]
        if query.statuses is not None:
            tasks = [t for t in tasks if t["status"] in query.statuses]
        if query.since is not None:
            since = query.since
            tasks = [t for t in tasks if created[t["id"]] >= since]
        if query.until is not None:
            until = query.until
            tasks = [t for t in tasks if created[t["id"]] <= until]
        if query.sort != "createdAt" or query.descending:
            tasks.sort(key=_sort_key(query.sort), reverse=query.descending)
        return len(tasks), tasks[query.offset : query.offset + query.limit]

    def _changed(self, identity: str, *, save: bool = True) -> None:
        # Called under the lock.
        if self._data_file is None:
            return
        self._json[identity] = json.dumps(self._tasks[identity], ensure_ascii=False)
        if save:
            self._save(self._data_file)

    def _save(self, path: Path) -> None:
        text = (
            f'{{"version": {DATA_VERSION}, "tasks": [\n'
            + ",\n".join(self._json.values())
            + "\n]}\n"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("version") != DATA_VERSION:
                raise ValueError(f"expected a version {DATA_VERSION} sandbox task file")
            for task in data["tasks"]:
                identity = task["id"]
                if not isinstance(identity, str) or task.get("status") not in STATUSES:
                    raise ValueError(f"task {identity!r} has no valid id or status")
                self._created[identity] = parse_time(task["createdAt"], "createdAt")
                self._tasks[identity] = task
                self._json[identity] = json.dumps(task, ensure_ascii=False)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReconcileError(
                f"sandbox data file {path} cannot be read ({exc}): move it away or pass "
                "another data file"
            ) from None
