"""`reconcile apply` and `check-remote`: the commands that talk to the Twin24 API."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from reconciler.cli.build import Services, api_url_of, build_config, build_plan, build_store
from reconciler.cli.options import (
    CAMPAIGNS,
    LOCK_TIMEOUT,
    STATE,
    WORKSPACE,
    Number,
    api_options,
    color,
    plan_options,
)
from reconciler.cli.output import hints, say
from reconciler.errors import InputError, PlanError, ReconcileError


def _echo_err(line: str) -> None:
    click.echo(line, err=True)


def _confirm(planfile_given: bool, auto_approve: bool) -> None:
    if planfile_given or auto_approve:
        return
    if not sys.stdin.isatty():
        raise ReconcileError(
            "apply needs confirmation: run it on a terminal and answer `yes`, pass "
            "--auto-approve, or apply a saved plan file"
        )
    answer = click.prompt(
        "Do you want to create these tasks? Only `yes` is accepted", default="", show_default=False
    )
    if answer != "yes":
        raise ReconcileError("apply cancelled; nothing was changed")


def _status_line(rate: float) -> Any:
    """The progress line on a terminal (`[12/25] created KEY`); None elsewhere."""
    if not sys.stdout.isatty() or os.environ.get("TERM") == "dumb":
        return None
    from reconciler.cli.progress import StatusLine

    return StatusLine(rate)


def _install_signals(stop: Any, client: Any) -> dict[int, Any]:
    """Route Ctrl-C, SIGTERM and SIGHUP to `stop`, and give the requests in flight
    STOP_GRACE seconds (CI kills about 10 s after its signal); returns the handlers to put
    back."""
    from reconciler.apply.apply import STOP_GRACE

    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        stop.set(f"received {name}: no new creates start; in-flight creates are recorded", name)
        client.cut_short(STOP_GRACE)
        click.echo(
            f"\n{name} received: finishing the creates in flight (at most {STOP_GRACE:g}s), "
            "starting no more.",
            err=True,
        )

    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            number = getattr(signal, name)
            previous[number] = signal.signal(number, handler)
    return previous


@click.command()
@click.argument("planfile", required=False, type=click.Path(path_type=Path, dir_okay=False))
@CAMPAIGNS
@STATE
@WORKSPACE
@api_options
@LOCK_TIMEOUT
@click.option("--auto-approve", is_flag=True, help="Do not ask for `yes`.")
@click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Creates in flight at once.",
)
@click.option(
    "--rate",
    type=Number(min=0),
    default=5,
    show_default=True,
    metavar="N",
    help="At most N creates per second (0: no limit).",
)
@click.option("--retry-pending", multiple=True, metavar="KEY", help="Re-send in-doubt KEY.")
@click.option("--allow-duplicate", multiple=True, metavar="KEY", help="Allow a probable rename.")
@click.option(
    "--no-remote-check",
    is_flag=True,
    help="Skip the lost-state guard if the list endpoint is unavailable.",
)
@plan_options
def apply(
    planfile: Path | None,
    campaigns_dir: Path,
    state_path: str | None,
    workspace: str,
    api_url: str | None,
    token_file: Path | None,
    password_file: Path | None,
    iam_url: str | None,
    lock_timeout: float,
    auto_approve: bool,
    parallelism: int,
    rate: float,
    retry_pending: tuple[str, ...],
    allow_duplicate: tuple[str, ...],
    no_remote_check: bool,
    no_color: bool,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    timezone: str,
    max_creates: int,
    sandbox: bool,
) -> None:
    """Carry out the plan: create the missing tasks, record them in the state."""
    from reconciler.apply.apply import Applier, ApplyOptions, ApplyReport, Stop
    from reconciler.plan import planfile as planfiles
    from reconciler.plan.render import plan_text

    url = api_url_of(api_url, sandbox)
    saved = None
    if planfile is not None:
        _refuse_plan_flags(planfile, targets, replace)
        saved = planfiles.load(planfile, hints())
        planfiles.to_plan(saved, planfile, hints())  # every field, as `show` checks it, early
        bound = saved["binding"]
        targets, replace = tuple(bound["targets"]), tuple(bound["replace"])
        max_creates = bound["max_creates"]
    store = build_store(state_path, sandbox, workspace)
    with (
        store.lock("reconcile apply", lock_timeout),
        # Credentials read and a login made before the plan is printed: a missing or expired
        # token costs nothing (spec 9.3).
        Services(api_url, token_file, sandbox, password_file, iam_url) as services,
    ):
        for warning in services.warnings:
            say(f"warning: {warning}", err=True)
        the_plan, config, current = build_plan(
            campaigns_dir, store.read, targets, replace, timezone, max_creates
        )
        if saved is not None:
            planfiles.check_fresh(
                saved, config.campaigns, current, url, the_plan, planfile or "PLANFILE"
            )
        click.echo(plan_text.text(the_plan, color=color(no_color)), nl=False)
        if the_plan.problems:
            raise InputError(list(the_plan.problems))
        the_plan.check_flags(retry_pending, allow_duplicate)  # a flag that would do nothing
        if not the_plan.has_changes:
            store.fold()  # a journal left by a killed run goes into the state file now
            click.echo(ApplyReport().summary())
            return
        the_plan.raise_if_unsafe()
        _confirm(saved is not None, auto_approve)
        stop = Stop()
        previous = _install_signals(stop, services.client)
        options = ApplyOptions(
            url, parallelism, rate, retry_pending, allow_duplicate, not no_remote_check
        )
        status = _status_line(rate)
        applier = Applier(
            store,
            services.client,
            options,
            status.echo if status else click.echo,
            stop,
            error=status.error if status else _echo_err,
            progress=status,
            renew=services.renew,
        )
        try:
            report = applier.run(the_plan, current)
        except BaseException:
            if status:
                status.clear()
            click.echo(applier.report.summary())  # what was done before the error
            raise
        finally:
            if status:
                status.clear()
            for number, handler in previous.items():  # apply may run inside a longer process
                signal.signal(number, handler)
    click.echo(report.summary())
    if report.stopped:
        started = f"; {len(report.skipped)} create(s) not started" if report.skipped else ""
        say(f"stopped: {report.stopped}{started}", err=True)
    raise SystemExit(report.exit_code)


def _refuse_plan_flags(planfile: Path, targets: tuple[str, ...], replace: tuple[str, ...]) -> None:
    """A saved plan carries its own targets, replaces and --max-creates: the same flags given
    again are refused (as Terraform does), never silently ignored."""
    source = click.get_current_context().get_parameter_source("max_creates")
    given = [
        flag
        for flag, used in (
            ("--target", bool(targets)),
            ("--replace", bool(replace)),
            ("--max-creates", source is not click.core.ParameterSource.DEFAULT),
        )
        if used
    ]
    if given:
        raise PlanError(
            f"{' and '.join(given)} cannot be given with a saved plan ({planfile}): the plan "
            "carries its own targets, replaces and --max-creates, as reviewed. Nothing was sent: "
            "give the flags to `reconcile plan` when saving the plan, or apply without a plan "
            "file"
        )


@click.command("check-remote")
@CAMPAIGNS
@STATE
@WORKSPACE
@api_options
@click.option("--sandbox", is_flag=True, help="Check against the embedded sandbox.")
def check_remote(
    campaigns_dir: Path,
    state_path: str | None,
    workspace: str,
    api_url: str | None,
    token_file: Path | None,
    password_file: Path | None,
    iam_url: str | None,
    sandbox: bool,
) -> None:
    """Read-only: compare the state with the remote task list (exit 2 on any difference)."""
    from reconciler.apply.drift import compare

    config = build_config(campaigns_dir)  # a campaign with errors would drop out of the match
    current = build_store(state_path, sandbox, workspace).read()
    with Services(api_url, token_file, sandbox, password_file, iam_url) as services:
        for warning in services.warnings:
            say(f"warning: {warning}", err=True)
        remote = services.client.list_tasks()
    names = {c.payload["name"]: key for key, c in config.campaigns.items()}
    drift = compare(current, names, remote, hints())
    for line in drift.findings + drift.notes:
        say(line)
    click.echo(f"check-remote: {len(drift.findings)} difference(s), {len(remote)} remote task(s).")
    if drift.findings:
        raise SystemExit(2)
