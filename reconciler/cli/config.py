"""`reconcile validate`, `schema` and `fmt`: the commands that only read campaign files."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.build import check_timezone
from reconciler.cli.options import CAMPAIGNS, TIMEZONE, github_actions
from reconciler.cli.output import hints, say
from reconciler.errors import ReconcileError

PATHS = click.argument("paths", metavar="[PATH]...", nargs=-1, type=click.Path(path_type=Path))


@click.command()
@CAMPAIGNS
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="How problems are printed.",
)
@TIMEZONE
@PATHS
def validate(campaigns_dir: Path, fmt: str, timezone: str, paths: tuple[Path, ...]) -> None:
    """Check every campaign and the calling policy; print every problem in every file (exit 1
    on any error). With PATHs (files below the campaigns folder, as pre-commit passes them),
    check those files fully, with the defaults they use; names stay unique across all."""
    from datetime import UTC, datetime

    from reconciler.config.cache import ValidationCache
    from reconciler.config.discovery import discover
    from reconciler.config.policy import past_starts
    from reconciler.config.selection import select
    from reconciler.config.validate import load_config
    from reconciler.plan.render import problems as render_problems

    check_timezone(timezone)
    config = load_config(campaigns_dir, ValidationCache.default())
    # Clock-dependent, so never cached: a warning here, an error in `plan` for a create.
    late = past_starts(config.campaigns.values(), timezone, datetime.now(UTC))
    problems = sorted(config.problems + late)
    valid = list(config.campaigns)
    given = 0  # distinct files named: one named twice, or spelled two ways, counts once
    if paths:
        chosen = select(discover(campaigns_dir), campaigns_dir, paths)
        problems = sorted(chosen.only(problems) + chosen.problems)
        valid = [key for key in valid if key in chosen.keys]
        given = len(chosen.given)
    errors = [p for p in problems if p.level == "error"]
    out = render_problems.FORMATS[fmt](problems)
    if fmt == "json":
        click.echo(out, nl=False)
    elif out:
        click.echo(out, nl=False, err=fmt == "text")
    if github_actions() and fmt != "github":
        # on stderr when stdout is JSON (the runner reads workflow commands from both streams)
        click.echo(render_problems.github(problems), nl=False, err=fmt == "json")
    if errors:
        if fmt == "text":
            files = len({p.location.file for p in errors})
            click.echo(f"error: {len(errors)} problem(s) in {files} file(s).", err=True)
        raise SystemExit(1)
    if fmt == "text":
        checked = f"{given} file(s) checked: " if paths else ""
        click.echo(f"{checked}{len(valid)} campaign(s) valid.")


@click.command()
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default="schemas",
    show_default=True,
    help="Where the schema files go.",
)
@click.option("--check", is_flag=True, help="Exit 1 when the files on disk are out of date.")
def schema(output_dir: Path, check: bool) -> None:
    """Write the JSON Schemas: the campaign payload, a campaign file, and _policy.yaml."""
    from reconciler.config import schema as schemas

    if check:
        again = hints().command("schema", flags=[("--output-dir", str(output_dir))])
        if output_dir == Path("schemas"):
            again = hints().command("schema")
        stale = schemas.differences(output_dir, again)
        for path, why in stale:
            say(f"{path}: {why}", err=True)
        if stale:
            raise SystemExit(1)
        click.echo("schemas are up to date.")
        return
    try:
        written = schemas.write(output_dir)
    except schemas.Unwritable as exc:
        raise ReconcileError(str(exc)) from None
    except OSError as exc:
        raise ReconcileError(
            f"cannot write the schemas to {output_dir}: {exc.strerror or exc}; pass "
            "--output-dir with a folder you can write to"
        ) from None
    for path in written:
        say(f"wrote {path}")


@click.command()
@CAMPAIGNS
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when a file would change.")
@click.option(
    "--diff", is_flag=True, help="Change nothing; print a unified diff of what would change."
)
@PATHS
def fmt(campaigns_dir: Path, check: bool, diff: bool, paths: tuple[Path, ...]) -> None:
    """Rewrite campaign and _defaults.yaml files in canonical form (API key order, comments,
    quoting, line endings and a byte-order mark kept). With PATHs (files below the campaigns
    folder, as pre-commit passes them), only those; _moved.yaml and _policy.yaml are left as
    they are."""
    from reconciler.config import fmt as formatter
    from reconciler.plan.render import escape
    from reconciler.plan.render import problems as render_problems

    results = formatter.format_files(campaigns_dir, paths or None)
    problems = sorted(r.problem for r in results if r.problem is not None)  # as validate
    changed = [r for r in results if r.changed]
    click.echo(render_problems.text(problems), nl=False, err=True)
    if diff:
        for result in changed:
            for line in formatter.diff(result):
                click.echo(escape.text(line))
    if check or diff:
        if check:
            for result in changed:
                again = hints().command("fmt", result.file)
                say(f"{result.file}: would be reformatted (run `{again}`)", err=True)
        if problems or (check and changed):
            raise SystemExit(1)
        if not changed:
            click.echo(f"{len(results)} file(s) already canonical.")
        return
    written, failed = formatter.write_results(results)
    for path in written:
        say(f"reformatted {path}")
    click.echo(render_problems.text(failed), nl=False, err=True)
    if problems or failed:
        raise SystemExit(1)
