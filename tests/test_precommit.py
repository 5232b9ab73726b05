"""Authors' tooling: the pre-commit hooks and the editor set-up.

The hooks in .pre-commit-hooks.yaml: their shape, their entry commands, and pre-commit itself.

The entry commands are run as pre-commit runs them (`entry` + `args` + the staged files that
match `files:`, in the root of a campaign repo), so these tests need nothing but this checkout.
When pre-commit is installed (it is not a test dependency), `pre-commit try-repo` also runs the
hooks from a copy of this project: that builds the hook's own virtualenv with pip (about 20 s
here, and it needs the package index), so it is a check to run on a developer's machine,
skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOOK_IDS = ["reconcile-validate", "reconcile-fmt"]

# Key order of the API page is canonical: `name` first. This file starts with `cps`.
UNORDERED = """\
# yaml-language-server: $schema=../schemas/campaign-file.schema.json
cps: "3/s"  # three calls a second
name: Out of order
defaultExec: robot
defaultExecData: 3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70
secondExec: end
cidType: default
startType: manual
additionalOptions:
  fullListMethod: reject
  fullListTime: 30
  recordCall: false
redialStrategyOptions:
  redialStrategyEn: false
  busy: {redial: false}
  noAnswer: {redial: false}
  answerMash: {redial: false}
  congestion: {redial: false}
  answerNoList: {redial: false}
"""


def hooks() -> dict[str, dict[str, Any]]:
    data = YAML(typ="safe", pure=True).load((ROOT / ".pre-commit-hooks.yaml").read_text("utf-8"))
    return {hook["id"]: hook for hook in data}


def test_the_hooks_on_offer() -> None:
    found = hooks()
    assert list(found) == HOOK_IDS
    for hook_id, hook in found.items():
        assert hook["entry"] == f"reconcile {hook_id.removeprefix('reconcile-')}"
        assert hook["language"] == "python"  # pre-commit pip-installs this project
        # The staged files are named; the tool still reads the folder (defaults, unique names).
        assert hook["pass_filenames"] is True and hook["require_serial"] is True
        files = re.compile(hook["files"])
        for path in ("campaigns/a.yaml", "campaigns/2030/b.yml", "campaigns/x/_defaults.yaml"):
            assert files.search(path), path
        for path in ("schemas/campaign.schema.json", "README.md", "other/campaigns/a.yaml"):
            assert not files.search(path), path


@pytest.mark.parametrize("hook_id", HOOK_IDS)
def test_each_entry_is_an_existing_command(hook_id: str) -> None:
    words = shlex.split(hooks()[hook_id]["entry"])
    assert words[0] == "reconcile" and (BIN / "reconcile").exists()
    assert words[1] in cli.commands


@pytest.fixture
def campaign_repo(tmp_path: Path) -> Path:
    """A campaign repo's root: the example campaigns."""
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    return tmp_path


def run_hook(
    hook_id: str, repo: Path, staged: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """What pre-commit runs: entry, then args, then the staged files its `files:` matches (all
    of them, as with `--all-files`, unless `staged` names some), in the repo's root."""
    hook = hooks()[hook_id]
    if staged is None:
        staged = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())
    names = [name for name in staged if re.search(hook["files"], name)]
    words = [*shlex.split(hook["entry"]), *hook.get("args", []), *names]
    return subprocess.run(
        [str(BIN / words[0]), *words[1:]],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_validate_hook_passes_on_the_examples(campaign_repo: Path) -> None:
    done = run_hook("reconcile-validate", campaign_repo)
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "6 file(s) checked: 5 campaign(s) valid.\n",  # and survey/_defaults.yaml
        "",
    )


def test_validate_hook_reports_only_the_staged_files(campaign_repo: Path) -> None:
    bad = campaign_repo / "campaigns" / "survey" / "nps-q3.yaml"
    bad.write_text(bad.read_text("utf-8") + "cpss: 3\n", "utf-8")
    other = run_hook("reconcile-validate", campaign_repo, ["campaigns/2030/spring-promo.yaml"])
    assert (other.returncode, other.stdout) == (0, "1 file(s) checked: 1 campaign(s) valid.\n")
    # The defaults of the broken file's folder: every campaign below it is checked.
    defaults = run_hook("reconcile-validate", campaign_repo, ["campaigns/survey/_defaults.yaml"])
    assert defaults.returncode == 1
    assert "campaigns/survey/nps-q3.yaml:11:1: error: " in defaults.stderr


def test_validate_hook_fails_with_file_and_line(campaign_repo: Path) -> None:
    bad = campaign_repo / "campaigns" / "survey" / "nps-q3.yaml"
    bad.write_text(bad.read_text("utf-8") + "cpss: 3\n", "utf-8")
    done = run_hook("reconcile-validate", campaign_repo)
    assert done.returncode == 1
    assert "campaigns/survey/nps-q3.yaml:11:1: error: " in done.stdout + done.stderr


