"""`validate.load_config`: keys, the defaults cascade, payloads, fingerprints, provenance.

The bad-input table (every case of spec section 7 through the CLI) is in test_cli_validate.py;
this module checks what a valid configuration turns into, and where problems point.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import LENIENT_POLICY, VALID_CAMPAIGN, WriteFiles, edit

from reconciler.config.validate import Config, load_config

RULES_OFF = """\
redialStrategyOptions:
  redialStrategyEn: false
  busy: {redial: false}
  noAnswer: {redial: false}
  answerMash: {redial: false}
  congestion: {redial: false}
  answerNoList: {redial: false}
"""


def load(write_campaigns: WriteFiles, files: dict[str, str | bytes]) -> Config:
    return load_config(write_campaigns(files))


def valid(write_campaigns: WriteFiles, files: dict[str, str | bytes]) -> Config:
    config = load(write_campaigns, files)
    assert config.problems == []
    return config


def located(config: Config) -> list[tuple[str, int, int, str]]:
    return [(p.location.file, p.location.line, p.location.col, p.path) for p in config.problems]


# --- payload and fingerprint (spec section 1) ----------------------------------------------

FINGERPRINTED = {
    "_defaults.yaml": """\
defaultExec: robot
secondExec: end
cidType: default
additionalOptions:
  fullListMethod: reject
  fullListTime: 30
  recordCall: false
"""
    + RULES_OFF,
    "2030/spring.yaml": """\
name: Весенняя акция «2030»
defaultExecData: 3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70
startType: time
startMoment: 2030-06-02 10:00
cps: 3/s
taskComment: Привет, мир
additionalOptions:
  useTr: true
  allowCallTimeFrom: "09:00"
  allowCallTimeTo: "20:00:30"
