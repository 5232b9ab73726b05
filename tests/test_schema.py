"""The generated draft-07 campaign schemas: committed copies, `--check`, shape, and the examples.

(`policy.schema.json`, the third file `reconcile schema` writes, is tested in
test_cli_policy.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import snapshot
from jsonschema import Draft7Validator

from reconciler.cli.main import cli, main
from reconciler.config import schema
from reconciler.config.normalize import parse_rate, parse_time_of_day
from reconciler.config.policy_file import SCHEMA_FILE as POLICY_FILE
from reconciler.config.validate import load_config

REPO = Path(__file__).resolve().parent.parent
SCHEMAS = REPO / "schemas"
EXAMPLES = REPO / "campaigns"
NAMES = (schema.PAYLOAD_FILE, schema.CAMPAIGN_FILE)
ALL_NAMES = (*NAMES, POLICY_FILE)
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def committed(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return loaded


def run_schema(*args: str) -> Any:
    return CliRunner().invoke(cli, ["schema", *args], catch_exceptions=False)


# --- committed files, generation and --check ---------------------------------------------


def test_committed_schemas_are_what_reconcile_schema_generates(tmp_path: Path) -> None:
    """Fails when models.py changed and `reconcile schema` was not run and committed."""
    result = run_schema("--output-dir", str(tmp_path / "out"))

    assert result.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(ALL_NAMES)
    for name in ALL_NAMES:
        generated = (tmp_path / "out" / name).read_bytes()
        assert (SCHEMAS / name).read_bytes() == generated, f"{name} is stale: run reconcile schema"
        assert generated.endswith(b"}\n")


def test_check_passes_on_the_committed_schemas() -> None:
    result = run_schema("--check", "--output-dir", str(SCHEMAS))

    assert (result.exit_code, result.stdout, result.stderr) == (0, "schemas are up to date.\n", "")


@pytest.fixture
def copy_of_schemas(tmp_path: Path) -> Path:
    folder = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, folder)
    return folder


@pytest.mark.parametrize("name", NAMES)
def test_check_fails_after_an_edit_and_writes_nothing(copy_of_schemas: Path, name: str) -> None:
    path = copy_of_schemas / name
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Always `reject`.", "Always reject.", 1), encoding="utf-8")
    before = snapshot(copy_of_schemas)

    result = run_schema("--check", "--output-dir", str(copy_of_schemas))

    assert result.exit_code == 1
    assert result.stderr == (
        f"{path}: out of date; run `reconcile schema --output-dir {copy_of_schemas}` and commit "
        "it\n"  # the folder it checked: the command acts on the same files
    )
    assert snapshot(copy_of_schemas) == before

    assert run_schema("--output-dir", str(copy_of_schemas)).exit_code == 0
    assert path.read_text(encoding="utf-8") == text
    assert run_schema("--check", "--output-dir", str(copy_of_schemas)).exit_code == 0


def test_check_fails_for_a_missing_file(copy_of_schemas: Path) -> None:
    (copy_of_schemas / schema.CAMPAIGN_FILE).unlink()

    result = run_schema("--check", "--output-dir", str(copy_of_schemas))

    assert result.exit_code == 1
    assert schema.CAMPAIGN_FILE in result.stderr
    assert schema.PAYLOAD_FILE not in result.stderr


def test_check_fails_for_a_whitespace_only_change(copy_of_schemas: Path) -> None:
    path = copy_of_schemas / schema.PAYLOAD_FILE
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n"), encoding="utf-8")

    assert run_schema("--check", "--output-dir", str(copy_of_schemas)).exit_code == 1


def _special(kind: str, path: Path, tmp_path: Path) -> None:
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink-to-dev-zero":
        path.symlink_to("/dev/zero")
    else:  # a symlink to a regular file elsewhere (a fork's way to write outside schemas/)
        (tmp_path / "elsewhere").write_text("keep me\n", encoding="utf-8")
        path.symlink_to(tmp_path / "elsewhere")


SPECIAL = ("fifo", "symlink-to-dev-zero", "symlink-to-a-file")


@pytest.mark.parametrize("kind", SPECIAL)
def test_check_names_a_special_schema_file_and_never_opens_it(
    copy_of_schemas: Path, tmp_path: Path, kind: str
) -> None:
    # Once `read_text`: a FIFO hung forever, /dev/zero read without limit.
    path = copy_of_schemas / schema.PAYLOAD_FILE
    _special(kind, path, tmp_path)

    result = run_schema("--check", "--output-dir", str(copy_of_schemas))

    assert result.exit_code == 1
    what = "a FIFO (named pipe)" if kind == "fifo" else "a symbolic link"
    assert result.stderr == (
        f"{path}: not a regular file but {what}; only regular files are read as schema files, "
        "and this one is never followed or opened: replace it with a regular file or remove "
        f"it, then run `reconcile schema --output-dir {copy_of_schemas}`\n"
    )


@pytest.mark.parametrize("kind", SPECIAL)
def test_schema_never_writes_through_a_special_schema_file(
    copy_of_schemas: Path, tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = copy_of_schemas / schema.PAYLOAD_FILE
    (copy_of_schemas / POLICY_FILE).write_text("old\n", encoding="utf-8")
    _special(kind, path, tmp_path)
    before = snapshot(tmp_path)

    with pytest.raises(SystemExit) as exited:
        main(["schema", "--output-dir", str(copy_of_schemas)])

    assert exited.value.code == 1
    what = "a FIFO (named pipe)" if kind == "fifo" else "a symbolic link"
    assert capsys.readouterr().err == (
        f"error: {path}: not a regular file but {what}; `reconcile schema` never writes "
        "through it: remove it, then run `reconcile schema` again\n"
    )
    assert snapshot(tmp_path) == before  # nothing written, not even the other schemas
    path.unlink()
    assert run_schema("--output-dir", str(copy_of_schemas)).exit_code == 0
    assert not path.is_symlink() and path.read_bytes() == (SCHEMAS / path.name).read_bytes()


# --- draft-07 shape ---------------------------------------------------------------------


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a schema, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


@pytest.mark.parametrize("name", NAMES)
def test_schemas_are_draft_07(name: str) -> None:
    text = (SCHEMAS / name).read_text(encoding="utf-8")
    loaded = json.loads(text)

    assert loaded["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert '"definitions"' in text
    assert "$defs" not in text
    Draft7Validator.check_schema(loaded)
    refs = [node["$ref"] for node in walk(loaded) if "$ref" in node]
    assert refs
    for ref in refs:
        assert ref.startswith("#/definitions/")
        assert ref.removeprefix("#/definitions/") in loaded["definitions"]


@pytest.mark.parametrize("name", NAMES)
def test_every_property_has_a_description(name: str) -> None:
    loaded = committed(name)
    properties = [
        (owner.get("title", "CallTask"), prop, sub)
        for owner in walk(loaded)
        if isinstance(owner.get("properties"), dict) and owner.get("type") == "object"
        for prop, sub in owner["properties"].items()
    ]

    assert len(properties) > 50
    undescribed = [
        f"{owner}.{prop}" for owner, prop, sub in properties if not sub.get("description")
    ]
    assert undescribed == []


EXPECTED_CONDITIONALS = {
    "(root)": [
        ("secondExec", ["ch"], "secondExecData"),
        ("cidType", ["gornum", "pool"], "cidData"),
        ("startType", ["time"], "startMoment"),
    ],
    "AdditionalOptions": [
        ("useTr", [True], "allowCallTimeFrom"),
        ("useTr", [True], "allowCallTimeTo"),
        ("recordCall", [True], "recTrimLeft"),
        ("detectRobot", [True], "detectRobotMode"),
    ],
    "RedialRule": [("redial", [True], "time"), ("redial", [True], "count")],
    "LimitRule": [("redial", [True], "count")],
}


def conditionals(sub: dict[str, Any]) -> list[tuple[str, list[Any], str]]:
    out = []
    for rule in sub.get("allOf", []):
        ((trigger, allowed),) = rule["if"]["properties"].items()
        assert rule["if"]["required"] == [trigger]
        (field,) = rule["then"]["required"]
        out.append((trigger, allowed["enum"], field))
    return out


def test_payload_schema_states_every_conditional_requirement_as_if_then() -> None:
    loaded = committed(schema.PAYLOAD_FILE)

    found = {"(root)": conditionals(loaded)} | {
        name: conditionals(sub) for name, sub in loaded["definitions"].items() if "allOf" in sub
    }

    assert found == EXPECTED_CONDITIONALS


def test_payload_schema_flags_a_missing_second_exec_data() -> None:
    validator = Draft7Validator(committed(schema.PAYLOAD_FILE))
    payload = example_payloads()["onboarding-welcome"]
    assert payload["secondExec"] == "ch"
    assert list(validator.iter_errors(payload)) == []

    del payload["secondExecData"]
    errors = list(validator.iter_errors(payload))

    assert [e.message for e in errors] == ["'secondExecData' is a required property"]


def test_file_schema_has_every_field_optional_and_no_conditionals() -> None:
    loaded = committed(schema.CAMPAIGN_FILE)

    assert [n for n in walk(loaded) if "required" in n and "properties" in n] == []
    assert not any("if" in n for n in walk(loaded))
    validator = Draft7Validator(loaded)
    assert list(validator.iter_errors({})) == []
    assert list(validator.iter_errors({"secondExec": "ch"})) == []
    assert list(validator.iter_errors({"additionalOptions": {"detectRobot": True}})) == []


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ({"csp": 1.03}, "Additional properties are not allowed ('csp' was unexpected)"),
        ({"additionalOptions": {"detectRobotMod": "back"}}, "Additional properties"),
        ({"secondExec": "transfer"}, "'transfer' is not one of ['end', 'ignore', 'ch']"),
        ({"cps": 3}, "is not valid under any of the given schemas"),
        ({"cps": "100/s"}, "is not valid under any of the given schemas"),
        ({"additionalOptions": {"fullListTime": -1}}, "-1 is less than the minimum of 0"),
        ({"defaultExecData": "42"}, "does not match"),
        ({"redialStrategyOptions": {"busy": {"redial": "yes"}}}, "'yes' is not of type 'boolean'"),
    ],
)
def test_file_schema_keeps_types_enums_ranges_and_unknown_field_rules(
    document: dict[str, Any], error: str
) -> None:
    errors = [
        e.message for e in Draft7Validator(committed(schema.CAMPAIGN_FILE)).iter_errors(document)
    ]

    assert len(errors) == 1
    assert error in errors[0]


RATE_TEXTS = [
    f"{n}/{every}s" for n in (0, 1, 2, 9, 10, 60, 99, 100) for every in ("", "1", "60", "99", "100")
] + [" 3 / s ", "1 / 60 s", "03/s", "3/s\n"]


def test_file_schema_accepts_exactly_the_rate_texts_the_cli_accepts() -> None:
    validator = Draft7Validator(committed(schema.CAMPAIGN_FILE))

    def schema_says(text: str) -> bool:
        return validator.is_valid({"cps": text})

    disagree = [text for text in RATE_TEXTS if schema_says(text) != (parse_rate(text) is not None)]
    # "3/s\n": Python's `$` (used by the jsonschema package) matches before a final newline;
    # ECMA's, which JSON Schema specifies and editors use, does not. parse_rate refuses it.
    assert disagree == ["3/s\n"]
    # 6 "N/s", 3 "1/Ns", the two spaced forms, and "3/s\n".
    assert sum(schema_says(text) for text in RATE_TEXTS) == 12


@pytest.mark.parametrize("text", ["00:00", "09:00", "23:59:59", "24:00", "9:00", "09:60", "1:30"])
def test_file_schema_accepts_exactly_the_times_the_cli_accepts(text: str) -> None:
    validator = Draft7Validator(committed(schema.CAMPAIGN_FILE))
    document = {"additionalOptions": {"allowCallTimeFrom": text}}

    assert validator.is_valid(document) is (parse_time_of_day(text) is not None)


# --- the example campaigns ----------------------------------------------------------------


def example_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*.yaml") if p.name != "_moved.yaml")


def example_payloads() -> dict[str, dict[str, Any]]:
    config = load_config(EXAMPLES)
    assert config.problems == []
    return {key: campaign.payload for key, campaign in config.campaigns.items()}


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(CHECK_JSONSCHEMA),
            "--schemafile",
            str(SCHEMAS / schema.CAMPAIGN_FILE),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_example_files_validate_with_check_jsonschema(tmp_path: Path) -> None:
    files = example_files()
    assert len(files) == 6  # five campaigns and survey/_defaults.yaml

    result = check_jsonschema(*files)
    assert result.returncode == 0, result.stdout + result.stderr

    # ... and the same run does flag a bad file, so the pass above means something.
    bad = tmp_path / "bad.yaml"
    bad.write_text("secondExec: transfer\ncps: 2/60s\nadditionalOptions:\n  useTR: true\n")
    result = check_jsonschema(*files, bad)
    assert result.returncode == 1
    assert str(bad) in result.stdout
    assert "'transfer' is not one of" in result.stdout
    assert "useTR" in result.stdout
    assert "'2/60s' is not valid" in result.stdout


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.relative_to(EXAMPLES).as_posix())
def test_example_modelines_point_at_the_file_schema(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix)
    target = (path.parent / first.removeprefix(prefix)).resolve()
    assert target == SCHEMAS / schema.CAMPAIGN_FILE


def test_merged_example_payloads_validate_against_the_payload_schema() -> None:
    validator = Draft7Validator(
        committed(schema.PAYLOAD_FILE), format_checker=Draft7Validator.FORMAT_CHECKER
    )
    payloads = example_payloads()

    assert sorted(payloads) == [
        "2030/debt-reminder",
        "2030/spring-promo",
        "onboarding-welcome",
        "survey/csat-callback",
        "survey/nps-q3",
    ]
    for key, payload in payloads.items():
        assert [e.message for e in validator.iter_errors(payload)] == [], key


# --- spec 9.1: a complete file that uses no _defaults.yaml may point at campaign.schema.json --


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("cps", "time", "accepted"),
    [
        ("3/s", "09:00", True),
        ("1/60s", "09:00:30", True),
        (1.03, 32400, True),
        ("100/s", "09:00", False),
        ("3/s", "24:00", False),
        ("2/60s", 32400, False),
    ],
)
def test_both_schemas_accept_the_friendly_forms_exactly_as_validate_does(
    name: str, cps: Any, time: Any, accepted: bool, tmp_path: Path
) -> None:
    payload = example_payloads()["onboarding-welcome"]
    payload["cps"] = cps
    payload["additionalOptions"].update(useTr=True, allowCallTimeFrom=time, allowCallTimeTo=72000)
    schema_says = Draft7Validator(committed(name)).is_valid(payload)

    root = tmp_path / "campaigns"
    root.mkdir()
    (root / "a.yaml").write_text(json.dumps(payload), encoding="utf-8")  # JSON is YAML
    validate_says = load_config(root).errors == []

    assert schema_says is validate_says is accepted


@pytest.mark.parametrize("target", ["/dev/null/x", "file/x"])
def test_schema_to_a_folder_that_cannot_be_written_is_a_one_line_error(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a folder", encoding="utf-8")
    output = target if target.startswith("/") else str(tmp_path / target)

    with pytest.raises(SystemExit) as exited:
        main(["schema", "--output-dir", output])

    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"error: cannot write the schemas to {output}: Not a directory; ")
    assert err.count("\n") == 1


def test_check_calls_a_schema_file_that_is_not_utf8_out_of_date(copy_of_schemas: Path) -> None:
    (copy_of_schemas / schema.PAYLOAD_FILE).write_bytes(b"\xff\xfe")

    result = run_schema("--check", "--output-dir", str(copy_of_schemas))

    assert result.exit_code == 1
    assert "out of date" in result.stderr
