"""Saved plans: `plan --out FILE`, `planfile.load` and the freshness check `apply FILE` uses."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import WriteFiles, edit
from inproc import run

from reconciler import __version__
from reconciler.cli.main import cli
from reconciler.config.schema import SCHEMA_VERSION
from reconciler.config.validate import Config, load_config
from reconciler.errors import PlanError
from reconciler.plan import planfile
from reconciler.plan.plan import PlanOptions, make_plan
from reconciler.state.file.store import FileStore
from reconciler.state.model import Entry, State, dumps

API_URL = "https://cis.twin24.ai/api/v1"
LINEAGE = "0b7c3f5e-0000-4000-8000-000000000001"
PLAN = "plan.json"
STATE = Path("reconcile.state.json")


def campaign_text(name: str) -> str:
    text = edit("name: Spring promo", f"name: {name}")
    return edit("startType: manual\n", 'startType: time\nstartMoment: "2099-06-02 10:00"\n', text)


@pytest.fixture
def project(write_campaigns: WriteFiles, workdir: Path) -> Path:
    write_campaigns({"a.yaml": campaign_text("A"), "b.yaml": campaign_text("B")})
    return workdir


def plan_out(*args: str) -> dict[str, Any]:
    """Run `reconcile plan --out plan.json ARGS` and load what it saved."""
    result = CliRunner().invoke(cli, ["plan", "--out", PLAN, *args])
    assert result.exit_code == 0, (result.output, result.exception)
    assert f"Saved the plan to {PLAN}; `reconcile apply {PLAN}` carries out exactly it." in (
        result.stderr
    )
    return planfile.load(Path(PLAN))


def now() -> tuple[Config, State]:
    config = load_config(Path("campaigns"))
    assert not config.errors
    return config, FileStore(STATE).read()


def check(saved: dict[str, Any], api_url: str = API_URL) -> None:
    config, state = now()
    planfile.check_fresh(saved, config.campaigns, state, api_url)


def stale(saved: dict[str, Any], api_url: str = API_URL) -> str:
    with pytest.raises(PlanError) as refused:
        check(saved, api_url)
    message = str(refused.value)
    assert message.startswith("the saved plan PLANFILE is stale: ")
    if api_url == API_URL:
        assert message.endswith(
            ". Make a new plan with `reconcile plan --out PLANFILE` and review it"
        )
    assert len(message) < 400  # one short line, whatever changed
    return message


def write_state(serial: int, lineage: str = LINEAGE, **entries: Entry) -> None:
    STATE.write_text(dumps(State(lineage, serial, API_URL, dict(entries))), encoding="utf-8")


def bump(times: int) -> None:
    """Write the state `times` times through the store, as state commands do."""
    store = FileStore(STATE)
    for _ in range(times):
        with store.lock("test"):
            store.write(store.read())


# --- what a saved plan holds ---------------------------------------------------------------


def test_a_saved_plan_is_the_json_plan_plus_its_binding(project: Path) -> None:
    write_state(7)
    saved = plan_out("--target", "a", "--max-creates", "3")
    config, _ = now()
    assert saved["kind"] == "reconcile-plan"
    assert saved["format_version"] == 1
    assert saved["summary"]["create"] == 1
    assert [a["key"] for a in saved["actions"]] == ["a"]
    assert saved["state"] == {"lineage": LINEAGE, "serial": 7}
    assert saved["binding"] == {
        "campaigns": {k: c.fingerprint for k, c in config.campaigns.items()},
        "lineage": LINEAGE,
        "serial": 7,
        "api_url": API_URL,
        "tool_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "targets": ["a"],
        "replace": [],
        "max_creates": 3,
        "timezone": "Europe/Moscow",
    }
    check(saved)


def test_a_fresh_plan_passes_the_check(project: Path) -> None:
    check(plan_out())
    write_state(7)
    check(plan_out())


def test_the_saved_plan_is_stable(project: Path) -> None:
    plan_out()
    first = Path(PLAN).read_bytes()
    plan_out()
    assert Path(PLAN).read_bytes() == first
    assert first.endswith(b"}\n")


def test_save_replaces_the_file_atomically(project: Path) -> None:
    config, state = now()
    the_plan = make_plan(config.campaigns, config.moves, state, PlanOptions())
    planfile.save(Path(PLAN), replace(the_plan, actions=()), config.campaigns, API_URL)
    assert planfile.load(Path(PLAN))["summary"]["create"] == 0
    planfile.save(Path(PLAN), the_plan, config.campaigns, API_URL)  # over an earlier plan
    assert planfile.load(Path(PLAN))["summary"]["create"] == 2
    assert sorted(p.name for p in project.iterdir()) == ["campaigns", PLAN]  # no temp file left


def test_plan_out_never_replaces_a_state_that_looks_like_a_plan(project: Path) -> None:
    """A state file carrying `"kind": "reconcile-plan"` (extra keys are ignored) was replaced
    by `plan --out` as if it were an earlier plan; so was a state not made yet."""
    write_state(3)
    body = json.loads(STATE.read_text(encoding="utf-8"))
    STATE.write_text(json.dumps({**body, "kind": "reconcile-plan"}), encoding="utf-8")
    before = STATE.read_bytes()
    for state in ("reconcile.state.json", "new.state.json"):
        result = run("plan", "--state", state, "--out", state)
        assert result.code == 1 and f"this name belongs to {state}" in result.stderr
    assert STATE.read_bytes() == before and not Path("new.state.json").exists()


def test_a_file_made_at_the_plan_path_while_saving_is_never_replaced(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check and the write were apart: a file made between them was replaced."""
    config, state = now()
    the_plan = make_plan(config.campaigns, config.moves, state, PlanOptions())
    real_dumps = planfile.dumps

    def meanwhile(*args: Any) -> str:
        Path(PLAN).write_text("made meanwhile\n", encoding="utf-8")
        return real_dumps(*args)

    monkeypatch.setattr(planfile, "dumps", meanwhile)
    with pytest.raises(PlanError, match="a file appeared there while the plan was written"):
        planfile.save(Path(PLAN), the_plan, config.campaigns, API_URL)
    assert Path(PLAN).read_text(encoding="utf-8") == "made meanwhile\n"
    assert sorted(p.name for p in project.iterdir()) == ["campaigns", PLAN]  # no temp file


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("reconcile.state.json", "this name belongs to reconcile.state.json (the state"),
        ("campaigns/a.yaml", "this name belongs to campaigns (the state, its journal"),
        ("notes.txt", "the file exists and is not a plan saved by"),
        ("link.json", "not a regular file but a symbolic link"),
        ("fifo", "not a regular file but a FIFO (named pipe)"),
        ("", "give a file name for the plan"),
        ("reconcile.state.json.journal", "this name belongs to reconcile.state.json.journal"),
        ("reconcile.state.json.backup", "this name belongs to reconcile.state.json.backup"),
        ("campaigns/new.yaml", "this name belongs to campaigns (the state, its journal"),
        ("campaigns/_policy.yaml", "this name belongs to campaigns (the state, its journal"),
        (".reconcile/sandbox.tasks.json", "this name belongs to .reconcile/sandbox.tasks.json"),
    ],
)
def test_plan_out_never_overwrites_what_is_not_a_saved_plan(
    project: Path, target: str, said: str
) -> None:
    """Once, `plan --out reconcile.state.json` replaced the state with a plan (without the
    lock), and as root `--out /dev/full` replaced the device node with a file."""
    write_state(3)
    Path("notes.txt").write_text("keep me\n", encoding="utf-8")
    Path("link.json").symlink_to("notes.txt")
    os.mkfifo("fifo")
    before = {
        p: (p.lstat().st_mode, p.read_bytes() if p.is_file() else b"")
        for p in [*project.rglob("*")]
        if not p.is_fifo()
    }

    result = run("plan", "--out", target)

    assert result.code == 1, result.output
    assert said in result.stderr and "nothing was written" in result.stderr
    after = {
        p: (p.lstat().st_mode, p.read_bytes() if p.is_file() else b"")
        for p in [*project.rglob("*")]
        if not p.is_fifo()
    }
    assert after == before


