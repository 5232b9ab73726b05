"""Options shared by several commands, and the small facts about the run they depend on."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from reconciler.cli.complete import campaign_keys
from reconciler.hints import SANDBOX_API_URL as SANDBOX_API_URL

CAMPAIGNS = click.option(
    "--campaigns",
    "campaigns_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default="campaigns",
    envvar="RECONCILE_CAMPAIGNS",
    show_default=True,
    help="Folder of campaign files (env RECONCILE_CAMPAIGNS).",
)


STATE = click.option(
    "--state",
    "state_path",
    default=None,
    envvar="RECONCILE_STATE",
    help="State file, or a postgresql://USER@HOST:PORT/DB URL (env RECONCILE_STATE) [default: "
    "reconcile.state.json; with --sandbox: .reconcile/sandbox.state.json].",
)
WORKSPACE = click.option(
    "--workspace",
    default="default",
    envvar="RECONCILE_WORKSPACE",
    show_default=True,
    help="Workspace of a PostgreSQL --state (env RECONCILE_WORKSPACE).",
)


class Number(click.FloatRange):
    """click's FloatRange without NaN: it passes every range check (each comparison with it is
    false), and a `--lock-timeout nan` then waited forever."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number.", param, ctx)
        return number


LOCK_TIMEOUT = click.option(
    "--lock-timeout",
    type=Number(min=0),
    default=0.0,
    help="Wait up to SECONDS for the state lock instead of failing at once.",
)
API_URL = click.option(
    "--api-url",
    default=None,
    envvar="TWIN24_API_URL",
    help="Twin24 API base URL (env TWIN24_API_URL) [default: https://cis.twin24.ai/api/v1].",
)
DEFAULT_STATE = Path("reconcile.state.json")
SANDBOX_STATE = Path(".reconcile/sandbox.state.json")
SANDBOX_TASKS = SANDBOX_STATE.parent / "sandbox.tasks.json"  # the embedded sandbox's tasks


TOKEN_FILE = click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Read the Twin24 token from FILE (else env TWIN24_TOKEN). Never a plain flag.",
)
PASSWORD_FILE = click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Read the password of the login TWIN24_LOGIN from FILE (else env TWIN24_PASSWORD).",
)
IAM_URL = click.option(
    "--iam-url",
    default=None,
    envvar="TWIN24_IAM_URL",
    help="Where a login goes: {URL}/auth/login (env TWIN24_IAM_URL) [default: "
    "https://iam.twin24.ai/api/v1].",
)


def api_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command that talks to the API: where it is and the credentials
    (`--api-url`, `--token-file`, `--password-file`, `--iam-url`, in that order in --help)."""
    return API_URL(TOKEN_FILE(PASSWORD_FILE(IAM_URL(command))))


TIMEZONE = click.option(
    "--timezone",
    default="Europe/Moscow",
    envvar="TWIN24_TIMEZONE",
    show_default=True,
    help="Time zone of startMoment (env TWIN24_TIMEZONE).",
)
PLAN_OPTIONS = [
    click.option(
        "--target",
        "targets",
        multiple=True,
        metavar="KEY",
        shell_complete=campaign_keys,
        help="Limit to KEY.",
    ),
    click.option(
        "--replace",
        "replace",
        multiple=True,
        metavar="KEY",
        shell_complete=campaign_keys,
        help="Replace drifted KEY.",
    ),
    TIMEZONE,
    click.option(
        "--max-creates",
        type=click.IntRange(min=0),
        default=25,
        show_default=True,
        help="Apply refuses to create more than N tasks.",
    ),
    click.option("--sandbox", is_flag=True, help="Use the embedded sandbox and its state."),
    click.option("--no-color", is_flag=True, help="Never colour the output."),
]


def plan_options(func: Any) -> Any:
    """Decorate a command with every option of PLAN_OPTIONS."""
    for option in reversed(PLAN_OPTIONS):
        func = option(func)
    return func


def github_actions() -> bool:
    """True when running as a GitHub Actions step."""
    return os.environ.get("GITHUB_ACTIONS") == "true"


def color(no_color: bool) -> bool:
    """Colour only on a TTY, never with NO_COLOR or --no-color."""
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
