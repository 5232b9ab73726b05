"""End to end, issue 12 (spec 9.2): no path to a second task with the same name. In-process
`reconcile` against the real sandbox over loopback; every case counts the server's tasks.

Cases: a renamed-and-edited file (the name guard), a replace then `check-remote` and a lost
state after it, flags that would do nothing, `_moved.yaml` typos, list answers in unknown
shapes, paging that does not add up, a pending entry that moves, a platform clock 15 minutes
behind, and the `Apply:` counts.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
from conftest import StartSandbox
from inproc import STATE, TOKEN, apply, campaign, names, run, seed_task, state, write

from reconciler.sandbox import Sandbox

NPS = "NPS survey Q3 2030"
SUMMARY = "Apply: {} created, {} adopted, {} moved, {} refused, {} in doubt."


@pytest.fixture
def start_sandbox(sandboxes: StartSandbox) -> StartSandbox:
    """Loopback sandboxes that take this module's token (conftest's `sandboxes`)."""
    return partial(sandboxes, token=TOKEN)


@pytest.fixture
def sandbox(start_sandbox: StartSandbox) -> Sandbox:
    return start_sandbox()


@pytest.fixture
def project(workdir: Path) -> Path:
    """Three campaigns, the NPS survey first in key order among the two under survey/."""
    write(
        {
            "onboarding-welcome.yaml": campaign("Welcome"),
            "survey/csat-callback.yaml": campaign("CSAT callback"),
            "survey/nps-q3.yaml": campaign(NPS),
        }
    )
    return workdir


def rename_and_edit() -> None:
    Path("campaigns/survey/nps-q3.yaml").unlink()
    write({"survey/nps-q3-v2.yaml": campaign(NPS, cps="1.04")})


# --- 1. rename plus edit: the name guard ------------------------------------------------------


REFUSAL = (
    "campaigns/survey/nps-q3-v2.yaml:1:1: error: not sent: survey/nps-q3-v2 has the name "
    "'NPS survey Q3 2030' of survey/nps-q3 in the state (a probable rename): creating it would "
    "start a second task with that name and call everyone again. If the file was renamed, add "
    "`- {from: survey/nps-q3, to: survey/nps-q3-v2}` to _moved.yaml in the campaigns folder, or "
    "run `reconcile state mv survey/nps-q3 survey/nps-q3-v2`; if a second task "
    "is really wanted, run `reconcile apply --api-url URL --allow-duplicate survey/nps-q3-v2`\n"
)


def test_a_renamed_and_edited_file_is_refused_with_one_task_on_the_server(
    project: Path, sandbox: Sandbox
) -> None:
    assert apply(sandbox.url).code == 0
    rename_and_edit()

    plan = run("plan", "--api-url", sandbox.url, "--detailed-exitcode")
    assert plan.code == 2, plan.output
    assert "! orphan survey/nps-q3" in plan.stdout
    assert "PROBABLE RENAME: same name ('NPS survey Q3 2030') as survey/nps-q3" in plan.stdout

    refused = apply(sandbox.url)

    assert refused.code == 1, refused.output
    # The apply it suggests repeats the --api-url given; `state mv` takes none.
    assert refused.stderr == REFUSAL.replace("URL", sandbox.url)
    assert SUMMARY.format(0, 0, 0, 1, 0) in refused.stdout
    assert len(names(sandbox)[NPS]) == 1 and len(sandbox.tasks) == 3
    assert sandbox.create_requests == 3
    assert "survey/nps-q3" in state().campaigns

    write({"_moved.yaml": "- {from: survey/nps-q3, to: survey/nps-q3-v2}\n"})  # the fix
    moved = run("plan", "--api-url", sandbox.url, "--detailed-exitcode")
    assert moved.code == 2, moved.output  # a move changes the state
    assert "1 to move, 1 drifted" in moved.stdout
    done = apply(sandbox.url)
    assert done.code == 0, done.output
    assert SUMMARY.format(0, 0, 1, 0, 0) in done.stdout
    assert len(sandbox.tasks) == 3 and sandbox.create_requests == 3
    entries = state().campaigns
    assert "survey/nps-q3" not in entries
    assert entries["survey/nps-q3-v2"].identity == names(sandbox)[NPS][0]
    assert run("check-remote", "--api-url", sandbox.url).code == 0


def test_allow_duplicate_creates_the_second_task_when_it_is_wanted(
    project: Path, sandbox: Sandbox
) -> None:
    assert apply(sandbox.url).code == 0
    rename_and_edit()

    result = apply(sandbox.url, "--allow-duplicate", "survey/nps-q3-v2")

    assert result.code == 0, result.output
    assert SUMMARY.format(1, 0, 0, 0, 0) in result.stdout
    assert len(names(sandbox)[NPS]) == 2 and len(sandbox.tasks) == 4


# --- 2. a replace, then check-remote; then a lost state ------------------------------------


def test_after_a_replace_check_remote_exits_0_and_a_lost_state_names_the_live_task(
    project: Path, sandbox: Sandbox
) -> None:
    assert apply(sandbox.url).code == 0
    old = state().campaigns["survey/nps-q3"].identity
    write({"survey/nps-q3.yaml": campaign(NPS, cps="1.04")})
    replaced = apply(sandbox.url, "--replace", "survey/nps-q3")
    assert replaced.code == 0, replaced.output
    new = state().campaigns["survey/nps-q3"].identity
    assert names(sandbox)[NPS] == [old, new] and len(sandbox.tasks) == 4

    checked = run("check-remote", "--api-url", sandbox.url)

    assert checked.code == 0, checked.output
    assert checked.stdout == (
        f"note: survey/nps-q3: replaced task {old} is still on the platform (BLANK); halt it "
        "there if it must stop calling\n"
        "check-remote: 0 difference(s), 4 remote task(s).\n"
    )

    STATE.unlink()  # the state is lost
    lost = apply(sandbox.url)
    assert lost.code == 1
    assert SUMMARY.format(0, 0, 0, 3, 0) in lost.stdout
    assert (
        f"If it is this campaign, run `reconcile import --api-url {sandbox.url} survey/nps-q3 "
        f"{new}` (the newest; "
        f"{old}: older or halted, probably tasks it replaced)"
    ) in lost.stderr
    assert len(sandbox.tasks) == 4 and sandbox.create_requests == 4
    drift = run("check-remote", "--api-url", sandbox.url)
    assert drift.code == 2
    assert f"+ survey/nps-q3: remote task {new}, {old} named {NPS!r}" in drift.stdout
    assert f"run `reconcile import --api-url {sandbox.url} survey/nps-q3 {new}`" in drift.stdout


# --- 3. flags that would do nothing ---------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--retry-pending", "fresh"], "--retry-pending fresh: fresh is not pending (in doubt)"),
        (["--allow-duplicate", "nothing"], "--allow-duplicate nothing: nothing is not created"),
        (["--allow-duplicate", "fresh"], "--allow-duplicate fresh: no guard flags fresh"),
        (["--target", "nope"], "--target nope: no campaign file and no state entry"),
        (
            ["--replace", "onboarding-welcome", "--target", "fresh"],
            "--replace onboarding-welcome: not among the --target keys",
        ),
    ],
    ids=["retry-not-pending", "allow-unknown", "allow-unflagged", "target", "replace-untargeted"],
)
def test_a_flag_key_that_would_do_nothing_is_refused_before_anything_is_sent(
    project: Path, sandbox: Sandbox, flags: list[str], message: str
) -> None:
    assert apply(sandbox.url).code == 0
    write({"onboarding-welcome.yaml": campaign("Welcome", cps="1.05"), "fresh.yaml": campaign("F")})
    before = STATE.read_bytes()

    result = apply(sandbox.url, *flags)

    assert result.code == 1, result.output
    assert message in result.stderr
    # Refused in the plan, or (a guard that needs the platform's list) once the list is read:
    # then the Apply line says that nothing was done.
    done = [line for line in result.stdout.splitlines() if line.startswith("Apply:")]
    assert done in ([], ["Apply: 0 created, 0 adopted, 0 moved, 0 refused, 0 in doubt."])
    assert len(sandbox.tasks) == 3 and sandbox.create_requests == 3
    assert STATE.read_bytes() == before


# --- 4. _moved.yaml lines that are not used --------------------------------------------------


def test_a_moved_yaml_typo_is_an_error_in_validate_or_plan_and_apply_sends_nothing(
    project: Path, sandbox: Sandbox
) -> None:
    assert apply(sandbox.url).code == 0
    Path("campaigns/survey/csat-callback.yaml").rename("campaigns/survey/csat-weekly.yaml")

    write({"_moved.yaml": "- {from: survey/csat-callback, to: survey/csat-weeky}\n"})
    no_file = run("validate")
    assert no_file.code == 1
    assert (
        "campaigns/_moved.yaml:1:36: error: [0].to: no campaign file has the key "
        "'survey/csat-weeky'; a move needs the new file"
    ) in no_file.stdout + no_file.stderr

    write({"_moved.yaml": "- {from: survey/csat-callbak, to: survey/csat-weekly}\n"})
    assert run("validate").code == 0  # every file is valid; only the state shows the typo
    typo = (
        "campaigns/_moved.yaml:1:3: error: from: neither 'survey/csat-callbak' nor "
        "'survey/csat-weekly' is in the state, so this move renames nothing (a typo?): did you "
        "mean 'survey/csat-callback'?"
    )
    plan = run("plan", "--api-url", sandbox.url)
    assert plan.code == 1 and typo in plan.stderr
    applied = apply(sandbox.url)
    assert applied.code == 1 and typo in applied.stderr
    assert len(sandbox.tasks) == 3 and sandbox.create_requests == 3


# --- 6. list answers in a shape this version does not know ---------------------------------


SHAPES = {
    "no-items": "a JSON object without `items` (its keys: count, data)",
    "items-not-list": "a JSON object whose `items` is an object, not a list",
    "items-not-objects": "`items` holding a string at [0], not task objects",
    "html": "an HTML page",
    "empty": "an empty body",
    "not-json": "a body that is not JSON",
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_list_in_an_unknown_shape_stops_apply_check_remote_and_import(
    project: Path, start_sandbox: StartSandbox, shape: str
) -> None:
    """As after a lost state: the tasks exist; read as "no tasks", apply would re-create all."""
    sandbox = start_sandbox(list_shape=shape)
    for name in ("Welcome", "CSAT callback", NPS):
        seed_task(sandbox, name)
    said = f"the Twin24 list endpoint answered with {SHAPES[shape]}"

    applied = apply(sandbox.url)
    assert applied.code == 1
    assert said in applied.stderr and "Nothing was created" in applied.stderr
    assert sandbox.create_requests == 0 and len(sandbox.tasks) == 3
    assert not STATE.exists()
    for command in (["check-remote"], ["import", "--all"]):
        result = run(*command, "--api-url", sandbox.url)
        assert result.code == 1 and said in result.stderr, (command, result.output)
    assert apply(sandbox.url, "--no-remote-check").code == 1  # never read as "no tasks"
    assert sandbox.create_requests == 0 and not STATE.exists()


def test_a_bare_list_of_tasks_is_read(project: Path, start_sandbox: StartSandbox) -> None:
    sandbox = start_sandbox(list_shape="bare")
    seed_task(sandbox, NPS)

    result = apply(sandbox.url)

    assert result.code == 1
    assert SUMMARY.format(2, 0, 0, 1, 0) in result.stdout
    assert "a task named 'NPS survey Q3 2030' already exists on the platform" in result.stderr
    assert len(names(sandbox)[NPS]) == 1 and len(sandbox.tasks) == 3


# --- 7. paging that does not add up -----------------------------------------------------------


def test_a_lost_state_behind_a_page_capped_list_creates_nothing(
    project: Path, start_sandbox: StartSandbox
) -> None:
    """Issue 12 case 7: pages capped at 2 (the issue's 100), the campaigns' tasks beyond the
    first page. Read until `count`, the guard sees them all: 0 creates, every reason printed."""
    sandbox = start_sandbox(page_cap=2)
    for number in range(4):
        seed_task(sandbox, f"Older task {number}")
    assert apply(sandbox.url).code == 0
    assert len(sandbox.tasks) == 7
    STATE.unlink()

    result = apply(sandbox.url)

    assert result.code == 1
    assert SUMMARY.format(0, 0, 0, 3, 0) in result.stdout
    assert result.stderr.count("already exists on the platform") == 3
    assert len(sandbox.tasks) == 7 and sandbox.create_requests == 3
    assert not STATE.exists()
    assert run("check-remote", "--api-url", sandbox.url).code == 2
    recovered = run("import", "--all", "--api-url", sandbox.url)
    assert recovered.code == 0 and "Imported 3 campaign(s)" in recovered.stdout
    assert run("plan", "--api-url", sandbox.url, "--detailed-exitcode").code == 0


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        ({"page_cap": 2, "ignore_page": True}, "page 1 brought no task that earlier pages did not"),
        ({"page_cap": 2, "repeat_page": 1}, "page 1 brought no task that earlier pages did not"),
        ({"count_extra": 3}, "its pages ended after 7 tasks, but its count says 10"),
    ],
    ids=["ignores-page", "repeats-a-page", "count-never-arrives"],
)
def test_pages_that_do_not_add_up_stop_apply_after_a_lost_state(
    project: Path, start_sandbox: StartSandbox, faults: dict[str, Any], reason: str
) -> None:
    sandbox = start_sandbox(**faults)
    for number in range(4):
        seed_task(sandbox, f"Older task {number}")
    for name in ("Welcome", "CSAT callback", NPS):  # applied before the state was lost
        seed_task(sandbox, name)

    result = apply(sandbox.url)

    assert result.code == 1
    assert "cannot be read completely: " + reason in result.stderr
    assert "Nothing was created" in result.stderr
    assert sandbox.create_requests == 0 and len(sandbox.tasks) == 7
    assert not STATE.exists()
    checked = run("check-remote", "--api-url", sandbox.url)
    assert checked.code == 1 and reason in checked.stderr


# --- 8, 9, 10. in-doubt creates: moved, and on a platform 15 minutes behind ----------------


def test_a_pending_entry_moved_by_moved_yaml_is_moved_and_resolved(
    project: Path, sandbox: Sandbox
) -> None:
    sandbox.drop_next(1)  # the first create in key order: onboarding-welcome
    first = apply(sandbox.url, "--parallelism", "1")
    assert first.code == 1 and SUMMARY.format(2, 0, 0, 0, 1) in first.stdout
    Path("campaigns/onboarding-welcome.yaml").rename("campaigns/welcome.yaml")
    write({"_moved.yaml": "- {from: onboarding-welcome, to: welcome}\n", "new.yaml": campaign("N")})

    plan = run("plan", "--api-url", sandbox.url, "--detailed-exitcode")
    assert plan.code == 2, plan.output
    assert "? in doubt welcome" in plan.stdout
    assert "Its pending state entry is renamed from onboarding-welcome first." in plan.stdout
    assert "Plan: 1 to create, 0 to replace, 1 to move, 0 drifted" in plan.stdout

    result = apply(sandbox.url)

    assert result.code == 0, result.output
    assert SUMMARY.format(1, 1, 1, 0, 0) in result.stdout
    assert all(len(ids) == 1 for ids in names(sandbox).values()) and len(sandbox.tasks) == 4
    entries = state().campaigns
    assert sorted(entries) == ["new", "survey/csat-callback", "survey/nps-q3", "welcome"]
    assert entries["welcome"].identity == names(sandbox)["Welcome"][0]
    assert run("plan", "--api-url", sandbox.url, "--detailed-exitcode").code == 0


def test_an_in_doubt_create_on_a_platform_15_minutes_behind_is_adopted(
    project: Path, start_sandbox: StartSandbox
) -> None:
    """Issue 12 case 9: its createdAt is 15 minutes before our pending time; with a fixed
    10-minute allowance the lookup missed it and suggested --retry-pending (a duplicate)."""
    sandbox = start_sandbox(clock_skew=-900)
    sandbox.drop_next(1)
    first = apply(sandbox.url, "--parallelism", "1")
    assert first.code == 1 and state().campaigns["onboarding-welcome"].status == "pending"
    assert len(sandbox.tasks) == 3  # it was created

    result = apply(sandbox.url, RECONCILE_PENDING_GRACE="0")

    assert result.code == 0, result.output
    assert "--retry-pending" not in result.output
    [identity] = names(sandbox)["Welcome"]
    assert f"? onboarding-welcome: found on the platform as {identity}; adopted" in result.stdout
    assert SUMMARY.format(0, 1, 0, 0, 0) in result.stdout
    assert len(sandbox.tasks) == 3 and sandbox.create_requests == 3
    assert state().campaigns["onboarding-welcome"].identity == identity


def test_an_in_doubt_plan_exits_2_with_detailed_exitcode(project: Path, sandbox: Sandbox) -> None:
    sandbox.fail_next(1, status=503)  # nothing created, the outcome unknown
    assert apply(sandbox.url, "--parallelism", "1").code == 1
    plan = run("plan", "--api-url", sandbox.url, "--detailed-exitcode")
    assert plan.code == 2 and "0 to create" in plan.stdout and "1 in doubt" in plan.stdout
