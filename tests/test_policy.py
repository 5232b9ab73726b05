"""The calling policy (spec 9.5): one table row per check, `_policy.yaml`, the cache.

Each row of `CHECKS` is a campaign (the `BASE` file with some lines changed, and optionally a
`_policy.yaml` or a `_defaults.yaml`) and every breach it must produce, exactly:
`(file, line, path, level, message)`. `BASE` itself breaches nothing under the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import VALID_CAMPAIGN, WriteFiles, edit

from reconciler.config import policy
from reconciler.config.cache import ValidationCache
from reconciler.config.validate import Config, load_config
from reconciler.errors import Problem

A = "campaigns/a.yaml"
HOURS = "the calling policy's hours 08:00-22:00"
SECONDS = 'a number counts seconds since midnight, write "HH:MM"'

# Line numbers are relied on by the table below.
BASE = """\
name: Evening offer
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
  useTr: true
  allowCallTimeFrom: "09:00"
  allowCallTimeTo: "20:00"
redialStrategyOptions:
  redialStrategyEn: true
  busy: {redial: false}
  noAnswer: {redial: false}
  answerMash: {redial: false}
  congestion: {redial: false}
  answerNoList: {redial: false}
"""
#   7 cps   12 useTr   13 allowCallTimeFrom   14 allowCallTimeTo   16 redialStrategyEn
#  17 busy  18 noAnswer  19 answerMash  20 congestion  21 answerNoList


def base(*changes: tuple[str, str]) -> str:
    text = BASE
    for old, new in changes:
        text = edit(old, new, text)
    return text


def window(start: str, end: str) -> str:
    return base(
        ('allowCallTimeFrom: "09:00"', f"allowCallTimeFrom: {start}"),
        ('allowCallTimeTo: "20:00"', f"allowCallTimeTo: {end}"),
    )


def redials(**rules: str) -> str:
    return base(
        *((f"  {name}: {{redial: false}}", f"  {name}: {rule}") for name, rule in rules.items())
    )


@dataclass(frozen=True)
class Breach:
    file: str
    line: int
    path: str
    level: str
    message: str


@dataclass(frozen=True)
class Row:
    id: str
    files: dict[str, str]
    breaches: tuple[Breach, ...]


def row(id: str, files: dict[str, str] | str, *breaches: Breach) -> Row:
    return Row(id, {"a.yaml": files} if isinstance(files, str) else files, breaches)


def warn(line: int, path: str, message: str, file: str = A) -> Breach:
    return Breach(file, line, path, "warning", message)


FROM, TO = "additionalOptions.allowCallTimeFrom", "additionalOptions.allowCallTimeTo"
NIGHT = (
    "calls may start at 21:00 and go on until 00:09, callee's local time, past midnight and "
    f"outside {HOURS}; 540 is 00:09: {SECONDS}"
)
SEVEN = (
    "one number may be called up to 7 times in 24 hours (the first call, then redials: 3 when "
    "busy, 3 when not answered), more than the calling policy's maxCallsPerDay 6"
)
EVENING_DEFAULTS = """\
additionalOptions:
  useTr: true
  allowCallTimeFrom: "21:00"
  allowCallTimeTo: 540
