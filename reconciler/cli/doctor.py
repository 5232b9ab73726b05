"""`reconcile doctor`: read-only checks of a set-up, for the first run and for support."""

from __future__ import annotations

import json
from pathlib import Path

import click

from reconciler.cli.build import build_client, build_credentials, build_store, start_sandbox
from reconciler.cli.options import (
    CAMPAIGNS,
    STATE,
    TIMEZONE,
    WORKSPACE,
    api_options,
)
from reconciler.cli.output import hints, say

SCHEMAS_DIR = Path("schemas")  # where `reconcile schema` writes by default


@click.command()
@CAMPAIGNS
@STATE
@WORKSPACE
@api_options
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
                state_flags=_state_flags(),
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


def _state_flags() -> str:
    """The context a suggested state command repeats to act on the same state (the one helper
    of `reconciler.hints`: the --sandbox, --state and --workspace given as flags), with a
    space before it."""
    flags = hints().flags("state unlock")
    return f" {flags}" if flags else ""
