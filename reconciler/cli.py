"""Click commands: parse options, build the parts, make one call, render, exit.

Errors are caught once, in `main`: a `ReconcileError` prints `error: MESSAGE` and exits with
its code; click's usage errors exit 1 (the spec reserves 2 for "plan has changes"). Heavy
modules are imported inside the commands so `reconcile --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from reconciler import __version__
from reconciler.errors import InputError, ReconcileError

CAMPAIGNS = click.option(
    "--campaigns",
    "campaigns_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default="campaigns",
    envvar="RECONCILE_CAMPAIGNS",
    show_default=True,
    help="Folder of campaign files (env RECONCILE_CAMPAIGNS).",
)


def _github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconcile")
def cli() -> None:
    """Campaigns-as-code for Twin24: validate, plan and apply call tasks from YAML."""


@cli.command()
@CAMPAIGNS
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="How problems are printed.",
)
def validate(campaigns_dir: Path, fmt: str) -> None:
    """Check every campaign; print every problem in every file (exit 1 on any error)."""
    from reconciler.render import problems as render_problems
    from reconciler.validate import load_config

    config = load_config(campaigns_dir)
    out = render_problems.FORMATS[fmt](config.problems)
    if fmt == "json":
        click.echo(out, nl=False)
    elif out:
        click.echo(out, nl=False, err=fmt == "text")
    if _github_actions() and fmt != "github":
        click.echo(render_problems.github(config.problems), nl=False)
    if config.errors:
        if fmt == "text":
            files = len({p.location.file for p in config.errors})
            click.echo(f"error: {len(config.errors)} problem(s) in {files} file(s).", err=True)
        raise SystemExit(1)
    if fmt == "text":
        click.echo(f"{len(config.campaigns)} campaign(s) valid.")


@cli.command()
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default="schemas",
    show_default=True,
    help="Where the two schema files go.",
)
@click.option("--check", is_flag=True, help="Exit 1 when the files on disk are out of date.")
def schema(output_dir: Path, check: bool) -> None:
    """Write the two JSON Schemas generated from the models."""
    from reconciler import schema as schemas

    if check:
        stale = schemas.stale(output_dir)
        for path in stale:
            click.echo(f"{path}: out of date; run `reconcile schema` and commit it", err=True)
        if stale:
            raise SystemExit(1)
        click.echo("schemas are up to date.")
        return
    for path in schemas.write(output_dir):
        click.echo(f"wrote {path}")


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: run the CLI and turn every error into its exit code."""
    try:
        cli.main(args=argv, prog_name="reconcile", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        exc.show()
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    except InputError as exc:
        from reconciler.render import problems as render_problems

        click.echo(render_problems.text(exc.problems), nl=False, err=True)
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except ReconcileError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: say so in one line, never a traceback
        if os.environ.get("RECONCILE_DEBUG"):
            raise
        click.echo(f"error: internal error ({type(exc).__name__}); please report it", err=True)
        sys.exit(1)
    sys.exit(0)
