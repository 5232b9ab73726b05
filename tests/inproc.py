"""In-process runs of `reconcile` against a real sandbox over loopback, for the tests of names
and identities (test_identity_e2e.py, test_import.py). Not a test module: helpers only.

`run` goes through `reconciler.cli.main.main`, as the console script does, under click's
CliRunner isolation, with the test token and no colour; the sandbox runs in a thread of the
test process, so the tests count its tasks directly after every command.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from conftest import edit

from reconciler.cli.main import main
from reconciler.sandbox import Sandbox
from reconciler.state.model import State, loads

TOKEN = "l00pback-T0KEN"
STATE = Path("reconcile.state.json")


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke(
    args: Sequence[str], env: Mapping[str, str] | None = None, color: bool = False
) -> Result:
    """`reconcile ARGS` in-process through `main`, as the console script runs it, with `env`."""
    with CliRunner().isolation(env=dict(env or {}), color=color) as (out, err, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Result(code, out.getvalue().decode(), err.getvalue().decode())


def run(*args: str, **env: str) -> Result:
    """`reconcile ARGS` in-process with the test token (env values override)."""
    return invoke(args, {"TWIN24_TOKEN": TOKEN, "NO_COLOR": "1", **env})


def apply(url: str, *extra: str, **env: str) -> Result:
    return run("apply", "--api-url", url, "--auto-approve", "--rate", "0", *extra, **env)


def campaign(name: str, **fields: str) -> str:
    """A valid campaign file named `name` (started by hand); `fields` replace top-level lines."""
    text = edit("name: Spring promo", f"name: {name}")
    for field, value in fields.items():
        old = next(line for line in text.splitlines() if line.startswith(f"{field}:"))
        text = edit(old, f"{field}: {value}", text)
    return text


def write(files: dict[str, str]) -> None:
    """Write campaign files below ./campaigns (relative path: text)."""
    for name, text in files.items():
        path = Path("campaigns") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def names(sandbox: Sandbox) -> dict[str, list[str]]:
    """The server's tasks: name -> identities, in creation order."""
    found: dict[str, list[str]] = {}
    for identity, task in sandbox.tasks.items():
        found.setdefault(task["name"], []).append(identity)
    return found


def state(path: Path = STATE) -> State:
    return loads(path.read_text(encoding="utf-8"), str(path))


def seed_task(sandbox: Sandbox, name: str) -> str:
    """A task created on the platform by someone else (by hand, or a run whose state is lost)."""
    body: dict[str, Any] = json.loads(json.dumps(PAYLOAD))
    return str(sandbox.store.create({**body, "name": name})["id"])


# The payload of conftest.VALID_CAMPAIGN (valid for the sandbox), its name to be set.
PAYLOAD: dict[str, Any] = {
    "name": "-",
    "defaultExec": "robot",
    "defaultExecData": "3f2c1d6e-8a4b-4c7e-9f10-2b3c4d5e6f70",
    "secondExec": "end",
    "cidType": "default",
    "startType": "manual",
    "cps": 1.03,
    "additionalOptions": {"fullListMethod": "reject", "fullListTime": 30, "recordCall": False},
    "redialStrategyOptions": {
        "redialStrategyEn": False,
        **{k: {"redial": False} for k in ("busy", "noAnswer", "answerMash", "congestion")},
        "answerNoList": {"redial": False},
    },
}
