"""normalize: friendly forms to API values (exact), back to words, and credential masking."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.config.normalize import (
    CPS_VALUES,
    cps_meaning,
    mask_url,
    normalize,
    parse_rate,
    parse_time_of_day,
    time_meaning,
    url_has_secret,
)

N = range(1, 100)


@pytest.mark.parametrize("n", N)
def test_n_per_second_is_exactly_the_two_decimal_literal(n: int) -> None:
    # float("1.14") is the double the API expects; 1 + 14 / 100 would be 1.1400000000000001.
    value = parse_rate(f"{n}/s")
    assert value == float(f"1.{n:02d}")
    assert repr(value) == repr(float(f"1.{n:02d}"))


@pytest.mark.parametrize("n", N)
def test_one_every_n_seconds_is_exactly_the_two_decimal_literal(n: int) -> None:
    assert parse_rate(f"1/{n}s") == float(f"0.{100 - n:02d}")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3/s", 1.03),
        ("14/s", 1.14),
        ("99/s", 1.99),
        ("1/60s", 0.4),
        ("1/99s", 0.01),
        ("1/3s", 0.97),
        (" 3 / s ", 1.03),
        ("1/ 60 s", 0.4),
    ],
)
def test_rates(text: str, value: float) -> None:
    assert parse_rate(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "0/s",
        "100/s",
        "2/60s",
        "1/0s",
        "1/100s",
        "03/s",
        "1/05s",
        "-3/s",
        "3",
        "3/m",
        "3/sec",
        "3 per s",
        "",
        "3/s\n",
        "1/60s\n",
        "\n3/s",
        "1.5/s",
    ],
)
def test_not_a_rate(text: str) -> None:
    assert parse_rate(text) is None


def test_the_encodable_values() -> None:
    assert len(CPS_VALUES) == 198
    assert min(CPS_VALUES) == 0.01
    assert max(CPS_VALUES) == 1.99
    assert 1.0 not in CPS_VALUES
    assert 1.1400000000000001 not in CPS_VALUES


@pytest.mark.parametrize("n", N)
def test_cps_meaning_round_trips(n: int) -> None:
    per_second = cps_meaning(parse_rate(f"{n}/s"))
    assert per_second == ("1 call/s" if n == 1 else f"{n} calls/s")
    assert cps_meaning(parse_rate(f"1/{n}s")) == f"1 call / {n} s"


@pytest.mark.parametrize("cps", [1.0, 1.005, 3, 0, 2.0, True, "1.03", None, -0.4])
def test_cps_meaning_of_nonsense_is_none(cps: Any) -> None:
    assert cps_meaning(cps) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:00", 0),
        ("09:00", 32400),
        ("09:00:30", 32430),
        ("20:00:30", 72030),
        ("23:59", 86340),
        ("23:59:59", 86399),
    ],
)
def test_time_of_day(text: str, seconds: int) -> None:
    assert parse_time_of_day(text) == seconds
    assert parse_time_of_day(time_meaning(seconds) or "") == seconds


@pytest.mark.parametrize(
    "text",
    ["24:00", "9:00", "09:60", "09:00:60", "1:30", "09:00\n", "", "09:00:00:00", " 09:00", "0900"],
)
def test_not_a_time_of_day(text: str) -> None:
    assert parse_time_of_day(text) is None


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "00:00"), (32400, "09:00"), (32430, "09:00:30"), (86399, "23:59:59")],
)
def test_time_meaning(seconds: int, shown: str) -> None:
    assert time_meaning(seconds) == shown


@pytest.mark.parametrize("seconds", [86400, -1, True, 3.0, "09:00", None])
def test_time_meaning_of_nonsense_is_none(seconds: Any) -> None:
    assert time_meaning(seconds) is None


def test_normalize_replaces_friendly_forms_in_a_new_dict() -> None:
    data = {
        "cps": "14/s",
        "name": "x",
        "additionalOptions": {"allowCallTimeFrom": "09:00", "allowCallTimeTo": 72000, "x": 1},
    }

    out, problems = normalize(data)

    assert problems == []
    assert out == {
        "cps": 1.14,
        "name": "x",
        "additionalOptions": {"allowCallTimeFrom": 32400, "allowCallTimeTo": 72000, "x": 1},
    }
    assert data["cps"] == "14/s"
    assert data["additionalOptions"]["allowCallTimeFrom"] == "09:00"


def test_normalize_reports_unparsable_friendly_texts_by_path() -> None:
    data = {
        "cps": "100/s",
        "additionalOptions": {"allowCallTimeFrom": "1:30", "allowCallTimeTo": "25:00"},
    }

    out, problems = normalize(data)

    assert [path for path, _ in problems] == [
        ("cps",),
        ("additionalOptions", "allowCallTimeFrom"),
        ("additionalOptions", "allowCallTimeTo"),
    ]
    assert "cps '100/s' is not an encodable rate" in problems[0][1]
    assert "'1:30' is not a time of day" in problems[1][1]
    assert out == data  # left as written for the model to see


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"cps": 1.03},
        {"cps": True},
        {"cps": None},
        {"additionalOptions": "09:00"},
        {"additionalOptions": [{"allowCallTimeFrom": "09:00"}]},
        {"allowCallTimeFrom": "09:00"},
    ],
)
def test_normalize_leaves_other_shapes_to_the_model(data: dict[str, Any]) -> None:
    assert normalize(data) == (data, [])


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("https://u:p@host/x", True),
        ("https://host/x?token=abc", True),
        ("https://host/x?page=2&api_key=1", True),
        ("https://host/x?X-Amz-Signature=abc", True),
        ("https://host/x?password=", True),
        ("https://user@host/x", True),
        ("https://host/x", False),
        ("https://host/x?page=2", False),
        ("https://host/token/x", False),
        ("not a url", False),
        ("https://[broken/x", False),
        ("https://host/x?a=1;token=SECRET", True),  # `;` separates parameters too
        ("https://host/x#access_token=SECRET", True),  # OAuth puts tokens in the fragment
        ("https://host/x?acc%65ss_token=abc", True),  # names are percent-decoded to match
        ("https://host/x?q=a%26token%3Dabc", False),  # one parameter q, written encoded
    ],
)
def test_url_has_secret(url: str, secret: bool) -> None:
    assert url_has_secret(url) is secret


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://u:p@host/x", "https://***@host/x"),
        ("https://host/x?token=abc&page=2", "https://host/x?token=***&page=2"),
        ("https://host/x", "https://host/x"),
        ("https://[broken/x", "https://[broken/x"),
        # shown as written: never percent-decoded (which once made `a%26token%3Dabc` read
        # `a&token=abc`), and masked after `;` and in the fragment too
        ("https://host/x?q=a%26token%3Dabc", "https://host/x?q=a%26token%3Dabc"),
        ("https://host/x?q=a+b&sig=x%2By", "https://host/x?q=a+b&sig=***"),
        ("https://host/x?a=1;token=SECRET&b", "https://host/x?a=1;token=***&b"),
        ("https://host/x#access_token=SECRET&state=1", "https://host/x#access_token=***&state=1"),
        ("https://u:p@host/p@x?y=@", "https://***@host/p@x?y=@"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
