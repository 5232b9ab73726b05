"""Issue 15 items 4-6 through the CLI: progress and the short plan, bulk `state rm` and
`show PLANFILE`, and the wording fixes (the confirmation prompt, a corrupt state's advice,
`state push --help`, lock files left behind).

In-process through `main` (tests/inproc.py), against the embedded sandbox where an API is
needed. Item 1 (hints) is in test_hints.py, item 3 (file arguments) in test_cli_validate.py,
test_fmt.py and test_precommit.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click.testing
import pytest
from conftest import WriteFiles, edit
from inproc import run

from reconciler import __version__
from reconciler.state.model import loads

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_STATE = Path(".reconcile/sandbox.state.json")
STATE = Path("reconcile.state.json")
LOCK = Path("reconcile.state.json.lock")


def campaign(name: str) -> str:
    return edit("name: Spring promo", f"name: {name}")


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """click's test streams claim to be a terminal."""
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True)


# --- item 4: progress and the short plan ----------------------------------------------------


def test_apply_draws_its_progress_on_a_terminal(
    write_campaigns: WriteFiles, tty: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TERM", raising=False)
    write_campaigns({f"c{i}.yaml": campaign(f"C{i}") for i in range(3)})
    result = run("apply", "--sandbox", "--auto-approve", "--rate", "10", "--parallelism", "1")
    assert result.code == 0, result.output
    out = result.stdout
    for n, key in enumerate(["c0", "c1", "c2"], start=1):
        assert f"\r\x1b[K[{n}/3] created {key}" in out
    assert re.search(r"\[\d/3\] [^\r]*waiting 0\.\d s for --rate 10/s", out)
    # the outcome lines are still there, each on a line of its own, and the status is cleared
    lines = [line.rsplit("\r\x1b[K", 1)[-1] for line in out.split("\n")]
    assert sum(bool(re.match(r"\+ c\d: created ", line)) for line in lines) == 3
    assert out.endswith("\r\x1b[KApply: 3 created, 0 adopted, 0 moved, 0 refused, 0 in doubt.\n")


def test_apply_prints_a_line_per_outcome_elsewhere(write_campaigns: WriteFiles) -> None:
    write_campaigns({f"c{i}.yaml": campaign(f"C{i}") for i in range(3)})
    result = run("apply", "--sandbox", "--auto-approve", "--rate", "0")
    assert result.code == 0, result.output
    assert "\r" not in result.stdout and "\x1b" not in result.stdout
    created = re.findall(r"^\+ (c\d): created \S+$", result.stdout, re.M)
    assert sorted(created) == ["c0", "c1", "c2"]


def test_plan_summary_is_one_line_per_action(write_campaigns: WriteFiles) -> None:
    """Issue 15: a 301-create text plan is 9,000 lines with no summary-only form."""
    write_campaigns({f"c{i:03}.yaml": campaign(f"C{i}") for i in range(301)})
    full = run("plan", "--sandbox")
    short = run("plan", "--sandbox", "--summary")
    assert (full.code, short.code) == (0, 0)
    lines = short.stdout.splitlines()
    creates = [line for line in lines if line.startswith("+ create ")]
    assert len(creates) == 301 and creates[0] == "+ create c000  (campaigns/c000.yaml)"
    assert lines[0].startswith("Who gets called: 301 new task(s)")  # the banner first
    assert lines[-1] == (
        "Plan: 301 to create, 0 to replace, 0 to move, 0 drifted, 0 orphaned, 0 in doubt."
    )
    assert len(lines) < 320 and len(full.stdout.splitlines()) > 15 * len(lines)
    assert "cps:" not in short.stdout  # no payloads


def test_plan_summary_flags_a_probable_rename_on_its_line(write_campaigns: WriteFiles) -> None:
    root = write_campaigns({"a.yaml": campaign("A")})
    assert run("apply", "--sandbox", "--auto-approve", "--rate", "0").code == 0
    (root / "a.yaml").rename(root / "b.yaml")
    short = run("plan", "--sandbox", "--summary")
    assert short.stdout.splitlines()[-4:-2] == [
        "! orphan a  (campaigns/a.yaml)",
        "+ create b  (campaigns/b.yaml)  PROBABLE RENAME of a: apply refuses it",
    ]


def test_summary_is_for_the_text_format_only(write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": campaign("A")})
    result = run("plan", "--summary", "--format", "json")
    assert result.code == 1 and result.stdout == ""
    assert "--summary shortens the text plan; --format json is always whole" in result.stderr


# --- item 5: bulk state rm, show PLANFILE ---------------------------------------------------


@pytest.fixture
def applied(write_campaigns: WriteFiles) -> Path:
    """Four campaigns applied to the sandbox."""
    root = write_campaigns({f"{k}.yaml": campaign(k.upper()) for k in ("a", "b", "c", "d")})
    assert run("apply", "--sandbox", "--auto-approve", "--rate", "0").code == 0
    return root


def sandbox_state() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SANDBOX_STATE.read_text(encoding="utf-8"))
    return data


def test_state_rm_forgets_several_keys_in_one_write(applied: Path) -> None:
    serial = sandbox_state()["serial"]
    result = run("state", "rm", "--sandbox", "a", "c", "a")
    assert result.code == 0, result.output
    assert result.stdout == (
        "Removed a from the state.\nRemoved c from the state.\n"
        f"Removed 2 entries (serial {serial + 1}); the tasks stay on the platform.\n"
    )
    state = sandbox_state()
    assert state["serial"] == serial + 1
    assert sorted(state["campaigns"]) == ["b", "d"]


def test_state_rm_with_one_unknown_key_removes_none(applied: Path) -> None:
    before = SANDBOX_STATE.read_bytes()
    result = run("state", "rm", "--sandbox", "a", "nope", "b")
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == ("error: no state entry 'nope'; see `reconcile state list --sandbox`\n")
    assert SANDBOX_STATE.read_bytes() == before


def test_state_rm_refuses_a_create_in_doubt_unless_forced(applied: Path) -> None:
    """Forgetting a pending entry lets the next apply create it again while its task may
    exist (found by an attack: `state rm` said nothing)."""
    data = sandbox_state()
    data["campaigns"]["b"].update(status="pending", identity=None)
    SANDBOX_STATE.write_text(json.dumps(data, indent=2), encoding="utf-8")
    before = SANDBOX_STATE.read_bytes()

    result = run("state", "rm", "--sandbox", "a", "b")

    assert (result.code, result.stdout) == (1, "")
    assert result.stderr.startswith("error: b: a create in doubt (sent ")
    assert "Run `reconcile apply --sandbox` first" in result.stderr
    [forced] = re.findall(r"`(reconcile state rm [^`]*)`", result.stderr)
    assert forced == "reconcile state rm --sandbox --force a b"
    assert SANDBOX_STATE.read_bytes() == before
    assert run(*forced.split()[1:]).code == 0  # as printed
    assert sorted(sandbox_state()["campaigns"]) == ["c", "d"]


@pytest.mark.parametrize(
    ("new", "why"),
    [
        ("", "it is empty"),
        ("evil\nkey`<b>", "it has a character no campaign key may hold"),
        ("x\u202eb", "it has a character no campaign key may hold"),
        ("../a", "it is not a relative path below the campaigns folder"),
        ("/a", "it is not a relative path below the campaigns folder"),
        ("x//a", "it is not a relative path below the campaigns folder"),
        ("_drafts/a", "a name or folder starting with _ or . is never read as a campaign"),
        ("survey/a.yaml", "a key is the file's path without .yaml (survey/a)"),
    ],
)
def test_state_mv_refuses_a_new_key_no_campaign_can_have(applied: Path, new: str, why: str) -> None:
    before = SANDBOX_STATE.read_bytes()
    result = run("state", "mv", "--sandbox", "a", new)
    assert (result.code, result.stdout) == (1, "")
    assert why in result.stderr and "nothing was changed" in result.stderr
    assert "\n" not in result.stderr.rstrip("\n")  # the key is shown escaped, on one line
    assert SANDBOX_STATE.read_bytes() == before


@pytest.mark.parametrize("value", ["nan", "NaN", "-1"])
def test_lock_timeout_must_be_a_number_of_seconds(applied: Path, value: str) -> None:
    """`--lock-timeout nan` passed click's range check and waited forever."""
    result = run("state", "rm", "--sandbox", "--lock-timeout", value, "a")
    assert result.code == 1 and "Invalid value for '--lock-timeout'" in result.stderr
    assert "a" in sandbox_state()["campaigns"]


def test_show_prints_a_saved_plan_as_plan_did_without_state_or_campaigns(
    applied: Path,
) -> None:
    (applied / "a.yaml").write_text(campaign("A").replace("cps: 1.03", "cps: 1.05"), "utf-8")
    (applied / "e.yaml").write_text(campaign("E"), "utf-8")
    (applied / "d.yaml").unlink()
    made = {
        fmt: run("plan", "--sandbox", "--format", fmt, "--out", "plan.json")
        for fmt in ("text", "markdown", "json")
    }
    short = run("plan", "--sandbox", "--summary")
    for path in (applied, Path(".reconcile")):  # show reads neither the campaigns nor a state
        for file in sorted(path.rglob("*"), reverse=True):
            file.unlink() if file.is_file() else file.rmdir()
        path.rmdir()
    for fmt, plan in made.items():
        shown = run("show", "plan.json", "--format", fmt)
        assert shown.code == 0, shown.output
        assert shown.stdout == plan.stdout, fmt
        assert shown.stderr == (
            "plan.json: a plan for sandbox:embedded, made by reconcile "
            f"{__version__} against state serial 1 (lineage "
            f"{json.loads(made['json'].stdout)['state']['lineage']}).\n"
        )
    assert run("show", "plan.json", "--summary").stdout == short.stdout
    # its advice carries --sandbox: the plan was made for the sandbox
    assert "`reconcile state rm --sandbox d`" in made["text"].stdout


PLAN_HEAD = (  # a saved plan's head whose binding has every field `planfile.check_shape` wants
    b'{"kind": "reconcile-plan", "format_version": 1, "binding": {"campaigns": {}, '
    b'"lineage": null, "serial": 0, "api_url": "sandbox:embedded", "tool_version": "0", '
    b'"schema_version": 1, "targets": [], "replace": [], "max_creates": 25}, '
    b'"state": {"lineage": null, "serial": 0}, '
)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"kind": "reconcile-plan", ', "plan.json: not a reconcile plan file (not valid JSON)"),
        (
            b'{"version": 1, "lineage": "x", "serial": 1, "campaigns": {}}\n',
            "made by `reconcile plan --out`",
        ),
        (
            PLAN_HEAD + b'"actions": [{"key": "a", "action": "explode", "source": null, '
            b'"fingerprint": null, "diff": []}]}',
            "plan.json: not a usable plan file: `actions[0].action` must be one of create, "
            "replace, drift, moved, in_doubt, orphan, unchanged",
        ),
        (
            PLAN_HEAD + b'"actions": [{"key": "a", "action": "orphan", "source": null, '
            b'"fingerprint": null, "diff": "x", "payload": {}}]}',
            "(actions[0].diff: expected a list)",
        ),
        (
            b'{"kind": "reconcile-plan", "format_version": 1, "binding": {}, "actions": []}',
            "plan.json: not a usable plan file: `binding.campaigns` is missing",
        ),
    ],
    ids=["truncated", "a-state-file", "unknown-action", "bad-diff", "bad-binding"],
)
def test_show_refuses_a_broken_or_foreign_plan_file(
    workdir: Path, content: bytes, message: str
) -> None:
    Path("plan.json").write_bytes(content)
    result = run("show", "plan.json")
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "internal error" not in result.stderr


