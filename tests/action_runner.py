"""Run the campaign workflows' jobs here, as a GitHub runner would, for tests/test_workflows.py.

A campaign workflow's job is a checkout and one `uses: ./` step: the composite action in
`action.yml`. `Job` expands that step into the action's own steps and runs their `run:` scripts
with bash as GitHub does (`bash --noprofile --norc -eo pipefail`), in a temporary git repo, with
GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and GITHUB_ENV files, the action's inputs computed from the
caller's `with:` (and the inputs' defaults), and every `if:` evaluated by `evaluate`, a small
implementation of GitHub's expression language (contexts, `==`, `!=`, `!`, `&&`, `||`,
parentheses and the status functions; anything else fails the test, so that no condition is
silently misread). `uses:` steps are GitHub's and are not run; the job records whether each
would have run. The "Install reconcile" step is replaced by this checkout's `reconcile` (its
script is run on its own, with fakes, by the tests).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler import __version__

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
ACTION = ROOT / "action.yml"
BIN = Path(sys.executable).parent  # this checkout's `reconcile` lives beside its python
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.DOTALL)
STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")


def load_yaml(path: Path) -> dict[str, Any]:
    data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: not a mapping"
    return data


@functools.cache
def load(name: str) -> dict[str, Any]:
    """A workflow of .github/workflows, parsed (once: do not change it, copy it)."""
    return load_yaml(WORKFLOWS / name)


@functools.cache
def action() -> dict[str, Any]:
    """action.yml, parsed (once: do not change it, copy it)."""
    return load_yaml(ACTION)


def action_step(title: str) -> dict[str, Any]:
    found = [s for s in action()["runs"]["steps"] if s.get("name") == title]
    assert len(found) == 1, f"action.yml: exactly one step named {title!r}"
    return found[0]


# --- GitHub's expression language, the part the workflows use ------------------------------

TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||[!().,\[\]])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)


def tokens(text: str) -> list[tuple[str, str]]:
    found, at = [], 0
    text = text.strip()
    while at < len(text):
        match = TOKEN.match(text, at)
        if match is None or match.end() == at:
            pytest.fail(f"the test cannot read the expression `{text}` at {text[at:]!r}")
        assert match.lastgroup is not None
        found.append((match.lastgroup, match.group(match.lastgroup)))
        at = match.end()
    return found


@dataclass
class Status:
    """What the status functions answer in the scope being evaluated."""

    failed: bool = False
    cancelled: bool = False


class Evaluator:
    """Recursive descent over `tokens`; values are str, float, bool, None or dicts."""

    def __init__(self, text: str, contexts: Mapping[str, Any], status: Status) -> None:
        self.text, self.items, self.at = text, tokens(text), 0
        self.contexts, self.status = contexts, status

    def peek(self) -> str | None:
        return self.items[self.at][1] if self.at < len(self.items) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.items) or (expected and self.items[self.at][1] != expected):
            pytest.fail(f"the test cannot read the expression `{self.text}`")
        self.at += 1
        return self.items[self.at - 1]

    def run(self) -> Any:
        value = self.either()
        if self.at != len(self.items):
            pytest.fail(f"the test cannot read the expression `{self.text}`")
        return value

    def either(self) -> Any:
        value = self.both()
        while self.peek() == "||":
            self.take()
            right = self.both()
            value = value if truthy(value) else right
        return value

    def both(self) -> Any:
        value = self.compare()
        while self.peek() == "&&":
            self.take()
            right = self.compare()
            value = right if truthy(value) else value
        return value

    def compare(self) -> Any:
        value = self.unary()
        if self.peek() in ("==", "!="):
            negate = self.take()[1] == "!="
            return equal(value, self.unary()) != negate
        return value

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not truthy(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if text == "(":
            value = self.either()
            self.take(")")
            return value
        if kind != "name":
            pytest.fail(f"the test cannot read the expression `{self.text}`")
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        if self.peek() == "(":
            return self.call(text)
        if text not in self.contexts:
            pytest.fail(f"`{self.text}`: the test has no `{text}` context")
        value, path = self.contexts[text], text
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                key = self.take()[1]
            else:
                key = str(self.either())
                self.take("]")
            value, path = lookup(value, key, f"{path}.{key}"), f"{path}.{key}"
        return value

    def call(self, name: str) -> Any:
        self.take("(")
        self.take(")")
        if name not in STATUS_FUNCTIONS:
            pytest.fail(f"`{self.text}`: the test does not implement {name}()")
        return {
            "success": not self.status.failed and not self.status.cancelled,
            "failure": self.status.failed,
            "always": True,
            "cancelled": self.status.cancelled,
        }[name]


class Strict(dict[str, Any]):
    """A context whose missing keys fail the test (a typo must not read as empty)."""


def lookup(value: Any, key: str, path: str) -> Any:
    if isinstance(value, Strict) and key not in value:
        pytest.fail(f"no test value for `{path}`: add it to the test's contexts")
    return value.get(key) if isinstance(value, dict) else None


def truthy(value: Any) -> bool:
    return value not in (None, False, "", 0, 0.0)


def equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()  # GitHub compares strings ignoring case
    return bool(left == right)


def evaluate(text: str, contexts: Mapping[str, Any], status: Status | None = None) -> Any:
    """The value of one expression (without `${{ }}`)."""
    return Evaluator(text, contexts, status or Status()).run()


def condition(text: str | None, contexts: Mapping[str, Any], status: Status) -> bool:
    """An `if:`: `success() && (...)` unless it calls a status function itself."""
    if text is None:
        return not status.failed and not status.cancelled
    text = EXPRESSION.sub(lambda m: m.group(1), text)
    named = {value for _, value in tokens(text)}
    if not named & set(STATUS_FUNCTIONS):
        text = f"success() && ({text})"
    return truthy(evaluate(text, contexts, status))


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def substitute(text: str, contexts: Mapping[str, Any]) -> str:
    """A string with every `${{ }}` replaced by its value, as GitHub does."""
    return EXPRESSION.sub(lambda m: as_text(evaluate(m.group(1), contexts)), str(text))


def contexts(
    *,
    api_url: str = "",
    secrets: Mapping[str, str] | None = None,
    inputs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The caller's contexts: a push to main of acme/campaigns (or a pull request, for plan)."""
    github = Strict(
        ref_name="main",
        server_url="https://github.com",
        repository="acme/campaigns",
        run_id="4242",
        token="ghs_workflow_test",
        action_path=str(ROOT),
        event=Strict(pull_request=Strict(number=7, head={"repo": {"full_name": "acme/campaigns"}})),
    )
    return {
        "github": github,
        "secrets": dict(secrets or {}),  # an unset secret reads as empty, as on GitHub
        "vars": {"TWIN24_API_URL": api_url} if api_url else {},
        "inputs": Strict({"replace": "", "retry_pending": "", **(inputs or {})}),
    }


