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
from reconciler.errors import InputError, ReconcileError, StateError

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
LOCK_TIMEOUT = click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
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
SANDBOX_API_URL = "sandbox:embedded"


def _github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def build_store(state_path: str | None, sandbox: bool = False, workspace: str = "default") -> Any:
    """The state store for `--state`: a postgresql:// URL's workspace, or a file (the
    sandbox has its own default file)."""
    from reconciler.store import FileStore
    from reconciler.store_pg import PostgresStore, is_postgres_url

    if state_path is not None and is_postgres_url(state_path):
        return PostgresStore(state_path, workspace)
    if workspace != "default":
        raise StateError(
            f"--workspace {workspace!r} needs a postgresql:// --state; a state file has no "
            "workspaces: use another --state file instead"
        )
    if sandbox and state_path is None:
        SANDBOX_STATE.parent.mkdir(parents=True, exist_ok=True)
    return FileStore(
        Path(state_path) if state_path else SANDBOX_STATE if sandbox else DEFAULT_STATE
    )


def build_config(campaigns_dir: Path) -> Any:
    """Load and validate the campaigns; raise InputError on any error."""
    from reconciler.cache import ValidationCache
    from reconciler.validate import load_config

    config = load_config(campaigns_dir, ValidationCache.default())
    if config.errors:
        raise InputError(config.problems)
    return config


def api_url_of(api_url: str | None, sandbox: bool) -> str:
    if sandbox:
        return SANDBOX_API_URL
    from reconciler.client import DEFAULT_API_URL

    return api_url or DEFAULT_API_URL


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
    from reconciler.cache import ValidationCache
    from reconciler.render import problems as render_problems
    from reconciler.validate import load_config

    config = load_config(campaigns_dir, ValidationCache.default())
    out = render_problems.FORMATS[fmt](config.problems)
    if fmt == "json":
        click.echo(out, nl=False)
    elif out:
        click.echo(out, nl=False, err=fmt == "text")
    if _github_actions() and fmt != "github":
        # on stderr when stdout is JSON (the runner reads workflow commands from both streams)
        click.echo(render_problems.github(config.problems), nl=False, err=fmt == "json")
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


PLAN_OPTIONS = [
    click.option("--target", "targets", multiple=True, metavar="KEY", help="Limit to KEY."),
    click.option("--replace", "replace", multiple=True, metavar="KEY", help="Replace drifted KEY."),
    click.option(
        "--timezone",
        default="Europe/Moscow",
        envvar="TWIN24_TIMEZONE",
        show_default=True,
        help="Time zone of startMoment (env TWIN24_TIMEZONE).",
    ),
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
    for option in reversed(PLAN_OPTIONS):
        func = option(func)
    return func


def build_plan(
    campaigns_dir: Path,
    read_state: Any,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    timezone: str,
    max_creates: int,
) -> tuple[Any, Any, Any]:
    """Validate the campaigns, then read the state and plan; returns (plan, config, state).

    The state is read after validation: worker processes forked by the validation then do not
    inherit (and copy) a large state.
    """
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from reconciler.plan import PlanOptions, make_plan

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(
            f"unknown time zone {timezone!r}", param_hint="--timezone"
        ) from None
    config = build_config(campaigns_dir)
    state = read_state()
    options = PlanOptions(targets, replace, max_creates, timezone, datetime.now(UTC))
    return make_plan(config.campaigns, config.moves, state, options), config, state


def _color(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


@cli.command()
@CAMPAIGNS
@STATE
@WORKSPACE
@API_URL
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Save the plan.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when something would be created or replaced.",
)
@plan_options
def plan(
    campaigns_dir: Path,
    state_path: str | None,
    workspace: str,
    api_url: str | None,
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    no_color: bool,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    timezone: str,
    max_creates: int,
    sandbox: bool,
) -> None:
    """Validate, compare with the state, and print what apply would do."""
    from reconciler import planfile
    from reconciler.render import markdown, plan_text
    from reconciler.render import problems as render_problems

    store = build_store(state_path, sandbox, workspace)
    try:
        the_plan, config, _ = build_plan(
            campaigns_dir, store.read, targets, replace, timezone, max_creates
        )
    except InputError as exc:
        if _github_actions():  # bad input shows inline in the pull request, as with `validate`
            click.echo(render_problems.github(exc.problems), nl=False, err=fmt == "json")
        raise
    warnings = [p for p in config.problems if p.level == "warning"] + list(the_plan.problems)
    click.echo(render_problems.text(warnings), nl=False, err=True)
    if fmt == "json":
        rendered = plan_text.as_json(the_plan)
    elif fmt == "markdown":
        rendered = markdown.markdown(the_plan)
    else:
        rendered = plan_text.text(the_plan, color=_color(no_color))
    click.echo(rendered, nl=False)
    if _github_actions():
        # on stderr when stdout is JSON (the runner reads workflow commands from both streams)
        annotations = render_problems.github(warnings) + plan_text.github_notices(the_plan)
        click.echo(annotations, nl=False, err=fmt == "json")
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            try:
                with open(summary, "a", encoding="utf-8") as handle:
                    handle.write(markdown.markdown(the_plan) + "\n")
            except OSError as exc:
                raise ReconcileError(
                    f"{summary}: cannot append to GITHUB_STEP_SUMMARY ({exc.strerror})"
                ) from None
    if the_plan.problems:
        click.echo(f"error: the plan has {len(the_plan.problems)} problem(s).", err=True)
        raise SystemExit(1)
    if out is not None:
        planfile.save(out, the_plan, config.campaigns, api_url_of(api_url, sandbox))
        click.echo(
            f"Saved the plan to {out}; `reconcile apply {out}` carries out exactly it.", err=True
        )
    if detailed_exitcode and the_plan.creates:
        raise SystemExit(2)


@cli.command()
@CAMPAIGNS
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when a file would change.")
def fmt(campaigns_dir: Path, check: bool) -> None:
    """Rewrite campaign and _defaults.yaml files in canonical form (API key order, comments
    and quoting kept)."""
    from reconciler import fmt as formatter
    from reconciler.render import problems as render_problems

    results = formatter.format_files(campaigns_dir)
    problems = [r.problem for r in results if r.problem is not None]
    changed = [r for r in results if r.changed]
    click.echo(render_problems.text(problems), nl=False, err=True)
    if check:
        for result in changed:
            click.echo(f"{result.file}: would be reformatted (run `reconcile fmt`)", err=True)
        if changed or problems:
            raise SystemExit(1)
        click.echo(f"{len(results)} file(s) already canonical.")
        return
    for path in formatter.write_results(results):
        click.echo(f"reformatted {path}")
    if problems:
        raise SystemExit(1)


# The other commands register themselves on `cli` when imported.
from reconciler import cli_apply, cli_state  # noqa: E402

__all__ = ["cli", "cli_apply", "cli_state", "main"]


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