def test_a_tampered_plan_is_refused_with_a_plan_command_that_works_as_printed(
    applied: Path,
) -> None:
    assert run("plan", "--sandbox", "--out", "p.json").code == 0
    body = json.loads(Path("p.json").read_text(encoding="utf-8"))
    body["binding"]["targets"] = "a"
    Path("p.json").write_text(json.dumps(body), encoding="utf-8")

    refused = run("apply", "--sandbox", "p.json")

    assert refused.code == 1 and "`binding.targets` must be a list" in refused.stderr
    [again] = re.findall(r"`(reconcile plan [^`]*)`", refused.stderr)
    assert again == "reconcile plan --sandbox --out p.json"
    assert run(*again.split()[1:]).code == 0  # as printed: the plan is made again
    assert run("apply", "--sandbox", "--auto-approve", "p.json").code == 0


def test_apply_refuses_a_saved_plan_whose_payload_was_changed(applied: Path) -> None:
    """`show` printed the changed payload while apply sent the campaign file's."""
    edit_file = Path("campaigns/a.yaml")
    edit_file.write_text(campaign("A2"), encoding="utf-8")
    assert run("plan", "--sandbox", "--replace", "a", "--out", "p.json").code == 0
    body = json.loads(Path("p.json").read_text(encoding="utf-8"))
    [replace] = [a for a in body["actions"] if a["key"] == "a"]
    replace["payload"]["name"] = "Harmless test"
    Path("p.json").write_text(json.dumps(body), encoding="utf-8")
    before = SANDBOX_STATE.read_bytes()

    shown, applied_plan = (
        run("show", "p.json"),
        run("apply", "--sandbox", "--auto-approve", "p.json"),
    )

    for result in (shown, applied_plan):
        assert result.code == 1 and "payload` does not match its fingerprint" in result.stderr
    assert SANDBOX_STATE.read_bytes() == before