def test_a_plan_with_problems_is_not_saved(write_campaigns: WriteFiles) -> None:
    late = campaign_text("Late").replace("2099-06-02", "2020-06-02")
    write_campaigns({"late.yaml": late})
    result = CliRunner().invoke(cli, ["plan", "--out", PLAN])
    assert result.exit_code == 1
    assert not Path(PLAN).exists()


# --- stale plans ---------------------------------------------------------------------------


def test_editing_a_campaign_file_makes_the_plan_stale(
    project: Path, write_campaigns: WriteFiles
) -> None:
    saved = plan_out()
    write_campaigns({"b.yaml": campaign_text("B").replace("cps: 1.03", "cps: 1.05")})
    assert "campaign files changed: campaigns/b.yaml" in stale(saved)


def test_added_and_removed_campaign_files_make_the_plan_stale(
    project: Path, write_campaigns: WriteFiles
) -> None:
    saved = plan_out()
    Path("campaigns/a.yaml").unlink()
    write_campaigns({"c.yaml": campaign_text("C")})
    message = stale(saved)
    assert "campaign files added: campaigns/c.yaml" in message
    assert "campaign files removed: campaigns/a.yaml" in message


def test_a_moved_serial_makes_the_plan_stale(project: Path) -> None:
    write_state(7)
    saved = plan_out()
    bump(2)
    assert "the state changed since (serial 7 -> 9)" in stale(saved)


