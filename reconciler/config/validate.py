"""load -> merge -> normalize -> validate: every campaign, every problem, at the right line.

`load_config` never raises for bad input: problems are values. Only reading files happens here
(and the validation cache, see `cache.py`).

Speed on large repositories comes from two places, neither of which changes a result:
- a campaign whose bytes, defaults bytes, file name, calling policy and tool version are all
  unchanged since a clean validation is taken from the cache (problems are never cached: a
  file with any problem is validated again every time);
- the campaigns that are not in the cache are checked in worker processes when there are many.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.config.cache import ValidationCache, cache_key
from reconciler.config.campaign import Campaign, name_key
from reconciler.config.discovery import CampaignFile, Move, discover, display, load_moves
from reconciler.config.files import Unreadable, read_regular
from reconciler.config.policy import Policy
from reconciler.config.policy_file import load_policy
from reconciler.config.yamlio import MAX_FILE_BYTES, Document, load_bytes, load_file
from reconciler.errors import Level, Location, Problem

PARALLEL_MIN_FILES = 400  # below this, starting workers costs more than it saves
MAX_PROBLEMS_PER_FILE = 100  # a hostile file must not print megabytes


@dataclass
class Config:
    """The desired campaigns of one campaigns folder, with every problem found."""

    campaigns: dict[str, Campaign] = field(default_factory=dict)
    moves: list[Move] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]


def load_config(root: Path, cache: ValidationCache | None = None) -> Config:
    """Discover, load and validate every campaign below `root`."""
    layout = discover(root)
    policy, policy_problems = load_policy(layout.policy)
    config = Config(problems=layout.problems + policy_problems)
    defaults = _Defaults({path: _read(path) for path in layout.defaults})
    policy_key = policy.key()
    jobs: list[tuple[CampaignFile, bytes | None, str]] = []
    found: list[Campaign] = []
    for campaign_file in layout.campaigns:
        raw = _read(campaign_file.fs_path)
        chain = [defaults.raw.get(p) for p in campaign_file.defaults]
        key = cache_key(campaign_file, raw, chain, policy_key)
        hit = cache.get(key) if cache is not None and key else None
        if hit is not None:
            found.append(hit)
        else:
            jobs.append((campaign_file, raw, key))
    for key, campaign, problems in _check_all(jobs, defaults, policy):
        config.problems += problems
        if campaign is not None:
            found.append(campaign)
            if cache is not None and key and not problems:
                cache.put(key, campaign)
    config.problems += defaults.problems()  # also of a _defaults.yaml no campaign uses yet
    _unique_names(sorted(found, key=lambda c: c.key), config)
    if layout.moved is not None:
        moves, problems = load_moves(layout.moved, {c.key for c in layout.campaigns})
        config.moves, config.problems = moves, config.problems + problems
    config.problems = cap_per_file(sorted(dict.fromkeys(config.problems)))
    if cache is not None:
        cache.save(keep={key for _, _, key in jobs} | cache.used)
    return config


def cap_per_file(problems: list[Problem], limit: int = MAX_PROBLEMS_PER_FILE) -> list[Problem]:
    """Sorted `problems` with at most `limit` per file: the rest of a file become one problem
    (an error when any of them is) that counts them, in every output format."""
    shown: list[Problem] = []
    counts: Counter[str] = Counter()
    hidden: dict[str, list[Problem]] = {}
    for problem in problems:
        file = problem.location.file
        counts[file] += 1
        if counts[file] > limit:
            hidden.setdefault(file, []).append(problem)
        else:
            shown.append(problem)
    for rest in hidden.values():
        level: Level = "error" if any(p.level == "error" for p in rest) else "warning"
        message = (
            f"... and {len(rest)} more problem(s) in this file; only the first {limit} are "
            "shown: fix these and run again"
        )
        shown.append(Problem(rest[0].location, "(file)", message, level))
    return sorted(shown)


def _read(path: Path | str) -> bytes | None:
    """A regular file's bytes, or None when it is not read (the loader reports why)."""
    try:
        return read_regular(path, MAX_FILE_BYTES)
    except Unreadable:
        return None