def _tamper_create_diff(body: dict[str, Any]) -> None:
    create = next(a for a in body["actions"] if a["action"] == "create")
    replace = next(a for a in body["actions"] if a["action"] == "replace")
    create["diff"] = replace["diff"]  # `show` prints a change of name where a create is


def _tamper_replace_diff(body: dict[str, Any]) -> None:
    next(a for a in body["actions"] if a["action"] == "replace")["diff"] = []


def _tamper_duplicate(body: dict[str, Any]) -> None:
    body["actions"].append(next(a for a in body["actions"] if a["action"] == "create"))


def _tamper_guard(body: dict[str, Any]) -> None:
    create = next(a for a in body["actions"] if a["action"] == "create")
    create.update(duplicate_of="a", duplicate_by="name")  # a create shown as refused


def _tamper_source(body: dict[str, Any]) -> None:
    next(a for a in body["actions"] if a["action"] == "create")["source"] = "campaigns/x.yaml"


def _tamper_identity(body: dict[str, Any]) -> None:
    next(a for a in body["actions"] if a["action"] == "replace")["identity"] = "another"


def _tamper_state(body: dict[str, Any]) -> None:
    body["state"]["serial"] += 5


def _tamper_summary(body: dict[str, Any]) -> None:
    body["summary"]["create"] += 1


