"""The package layout's import contract (pyproject.toml `[tool.importlinter]`).

`lint-imports` must pass on the package as it is, and must fail when a lower layer imports
an upper one: a contract that cannot fail would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install -e '.[test]')"
)


def lint(project: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on the package in `project` (its pyproject.toml, its reconciler/)."""
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(
        ROOT / "reconciler", project / "reconciler", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    return project


def test_the_package_keeps_the_contract(tmp_path: Path) -> None:
    result = lint(copy_project(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("config/merge.py", "from reconciler.plan import diff"),
        ("state/model.py", "from reconciler.apply import client"),
        ("plan/diff.py", "import reconciler.cli.options"),
        ("sandbox/tasks.py", "from reconciler.state import model"),
        ("errors.py", "from reconciler.config import campaign"),
    ],
)
def test_an_upward_import_breaks_it(tmp_path: Path, module: str, upward: str) -> None:
    project = copy_project(tmp_path)
    target = project / "reconciler" / module
    target.write_text(
        target.read_text(encoding="utf-8") + f"\n{upward}  # noqa\n", encoding="utf-8"
    )
    result = lint(project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    imported = upward.split()[1]
    assert f"reconciler.{module[:-3].replace('/', '.')} -> {imported}" in result.stdout


def test_the_command_line_loads_without_the_heavy_libraries() -> None:
    """`reconcile --help` and every Tab press load `reconciler.cli.main`: the YAML reader,
    pydantic and httpx are imported by the commands that use them (one top-level import of
    the YAML reader in a command module once made `--help` a third slower)."""
    code = (
        "import sys, reconciler.cli.main; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'ruamel', 'pydantic', 'httpx', "
        "'jsonschema', 'psycopg'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n", done.stdout