def test_a_new_lineage_makes_the_plan_stale(project: Path) -> None:
    write_state(7)
    saved = plan_out()
    other = "0b7c3f5e-0000-4000-8000-000000000002"
    write_state(7, lineage=other)
    assert f"the state is another one (lineage {LINEAGE} -> {other})" in stale(saved)


def test_a_plan_made_with_no_state_is_stale_once_a_state_exists(project: Path) -> None:
    saved = plan_out()
    assert saved["binding"]["lineage"] is None and saved["binding"]["serial"] == 0
    bump(1)
    assert "it was made with no state file, and a state exists now" in stale(saved)


def test_a_lost_state_makes_the_plan_stale(project: Path) -> None:
    write_state(7)
    saved = plan_out()
    STATE.unlink()
    assert f"the state is another one (lineage {LINEAGE} -> no state file)" in stale(saved)


def test_another_api_url_makes_the_plan_stale(project: Path) -> None:
    saved = plan_out()
    message = stale(saved, "http://127.0.0.1:8080")
    assert message == (
        f"the saved plan PLANFILE is stale: it was made against another API ({API_URL} -> "
        f"http://127.0.0.1:8080). It was made for {API_URL}: run `reconcile apply --api-url "
        f"{API_URL} PLANFILE`"
    )


def test_another_tool_or_schema_version_makes_the_plan_stale(project: Path) -> None:
    saved = plan_out()
    saved["binding"] |= {"tool_version": "0.0.1", "schema_version": 0}
    message = stale(saved)
    assert f"it was made by reconcile 0.0.1, this is {__version__}" in message
    assert f"it was made for schema version 0, this is {SCHEMA_VERSION}" in message


def test_every_change_is_named_at_once(project: Path, write_campaigns: WriteFiles) -> None:
    write_state(7)
    saved = plan_out()
    bump(2)
    write_campaigns({"a.yaml": campaign_text("A").replace("cps: 1.03", "cps: 1.05")})
    message = stale(saved)
    assert (
        "the state changed since (serial 7 -> 9); campaign files changed: campaigns/a.yaml."
        in message
    )


def test_the_cause_comes_first_and_long_lists_are_counted(
    project: Path, write_campaigns: WriteFiles
) -> None:
    """Issue 15: a 600-character line listing every key before the cause."""
    saved = plan_out()
    write_campaigns({f"new-{i:03}.yaml": campaign_text(f"N{i}") for i in range(40)})
    message = stale(saved, "http://127.0.0.1:8080")
    assert message.startswith("the saved plan PLANFILE is stale: it was made against another API (")
    assert (
        "campaign files added: campaigns/new-000.yaml, campaigns/new-001.yaml, "
        "campaigns/new-002.yaml and 37 more" in message
    )
    # Stale against its own API too (the files changed): a new plan, for the API it was for.
    assert message.endswith(
        f"It was made for {API_URL}: make a new plan with `reconcile plan --api-url {API_URL} "
        "--out PLANFILE` and review it"
    )


def test_check_fresh_compares_with_the_state_given(project: Path) -> None:
    write_state(7)
    saved = plan_out()
    config, state = now()
    planfile.check_fresh(saved, config.campaigns, state, API_URL)
    with pytest.raises(PlanError, match=r"the state changed since \(serial 7 -> 8\)"):
        planfile.check_fresh(saved, config.campaigns, replace(state, serial=8), API_URL)