""",
}

# Written by hand: sorted keys at every level, `,` and `:` with no spaces, Cyrillic as itself.
CANONICAL = (
    '{"additionalOptions":{"allowCallTimeFrom":32400,"allowCallTimeTo":72030,'
    '"fullListMethod":"reject","fullListTime":30,"recordCall":false,"useTr":true},'
    '"cidType":"default","cps":1.03,"defaultExec":"robot",'
    '"defaultExecData":"3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70","name":"Весенняя акция «2030»",'
    '"redialStrategyOptions":{"answerMash":{"redial":false},"answerNoList":{"redial":false},'
    '"busy":{"redial":false},"congestion":{"redial":false},"noAnswer":{"redial":false},'
    '"redialStrategyEn":false},"secondExec":"end","startMoment":"2030-06-02 10:00",'
    '"startType":"time","taskComment":"Привет, мир"}'
)


def test_payload_is_the_merged_normalised_body(write_campaigns: WriteFiles) -> None:
    config = valid(write_campaigns, FINGERPRINTED)

    campaign = config.campaigns["2030/spring"]
    assert campaign.key == "2030/spring"
    assert campaign.source == "campaigns/2030/spring.yaml"
    assert campaign.payload == json.loads(CANONICAL)
    # Unset optional fields are omitted, not sent as null.
    assert "secondExecData" not in campaign.payload
    assert "detectRobot" not in campaign.payload["additionalOptions"]


def test_fingerprint_is_sha256_of_canonical_utf8_json(write_campaigns: WriteFiles) -> None:
    config = valid(write_campaigns, FINGERPRINTED)

    expected = "sha256:" + hashlib.sha256(CANONICAL.encode("utf-8")).hexdigest()
    assert config.campaigns["2030/spring"].fingerprint == expected


def test_fingerprint_ignores_file_layout_but_not_values(write_campaigns: WriteFiles) -> None:
    # The same body written in one file, fields in another order, with comments.
    merged = json.loads(CANONICAL)
    lines = [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in merged.items()]
    one_file = "# all in one\n" + "\n".join(reversed(lines)) + "\n"
    changed = one_file.replace("Привет, мир", "Привет, мир!")

    config = valid(write_campaigns, {"one.yaml": one_file})
    fingerprint = config.campaigns["one"].fingerprint
    assert fingerprint == "sha256:" + hashlib.sha256(CANONICAL.encode()).hexdigest()

    config = valid(write_campaigns, {"one.yaml": changed})
    assert config.campaigns["one"].fingerprint != fingerprint


# --- friendly forms and YAML 1.2 scalars in the payload -------------------------------------


@pytest.mark.parametrize(
    ("written", "cps", "json_text"),
    [
        ('"14/s"', 1.14, "1.14"),
        ('"3/s"', 1.03, "1.03"),
        ('"1/60s"', 0.4, "0.4"),
        ('"99/s"', 1.99, "1.99"),
        ('"1/99s"', 0.01, "0.01"),
        ('"1/3s"', 0.97, "0.97"),
        ('"1/s"', 1.01, "1.01"),
        ('" 7 / s "', 1.07, "1.07"),
        ("1.14", 1.14, "1.14"),
    ],
)
def test_cps_is_exact(
    written: str, cps: float, json_text: str, write_campaigns: WriteFiles
) -> None:
    files = {"a.yaml": edit("cps: 1.03", f"cps: {written}"), "_policy.yaml": LENIENT_POLICY}
    config = valid(write_campaigns, files)

    payload = config.campaigns["a"].payload
    assert payload["cps"] == cps
    assert json.dumps(payload["cps"]) == json_text


@pytest.mark.parametrize(
    ("written", "value"),
    [("0777", 777), ("0o17", 15), ("0x1F", 31), ("30.0", 30), ("+5", 5)],
)
def test_yaml_12_integers(written: str, value: int, write_campaigns: WriteFiles) -> None:
    config = valid(
        write_campaigns, {"a.yaml": edit("fullListTime: 30", f"fullListTime: {written}")}
    )

    full_list_time = config.campaigns["a"].payload["additionalOptions"]["fullListTime"]
    assert (type(full_list_time), full_list_time) == (int, value)


def test_unquoted_start_moment_is_the_text_written(write_campaigns: WriteFiles) -> None:
    config = valid(
        write_campaigns,
        {"a.yaml": edit("startType: manual", "startType: time\nstartMoment: 2030-06-02 10:00")},
    )

    assert config.campaigns["a"].payload["startMoment"] == "2030-06-02 10:00"


def test_time_of_day_texts_become_seconds(write_campaigns: WriteFiles) -> None:
    config = valid(
        write_campaigns,
        {
            "a.yaml": edit(
                "  recordCall: false\n",
                "  recordCall: false\n  useTr: true\n"
                '  allowCallTimeFrom: "00:00"\n  allowCallTimeTo: "23:59:59"\n',
            ),
            "_policy.yaml": LENIENT_POLICY,
        },
    )

    options = config.campaigns["a"].payload["additionalOptions"]
    assert (options["allowCallTimeFrom"], options["allowCallTimeTo"]) == (0, 86399)


def test_null_for_nullable_fields_is_kept(write_campaigns: WriteFiles) -> None:
    config = valid(
        write_campaigns,
        {"a.yaml": VALID_CAMPAIGN + "scheduleId: null\nphoneNormalization: ~\n"},
    )

    payload = config.campaigns["a"].payload
    assert payload["scheduleId"] is None
    assert payload["phoneNormalization"] is None


def test_newer_optional_fields_are_accepted(write_campaigns: WriteFiles) -> None:
    text = (
        edit("  recordCall: false\n", "  recordCall: false\n  fz230: true\n  providerId: null\n")
        + "callStrategy: PARALLEL\ncheckPhone: true\nsendReportAfterFinish: false\n"
        + "lifetime: 86400\nphoneNormalization: RU\n"
        + "webhookUrls:\n  - url: https://hooks.example.com/x\n    partialResults: true\n"
        + "    delay: 5\n    events:\n      CALL_ENDED: {name: ended, value: true}\n"
    )
    text = edit(
        "  answerNoList: {redial: false}\n",
        "  answerNoList: {redial: false}\n  candidateLimit: {redial: true, count: 3}\n",
        text,
    )

    config = valid(write_campaigns, {"a.yaml": text})

    payload = config.campaigns["a"].payload
    assert payload["webhookUrls"] == [
        {
            "url": "https://hooks.example.com/x",
            "partialResults": True,
            "delay": 5,
            "events": {"CALL_ENDED": {"name": "ended", "value": True}},
        }
    ]
    assert payload["redialStrategyOptions"]["candidateLimit"] == {"redial": True, "count": 3}
    assert payload["lifetime"] == 86400


# --- keys and what is a campaign ------------------------------------------------------------


def test_keys_are_paths_below_campaigns_without_suffix(write_campaigns: WriteFiles) -> None:
    config = valid(
        write_campaigns,
        {
            "top.yaml": edit("Spring promo", "one"),
            "short.yml": edit("Spring promo", "two"),
            "2030/q1/spring-promo.yaml": edit("Spring promo", "three"),
        },
    )

    assert sorted(config.campaigns) == ["2030/q1/spring-promo", "short", "top"]
    assert config.campaigns["2030/q1/spring-promo"].source == (
        "campaigns/2030/q1/spring-promo.yaml"
    )


def test_underscore_and_dot_files_and_folders_are_not_campaigns(
    write_campaigns: WriteFiles,
) -> None:
    broken = "name: [\n"
    config = valid(
        write_campaigns,
        {
            "real.yaml": VALID_CAMPAIGN,
            "_draft.yaml": broken,
            ".hidden.yaml": broken,
            "_archive/old.yaml": broken,
            ".git/x.yaml": broken,
            "team/.cache/y.yml": broken,
            "README.md": broken,
            "notes.txt": broken,
            "data.json": broken,
        },
    )

    assert list(config.campaigns) == ["real"]


def test_problems_name_files_relative_to_the_working_folder(
    workdir: Path, write_campaigns: WriteFiles
) -> None:
    write_campaigns({"sub/a.yaml": edit("cps: 1.03", "cps: 9")})

    config = load_config(workdir / "campaigns")  # an absolute path

    assert located(config) == [("campaigns/sub/a.yaml", 7, 6, "cps")]


# --- the defaults cascade -----------------------------------------------------------------

ROOT_DEFAULTS = """\
defaultExec: robot
secondExec: end
cidType: default
startType: manual
cps: 1.01
taskComment: from the root
webhookUrls:
  - https://hooks.example.com/root-a
  - https://hooks.example.com/root-b