# --- git --------------------------------------------------------------------------------------


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


# --- the job ----------------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    code: int | None  # None: not run (a `uses:` step, or skipped by its `if:`)
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    would_run: bool = True  # for a `uses:` step: what its `if:` said


class Job:
    """One job of a campaign workflow, its `uses: ./` step expanded into the action's steps."""

    def __init__(
        self,
        workflow: str,
        job: str,
        cwd: Path,
        caller: Mapping[str, Any],
        path: Path = BIN,
        extra_env: Mapping[str, str] | None = None,
        with_: Mapping[str, str | None] | None = None,
    ) -> None:
        self.path = path  # where `reconcile` (and `python`) are found first
        self.wf = load(workflow)
        self.job = self.wf["jobs"][job]
        self.cwd = cwd
        self.caller = caller
        self.extra_env = dict(extra_env or {})  # a job-level `env:` a user might add
        self.scratch = cwd.parent / f"runner-{workflow}-{job}"
        self.scratch.mkdir(exist_ok=True)
        uses = [s for s in self.job["steps"] if s.get("uses") == "./"]
        assert len(uses) == 1, f"{workflow}: exactly one `uses: ./` step"
        assert all("run" not in s for s in self.job["steps"]), "run: steps belong to the action"
        self.uses = uses[0]
        given = {**(self.uses.get("with") or {}), **(with_ or {})}  # None: as if left out
        self.inputs = self.action_inputs({k: v for k, v in given.items() if v is not None})
        self.steps: dict[str, dict[str, Any]] = {}  # the action's steps context so far
        self.status = Status()

    def action_inputs(self, given: Mapping[str, Any]) -> Strict:
        declared = action()["inputs"]
        unknown = set(given) - set(declared)
        assert not unknown, f"`with:` names inputs the action does not have: {unknown}"
        values = Strict()
        for name, spec in declared.items():
            raw = given[name] if name in given else spec.get("default", "")
            scope = self.caller if name in given else {"github": self.caller["github"]}
            values[name] = substitute(as_text(raw), scope)
        return values

    def outputs(self) -> dict[str, str]:
        """The action's outputs, from the steps run so far."""
        declared = action()["outputs"]
        return {name: substitute(spec["value"], self.contexts()) for name, spec in declared.items()}

    def contexts(self) -> dict[str, Any]:
        """What the action's own expressions see."""
        return {"github": self.caller["github"], "inputs": self.inputs, "steps": self.steps}

    def environment(self, step: Mapping[str, Any], index: int) -> dict[str, str]:
        env = git_env(
            PATH=f"{self.path}{os.pathsep}{os.environ.get('PATH', '')}",
            CI="true",
            GITHUB_ACTIONS="true",
            GITHUB_ACTION_PATH=str(ROOT),
            GITHUB_SHA=git(self.cwd, "rev-parse", "HEAD").strip(),
            GITHUB_RUN_ID=self.caller["github"]["run_id"],
            GITHUB_OUTPUT=str(self.scratch / f"output-{index}"),
            GITHUB_STEP_SUMMARY=str(self.scratch / f"summary-{index}"),
            GITHUB_ENV=str(self.scratch / f"env-{index}"),
        )
        for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV"):
            Path(env[name]).write_text("", encoding="utf-8")
        for level in (self.wf, self.job, self.uses):  # workflow, job, then the `uses:` step
            for key, value in (level.get("env") or {}).items():
                env[key] = substitute(value, self.caller)
        env.update(self.extra_env)
        for key, value in (step.get("env") or {}).items():
            env[key] = substitute(value, self.contexts())
        return env

    def decides(self, title: str) -> bool:
        """Whether the `if:` of the action's step `title` lets it run, as things stand."""
        return condition(self.indexed(title)[1].get("if"), self.contexts(), self.status)

    def indexed(self, title: str) -> tuple[int, dict[str, Any]]:
        found = [(i, s) for i, s in enumerate(action()["runs"]["steps"]) if s.get("name") == title]
        assert len(found) == 1, f"action.yml: exactly one step named {title!r}"
        return found[0]

    def start(self, title: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
        """Start the action's step `title` (its `run:` script) and return the process."""
        index, step = self.indexed(title)
        script = self.scratch / f"step-{index}.sh"
        script.write_text(step["run"], encoding="utf-8")
        env = self.environment(step, index)
        process = subprocess.Popen(
            [step_shell(step), "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        return process, env

    def run_step(self, title: str) -> Step:
        """Run one `run:` step of the action and record it in the steps context."""
        process, env = self.start(title)
        stdout, stderr = finish(process)
        outputs = dict(
            line.split("=", 1)
            for line in Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8").splitlines()
        )
        summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
        _, step = self.indexed(title)
        self.record(step, "success" if process.returncode == 0 else "failure", outputs)
        return Step(title, process.returncode, stdout, stderr, outputs, summary)

    def record(self, step: Mapping[str, Any], outcome: str, outputs: dict[str, str]) -> None:
        if outcome == "failure":
            self.status.failed = True
        if "id" in step:
            self.steps[step["id"]] = {"outcome": outcome, "conclusion": outcome, "outputs": outputs}

    def run(self, before: Callable[[str], None] | None = None) -> dict[str, Step]:
        """Every step of the action in order, as the runner would; `before(name)` first."""
        done: dict[str, Step] = {}
        for step in action()["runs"]["steps"]:
            name = step.get("name") or step["uses"]
            runs = condition(step.get("if"), self.contexts(), self.status)
            if "uses" in step or not runs:
                done[name] = Step(name, None, would_run=runs)
                self.record(step, "success" if runs else "skipped", {})
            elif name == "Install reconcile":  # this checkout's reconcile instead
                done[name] = Step(name, None)
                self.record(step, "success", {"version": __version__})
            else:
                if before is not None:
                    before(name)
                done[name] = self.run_step(name)
        return done


def step_shell(step: Mapping[str, Any]) -> str:
    assert step.get("shell") == "bash", f"{step.get('name')}: the tests run bash steps only"
    return "bash"


def finish(process: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    """Wait for a step; whatever happens, leave no process of its session behind."""
    try:
        return process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def expressions(text: str) -> Iterator[str]:
    """Every `${{ }}` expression in a text."""
    for match in EXPRESSION.finditer(text):
        yield match.group(1)