def test_fmt_hook_rewrites_then_leaves_alone(campaign_repo: Path) -> None:
    unordered = campaign_repo / "campaigns" / "unordered.yaml"
    unordered.write_text(UNORDERED, "utf-8")
    run_hook("reconcile-fmt", campaign_repo)  # pre-commit fails a hook that changed files
    text = unordered.read_text("utf-8")
    assert text.index("name: Out of order") < text.index('cps: "3/s"  # three calls a second')
    files = sorted((campaign_repo / "campaigns").rglob("*.yaml"))
    formatted = [p.read_bytes() for p in files]
    again = run_hook("reconcile-fmt", campaign_repo)
    assert again.returncode == 0, again.stderr
    assert [p.read_bytes() for p in files] == formatted


def test_fmt_hook_rewrites_only_the_staged_files_and_keeps_crlf_and_bom(
    campaign_repo: Path,
) -> None:
    staged = campaign_repo / "campaigns" / "staged.yaml"
    staged.write_bytes(b"\xef\xbb\xbf" + UNORDERED.replace("\n", "\r\n").encode())
    unstaged = campaign_repo / "campaigns" / "unstaged.yaml"
    unstaged.write_text(UNORDERED.replace("Out of order", "Not staged"), "utf-8")
    before = unstaged.read_bytes()
    done = run_hook("reconcile-fmt", campaign_repo, ["campaigns/staged.yaml"])
    assert (done.returncode, done.stdout) == (0, "reformatted campaigns/staged.yaml\n")
    raw = staged.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf# yaml-language-server")  # the BOM as found
    assert raw.count(b"\r\n") == raw.count(b"\n") == len(UNORDERED.splitlines())  # CRLF too
    text = raw.decode("utf-8")
    assert text.index("name: Out of order") < text.index('cps: "3/s"  # three calls a second')
    assert unstaged.read_bytes() == before


# --- editor set-up --------------------------------------------------------------------------

MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


def test_every_example_file_names_the_file_schema_on_its_first_line() -> None:
    files = sorted((ROOT / "campaigns").rglob("*.y*ml"))
    assert len(files) >= 5
    for path in files:
        if path.name == "_moved.yaml":  # a list of moves, not a campaign
            continue
        first = path.read_text("utf-8").splitlines()[0]
        match = MODELINE.match(first)
        assert match, f"{path.relative_to(ROOT)}: no modeline on line 1"
        target = (path.parent / match.group(1)).resolve()
        assert target == ROOT / "schemas" / "campaign-file.schema.json", path


def snippets(language: str) -> list[str]:
    """The ```LANGUAGE blocks of the docs that carry the set-up (README once merged)."""
    found = []
    for doc in (ROOT / "README.md", ROOT / "docs" / "guide.md"):
        if doc.exists():
            found += re.findall(
                rf"^ *```{language}\n(.*?)^ *```$", doc.read_text("utf-8"), re.M | re.S
            )
    return found


def test_the_vs_code_snippet_points_at_the_schema() -> None:
    settings = [json.loads(s) for s in snippets("json") if "yaml.schemas" in s]
    assert settings, "no VS Code yaml.schemas snippet in README.md or docs/guide.md"
    for setting in settings:
        for schema, globs in setting["yaml.schemas"].items():
            assert (ROOT / schema).is_file(), schema
            assert all(g.startswith("campaigns/") for g in globs), globs


def test_the_pre_commit_snippet_names_the_hooks_on_offer() -> None:
    configs = [s for s in snippets("yaml") if "repos:" in s]
    assert configs
    for config in configs:
        data = YAML(typ="safe", pure=True).load(config)
        assert [h["id"] for h in data["repos"][0]["hooks"]] == HOOK_IDS


# --- pre-commit try-repo, where pre-commit is installed -------------------------------------


def pre_commit() -> str:
    found = shutil.which("pre-commit", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.skip(
            "pre-commit is not installed (not a test dependency); the hooks' entry commands "
            "are tested above"
        )
    return found


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com", *args],
        cwd=cwd,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull},
        capture_output=True,
        check=True,
    )


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This project as a hook repo: its package files, committed (try-repo clones it)."""
    repo = tmp_path_factory.mktemp("hook-repo")
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    wanted = {"pyproject.toml", "README.md", ".pre-commit-hooks.yaml"}
    for name in listed:
        if (name in wanted or name.startswith("reconciler/")) and (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "hooks")
    return repo


@pytest.mark.slow
def test_pre_commit_try_repo(hook_repo: Path, campaign_repo: Path, tmp_path: Path) -> None:
    binary = pre_commit()
    git(campaign_repo, "init", "-q")
    git(campaign_repo, "add", "-A")
    ids = HOOK_IDS
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "NO_COLOR": "1"}

    def try_repo(hook_id: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, "try-repo", str(hook_repo), hook_id, "--all-files", "--color", "never"],
            cwd=campaign_repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    for hook_id in ids:
        done = try_repo(hook_id)
        assert done.returncode == 0, done.stdout + done.stderr
        assert re.search(rf"reconcile {hook_id[10:]}\.+Passed", done.stdout), done.stdout
    bad = campaign_repo / "campaigns" / "survey" / "nps-q3.yaml"
    bad.write_text(bad.read_text("utf-8") + "cpss: 3\n", "utf-8")
    git(campaign_repo, "add", "-A")
    done = try_repo("reconcile-validate")
    assert done.returncode == 1 and "Failed" in done.stdout
    assert "campaigns/survey/nps-q3.yaml:11:1: error: " in done.stdout
