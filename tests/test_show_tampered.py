"""`reconcile show PLANFILE` on a tampered saved plan: a clear refusal naming the field, never
an internal error (reconciler/plan/saved.py).

The type fuzz sets every field of a saved plan's actions and payloads (and the binding fields
`show` reads) to values of every other JSON type, and shows the result as text, markdown and
`--summary`, in-process through `main`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inproc import run

from reconciler.config.validate import load_config
from reconciler.plan import planfile
from reconciler.plan.plan import PlanOptions, make_plan
from reconciler.state.file.store import FileStore

# The payload of the one campaign, as the API takes it (the campaign file is this JSON, which
# is YAML too): every kind of field, nested objects and a list of webhooks of both forms.
PAYLOAD: dict[str, Any] = {
    "name": "Spring promo",
    "defaultExec": "robot",
    "defaultExecData": "3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70",
    "secondExec": "end",
    "cidType": "default",
    "startType": "time",
    "startMoment": "2099-06-02 10:00",
    "cps": 1.03,
    "taskComment": "spring",
    "webhookUrls": [
        "https://hooks.example.com/a",
        {"url": "https://hooks.example.com/b", "delay": 5},
    ],
    "additionalOptions": {
        "fullListMethod": "reject",
        "fullListTime": 30,
        "useTr": True,
        "allowCallTimeFrom": 36000,
        "allowCallTimeTo": 64800,
        "recordCall": False,
    },
    "redialStrategyOptions": {
        "redialStrategyEn": True,
        "busy": {"redial": True, "time": 60, "count": 2},
        "noAnswer": {"redial": False},
        "answerMash": {"redial": False},
        "congestion": {"redial": False},
        "answerNoList": {"redial": False},
        "candidateLimit": {"redial": True, "count": 3},
    },
}
BAD_VALUES: list[Any] = [None, True, 10**40, "x", [1, "a"], {"a": {"b": 1}}]
POLICY = {
    "level": "warning",
    "file": "campaigns/a.yaml",
    "line": 8,
    "column": 3,
    "path": "cps",
    "message": "3 calls/s is above maxRate",
}
CHANGE = {"kind": "changed", "path": "cps", "old": 1.02, "new": 1.03}


def paths(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every path below `value` (object keys and list indexes), depth first."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        yield (*prefix, key)
        if isinstance(item, dict | list):
            yield from paths(item, (*prefix, key))


# (action index, path in the action): the create's every field and payload field, and the
# fields only the other actions have.
FIELDS: list[tuple[int, tuple[str | int, ...]]] = [
    *((0, ("payload", *p)) for p in paths(PAYLOAD)),
    *(
        (0, (name,))
        for name in ("key", "source", "fingerprint", "identity", "payload", "diff", "policy")
    ),
    *((0, ("policy", 0, name)) for name in POLICY),
    *((0, (name,)) for name in ("duplicate_of", "duplicate_by")),
    *((1, ("diff", 0, name)) for name in CHANGE),
    *((1, ("diff", 0)), (2, ("since",)), (2, ("from",)), (3, ("from",))),
]
TOP_FIELDS = [("binding", "timezone"), ("binding", "max_creates"), ("state", "serial")]
TOP_FIELDS += [("state", "lineage"), ("binding", "targets"), ("binding", "replace")]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A saved plan of a create (with a policy warning), a replace with a diff, a create in
    doubt and a move: what `plan --out` writes, with the actions `show` reads every field of."""
    root = tmp_path_factory.mktemp("saved")
    (root / "campaigns").mkdir()
    (root / "campaigns" / "a.yaml").write_text(json.dumps(PAYLOAD, indent=1), "utf-8")
    config = load_config(root / "campaigns")
    assert not config.errors, config.errors
    state = FileStore(root / "none.state.json").read()
    made = make_plan(config.campaigns, config.moves, state, PlanOptions())
    body: dict[str, Any] = json.loads(planfile.dumps(made, config.campaigns, "sandbox:embedded"))
    create = body["actions"][0]
    assert create["payload"] == PAYLOAD  # so FIELDS name every field the plan holds
    create["policy"] = [POLICY]
    body["actions"] += [
        {**copy.deepcopy(create), "key": k, **extra}  # no payload shared between actions
        for k, extra in (
            ("b", {"action": "replace", "identity": "7", "diff": [CHANGE]}),
            ("c", {"action": "in_doubt", "since": "2099-01-01T00:00:00Z"}),
            ("d", {"action": "moved", "from": "old-d"}),
        )
    ]
    body["actions"][2]["from"] = "old-c"
    body["binding"]["campaigns"].update(dict.fromkeys("bcd", create["fingerprint"]))
    return body