def _unique_names(campaigns: list[Campaign], config: Config) -> None:
    """Names must be unique as the platform may compare them: by `name_key` (case, spaces
    and Unicode normal form ignored); each clash names both files."""
    names: dict[str, Campaign] = {}
    for campaign in campaigns:
        name = campaign.payload["name"]
        other = names.get(name_key(name))
        if other is None:
            names[name_key(name)] = campaign
            config.campaigns[campaign.key] = campaign
            continue
        config.campaigns.pop(other.key, None)
        for this, that in ((campaign, other), (other, campaign)):
            theirs = that.payload["name"]
            same = (
                f"name {theirs!r} is also used by {that.source}"
                if theirs == this.payload["name"]
                else f"name {this.payload['name']!r} is the same name as {theirs!r} in "
                f"{that.source} once case and spaces are ignored (the platform may not tell "
                "them apart)"
            )
            config.problems.append(
                Problem(
                    this.spots.get("name", Location(this.source)),
                    "name",
                    f"{same}; names must be unique "
                    "(they find an in-doubt create again on the platform)",
                )
            )


class _Defaults:
    """The `_defaults.yaml` files of one run: read once, each parsed at most once."""

    def __init__(self, raw: dict[Path, bytes | None]) -> None:
        self.raw = raw
        self.docs: dict[Path, Document] = {}

    def doc(self, path: Path) -> Document:
        if path not in self.docs:
            raw, file = self.raw.get(path), display(path)
            self.docs[path] = load_file(path, file) if raw is None else load_bytes(raw, file)
        return self.docs[path]

    def problems(self) -> list[Problem]:
        return [p for path in sorted(self.raw) for p in self.doc(path).problems]


Result = tuple[str, Campaign | None, list[Problem]]


def _check_all(
    jobs: list[tuple[CampaignFile, bytes | None, str]], defaults: _Defaults, policy: Policy
) -> Iterable[Result]:
    workers = min(os.cpu_count() or 1, 8)
    # fork is only safe while this process runs a single thread (no sandbox, no apply pool).
    if len(jobs) < PARALLEL_MIN_FILES or workers < 2 or threading.active_count() > 1:
        return [_check_one(job, defaults, policy) for job in jobs]
    import multiprocessing

    chunks = [jobs[i::workers] for i in range(workers)]
    # With fork, the initializer's arguments reach the workers without pickling.
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_worker_start, initargs=(defaults, policy)) as pool:
        parts = pool.map(_check_chunk, chunks)
    return [result for part in parts for result in part]


_worker_run: tuple[_Defaults, Policy] | None = None  # set in each worker process only


def _worker_start(defaults: _Defaults, policy: Policy) -> None:
    global _worker_run
    _worker_run = (defaults, policy)
    # The parent answers signals (the CLI's exit codes); a worker ends when the pool ends it.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def _check_chunk(jobs: list[tuple[CampaignFile, bytes | None, str]]) -> list[Result]:
    assert _worker_run is not None
    return [_check_one(job, *_worker_run) for job in jobs]


def _check_one(
    job: tuple[CampaignFile, bytes | None, str], defaults: _Defaults, policy: Policy
) -> Result:
    from reconciler.config.check import check_campaign

    campaign_file, raw, key = job
    chain = [defaults.doc(p) for p in campaign_file.defaults]
    if raw is None:
        doc = load_file(campaign_file.path, campaign_file.file)
    else:
        doc = load_bytes(raw, campaign_file.file)
    if doc.problems or any(d.problems for d in chain):
        return key, None, doc.problems  # a broken _defaults.yaml is reported once, by itself
    campaign, problems, _ = check_campaign(campaign_file, chain, doc, policy)
    return key, campaign, problems
