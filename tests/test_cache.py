"""The validation cache is keyed by content and can never hide a problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import VALID_CAMPAIGN, WriteFiles, edit

from reconciler.config.cache import ValidationCache
from reconciler.config.validate import load_config


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "campaigns/team").mkdir(parents=True)
    (tmp_path / "campaigns/a.yaml").write_text(VALID_CAMPAIGN)
    (tmp_path / "campaigns/team/_defaults.yaml").write_text("cps: 1.05\n")
    (tmp_path / "campaigns/team/b.yaml").write_text(
        edit("name: Spring promo", "name: B", VALID_CAMPAIGN).replace("cps: 1.03\n", "")
    )
    return tmp_path


def cached(folder: Path) -> ValidationCache:
    return ValidationCache(folder / "cache")


def test_second_run_is_served_from_the_cache_with_the_same_result(repo: Path) -> None:
    first = load_config(Path("campaigns"), cached(repo))
    cache = cached(repo)
    second = load_config(Path("campaigns"), cache)
    assert cache.used == set(cache.entries) and len(cache.entries) == 2
    assert second.campaigns == first.campaigns
    assert second.campaigns["team/b"].spots == first.campaigns["team/b"].spots
    assert second.campaigns["team/b"].payload["cps"] == 1.05


def test_an_edited_campaign_file_is_read_again(repo: Path) -> None:
    load_config(Path("campaigns"), cached(repo))
    (repo / "campaigns/a.yaml").write_text(edit("cps: 1.03", "cps: 1.07"))
    config = load_config(Path("campaigns"), cached(repo))
    assert config.campaigns["a"].payload["cps"] == 1.07


def test_an_edited_defaults_file_invalidates_the_campaigns_below_it(repo: Path) -> None:
    load_config(Path("campaigns"), cached(repo))
    (repo / "campaigns/team/_defaults.yaml").write_text("cps: 1.09\n")
    config = load_config(Path("campaigns"), cached(repo))
    assert config.campaigns["team/b"].payload["cps"] == 1.09


def test_a_problem_is_never_hidden_by_an_earlier_clean_result(repo: Path) -> None:
    load_config(Path("campaigns"), cached(repo))
    (repo / "campaigns/a.yaml").write_text(edit("cps: 1.03", "cps: 3"))
    config = load_config(Path("campaigns"), cached(repo))
    assert [(p.location.file, p.path) for p in config.errors] == [("campaigns/a.yaml", "cps")]
    # and it stays reported on every later run
    config = load_config(Path("campaigns"), cached(repo))
    assert [p.path for p in config.errors] == ["cps"]


def test_files_with_warnings_are_not_cached(repo: Path) -> None:
    text = VALID_CAMPAIGN + "webhookUrls:\n  - https://h.example/x?token=abc\n"
    (repo / "campaigns/a.yaml").write_text(text)
    cache = cached(repo)
    load_config(Path("campaigns"), cache)
    assert len(cache.entries) == 1  # only team/b
    config = load_config(Path("campaigns"), cached(repo))
    assert [p.level for p in config.problems] == ["warning"]


def test_a_broken_or_deleted_cache_is_an_empty_cache(repo: Path) -> None:
    load_config(Path("campaigns"), cached(repo))
    (repo / "cache/validate.json").write_text("{not json")
    assert cached(repo).entries == {}
    config = load_config(Path("campaigns"), cached(repo))
    assert sorted(config.campaigns) == ["a", "team/b"]
    assert json.loads((repo / "cache/validate.json").read_text())["entries"]


def test_a_renamed_file_is_not_served_under_its_old_name(repo: Path) -> None:
    load_config(Path("campaigns"), cached(repo))
    (repo / "campaigns/a.yaml").rename(repo / "campaigns/renamed.yaml")
    config = load_config(Path("campaigns"), cached(repo))
    assert config.campaigns["renamed"].source == "campaigns/renamed.yaml"


def test_the_cli_caches_outside_the_working_tree(repo: Path) -> None:
    from click.testing import CliRunner

    from reconciler.cli.main import cli

    before = sorted(p.relative_to(repo) for p in repo.rglob("*"))
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(repo) for p in repo.rglob("*")) == before


def test_worker_processes_give_the_same_campaigns_and_problems(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        text = edit("name: Spring promo", f"name: P{i}")
        (repo / f"campaigns/p{i}.yaml").write_text(
            text if i % 2 else edit("cps: 1.03", "cps: 3", text)
        )
    serial = load_config(Path("campaigns"))
    monkeypatch.setattr("reconciler.config.validate.PARALLEL_MIN_FILES", 1)
    parallel = load_config(Path("campaigns"))
    assert parallel.campaigns == serial.campaigns
    assert parallel.problems == serial.problems
    assert [p.location for p in parallel.errors] == [
        (f"campaigns/p{i}.yaml", 7, 6) for i in (0, 2, 4)
    ]


def test_a_result_cached_by_an_older_yaml_reader_is_never_used(
    write_campaigns: WriteFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bytes can read differently after a reader change (`{ ?time: 1 }` was `time`):
    the reader's version is part of every key."""
    from reconciler.config import cache as cache_module

    root = write_campaigns({"a.yaml": VALID_CAMPAIGN})
    folder = tmp_path / "c"
    load_config(root, ValidationCache(folder))
    assert ValidationCache(folder).entries

    monkeypatch.setattr(cache_module, "_SALT", cache_module._SALT.replace(b"reader 2", b"reader 1"))

    assert ValidationCache(folder).entries == {}
