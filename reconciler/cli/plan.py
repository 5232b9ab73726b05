"""`reconcile plan`: validate, compare with the state, print (and save) the plan."""

from __future__ import annotations

import os
from pathlib import Path

import click

from reconciler.cli.build import api_url_of, build_plan, build_store
from reconciler.cli.options import (
    API_URL,
    CAMPAIGNS,
    STATE,
    WORKSPACE,
    color,
    github_actions,
    plan_options,
)
from reconciler.cli.output import say
from reconciler.errors import InputError, ReconcileError


@click.command()
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
    help="text for a terminal, markdown for a pull request, json for programs.",
)
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

    store = build_store(state_path, sandbox, workspace)
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
    if fmt == "json":
        rendered = plan_text.as_json(the_plan)
    elif fmt == "markdown":
        rendered = markdown.markdown(the_plan)
    else:
        rendered = plan_text.text(the_plan, color=color(no_color))
    click.echo(rendered, nl=False)
    if github_actions():
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
        say(f"Saved the plan to {out}; `reconcile apply {out}` carries out exactly it.", err=True)
    if detailed_exitcode and the_plan.has_changes:
        raise SystemExit(2)
