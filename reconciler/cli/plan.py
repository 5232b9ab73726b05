"""`reconcile plan`: validate, compare with the state, print (and save) the plan."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from reconciler.cli.build import api_url_of, build_plan, build_store
from reconciler.cli.options import (
    API_URL,
    CAMPAIGNS,
    SANDBOX_TASKS,
    STATE,
    WORKSPACE,
    color,
    github_actions,
    plan_options,
)
from reconciler.cli.output import hints, say
from reconciler.errors import InputError, ReconcileError

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="text for a terminal, markdown for a pull request, json for programs.",
)
SUMMARY = click.option(
    "--summary",
    is_flag=True,
    help="Text only: the banner, one line per action (no payloads or diffs), the summary line.",
)


def _check_summary(fmt: str, summary: bool) -> None:
    if summary and fmt != "text":
        raise click.UsageError(f"--summary shortens the text plan; --format {fmt} is always whole")


def _rendered(the_plan: Any, fmt: str, summary: bool, no_color: bool) -> str:
    """The plan in `fmt` (`--summary`: the short text form)."""
    from reconciler.plan.render import markdown, plan_text

    if fmt == "json":
        return plan_text.as_json(the_plan)
    if fmt == "markdown":
        return markdown.markdown(the_plan)
    if summary:
        return plan_text.summary(the_plan, color=color(no_color))
    return plan_text.text(the_plan, color=color(no_color))


@click.command()
@CAMPAIGNS
@STATE
@WORKSPACE
@API_URL
@FORMAT
@SUMMARY
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Save the plan.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when apply has nothing to do, 2 when it would change the platform or the "
    "state (create, replace, move, resolve an in-doubt create).",
)
@plan_options
def plan(
    campaigns_dir: Path,
    state_path: str | None,
    workspace: str,
    api_url: str | None,
    fmt: str,
    summary: bool,
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
    from reconciler.plan import planfile
    from reconciler.plan.render import markdown, plan_text
    from reconciler.plan.render import problems as render_problems

    _check_summary(fmt, summary)
    store = build_store(state_path, sandbox, workspace)
    owned = [*_owned(store), SANDBOX_TASKS]  # the embedded sandbox reads its tasks there
    if out is not None:  # before the plan is made: a name taken costs nothing
        planfile.check_target(out, owned, [campaigns_dir])
    try:
        the_plan, config, _ = build_plan(
            campaigns_dir, store.read, targets, replace, timezone, max_creates
        )
    except InputError as exc:
        if fmt == "json":  # a program reading stdout gets the problems, never nothing
            click.echo(render_problems.as_json_object(exc.problems), nl=False)
        if github_actions():  # bad input shows inline in the pull request, as with `validate`
            click.echo(render_problems.github(exc.problems), nl=False, err=fmt == "json")
        raise
    warnings = [p for p in config.problems if p.level == "warning"] + list(the_plan.problems)
    click.echo(render_problems.text(warnings), nl=False, err=True)
    click.echo(_rendered(the_plan, fmt, summary, no_color), nl=False)
    if github_actions():
        # on stderr when stdout is JSON (the runner reads workflow commands from both streams)
        annotations = render_problems.github(warnings) + plan_text.github_notices(the_plan)
        click.echo(annotations, nl=False, err=fmt == "json")
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:
            try:
                with open(step_summary, "a", encoding="utf-8") as handle:
                    handle.write(markdown.markdown(the_plan) + "\n")
            except OSError as exc:
                raise ReconcileError(
                    f"{step_summary}: cannot append to GITHUB_STEP_SUMMARY ({exc.strerror})"
                ) from None
    if the_plan.problems:
        click.echo(f"error: the plan has {len(the_plan.problems)} problem(s).", err=True)
        raise SystemExit(1)
    if out is not None:
        planfile.save(
            out, the_plan, config.campaigns, api_url_of(api_url, sandbox), owned, [campaigns_dir]
        )
        again = the_plan.options.hints.command("apply", str(out))
        say(f"Saved the plan to {out}; `{again}` carries out exactly it.", err=True)
    if detailed_exitcode and the_plan.has_changes:
        raise SystemExit(2)


def _owned(store: object) -> list[Path]:
    """The files of a state file and beside it (`S`, `S.journal`, `S.backup`, `S.lock`)."""
    from reconciler.state.file.store import FileStore

    if not isinstance(store, FileStore):
        return []
    return [store.path, store.journal_path, store.backup_path, store.lock_path]


@click.command()
@click.argument("planfile", type=click.Path(path_type=Path, dir_okay=False))
@FORMAT
@SUMMARY
@click.option("--no-color", is_flag=True, help="Never colour the output.")
def show(planfile: Path, fmt: str, summary: bool, no_color: bool) -> None:
    """Print a saved plan (made by `plan --out`) as `plan` printed it; reads neither the state
    nor the API."""
    from reconciler.plan import planfile as planfiles

    _check_summary(fmt, summary)
    body = planfiles.load(planfile, hints())
    the_plan = planfiles.to_plan(body, planfile, hints())
    bound = body["binding"]
    say(
        f"{planfile}: a plan for {bound.get('api_url')}, made by reconcile "
        f"{bound.get('tool_version')} against state serial {the_plan.serial}"
        + (f" (lineage {the_plan.lineage})." if the_plan.lineage else " (no state file)."),
        err=True,
    )
    click.echo(_rendered(the_plan, fmt, summary, no_color), nl=False)