def show_all(body: Any) -> list[tuple[int, str, str]]:
    """`show plan.json` as text, markdown and --summary: (exit code, stdout, stderr) each."""
    Path("plan.json").write_text(json.dumps(body), "utf-8")
    runs = [
        run("show", "plan.json", *args) for args in ((), ("--format", "markdown"), ("--summary",))
    ]
    return [(r.code, r.stdout, r.stderr) for r in runs]


def refused_or_shown(results: list[tuple[int, str, str]]) -> None:
    for code, stdout, stderr in results:
        assert "internal error" not in stderr and "Traceback" not in stderr, stderr
        if code == 0:
            assert stdout.strip(), stderr
        else:
            assert (code, stdout) == (1, ""), stderr
            assert stderr.startswith("error: plan.json: not a "), stderr
            assert stderr.endswith("make it again with `reconcile plan --out plan.json`\n") or (
                "Make the plan again with `reconcile plan --out plan.json` and review it" in stderr
            )


def test_the_untampered_plan_shows_every_action(workdir: Path, saved: dict[str, Any]) -> None:
    results = show_all(saved)
    assert [code for code, _, _ in results] == [0, 0, 0], results
    text = results[0][1]
    for line in ("+ create a", "+ replace b", "? in doubt c", "> moved d", "3 calls/s is above"):
        assert line in text, text


@pytest.mark.parametrize("bad", BAD_VALUES, ids=lambda v: json.dumps(v)[:12])
@pytest.mark.parametrize(
    ("index", "path"), FIELDS, ids=[f"{i}:{'.'.join(map(str, p))}" for i, p in FIELDS]
)
def test_a_field_of_another_type_is_refused_or_shown(
    workdir: Path, saved: dict[str, Any], index: int, path: tuple[str | int, ...], bad: Any
) -> None:
    body = copy.deepcopy(saved)
    record = body["actions"][index]
    for part in path[:-1]:
        record = record[part]
    record[path[-1]] = bad
    refused_or_shown(show_all(body))


@pytest.mark.parametrize("bad", BAD_VALUES, ids=lambda v: json.dumps(v)[:12])
@pytest.mark.parametrize("path", TOP_FIELDS, ids=[".".join(p) for p in TOP_FIELDS])
def test_a_binding_or_state_field_of_another_type_is_refused_or_shown(
    workdir: Path, saved: dict[str, Any], path: tuple[str, str], bad: Any
) -> None:
    body = copy.deepcopy(saved)
    body[path[0]][path[1]] = bad
    refused_or_shown(show_all(body))


@pytest.mark.parametrize(
    ("field", "bad", "expected"),
    [
        ("policy", 5, "a list"),
        ("payload.additionalOptions", "x", "an object"),
        ("payload.additionalOptions", None, "an object"),
        ("payload.redialStrategyOptions", -1, "an object"),
        ("payload.redialStrategyOptions", 10**40, "an object"),
        ("payload.redialStrategyOptions", [1], "an object"),
        ("payload.redialStrategyOptions.busy", "x", "an object"),
        ("payload", [1], "an object"),
    ],
)
def test_a_field_the_renderers_need_an_object_or_list_in_is_refused_by_name(
    workdir: Path, saved: dict[str, Any], field: str, bad: Any, expected: str
) -> None:
    """These crashed `show` (TypeError, AttributeError) in every format but json. A payload
    is tampered with in the in-doubt action: a create's is refused sooner, by its fingerprint
    (`test_a_create_payload_that_does_not_match_its_fingerprint_is_refused`)."""
    body = copy.deepcopy(saved)
    *parents, name = field.split(".")
    index = 2 if field.startswith("payload") else 0
    record = body["actions"][index]
    for part in parents:
        record = record[part]
    record[name] = bad
    for code, stdout, stderr in show_all(body):
        assert (code, stdout) == (1, "")
        assert stderr == (
            f"error: plan.json: not a reconcile plan file this version can read (actions[{index}]."
            f"{field}: expected {expected}); make it again with `reconcile plan --out plan.json`\n"
        )


@pytest.mark.parametrize("index", [0, 1])
def test_a_create_payload_that_does_not_match_its_fingerprint_is_refused(
    workdir: Path, saved: dict[str, Any], index: int
) -> None:
    """`show` printed a tampered payload (another name, a slower rate) while `apply` of the
    same file sent the campaign file's: a reviewer approved what was not sent."""
    body = copy.deepcopy(saved)
    body["actions"][index]["payload"]["name"] = "Harmless test"
    for code, stdout, stderr in show_all(body):
        assert (code, stdout) == (1, "")
        assert f"`actions[{index}].payload` does not match its fingerprint" in stderr
    from reconciler.config.campaign import fingerprint

    body["actions"][index]["fingerprint"] = fingerprint(body["actions"][index]["payload"])
    for code, stdout, stderr in show_all(body):  # made consistent: not the bound file's
        assert (code, stdout) == (1, "")
        assert f"`actions[{index}].fingerprint` is not the one `binding.campaigns` holds" in stderr