@pytest.mark.parametrize(
    "tamper",
    [
        _tamper_create_diff,
        _tamper_replace_diff,
        _tamper_duplicate,
        _tamper_guard,
        _tamper_source,
        _tamper_identity,
        _tamper_state,
        _tamper_summary,
    ],
    ids=lambda f: f.__name__[len("_tamper_") :],
)
def test_apply_refuses_a_saved_plan_that_shows_what_it_would_not_do(
    applied: Path, tamper: Any
) -> None:
    """An attack: a plan file edited so that `show` printed a harmless diff, an extra create,
    a guard, another source or state, while `apply` of the file carried out the real plan."""
    Path("campaigns/a.yaml").write_text(campaign("A2"), encoding="utf-8")
    Path("campaigns/e.yaml").write_text(campaign("E"), encoding="utf-8")
    assert run("plan", "--sandbox", "--replace", "a", "--out", "p.json").code == 0
    body = json.loads(Path("p.json").read_text(encoding="utf-8"))
    tamper(body)
    Path("p.json").write_text(json.dumps(body), encoding="utf-8")
    before = SANDBOX_STATE.read_bytes()

    result = run("apply", "--sandbox", "--auto-approve", "p.json")

    assert result.code == 1, result.output
    assert "is stale: the file holds what the plan made now does not (" in result.stderr
    assert SANDBOX_STATE.read_bytes() == before


