"""`reconcile import KEY IDENTITY` and `import --all` (spec 9.2, issue 12 case 5, issue 13
item 7): the task is read on the platform first. In-process, against the sandbox over
loopback; every test counts the server's tasks."""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path

import pytest
from conftest import StartSandbox
from inproc import STATE, TOKEN, apply, campaign, names, run, seed_task, state, write

from reconciler.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def start_sandbox(sandboxes: StartSandbox) -> StartSandbox:
    """Loopback sandboxes that take this module's token (conftest's `sandboxes`)."""
    return partial(sandboxes, token=TOKEN)


@pytest.fixture
def sandbox(start_sandbox: StartSandbox) -> Sandbox:
    return start_sandbox()


@pytest.fixture
def project(workdir: Path) -> Path:
    write({"welcome.yaml": campaign("Welcome"), "survey/nps.yaml": campaign("NPS survey")})
    return workdir


def test_import_then_plan_of_the_example_campaigns_is_unchanged(
    workdir: Path, sandbox: Sandbox
) -> None:
    shutil.copytree(REPO / "campaigns", workdir / "campaigns")
    before = json.loads(run("plan", "--format", "json").stdout)
    keys = [a["key"] for a in before["actions"]]
    assert keys and all(a["action"] == "create" for a in before["actions"])
    ids = {a["key"]: seed_task(sandbox, a["payload"]["name"]) for a in before["actions"]}
    for number, key in enumerate(keys, start=1):
        result = run("import", key, ids[key], "--api-url", sandbox.url)
        assert (result.code, result.stderr) == (0, ""), result.stderr
        assert result.stdout == f"Imported {key} as {ids[key]} (serial {number}).\n"
    text = run("plan", "--api-url", sandbox.url, "--detailed-exitcode")
    assert (text.code, text.stderr) == (0, "")
    assert "No changes. The platform matches the campaign files." in text.stdout
    current = state()
    assert current.api_url == sandbox.url
    assert {k: e.identity for k, e in current.campaigns.items()} == ids
    assert len(sandbox.tasks) == len(keys) and sandbox.create_requests == 0


def test_an_identity_the_platform_does_not_list_is_refused(project: Path, sandbox: Sandbox) -> None:
    """Issue 12 case 5: `import onboarding-welcome totally-bogus-id` exited 0."""
    seed_task(sandbox, "Welcome")

    result = run("import", "welcome", "totally-bogus-id", "--api-url", sandbox.url)

    assert result.code == 1
    assert result.stderr == (
        "error: the platform does not list a task totally-bogus-id (1 task(s) listed): check "
        "the identity and the API URL; nothing was changed\n"
    )
    assert not STATE.exists() and len(sandbox.tasks) == 1


def test_a_task_with_another_name_is_refused_unless_forced(project: Path, sandbox: Sandbox) -> None:
    other = seed_task(sandbox, "Somebody else's campaign")

    refused = run("import", "welcome", other, "--api-url", sandbox.url)
    assert refused.code == 1
    assert (
        f'task {other} is named "Somebody else\'s campaign" on the platform, but welcome is '
        "named 'Welcome': it is probably another campaign's task. Check the identity, or pass "
        "--force to import it anyway; nothing was changed"
    ) in refused.stderr
    assert not STATE.exists()

    forced = run("import", "welcome", other, "--force", "--api-url", sandbox.url)
    assert forced.code == 0, forced.output
    assert "warning: task" in forced.stderr and "imported anyway (--force)" in forced.stderr
    assert state().campaigns["welcome"].identity == other
    assert len(sandbox.tasks) == 1


def test_an_identity_the_state_records_for_another_key_is_refused(
    project: Path, sandbox: Sandbox
) -> None:
    """Issue 13 item 7: one task cannot be two campaigns (current or replaced)."""
    assert apply(sandbox.url).code == 0
    taken = state().campaigns["survey/nps"].identity
    assert taken is not None
    assert run("state", "rm", "welcome").code == 0
    before = STATE.read_bytes()

    result = run("import", "welcome", taken, "--force", "--api-url", sandbox.url)

    assert result.code == 1
    assert result.stderr == (
        f"error: task {taken} is already recorded in the state for survey/nps; one task cannot "
        "be two campaigns' (check the identity; nothing was changed)\n"
    )
    assert STATE.read_bytes() == before and len(sandbox.tasks) == 2


def test_a_task_another_key_replaced_is_refused_too(project: Path, sandbox: Sandbox) -> None:
    assert apply(sandbox.url).code == 0
    old = state().campaigns["survey/nps"].identity
    write({"survey/nps.yaml": campaign("NPS survey", cps="1.04")})
    assert apply(sandbox.url, "--replace", "survey/nps").code == 0
    assert run("state", "rm", "welcome").code == 0

    result = run("import", "welcome", str(old), "--force", "--api-url", sandbox.url)

    assert result.code == 1
    assert f"task {old} is already recorded in the state as a task survey/nps replaced" in (
        result.stderr
    )
    assert len(sandbox.tasks) == 3


