"""Shared fixtures: a clean environment for every test, a working folder, campaign files.

`VALID_CAMPAIGN` is a complete, valid campaign file with no defaults. Its line numbers are
relied on by the location tables in the tests, so keep them stable:

     1 name              8 additionalOptions:        13   redialStrategyEn
     2 defaultExec       9   fullListMethod          14   busy
     3 defaultExecData  10   fullListTime            15   noAnswer
     4 secondExec       11   recordCall              16   answerMash
     5 cidType          12 redialStrategyOptions:    17   congestion
     6 startType                                     18   answerNoList
     7 cps
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler.sandbox import Sandbox, SandboxOptions

# The PostgreSQL cluster and `state_backend` (one registration: one cluster per session).
pytest_plugins = ["pg_fixtures"]

ENV_PREFIXES = ("TWIN24_", "GITHUB_", "RECONCILE_")
ENV_NAMES = ("NO_COLOR",)

VALID_CAMPAIGN = """\
name: Spring promo
defaultExec: robot
defaultExecData: 3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70
secondExec: end
cidType: default
startType: manual
cps: 1.03
additionalOptions:
  fullListMethod: reject
  fullListTime: 30
  recordCall: false
redialStrategyOptions:
  redialStrategyEn: false
  busy: {redial: false}
  noAnswer: {redial: false}
  answerMash: {redial: false}
  congestion: {redial: false}
  answerNoList: {redial: false}
"""

# A `campaigns/_policy.yaml` nothing an accepted value breaches: for tests of reading and
# normalising values (a rate of 99/s, a window of 00:00-23:59:59), not of the calling policy.
LENIENT_POLICY = """\
callingHours: {from: "00:00", to: "23:59:59"}
maxRate: "99/s"
maxCallsPerDay: 1000
"""


def edit(old: str, new: str, text: str = VALID_CAMPAIGN) -> str:
    """`text` with the one occurrence of `old` replaced by `new` (fails loudly if absent)."""
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's or the CI runner's TWIN24_*, GITHUB_*, RECONCILE_*; each
    test has its own validation cache (never the user's)."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES) or name in ENV_NAMES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("RECONCILE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder, made the current directory for the test."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


WriteFiles = Callable[[Mapping[str, str | bytes]], Path]


@pytest.fixture
def write_campaigns(workdir: Path) -> WriteFiles:
    """Write `{relative path below campaigns/: text or bytes}`; returns the campaigns folder."""

    def write(files: Mapping[str, str | bytes]) -> Path:
        root = workdir / "campaigns"
        root.mkdir(exist_ok=True)
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        return root

    return write


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder below `folder` with its size and mtime (to prove nothing changed)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        stat = path.stat()
        out[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return out


PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
StartSandbox = Callable[..., Sandbox]


@pytest.fixture
def sandboxes(monkeypatch: pytest.MonkeyPatch) -> Iterator[StartSandbox]:
    """Start the project's sandbox on loopback: `sandboxes(clock=None, **SandboxOptions)`
    (port 0 and seed 1 unless given). The proxy variables are cleared, so every request of the
    test stays on loopback; every sandbox started is stopped after the test."""
    for name in PROXIES:
        monkeypatch.delenv(name, raising=False)
    started: list[Sandbox] = []

    def start(clock: Any = None, **options: Any) -> Sandbox:
        box = Sandbox(SandboxOptions(**{"port": 0, "seed": 1, **options}), clock=clock)
        box.start()
        started.append(box)
        return box

    yield start
    for box in started:
        box.stop()
