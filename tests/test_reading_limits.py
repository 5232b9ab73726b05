"""A hostile campaign file must not cost minutes or megabytes of output (spec 9.1, 9.6).

Merging with `_defaults.yaml` is linear in the size of the files (it once scanned every
location table once per key: a 16k-key file took a minute); a file prints at most 100
problems, then one that counts the rest, in every format; the slow YAML 1.2 fallback reader
only reads files up to 256 KiB. Timings are in `benchmarks/hostile.py`, not here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import VALID_CAMPAIGN, WriteFiles, edit

from reconciler.cli.main import cli, main
from reconciler.config import yamlio
from reconciler.config.merge import merge

A = "campaigns/a.yaml"


class _Counting(dict[Any, Any]):
    """A location table that counts every entry a caller walks over or looks up."""

    walked = 0

    def items(self) -> Any:
        _Counting.walked += len(self)
        return super().items()

    def __iter__(self) -> Any:
        _Counting.walked += len(self)
        return super().__iter__()

    def __contains__(self, key: object) -> bool:
        _Counting.walked += 1
        return super().__contains__(key)

    def __getitem__(self, key: Any) -> Any:
        _Counting.walked += 1
        return super().__getitem__(key)


def _merge_work(extra_keys: int) -> int:
    body = "".join(f"k{i:06d}: {{a: 1, b: [1, 2]}}\n" for i in range(extra_keys))
    defaults = yamlio.load_bytes(b"cidType: default\nk000000: 1\n", "campaigns/_defaults.yaml")
    doc = yamlio.load_bytes((VALID_CAMPAIGN + body).encode(), A)
    for loaded in (defaults, doc):
        loaded.keys, loaded.values = _Counting(loaded.keys), _Counting(loaded.values)
    _Counting.walked = 0
    merged = merge([defaults, doc])
    assert merged.data[f"k{extra_keys - 1:06d}"] == {"a": 1, "b": [1, 2]}
    assert merged.at((f"k{extra_keys - 1:06d}", "b", 1)).line == 18 + extra_keys
    return _Counting.walked


def test_merging_with_defaults_is_linear_in_the_size_of_the_file() -> None:
    small, large = _merge_work(500), _merge_work(2000)

    # Linear: four times the keys, about four times the work (quadratic would be sixteen).
    assert large <= 5 * small, (small, large)


def test_a_value_replaced_by_a_nearer_file_forgets_the_locations_below_it() -> None:
    defaults = yamlio.load_bytes(b"busy: {redial: true, time: 60}\n", "campaigns/_defaults.yaml")
    doc = yamlio.load_bytes(b"busy: [1]\n", A)

    merged = merge([defaults, doc])

    assert merged.data == {"busy": [1]}
    assert ("busy", "redial") not in merged.keys and ("busy", "time") not in merged.values
    assert merged.values[("busy", 0)] == yamlio.Location(A, 1, 8)


def _unknown_keys(count: int) -> str:
    return VALID_CAMPAIGN + "".join(f"x{i:04d}: 1\n" for i in range(count))


def _validate(*args: str) -> Any:
    return CliRunner().invoke(cli, ["validate", *args], catch_exceptions=False)


MORE = (
    "... and 50 more problem(s) in this file; only the first 100 are shown: fix these and run again"
)


def test_a_file_prints_at_most_100_problems_then_counts_the_rest_in_every_format(
    write_campaigns: WriteFiles,
) -> None:
    write_campaigns({"a.yaml": _unknown_keys(150), "b.yaml": "name: [\n"})

    text, as_json, github = (
        _validate(),
        _validate("--format", "json"),
        _validate("--format", "github"),
    )

    assert text.exit_code == as_json.exit_code == github.exit_code == 1
    lines = text.stderr.splitlines()
    assert len(lines) == 100 + 1 + 1 + 1  # a.yaml's 100, its count, b.yaml's, the summary
    assert lines[99].startswith(f"{A}:118:1: error: x0099: unknown field x0099")
    assert lines[100] == f"{A}:119:1: error: {MORE}"
    assert lines[101].startswith("campaigns/b.yaml:1:8: error: invalid YAML")
    reported = json.loads(as_json.stdout)
    assert isinstance(reported, list) and len(reported) == 102
    assert reported[100] == {
        "file": A,
        "line": 119,
        "column": 1,
        "path": "(file)",
        "level": "error",
        "message": MORE,
    }
    assert github.stdout.splitlines()[100] == f"::error file={A},line=119,col=1::{MORE}"


def test_the_cap_counts_warnings_as_warnings(write_campaigns: WriteFiles) -> None:
    urls = ", ".join(f'"https://a.example/{i}?token=t"' for i in range(120))
    write_campaigns({"a.yaml": edit("cps: 1.03\n", f"cps: 1.03\nwebhookUrls: [{urls}]\n")})

    result = _validate("--format", "json")

    reported = json.loads(result.stdout)
    assert result.exit_code == 0
    assert len(reported) == 101
    assert reported[-1]["level"] == "warning"
    assert reported[-1]["message"].startswith("... and 20 more problem(s) in this file")


def test_plan_format_json_prints_the_problems_on_stdout(
    write_campaigns: WriteFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    write_campaigns({"a.yaml": _unknown_keys(2)})

    with pytest.raises(SystemExit) as exited:
        main(["plan", "--format", "json"])

    out, err = capsys.readouterr()
    assert exited.value.code == 1
    body = json.loads(out)
    assert body["format_version"] == 1
    assert [(p["line"], p["path"]) for p in body["problems"]] == [(19, "x0000"), (20, "x0001")]
    assert err.endswith("error: 2 problem(s) in the campaign files; nothing was changed\n")


def test_the_fallback_reader_only_reads_files_up_to_256_kib(write_campaigns: WriteFiles) -> None:
    # `{url: https://...}` is valid YAML 1.2 that libyaml refuses; the fallback reads it in a
    # small file. In a file over 256 KiB libyaml's error stands, with a note that says why.
    flow = "webhookUrls: [{url: https://a.example/b}]\n"
    padding = "#" + "x" * 1000 + "\n"
    small = edit("cps: 1.03\n", "cps: 1.03\n" + flow)
    large = small + padding * 300
    assert 256 * 1024 < len(large) < 1024 * 1024
    write_campaigns({"small.yaml": small, "large.yaml": edit("Spring", "Large", large)})

    result = _validate()

    assert result.exit_code == 1
    (line,) = [line for line in result.stderr.splitlines() if "large.yaml" in line]
    assert line.startswith("campaigns/large.yaml:8:")
    assert "invalid YAML" in line
    assert "this file is over 256 KiB, so only the fast YAML reader reads it" in line
    assert "small.yaml" not in result.stderr


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_a_huge_one_line_flow_mapping_is_refused_quickly_in_every_format(
    fmt: str, write_campaigns: WriteFiles, workdir: Path
) -> None:
    mapping = "{" + ", ".join(f"k{i}:1" for i in range(60_000)) + "}\n"
    assert len(mapping) > 256 * 1024
    write_campaigns({"a.yaml": mapping, "_defaults.yaml": "{cidType: default}\n"})

    result = _validate("--format", fmt)

    assert result.exit_code == 1
    assert "internal error" not in result.output
    assert len(result.output) < 2000