def test_apply_refuses_a_saved_plan_made_for_another_time_zone(applied: Path) -> None:
    Path("campaigns/e.yaml").write_text(campaign("E"), encoding="utf-8")
    assert run("plan", "--sandbox", "--out", "p.json").code == 0
    body = json.loads(Path("p.json").read_text(encoding="utf-8"))
    body["binding"]["timezone"] = "Pacific/Kiritimati"
    Path("p.json").write_text(json.dumps(body), encoding="utf-8")

    result = run("apply", "--sandbox", "--auto-approve", "p.json")

    assert result.code == 1
    assert "made for the time zone Pacific/Kiritimati, this run reads Europe/Moscow" in (
        result.stderr
    )


# --- item 6: wording ----------------------------------------------------------------------


def test_the_confirmation_prompt_shows_no_empty_default(
    write_campaigns: WriteFiles, tty: None
) -> None:
    write_campaigns({"a.yaml": campaign("A")})
    runner = click.testing.CliRunner()
    from reconciler.cli.main import cli

    result = runner.invoke(cli, ["apply", "--sandbox"], input="no\n")
    assert result.exit_code == 1
    assert "Do you want to create these tasks? Only `yes` is accepted: no\n" in result.stdout
    assert "[]" not in result.stdout


def test_a_corrupt_state_names_a_backup_only_when_there_is_one(workdir: Path) -> None:
    STATE.write_text('{"version": 1,', encoding="utf-8")
    result = run("state", "list")
    assert result.code == 1
    assert result.stderr.endswith(
        "it was left untouched: restore it from git (there is no backup file)\n"
    )
    Path("reconcile.state.json.backup").write_text("{}", encoding="utf-8")
    again = run("state", "list")
    assert again.stderr.endswith(
        "it was left untouched: restore it from git or from reconcile.state.json.backup\n"
    )


def test_state_push_help_says_what_the_readme_says() -> None:
    result = run("state", "push", "--help")
    helped = " ".join(result.stdout.split())
    assert "into an empty PostgreSQL workspace" in helped
    assert "older serial" not in helped  # only an empty workspace is filled (spec 8)
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert "`state push` only fills an empty workspace" in readme


def test_failed_commands_leave_no_lock_file(write_campaigns: WriteFiles) -> None:
    write_campaigns({"a.yaml": campaign("A")})
    rm = run("state", "rm", "a")
    assert rm.code == 1 and "no state entry 'a'" in rm.stderr
    assert not LOCK.exists() and not STATE.exists()
    no_token = run("apply", "--auto-approve", TWIN24_TOKEN="")
    assert no_token.code == 1 and "no Twin24 token" in no_token.stderr
    assert sorted(p.name for p in Path(".").iterdir()) == ["campaigns"]
    done = run("apply", "--sandbox", "--auto-approve", "--rate", "0")
    assert done.code == 0
    assert sorted(p.name for p in Path(".reconcile").iterdir()) == [
        "sandbox.state.json",
        "sandbox.tasks.json",
    ]
    assert loads(SANDBOX_STATE.read_text("utf-8"), "s").serial == 1
