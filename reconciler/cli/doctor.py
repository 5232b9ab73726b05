"""`reconcile doctor`: read-only checks of a set-up, for the first run and for support."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from reconciler.cli.build import build_client, build_credentials, build_store, start_sandbox
from reconciler.cli.options import (
    API_URL,
    CAMPAIGNS,
    IAM_URL,
    PASSWORD_FILE,
    STATE,
    TIMEZONE,
    TOKEN_FILE,
    WORKSPACE,
)
from reconciler.cli.output import say

SCHEMAS_DIR = Path("schemas")  # where `reconcile schema` writes by default


@click.command()
@CAMPAIGNS
@STATE
@WORKSPACE
@API_URL
@TOKEN_FILE
@PASSWORD_FILE
@IAM_URL
@TIMEZONE
@click.option("--sandbox", is_flag=True, help="Check the embedded sandbox and its state.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One line per check, or a JSON list of {check, status, detail}.",
)
def doctor(
    campaigns_dir: Path,
    state_path: str | None,
    workspace: str,
    api_url: str | None,
    token_file: Path | None,
    password_file: Path | None,
    iam_url: str | None,
    timezone: str,
    sandbox: bool,
    fmt: str,
) -> None:
    """Check the set-up, read-only: versions, campaigns, schemas, state and its lock,
    credentials, the API, the clock, the time zone (exit 1 on any `fail`)."""
    from reconciler.apply import doctor as checks
    from reconciler.apply.client import DEFAULT_API_URL
    from reconciler.plan.render import escape

    server = start_sandbox(read_only=True) if sandbox else None
    try:
        url = server.url if server is not None else api_url or DEFAULT_API_URL
        found = checks.run(
            checks.Inputs(
                campaigns_dir=campaigns_dir,
                schemas_dir=SCHEMAS_DIR,
                store=lambda: build_store(state_path, sandbox, workspace, read_only=True),
                credentials=lambda: build_credentials(
                    url, token_file, password_file, iam_url, sandbox, refuse_expired=False
                ),
                connect=lambda credentials: build_client(url, credentials),
                api_url="the embedded sandbox" if sandbox else url,
                timezone=timezone,
                state_flags=_state_flags(state_path, workspace, sandbox),
            )
        )
    finally:
        if server is not None:
            server.stop()
    if fmt == "json":
        text = json.dumps(checks.as_json(found), indent=2, ensure_ascii=False)
        click.echo(escape.json_text(text))
    else:
        for check in found:
            say(f"{check.status:<4}  {check.check:<11}  {check.detail}")
        say(checks.summary(found))
    if any(check.status == "fail" for check in found):
        raise SystemExit(1)


def _state_flags(state_path: str | None, workspace: str, sandbox: bool) -> str:
    """` --state S --workspace W` as a suggested state command needs them to act on the same
    state; a --state that came from env RECONCILE_STATE is left to the environment."""
    from reconciler.cli.options import SANDBOX_STATE
    from reconciler.state.postgres.connection import has_password

    context = click.get_current_context()
    given = context.get_parameter_source("state_path") == click.core.ParameterSource.COMMANDLINE
    flags = []
    if sandbox and state_path is None:
        flags += ["--state", str(SANDBOX_STATE)]
    elif state_path is not None and given:
        # a URL with a password is never printed whole: the masked one would not work
        flags += ["--state", "URL" if has_password(state_path) else state_path]
    if context.get_parameter_source("workspace") == click.core.ParameterSource.COMMANDLINE:
        flags += ["--workspace", workspace]
    return "".join(f" {shlex.quote(flag)}" for flag in flags)