def test_import_all_adopts_exact_names_and_lists_what_it_cannot_decide(
    project: Path, sandbox: Sandbox
) -> None:
    """The lost-state recovery: one task per campaign name is adopted; a campaign whose name
    two tasks have is skipped and listed (exit 1), and apply still refuses to re-create it."""
    write({"third.yaml": campaign("Third")})
    welcome = seed_task(sandbox, "Welcome")
    first, second = seed_task(sandbox, "NPS survey"), seed_task(sandbox, "NPS survey")
    seed_task(sandbox, "Unrelated task")

    result = run("import", "--all", "--api-url", sandbox.url)

    assert result.code == 1, result.output
    assert result.stdout == (
        f"Imported welcome as {welcome}.\n"
        "Imported 1 campaign(s) (serial 1); 1 skipped (each said why, as an error); "
        "4 remote task(s) read.\n"
    )
    assert result.stderr.startswith(
        "error: survey/nps: 2 tasks named 'NPS survey' are on the platform ("
    )
    assert {first, second} <= set(result.stderr.split("(")[1].split(")")[0].split(", "))
    assert f"Adopt the right one: run `reconcile import --api-url {sandbox.url} survey/nps " in (
        result.stderr
    )
    assert {k: e.identity for k, e in state().campaigns.items()} == {"welcome": welcome}

    applied = apply(sandbox.url)  # third is created; survey/nps is refused, never duplicated
    assert applied.code == 1
    assert "Apply: 1 created, 0 adopted, 0 moved, 1 refused, 0 in doubt." in applied.stdout
    assert len(names(sandbox)["NPS survey"]) == 2 and len(sandbox.tasks) == 5

    again = run("import", "--all", "--api-url", sandbox.url)  # nothing left it can decide
    assert again.code == 1 and "Imported 0 campaign(s)" in again.stdout


def test_import_all_with_nothing_to_adopt_writes_nothing(project: Path, sandbox: Sandbox) -> None:
    result = run("import", "--all", "--api-url", sandbox.url)
    assert result.code == 0, result.output
    assert "Imported 0 campaign(s) (serial 0); 0 skipped" in result.stdout
    assert not STATE.exists()


def test_import_sandbox_reads_the_embedded_sandbox(project: Path) -> None:
    tasks = Path(".reconcile/sandbox.tasks.json")
    assert run("apply", "--sandbox", "--auto-approve", "--rate", "0").code == 0
    sandbox_state = Path(".reconcile/sandbox.state.json")
    recorded = state(sandbox_state).campaigns
    sandbox_state.unlink()

    lost = run("apply", "--sandbox", "--auto-approve", "--rate", "0")
    assert lost.code == 1 and "Apply: 0 created, 0 adopted, 0 moved, 2 refused" in lost.stdout
    result = run("import", "--sandbox", "--all")

    assert result.code == 0, result.output
    assert {k: e.identity for k, e in state(sandbox_state).campaigns.items()} == {
        k: e.identity for k, e in recorded.items()
    }
    assert len(json.loads(tasks.read_text(encoding="utf-8"))["tasks"]) == 2
    assert not STATE.exists()  # never the real state
    assert run("plan", "--sandbox", "--detailed-exitcode").code == 0


def test_import_refuses_a_state_of_another_api(project: Path, sandbox: Sandbox) -> None:
    identity = seed_task(sandbox, "Welcome")
    assert run("import", "welcome", identity, "--api-url", sandbox.url).code == 0
    assert run("state", "rm", "welcome").code == 0
    before = STATE.read_bytes()

    result = run("import", "welcome", identity, "--api-url", "https://two.example/api/v1")

    assert result.code == 1
    assert f"the state belongs to {sandbox.url}, not https://two.example/api/v1" in result.stderr
    assert STATE.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import", "welcome"], "Missing argument 'IDENTITY' (or pass --all)."),
        (["import"], "Missing argument 'KEY' (or pass --all)."),
        (["import", "--all", "welcome"], "--all takes no KEY, IDENTITY or --force"),
        (["import", "--all", "--force"], "--all takes no KEY, IDENTITY or --force"),
    ],
)
def test_import_usage_errors_exit_1(project: Path, args: list[str], message: str) -> None:
    result = run(*args)
    assert result.code == 1 and message in result.stderr
    assert not STATE.exists()


def test_local_refusals_need_no_token_and_no_request(project: Path, sandbox: Sandbox) -> None:
    identity = seed_task(sandbox, "Welcome")
    assert run("import", "welcome", identity, "--api-url", sandbox.url).code == 0

    again = run("import", "welcome", "other", "--api-url", sandbox.url, TWIN24_TOKEN="")

    assert again.code == 1
    assert f"welcome is already in the state as {identity}" in again.stderr
    assert "token" not in again.stderr