# --- broken and foreign files --------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"kind": "reconcile-plan", ', "plan.json: not a reconcile plan file (not valid JSON)"),
        (b"\xff\xfe not text", "plan.json: not a reconcile plan file (not UTF-8 text)"),
        (b"", "plan.json: not a reconcile plan file (not valid JSON)"),
        (
            b'{"format_version": 1, "summary": {}, "actions": []}',
            "plan.json: not a reconcile plan file (made by `reconcile plan --out`)",
        ),
        (b"[1, 2]", "plan.json: not a reconcile plan file (made by `reconcile plan --out`)"),
        (
            b'{"kind": "reconcile-plan", "format_version": 2, "binding": {}}',
            "plan.json: plan format 2 is not supported",
        ),
    ],
)
def test_a_broken_or_foreign_plan_file_is_refused(
    workdir: Path, content: bytes, message: str
) -> None:
    Path(PLAN).write_bytes(content)
    with pytest.raises(PlanError) as refused:
        planfile.load(Path(PLAN))
    assert str(refused.value) == message


def test_a_state_file_is_not_a_plan(workdir: Path) -> None:
    write_state(3)
    with pytest.raises(PlanError, match=r"not a reconcile plan file \(made by"):
        planfile.load(STATE)


def test_a_missing_plan_file_is_refused(workdir: Path) -> None:
    with pytest.raises(PlanError, match=r"^nope\.json: cannot read the plan file \("):
        planfile.load(Path("nope.json"))


@pytest.mark.parametrize("kind", ["fifo", "symlink-to-dev-zero"])
def test_a_plan_file_that_is_not_a_regular_file_is_refused_unopened(
    workdir: Path, kind: str
) -> None:
    # Once `read_text`: a FIFO hung `apply PLANFILE` forever, /dev/zero filled memory.
    if kind == "fifo":
        os.mkfifo(PLAN)
    else:
        Path(PLAN).symlink_to("/dev/zero")
    what = "a FIFO (named pipe)" if kind == "fifo" else "a symbolic link"

    with pytest.raises(PlanError) as refused:
        planfile.load(Path(PLAN))

    assert str(refused.value) == (
        f"{PLAN}: cannot read the plan file (not a regular file but {what}; only regular "
        "files are read as plan files, and this one is never followed or opened: replace it "
        "with a regular file or remove it)"
    )


def test_a_saved_plan_holds_no_masked_values(project: Path, write_campaigns: WriteFiles) -> None:
    url = "https://u:p@h/x?token=abc"
    text = campaign_text("A").replace(
        "cidType: default\n", f'cidType: default\nwebhookUrls: ["{url}"]\n'
    )
    write_campaigns({"a.yaml": text})
    saved = plan_out()
    by_key = {a["key"]: a for a in saved["actions"]}
    assert by_key["a"]["payload"]["webhookUrls"] == [url]  # apply sends exactly this body
    assert json.loads(Path(PLAN).read_text(encoding="utf-8")) == saved


def test_a_saved_move_that_would_now_be_a_create_is_stale(project: Path) -> None:
    """Review finding: a _moved.yaml removed after the plan turned a reviewed move into an
    unreviewed create (a second task for the same people) while the binding still matched."""
    config, _ = now()
    old = config.campaigns["a"]
    write_state(
        7,
        **{
            "old-a": Entry(
                "created",
                "id-a",
                old.fingerprint,
                old.payload,
                "campaigns/old-a.yaml",
                "2026-11-27T00:00:00Z",
            )
        },
    )
    Path("campaigns/_moved.yaml").write_text("- {from: old-a, to: a}\n")
    saved = plan_out()
    assert [a["action"] for a in saved["actions"] if a["key"] == "a"] == ["moved"]
    Path("campaigns/_moved.yaml").unlink()

    config, state = now()
    plan = make_plan(config.campaigns, config.moves, state, PlanOptions())
    with pytest.raises(PlanError) as refused:
        planfile.check_fresh(saved, config.campaigns, state, API_URL, plan)
    assert "2 action(s) differ now (a: moved -> create, old-a: absent -> orphan)" in str(
        refused.value
    )


def test_the_same_plan_made_again_passes_the_action_check(project: Path) -> None:
    saved = plan_out()
    config, state = now()
    plan = make_plan(config.campaigns, config.moves, state, PlanOptions())
    planfile.check_fresh(saved, config.campaigns, state, API_URL, plan)


def test_an_unwritable_plan_path_is_a_clear_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reconciler.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["plan", "--out", "no/such/folder/plan.json"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "error: no/such/folder/plan.json: cannot write the plan file" in err
    assert "internal error" not in err
