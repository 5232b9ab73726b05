"""Whole-number fields through `validate`: `_policy.yaml`'s maxCallsPerDay and every integer
field of a campaign take an integer (YAML 1.2 core schema: `6`, `0x10`; a float with nothing
after the point, `6.0`, as JSON Schema's "integer" does) within their bounds, and a refusal
says the bound. `1e30` and `1e308` were accepted as a number of calls; `1e400` said "write .inf
if you mean infinity", and `.inf` was then refused: no message suggests a refused value.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from annotated_types import Ge, Le
from conftest import VALID_CAMPAIGN, WriteFiles
from inproc import run

from reconciler.config import models
from reconciler.config.scalars import INT_MAX

CALLS = f"expected a whole number of calls from 1 to {INT_MAX}, e.g. 6"


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("6", None),
        ("6.0", None),
        ("0x10", None),  # an integer of the YAML 1.2 core schema (spec 9.1)
        (str(INT_MAX), None),
        ("1e30", f"{CALLS}, got 1e+30"),
        ("1e308", f"{CALLS}, got 1e+308"),
        ("-1e30", f"{CALLS}, got -1e+30"),
        (str(INT_MAX + 1), f"{CALLS}, got {INT_MAX + 1}"),
        ("9" * 40, f"{CALLS}, got {'9' * 40}"),
        ("2.5", f"{CALLS}, got 2.5"),
        (".inf", f"{CALLS}, got inf"),
        ("0", f"{CALLS}, got 0"),
    ],
)
def test_max_calls_per_day_is_a_whole_number_within_its_bounds(
    write_campaigns: WriteFiles, written: str, problem: str | None
) -> None:
    write_campaigns({"a.yaml": VALID_CAMPAIGN, "_policy.yaml": f"maxCallsPerDay: {written}\n"})
    result = run("validate")
    if problem is None:
        assert (result.code, result.stdout, result.stderr) == (0, "1 campaign(s) valid.\n", "")
    else:
        assert (result.code, result.stdout) == (1, "")
        assert result.stderr.splitlines() == [
            f"campaigns/_policy.yaml:1:17: error: maxCallsPerDay: {problem}",
            "error: 1 problem(s) in 1 file(s).",
        ]


def test_a_number_too_large_to_read_suggests_nothing_that_is_refused(
    write_campaigns: WriteFiles,
) -> None:
    write_campaigns({"a.yaml": VALID_CAMPAIGN, "_policy.yaml": "maxCallsPerDay: 1e400\n"})
    result = run("validate")
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        "campaigns/_policy.yaml:1:17: error: the number 1e400 is too large to read (the "
        "largest is about 1.8e308); quote it if it is text",
        "error: 1 problem(s) in 1 file(s).",
    ]


@pytest.mark.parametrize(
    "written", ["1.9999999999999999", "5.0000000000000001", "2147483647.0000001"]
)
@pytest.mark.parametrize("where", ["policy", "campaign"])
def test_a_number_that_only_rounds_to_a_whole_one_is_refused(
    write_campaigns: WriteFiles, written: str, where: str
) -> None:
    """`count: 1.9999999999999999` validated and was planned as 2 (the float is 2.0)."""
    if where == "policy":
        files = {"a.yaml": VALID_CAMPAIGN, "_policy.yaml": f"maxCallsPerDay: {written}\n"}
        at = "campaigns/_policy.yaml:1:17"
    else:  # fullListTime: line 10, its value at column 17
        files = {"a.yaml": VALID_CAMPAIGN.replace("fullListTime: 30", f"fullListTime: {written}")}
        at = "campaigns/a.yaml:10:17"
    write_campaigns(files)
    result = run("validate")
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr.splitlines()[0] == (
        f"{at}: error: the number {written} is read as {round(float(written))}: a float holds "
        "no more than about 16 digits; write the number you mean"
    )


@pytest.mark.parametrize(
    ("written", "read"), [("1.0499999999999999999", "1.05"), ("1.0199999999999999999", "1.02")]
)
def test_a_rate_that_only_rounds_to_an_allowed_one_is_refused(
    write_campaigns: WriteFiles, written: str, read: str
) -> None:
    """`cps: 1.0499999999999999999` validated as 1.05 (5 calls per second)."""
    write_campaigns({"a.yaml": VALID_CAMPAIGN.replace("cps: 1.03", f"cps: {written}")})
    result = run("validate")
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr.splitlines()[0] == (
        f"campaigns/a.yaml:7:6: error: the number {written} is read as {read}: a float holds "
        "no more than about 16 digits; write the number you mean"
    )


# A campaign with a place for every integer field of the models.
BASE: dict[str, Any] = {
    "name": "Spring promo",
    "defaultExec": "robot",
    "defaultExecData": "3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70",
    "secondExec": "end",
    "cidType": "default",
    "startType": "manual",
    "cps": 1.03,
    "webhookUrls": [{"url": "https://hooks.example.com/b", "delay": 5}],
    "additionalOptions": {"fullListMethod": "reject", "fullListTime": 30, "recordCall": False},
    "redialStrategyOptions": {
        "redialStrategyEn": False,
        **{
            rule: {"redial": False}
            for rule in ("busy", "noAnswer", "answerMash", "congestion", "answerNoList")
        },
        "candidateLimit": {"redial": False},
        "numberLimit": {"redial": False},
    },
}


def integer_fields(
    model: type[models.ApiModel] = models.CallTask, prefix: tuple[str | int, ...] = ()
) -> list[tuple[tuple[str | int, ...], int, int]]:
    """(path, least, most) of every integer field of the models, at any depth."""
    found = [(("webhookUrls", 0, "delay"), 0, INT_MAX)] if not prefix else []
    for name, info in model.model_fields.items():
        sub = models.submodels(model).get(name)
        if sub is not None:
            found += integer_fields(sub, (*prefix, name))
        elif info.annotation is int:
            least = next(m.ge for m in info.metadata if isinstance(m, Ge))
            most = next(m.le for m in info.metadata if isinstance(m, Le))
            found.append(((*prefix, name), int(least), int(most)))
    return found


FIELDS = integer_fields()


def shown(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def test_the_fields_are_every_integer_field() -> None:
    paths = {shown(p) for p, _, _ in FIELDS}
    assert {"lifetime", "additionalOptions.allowCallTimeFrom", "webhookUrls[0].delay"} <= paths
    assert "redialStrategyOptions.numberLimit.count" in paths and len(paths) == 18


@pytest.mark.parametrize(("path", "least", "most"), FIELDS, ids=[shown(p) for p, _, _ in FIELDS])
def test_an_integer_field_says_its_bound_and_suggests_nothing_refused(
    write_campaigns: WriteFiles, path: tuple[str | int, ...], least: int, most: int
) -> None:
    for written, message in (
        ("1e30", f"must be at most {most}, got 1e+30"),
        ("1e308", f"must be at most {most}, got 1e+308"),
        ("-1e30", f"must be at least {least}, got -1e+30"),
        (str(most + 1), f"must be at most {most}, got {most + 1}"),
        (".inf", "expected an integer, got inf"),
        ("1e400", "the number 1e400 is too large to read"),
    ):
        data = json.loads(json.dumps(BASE))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = "@VALUE@"
        text = json.dumps(data, indent=1).replace('"@VALUE@"', written)
        write_campaigns({"a.yaml": text})
        result = run("validate")
        assert result.code == 1, (path, written)
        lines = result.stderr.splitlines()
        assert any(
            line.startswith("campaigns/a.yaml:") and f": error: {message}" in line
            if written == "1e400"
            else f": error: {shown(path)}: {message}" in line
            for line in lines
        ), (path, written, lines)
        assert ".inf" not in result.stderr
