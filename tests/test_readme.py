"""README's instructions, followed as written: the author's example campaign and the run-time
files a campaign repo keeps out of git (README's workflows: tests/test_workflows.py).

Each test reads the snippet from README.md itself, so the text and the check cannot drift.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def run(*args: str) -> tuple[int, str, str]:
    """`reconcile ARGS` through `main`, as the console script runs it: (code, stdout, stderr)."""
    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue().decode(), err.getvalue().decode()


def section(title: str) -> str:
    start = README.index(f"## {title}")
    return README[start : README.index("\n## ", start + 1)]


def author_example() -> tuple[str, str, str]:
    """(file path, key, text) of "Create the file" in the authors' guide."""
    step = section("For authors: writing a campaign").split("\n2. ")[0]
    named = re.search(r"\(`(campaigns/[^`]+\.ya?ml)` is `([^`]+)`\)", step)
    block = re.search(r"^( *)```yaml\n(.*?)^\1```$", step, re.M | re.S)
    assert named and block, "README: the author's example lost its file name or its YAML"
    return named.group(1), named.group(2), textwrap.dedent(block.group(2))


def test_the_authors_example_works_in_a_fresh_clone(workdir: Path) -> None:
    path, key, text = author_example()
    shutil.copytree(ROOT / "campaigns", workdir / "campaigns")
    shutil.copytree(ROOT / "schemas", workdir / "schemas")
    target = workdir / path
    assert not target.exists(), f"{path} is already an example: the guide must add a new one"
    target.write_text(text, encoding="utf-8")

    assert run("validate") == (0, "6 campaign(s) valid.\n", "")
    code, out, _ = run("plan", "--format", "json")
    assert code == 0
    actions = {a["key"]: a["action"] for a in json.loads(out)["actions"]}
    assert actions[key] == "create"
    # Its modeline points at the file schema, relative to where the guide puts it.
    modeline = text.splitlines()[0].removeprefix("# yaml-language-server: $schema=")
    assert (target.parent / modeline).resolve() == workdir / "schemas/campaign-file.schema.json"


# --- .gitignore --------------------------------------------------------------------------------

RUN_TIME = [
    "reconcile.state.json.lock",
    "reconcile.state.json.backup",
    "plan.json",
    "plan.md",
    "plan.out",
    "drift.txt",
    ".reconcile/sandbox.state.json",
]
COMMITTED = ["reconcile.state.json", "reconcile.state.json.journal", "campaigns/a.yaml"]


def readme_gitignore() -> str:
    found = re.findall(r"\(`\.gitignore`\):\n\n +```\n(.*?)\n +```", README, re.S)
    assert len(found) == 1, "README: one .gitignore block for campaign repos"
    return "".join(line.strip() + "\n" for line in found[0].splitlines())


def ignored(gitignore: str, tmp_path: Path) -> dict[str, bool]:
    """Which of RUN_TIME and COMMITTED git ignores under this .gitignore."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gitignore").write_text(gitignore, encoding="utf-8")
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    subprocess.run(["git", "init", "-q"], cwd=repo, env=env, check=True)
    found = {}
    for name in [*RUN_TIME, *COMMITTED]:
        check = ["git", "check-ignore", "-q", name]
        done = subprocess.run(check, cwd=repo, env=env, check=False)
        assert done.returncode in (0, 1), name
        found[name] = done.returncode == 0
    return found


@pytest.mark.parametrize("which", ["README's, for campaign repos", "this repository's"])
def test_gitignore_keeps_run_time_files_out_and_never_the_state(which: str, tmp_path: Path) -> None:
    """The apply workflow commits the state and an interrupted run's journal (`git add` of an
    ignored path fails): those must never be ignored; lock, backup and plan files always."""
    text = readme_gitignore() if which.startswith("README") else (ROOT / ".gitignore").read_text()
    found = ignored(text, tmp_path)
    assert found == {name: name in RUN_TIME for name in [*RUN_TIME, *COMMITTED]}


def test_this_repository_ignores_what_it_tells_campaign_repos_to_ignore() -> None:
    ours = set((ROOT / ".gitignore").read_text(encoding="utf-8").splitlines())
    assert set(readme_gitignore().splitlines()) <= ours