additionalOptions:
  fullListMethod: reject
  fullListTime: 10
  recordCall: false
redialStrategyOptions:
  redialStrategyEn: true
  busy: {redial: true, time: 60, count: 1}
  noAnswer: {redial: false}
  answerMash: {redial: false}
  congestion: {redial: false}
  answerNoList: {redial: false}
"""

TEAM_DEFAULTS = """\
taskComment: from the team
webhookUrls:
  - https://hooks.example.com/team
additionalOptions:
  fullListTime: 20
"""

UUID = "defaultExecData: 3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70\n"


@pytest.fixture
def cascade(write_campaigns: WriteFiles) -> Config:
    return valid(
        write_campaigns,
        {
            "_defaults.yaml": ROOT_DEFAULTS,
            "team/_defaults.yaml": TEAM_DEFAULTS,
            "root.yaml": "name: root\n" + UUID,
            "team/plain.yaml": "name: plain\n" + UUID,
            "team/own.yaml": "name: own\n"
            + UUID
            + "cps: 5/s\ntaskComment: my own\n"
            + "webhookUrls:\n  - https://hooks.example.com/own\n"
            + "additionalOptions:\n  recordCall: true\n  recTrimLeft: 3\n"
            + "redialStrategyOptions:\n  busy: {redial: false}\n",
            "team/deep/inherit.yaml": "name: deep\n" + UUID,
        },
    )


def test_nearer_defaults_win(cascade: Config) -> None:
    root, plain = cascade.campaigns["root"].payload, cascade.campaigns["team/plain"].payload
    assert root["taskComment"] == "from the root"
    assert plain["taskComment"] == "from the team"
    assert cascade.campaigns["team/deep/inherit"].payload == {**plain, "name": "deep"}


def test_campaign_wins_over_all(cascade: Config) -> None:
    own = cascade.campaigns["team/own"].payload
    assert own["taskComment"] == "my own"
    assert own["cps"] == 1.05


def test_mappings_merge_key_by_key(cascade: Config) -> None:
    assert cascade.campaigns["team/plain"].payload["additionalOptions"] == {
        "fullListMethod": "reject",
        "fullListTime": 20,
        "recordCall": False,
    }
    own = cascade.campaigns["team/own"].payload
    assert own["additionalOptions"] == {
        "fullListMethod": "reject",
        "fullListTime": 20,
        "recordCall": True,
        "recTrimLeft": 3,
    }
    assert own["redialStrategyOptions"]["busy"] == {"redial": False, "time": 60, "count": 1}
    assert own["redialStrategyOptions"]["redialStrategyEn"] is True


def test_lists_replace(cascade: Config) -> None:
    urls = {key: c.payload["webhookUrls"] for key, c in cascade.campaigns.items()}
    assert urls["root"] == [
        "https://hooks.example.com/root-a",
        "https://hooks.example.com/root-b",
    ]
    assert urls["team/plain"] == ["https://hooks.example.com/team"]
    assert urls["team/own"] == ["https://hooks.example.com/own"]


def test_defaults_alone_are_not_campaigns(cascade: Config) -> None:
    assert sorted(cascade.campaigns) == ["root", "team/deep/inherit", "team/own", "team/plain"]


def test_a_replaced_defaults_value_is_never_checked(write_campaigns: WriteFiles) -> None:
    config = valid(
        write_campaigns,
        {"_defaults.yaml": "cidType: bogus\ncps: 500\n", "a.yaml": VALID_CAMPAIGN},
    )

    assert config.campaigns["a"].payload["cidType"] == "default"


def test_wrong_value_is_reported_in_the_nearest_file_that_supplied_it(
    write_campaigns: WriteFiles,
) -> None:
    config = load(
        write_campaigns,
        {
            "_defaults.yaml": ROOT_DEFAULTS,
            "team/_defaults.yaml": "# team\nadditionalOptions:\n  fullListTime: soon\n",
            "team/a.yaml": "name: a\n" + UUID,
            "b.yaml": "name: b\n" + UUID,
        },
    )

    assert located(config) == [
        ("campaigns/team/_defaults.yaml", 3, 17, "additionalOptions.fullListTime")
    ]
    assert list(config.campaigns) == ["b"]


def test_a_mapping_from_defaults_replaced_by_a_scalar(write_campaigns: WriteFiles) -> None:
    config = load(
        write_campaigns,
        {"_defaults.yaml": ROOT_DEFAULTS, "a.yaml": "name: a\n" + UUID + "additionalOptions: 5\n"},
    )

    assert located(config) == [("campaigns/a.yaml", 3, 20, "additionalOptions")]
    assert "expected a mapping" in config.problems[0].message


def test_unknown_field_in_defaults_is_reported_there(write_campaigns: WriteFiles) -> None:
    config = load(
        write_campaigns,
        {"_defaults.yaml": ROOT_DEFAULTS + "taskComent: typo\n", "a.yaml": "name: a\n" + UUID},
    )

    assert located(config) == [("campaigns/_defaults.yaml", 21, 1, "taskComent")]
    assert "did you mean taskComment?" in config.problems[0].message


def test_one_broken_defaults_file_is_reported_once(write_campaigns: WriteFiles) -> None:
    config = load(
        write_campaigns,
        {
            "_defaults.yaml": "cps: [\n",
            "a.yaml": "name: a\n",
            "b.yaml": "name: b\n",
            "sub/c.yaml": "name: c\n",
        },
    )

    assert located(config) == [("campaigns/_defaults.yaml", 1, 7, "(file)")]
    assert config.campaigns == {}


def test_broken_campaign_below_broken_defaults_is_still_reported(
    write_campaigns: WriteFiles,
) -> None:
    config = load(
        write_campaigns,
        {"_defaults.yaml": "cps: [\n", "a.yaml": "- not a mapping\n"},
    )

    assert located(config) == [
        ("campaigns/_defaults.yaml", 1, 7, "(file)"),
        ("campaigns/a.yaml", 1, 1, "(file)"),
    ]


# --- names and moves ----------------------------------------------------------------------


def test_three_campaigns_sharing_a_name_are_all_reported(write_campaigns: WriteFiles) -> None:
    config = load(
        write_campaigns,
        {"a.yaml": VALID_CAMPAIGN, "b.yaml": VALID_CAMPAIGN, "c.yaml": VALID_CAMPAIGN},
    )

    assert {p.location.file for p in config.errors} == {
        "campaigns/a.yaml",
        "campaigns/b.yaml",
        "campaigns/c.yaml",
    }


def test_a_name_supplied_by_defaults_clashes_at_the_defaults_line(
    write_campaigns: WriteFiles,
) -> None:
    without_name = edit("name: Spring promo\n", "")
    config = load(
        write_campaigns,
        {
            "_defaults.yaml": "# shared\nname: Shared\n",
            "a.yaml": without_name,
            "b.yaml": without_name,
        },
    )

    assert {(p.location.file, p.location.line) for p in config.errors} == {
        ("campaigns/_defaults.yaml", 2)
    }
    assert sorted("also used by campaigns/" in p.message for p in config.errors) == [True, True]


def test_moves_are_read(write_campaigns: WriteFiles) -> None:
    config = valid(
        write_campaigns,
        {
            "new.yaml": VALID_CAMPAIGN,
            "_moved.yaml": "# renames\n- from: old\n  to: new\n",
        },
    )

    assert [(m.old, m.new, m.location.line) for m in config.moves] == [("old", "new", 2)]


@pytest.mark.parametrize(
    ("moved", "expected"),
    [
        ("- {from: x, to: a}\n- {from: x, to: b}\n", (2, 10, "[1].from", "already moved")),
        ("- {from: a, to: a}\n", (1, 3, "[0]", "onto itself")),
        ("- {from: x, to: 5}\n", (1, 17, "[0].to", "expected a campaign key")),
        ("- {from: x, to: a, why: typo}\n", (1, 3, "[0]", "exactly `from` and `to`")),
        ("- just text\n", (1, 3, "[0]", "exactly `from` and `to`")),
        ("[]\n# nothing yet\n", None),
    ],
)
def test_bad_moves(
    moved: str, expected: tuple[int, int, str, str] | None, write_campaigns: WriteFiles
) -> None:
    config = load(
        write_campaigns,
        {
            "a.yaml": VALID_CAMPAIGN,
            "b.yaml": edit("Spring promo", "B"),
            "_moved.yaml": moved,
        },
    )

    if expected is None:
        assert config.problems == []
        return
    line, col, path, fragment = expected
    assert located(config) == [("campaigns/_moved.yaml", line, col, path)]
    assert fragment in config.problems[0].message


def test_problems_are_sorted_and_unique(write_campaigns: WriteFiles) -> None:
    config = load(
        write_campaigns,
        {
            "z.yaml": "name: [\n",
            "a.yaml": edit("cps: 1.03", "cps: 9", edit("secondExec: end", "secondExec: ch")),
        },
    )

    assert config.problems == sorted(set(config.problems))
    assert [p.location.file for p in config.problems] == [
        "campaigns/a.yaml",
        "campaigns/a.yaml",
        "campaigns/z.yaml",
    ]


def test_a_broken_defaults_file_no_campaign_uses_yet_is_reported(
    write_campaigns: WriteFiles,
) -> None:
    config = load(
        write_campaigns,
        {"a.yaml": VALID_CAMPAIGN, "empty-team/_defaults.yaml": "cps: [\n"},
    )

    assert located(config) == [("campaigns/empty-team/_defaults.yaml", 1, 7, "(file)")]
    assert list(config.campaigns) == ["a"]


def test_defaults_yaml_and_yml_in_one_folder(write_campaigns: WriteFiles) -> None:
    config = load(
        write_campaigns,
        {"_defaults.yaml": "cps: 1.03\n", "_defaults.yml": "cps: 1.05\n", "a.yaml": VALID_CAMPAIGN},
    )

    assert located(config) == [("campaigns/_defaults.yml", 1, 1, "(file)")]
    assert "both _defaults.yaml and _defaults.yml; keep one" in config.problems[0].message
