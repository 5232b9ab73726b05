"""Click commands: parse options, build the parts, make one call, render, exit.

Errors are caught once, in `main`: a `ReconcileError` prints `error: MESSAGE` and exits with
its code; click's usage errors exit 1 (the spec reserves 2 for "plan has changes"). Heavy
modules are imported inside the commands so `reconcile --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from reconciler import DISTRIBUTION, __version__
from reconciler.cli import apply, config, doctor, plan, sandbox, state
from reconciler.cli.interrupt import Interrupted, exit_on_signals
from reconciler.cli.output import say
from reconciler.errors import InputError, ReconcileError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__,
    prog_name="reconcile",
    package_name=DISTRIBUTION,
    message="%(prog)s, version %(version)s (pip package %(package)s)",
)
def cli() -> None:
    """Campaigns-as-code for Twin24: validate, plan and apply call tasks from YAML."""


for command in (
    config.validate,
    config.schema,
    config.fmt,
    plan.plan,
    plan.show,
    apply.apply,
    apply.check_remote,
    doctor.doctor,
    state.state,
    state.import_,
    sandbox.sandbox,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: run the CLI and turn every error into its exit code."""
    with exit_on_signals():
        _run(argv)


def _run(argv: list[str] | None) -> None:
    try:
        cli.main(args=argv, prog_name="reconcile", standalone_mode=False)
    except Interrupted as exc:
        click.echo(f"\n{exc.name} received: stopped.", err=True)
        sys.exit(exc.code)
    except click.exceptions.UsageError as exc:
        exc.show()
        sys.exit(1)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click's name for Ctrl-C
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    except InputError as exc:
        from reconciler.plan.render import problems as render_problems

        click.echo(render_problems.text(exc.problems), nl=False, err=True)
        say(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except ReconcileError as exc:
        say(f"error: {exc}", err=True)
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