"""

CHECKS = [
    row("clean", BASE),
    row("the-defaults-limits-themselves", window('"08:00"', '"22:00"')),
    # --- the calling window -------------------------------------------------------------
    row(
        "starts-before-the-hours",
        window('"07:30"', '"20:00"'),
        warn(13, FROM, f"calls may start at 07:30, callee's local time, before {HOURS}"),
    ),
    row(
        "starts-before-the-hours-written-as-seconds",
        window("27000", '"20:00"'),
        warn(
            13,
            FROM,
            f"calls may start at 07:30, callee's local time, before {HOURS}; 27000 is 07:30: "
            + SECONDS,
        ),
    ),
    row(
        "ends-after-the-hours",
        window('"09:00"', '"22:30"'),
        warn(14, TO, f"calls may go on until 22:30, callee's local time, after {HOURS}"),
    ),
    row("wraps-midnight", window('"21:00"', "540"), warn(14, TO, NIGHT)),
    row(
        "shorter-than-30-minutes",
        window('"09:00"', '"09:20"'),
        warn(
            14,
            TO,
            "calls may only be made from 09:00 to 09:20, callee's local time: 20 minutes a day, "
            "less than 30",
        ),
    ),
    row("exactly-30-minutes", window('"09:00"', '"09:30"')),
    row(
        "minutes-written-as-seconds",
        window("480", "540"),
        warn(
            13,
            FROM,
            f"calls may start at 00:08, callee's local time, before {HOURS}; 480 is 00:08: "
            + SECONDS,
        ),
        warn(
            14,
            TO,
            "calls may only be made from 00:08 to 00:09, callee's local time: 1 minute a day, "
            f"less than 30; 480 is 00:08 and 540 is 00:09: {SECONDS}",
        ),
    ),
    row(
        "set-by-a-defaults-file",
        {
            "_defaults.yaml": EVENING_DEFAULTS,
            "a.yaml": base(
                ("  useTr: true\n", ""),
                ('  allowCallTimeFrom: "09:00"\n', ""),
                ('  allowCallTimeTo: "20:00"\n', ""),
            ),
        },
        warn(4, TO, NIGHT, file="campaigns/_defaults.yaml"),
    ),
    # --- useTr ---------------------------------------------------------------------------
    row(
        "use-tr-false",
        base(("useTr: true", "useTr: false")),
        warn(
            12,
            "additionalOptions.useTr",
            "useTr is false: the calling window is not the callee's local time, so people in "
            "other time zones may be called at night; set useTr: true",
        ),
    ),
    row(
        "use-tr-false-and-no-window",
        base(
            ("useTr: true", "useTr: false"),
            ('  allowCallTimeFrom: "09:00"\n', ""),
            ('  allowCallTimeTo: "20:00"\n', ""),
        ),
        warn(
            12,
            "additionalOptions.useTr",
            "useTr is false: calls are not held to the callee's local time, so people in other "
            "time zones may be called at night; set useTr: true with a calling window",
        ),
    ),
    row(
        "use-tr-not-set-with-a-window-outside-the-hours",
        base(("  useTr: true\n", ""), ('"20:00"', '"23:00"')),
        warn(
            8,  # no useTr line: the additionalOptions key
            "additionalOptions.useTr",
            "useTr is not set: the calling window is not the callee's local time, so people in "
            "other time zones may be called at night; set useTr: true",
        ),
        warn(
            13,
            TO,
            "calls may go on until 23:00, company's time zone (useTr off), after " + HOURS,
        ),
    ),
    row("use-tr-and-window-not-set", VALID_CAMPAIGN),
    # --- the rate ------------------------------------------------------------------------
    row("rate-at-the-limit", base(("cps: 1.03", 'cps: "10/s"'))),
    row(
        "rate-above-as-text",
        base(("cps: 1.03", 'cps: "11/s"')),
        warn(
            7,
            "cps",
            "11 new calls start every second, faster than the calling policy's maxRate 10/s",
        ),
    ),
    row(
        "rate-above-as-a-number",
        base(("cps: 1.03", "cps: 1.5")),
        warn(
            7,
            "cps",
            "cps 1.5 means 50 new calls every second (the API reads 1 + N/100), faster than the "
            'calling policy\'s maxRate 10/s; write the rate as text, e.g. cps: "3/s"',
        ),
    ),
    # Below 1 the encoding means one call every N seconds: slow, however large N looks.
    row("slow-rates-are-slow", base(("cps: 1.03", "cps: 0.01"))),
    row("one-call-a-second-below-one", base(("cps: 1.03", "cps: 0.99"))),
    row(
        "slow-rate-above-a-slow-policy",
        {"_policy.yaml": 'maxRate: "1/60s"\n', "a.yaml": base(("cps: 1.03", "cps: 0.9"))},
        warn(
            7,
            "cps",
            "a new call starts every 10 seconds, faster than the calling policy's maxRate 1/60s",
        ),
    ),
    # --- calls per day ----------------------------------------------------------------
    row(
        "redials-above-the-limit",
        redials(
            busy="{redial: true, time: 600, count: 3}",
            noAnswer="{redial: true, time: 3600, count: 3}",
        ),
        warn(17, "redialStrategyOptions.busy.count", SEVEN),  # a tie: the first rule
    ),
    row(
        "redials-at-the-limit",
        redials(
            busy="{redial: true, time: 600, count: 2}",
            noAnswer="{redial: true, time: 3600, count: 2}",
            answerNoList="{redial: true, time: 60, count: 1}",
        ),
    ),
    row(
        "congestion-never-rings",
        redials(
            busy="{redial: true, time: 600, count: 2}",
            congestion="{redial: true, time: 60, count: 50}",
        ),
    ),
    row(
        "redials-switched-off",
        base(("redialStrategyEn: true", "redialStrategyEn: false")).replace(
            "busy: {redial: false}", "busy: {redial: true, time: 60, count: 50}"
        ),
    ),
    row(
        "only-the-redials-that-fit-in-24-hours",
        redials(noAnswer="{redial: true, time: 21600, count: 10}"),  # 4 fit: 5 calls
    ),
    row(
        "some-fit-and-the-rest-is-above",
        redials(
            busy="{redial: true, time: 600, count: 2}",
            noAnswer="{redial: true, time: 21600, count: 10}",
        ),
        warn(
            18,
            "redialStrategyOptions.noAnswer.count",
            "one number may be called up to 7 times in 24 hours (the first call, then redials: 2 "
            "when busy, 4 of 10 when not answered), more than the calling policy's "
            "maxCallsPerDay 6",
        ),
    ),
    row(
        "exactly-24-hours-fits",
        redials(answerMash="{redial: true, time: 14400, count: 6}"),
        warn(
            19,
            "redialStrategyOptions.answerMash.count",
            "one number may be called up to 7 times in 24 hours (the first call, then redials: 6 "
            "after an answering machine), more than the calling policy's maxCallsPerDay 6",
        ),
    ),
    # --- the policy file sets thresholds and level ------------------------------------
    row(
        "stricter-hours-and-calls",
        {
            "_policy.yaml": 'callingHours: {from: "10:00", to: "18:00"}\nmaxCallsPerDay: 2\n',
            "a.yaml": redials(busy="{redial: true, time: 600, count: 2}"),
        },
        warn(
            13,
            FROM,
            "calls may start at 09:00, callee's local time, before the calling "
            "policy's hours 10:00-18:00",
        ),
        warn(
            14,
            TO,
            "calls may go on until 20:00, callee's local time, after the calling "
            "policy's hours 10:00-18:00",
        ),
        warn(
            17,
            "redialStrategyOptions.busy.count",
            "one number may be called up to 3 times in "
            "24 hours (the first call, then redials: 2 when busy), more than the calling "
            "policy's maxCallsPerDay 2",
        ),
    ),
    row(
        "level-warning",
        {"_policy.yaml": "level: warning\n", "a.yaml": window('"21:00"', "540")},
        warn(14, TO, NIGHT),
    ),
    row(
        "level-error",
        {"_policy.yaml": "level: error\n", "a.yaml": window('"21:00"', "540")},
        Breach(A, 14, TO, "error", NIGHT),
    ),
]


@pytest.mark.parametrize("case", CHECKS, ids=lambda c: c.id)
def test_each_check_reports_at_the_line_that_set_the_value(
    case: Row, write_campaigns: WriteFiles
) -> None:
    config = load_config(write_campaigns(case.files))

    found = [
        Breach(p.location.file, p.location.line, p.path, p.level, p.message)
        for p in config.problems
    ]
    assert found == list(case.breaches)
    # A breach never drops the campaign (it is valid for the API), and the plan sees them.
    assert list(config.campaigns["a"].policy) == config.problems


def test_the_example_campaigns_keep_to_the_default_policy() -> None:
    examples = Path(__file__).resolve().parent.parent / "campaigns"
    assert not (examples / "_policy.yaml").exists()  # so these are the defaults

    config = load_config(examples)

    assert len(config.campaigns) == 5
    assert config.problems == []


# --- _policy.yaml --------------------------------------------------------------------------

NIGHT_FILE = window('"21:00"', "540")


def problems_of(
    config: Config, file: str = "campaigns/_policy.yaml"
) -> list[tuple[int, int, str, str]]:
    return [
        (p.location.line, p.location.col, p.path, p.message)
        for p in config.problems
        if p.location.file == file
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "maxRates: 5/s\n",
            (
                1,
                1,
                "maxRates",
                "unknown key maxRates (did you mean maxRate?); a policy file has "
                "only callingHours, maxRate, maxCallsPerDay, level",
            ),
        ),
        (
            'callingHours: {from: "08:00", until: "20:00"}\n',
            (
                1,
                31,
                "callingHours.until",
                "unknown key callingHours.until; a policy file has only from, to",
            ),
        ),
        (
            'callingHours:\n  from: "8:00"\n',
            (
                2,
                9,
                "callingHours.from",
                'expected a time of day as text "HH:MM", e.g. "08:00", got text \'8:00\'',
            ),
        ),
        (
            "callingHours:\n  to: 79200\n",
            (
                2,
                7,
                "callingHours.to",
                'expected a time of day as text "HH:MM", e.g. "08:00", got 79200',
            ),
        ),
        (
            'callingHours: {from: "22:00", to: "08:00"}\n',
            (
                1,
                35,
                "callingHours.to",
                "callingHours must end after they start within one day, got 22:00-08:00",
            ),
        ),
        (
            'callingHours: {to: "07:00"}\n',  # before the default start
            (
                1,
                20,
                "callingHours.to",
                "callingHours must end after they start within one day, got 08:00-07:00",
            ),
        ),
        (
            "callingHours: 08:00-22:00\n",
            (
                1,
                15,
                "callingHours",
                'expected a mapping {from: "08:00", to: "22:00"}, got text \'08:00-22:00\'',
            ),
        ),
        (
            "maxRate: 10\n",
            (
                1,
                10,
                "maxRate",
                'expected a rate text "N/s" (N calls per second) or "1/Ns", N '
                'from 1 to 99, e.g. "10/s", got 10',
            ),
        ),
        (
            "maxRate: 100/s\n",
            (
                1,
                10,
                "maxRate",
                'expected a rate text "N/s" (N calls per second) or "1/Ns", N '
                "from 1 to 99, e.g. \"10/s\", got text '100/s'",
            ),
        ),
        (
            "maxCallsPerDay: 0\n",
            (
                1,
                17,
                "maxCallsPerDay",
                "expected a whole number of calls from 1 to 2147483647, e.g. 6, got 0",
            ),
        ),
        (
            "maxCallsPerDay: true\n",
            (
                1,
                17,
                "maxCallsPerDay",
                "expected a whole number of calls from 1 to 2147483647, e.g. 6, got true",
            ),
        ),
        *(
            (
                f"maxCallsPerDay: {text}\n",
                (
                    1,
                    17,
                    "maxCallsPerDay",
                    f"expected a whole number of calls from 1 to 2147483647, e.g. 6, got {shown}",
                ),
            )
            for text, shown in ((".inf", "inf"), ("-.inf", "-inf"), (".nan", "nan"), ("2.5", "2.5"))
        ),
        ("level: loud\n", (1, 8, "level", "expected `error` or `warning`, got text 'loud'")),
        ("- level: error\n", (1, 1, "(file)", "file must hold one mapping (key: value lines)")),
        ("# nothing yet\n", (1, 1, "(file)", "file is empty: expected one mapping")),
    ],
)
def test_a_bad_policy_file_is_an_error_at_its_line(
    text: str, expected: tuple[int, int, str, str], write_campaigns: WriteFiles
) -> None:
    config = load_config(write_campaigns({"_policy.yaml": text, "a.yaml": BASE}))

    assert problems_of(config) == [expected]
    assert [p.level for p in config.problems] == ["error"]


def test_the_keys_that_parse_still_apply_when_another_is_bad(write_campaigns: WriteFiles) -> None:
    files = {
        "_policy.yaml": "maxRate: 2/s\nlevel: loud\n",
        "a.yaml": base(("cps: 1.03", "cps: 3/s")),
    }
    config = load_config(write_campaigns(files))

    assert [(p.location.file, p.path, p.level) for p in config.problems] == [
        ("campaigns/_policy.yaml", "level", "error"),
        (A, "cps", "warning"),  # 3/s is above 2/s, at the default level
    ]


def test_the_policy_yml_spelling_is_read_too(write_campaigns: WriteFiles) -> None:
    config = load_config(write_campaigns({"_policy.yml": "level: error\n", "a.yaml": NIGHT_FILE}))

    assert [(p.path, p.level) for p in config.problems] == [(TO, "error")]


def test_both_spellings_at_once_are_an_error(write_campaigns: WriteFiles) -> None:
    files = {"_policy.yaml": "level: error\n", "_policy.yml": "level: warning\n", "a.yaml": BASE}
    config = load_config(write_campaigns(files))

    assert [(p.location.file, p.message) for p in config.errors] == [
        ("campaigns/_policy.yml", "both _policy.yaml and _policy.yml; keep one")
    ]


def test_a_policy_file_in_a_sub_folder_is_an_error_not_a_rule(write_campaigns: WriteFiles) -> None:
    files = {"team/_policy.yaml": "level: error\n", "team/a.yaml": NIGHT_FILE}
    config = load_config(write_campaigns(files))

    assert [(p.location.file, p.level, p.message) for p in config.problems] == [
        (
            "campaigns/team/_policy.yaml",
            "error",
            "only campaigns/_policy.yaml is read as the calling policy; move this file there "
            "or delete it",
        ),
        ("campaigns/team/a.yaml", "warning", NIGHT),  # the top-level policy (defaults) holds
    ]
    assert "team/_policy" not in config.campaigns


def test_every_key_is_read(write_campaigns: WriteFiles) -> None:
    from reconciler.config.policy_file import load_policy

    root = write_campaigns(
        {
            "_policy.yaml": 'callingHours: {from: "07:30", to: "21:00:30"}\nmaxRate: " 1 / 5 s "\n'
            "maxCallsPerDay: 4.0\nlevel: error\n"
        }
    )

    assert load_policy(root / "_policy.yaml") == (
        policy.Policy(7 * 3600 + 1800, 21 * 3600 + 30, "1 / 5 s", 4, "error"),
        [],
    )
    assert load_policy(None) == (policy.DEFAULT, [])
    assert policy.Policy(8 * 3600, 22 * 3600, "10/s", 6, "warning") == policy.DEFAULT


# --- the validation cache ------------------------------------------------------------------


def test_a_changed_policy_checks_every_cached_campaign_again(
    write_campaigns: WriteFiles, tmp_path: Path
) -> None:
    root = write_campaigns(
        {
            "a.yaml": base(("cps: 1.03", 'cps: "5/s"')),
            "b.yaml": edit("name: Evening offer", "name: B", BASE),
        }
    )
    cache_dir = tmp_path / "cache"
    assert load_config(root, ValidationCache(cache_dir)).problems == []
    warm = ValidationCache(cache_dir)
    assert load_config(root, warm).problems == [] and len(warm.used) == 2  # served from it

    (root / "_policy.yaml").write_text('maxRate: "4/s"\n')
    config = load_config(root, ValidationCache(cache_dir))
    assert [(p.location.file, p.path) for p in config.problems] == [(A, "cps")]

    (root / "_policy.yaml").write_text('maxRate: "4/s"\nlevel: error\n')
    assert [p.level for p in load_config(root, ValidationCache(cache_dir)).problems] == ["error"]

    (root / "_policy.yaml").unlink()
    assert load_config(root, ValidationCache(cache_dir)).problems == []


def test_a_comment_in_the_policy_file_keeps_the_cache(
    write_campaigns: WriteFiles, tmp_path: Path
) -> None:
    root = write_campaigns({"a.yaml": BASE, "_policy.yaml": "maxCallsPerDay: 4\n"})
    cache_dir = tmp_path / "cache"
    load_config(root, ValidationCache(cache_dir))
    (root / "_policy.yaml").write_text("# agreed with legal, 2030-01\nmaxCallsPerDay: 4\n")

    warm = ValidationCache(cache_dir)
    assert load_config(root, warm).problems == []
    assert len(warm.used) == 1


def test_policy_keys_differ_for_every_threshold_and_level() -> None:
    variants = [
        policy.DEFAULT,
        policy.Policy(calling_from=7 * 3600),
        policy.Policy(calling_to=21 * 3600),
        policy.Policy(max_rate="9/s"),
        policy.Policy(max_calls_per_day=5),
        policy.Policy(level="error"),
    ]
    assert len({p.key() for p in variants}) == len(variants)
    assert policy.Policy(max_rate="10/s").key() == policy.Policy(max_rate=" 10 / s").key()


# --- direct use ------------------------------------------------------------------------------


def test_calls_per_second_reads_the_encoding() -> None:
    assert [
        policy.calls_per_second(v) for v in (1.03, 1.99, 0.4, 0.01, 0.99, 1.0, True, "3/s")
    ] == [
        3.0,
        99.0,
        1 / 60,
        1 / 99,
        1.0,
        0.0,
        0.0,
        0.0,
    ]


def test_breaches_are_problems_at_the_policy_level(write_campaigns: WriteFiles) -> None:
    config = load_config(write_campaigns({"a.yaml": NIGHT_FILE}))
    (breach,) = config.campaigns["a"].policy

    assert isinstance(breach, Problem)
    assert breach.as_dict() == {
        "file": A,
        "line": 14,
        "column": 20,
        "path": TO,
        "level": "warning",
        "message": NIGHT,
    }
