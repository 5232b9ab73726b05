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
]


def plan_options(func: Any) -> Any:
    for option in reversed(PLAN_OPTIONS):
        func = option(func)
    return func


def build_plan(
    campaigns_dir: Path,
    state: Any,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    timezone: str,
    max_creates: int,
) -> tuple[Any, Any]:
    """Validate the campaigns and make the plan against `state`; returns (plan, config)."""
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
    options = PlanOptions(targets, replace, max_creates, timezone, datetime.now(UTC))
    return make_plan(config.campaigns, config.moves, state, options), config


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
@click.option("--no-color", is_flag=True, help="Never colour the output.")
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

    state = build_store(state_path, sandbox, workspace).read()
    try:
        the_plan, config = build_plan(campaigns_dir, state, targets, replace, timezone, max_creates)
    except InputError as exc:
        if _github_actions():  # bad input shows inline in the pull request, as with `validate`
            click.echo(render_problems.github(exc.problems), nl=False)
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
        click.echo(render_problems.github(warnings), nl=False)
        click.echo(plan_text.github_notices(the_plan), nl=False)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(markdown.markdown(the_plan) + "\n")
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


@cli.group()
def state() -> None:
    """Inspect and edit the state (under the lock)."""


@state.command("list")
@STATE
@WORKSPACE
def state_list(state_path: str | None, workspace: str) -> None:
    """List the keys in the state with their status and identity."""
    current = build_store(state_path, workspace=workspace).read()
    for key, entry in sorted(current.campaigns.items()):
        click.echo(f"{key}\t{entry.status}\t{entry.identity or '-'}")


@state.command("show")
@STATE
@WORKSPACE
@click.argument("key")
def state_show(state_path: str | None, workspace: str, key: str) -> None:
    """Show one state entry as JSON."""
    import json

    current = build_store(state_path, workspace=workspace).read()
    if key not in current.campaigns:
        raise StateError(f"no state entry {key!r}; see `reconcile state list`")
    click.echo(json.dumps(current.campaigns[key].to_json(), indent=2, ensure_ascii=False))


@state.command("rm")
@STATE
@WORKSPACE
@LOCK_TIMEOUT
@click.argument("key")
def state_rm(state_path: str | None, workspace: str, lock_timeout: float, key: str) -> None:
    """Forget KEY (the task stays on the platform)."""
    store = build_store(state_path, workspace=workspace)
    with store.lock("reconcile state rm", lock_timeout):
        current = store.read()
        if key not in current.campaigns:
            raise StateError(f"no state entry {key!r}; see `reconcile state list`")
        entries = {k: e for k, e in current.campaigns.items() if k != key}
        written = store.write(current.with_entries(entries))
    click.echo(
        f"Removed {key} from the state (serial {written.serial}); the task stays on the platform."
    )


@state.command("mv")
@STATE
@WORKSPACE
@LOCK_TIMEOUT
@click.argument("old")
@click.argument("new")
def state_mv(
    state_path: str | None, workspace: str, lock_timeout: float, old: str, new: str
) -> None:
    """Rename the state entry OLD to NEW (after a campaign file was renamed)."""
    store = build_store(state_path, workspace=workspace)
    with store.lock("reconcile state mv", lock_timeout):
        current = store.read()
        if old not in current.campaigns:
            raise StateError(f"no state entry {old!r}; see `reconcile state list`")
        if new in current.campaigns:
            raise StateError(f"the state already has {new!r}; remove it first if it is stale")
        entries = dict(current.campaigns)
        entries[new] = entries.pop(old)
        written = store.write(current.with_entries(entries))
    click.echo(f"Moved {old} to {new} (serial {written.serial}).")


@state.command("unlock")
@STATE
@WORKSPACE
@click.argument("lock_id")
def state_unlock(state_path: str | None, workspace: str, lock_id: str) -> None:
    """Remove a lock left behind by a dead run."""
    build_store(state_path, workspace=workspace).unlock(lock_id)
    click.echo(f"Removed lock {lock_id}.")


def build_postgres_store(state_path: str | None, workspace: str, command: str) -> Any:
    """The PostgreSQL store `command` needs; a file --state is refused."""
    from reconciler.store_pg import PostgresStore

    store = build_store(state_path, workspace=workspace)
    if not isinstance(store, PostgresStore):
        raise StateError(
            f"`reconcile {command}` needs a postgresql://USER@HOST:PORT/DB --state (or env "
            f"RECONCILE_STATE); {store.path} is a state file"
        )
    return store


@state.command("init")
@STATE
def state_init(state_path: str | None) -> None:
    """Create or upgrade the reconcile schema in a PostgreSQL --state (idempotent)."""
    from reconciler.store_pg import SCHEMA_VERSION, display_url

    created = build_postgres_store(state_path, "default", "state init").init()
    done = "Created" if created else "Found"
    click.echo(
        f"{done} the reconcile schema version {SCHEMA_VERSION} in {display_url(state_path or '')}."
    )


@state.command("pull")
@STATE
@WORKSPACE
def state_pull(state_path: str | None, workspace: str) -> None:
    """Print the state in the state-file format (from either backend)."""
    from reconciler.state import dumps

    store = build_store(state_path, workspace=workspace)
    current = store.pull() if hasattr(store, "pull") else store.read()
    if not current.exists:
        raise StateError(f"{store.path}: no state file; nothing to pull")
    click.echo(dumps(current), nl=False)


@state.command("push")
@STATE
@WORKSPACE
@LOCK_TIMEOUT
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def state_push(state_path: str | None, workspace: str, lock_timeout: float, file: Path) -> None:
    """Upload the state file FILE into a PostgreSQL workspace (an empty one, or one of the
    same lineage at an older serial)."""
    from reconciler.store import FileStore

    local = FileStore(file).read()
    if not local.exists:
        raise StateError(f"{file}: no state file; nothing was pushed")
    store = build_postgres_store(state_path, workspace, "state push")
    with store.lock("reconcile state push", lock_timeout):
        pushed = store.push(local)
    click.echo(
        f"Pushed {file} (lineage {pushed.lineage}, serial {pushed.serial}, "
        f"{len(pushed.campaigns)} entries) to {store.where}."
    )


@cli.command("import")
@CAMPAIGNS
@STATE
@WORKSPACE
@API_URL
@LOCK_TIMEOUT
@click.argument("key")
@click.argument("identity")
def import_(
    campaigns_dir: Path,
    state_path: str | None,
    workspace: str,
    api_url: str | None,
    lock_timeout: float,
    key: str,
    identity: str,
) -> None:
    """Record an existing remote task IDENTITY as the applied version of campaign KEY."""
    from reconciler.state import Entry
    from reconciler.store import FileStore, iso_z, utc_now

    config = build_config(campaigns_dir)
    if key not in config.campaigns:
        raise StateError(f"no campaign file has the key {key!r}")
    campaign = config.campaigns[key]
    store: FileStore = build_store(state_path, workspace=workspace)
    with store.lock("reconcile import", lock_timeout):
        current = store.read()
        existing = current.campaigns.get(key)
        if existing is not None and existing.status == "created":
            raise StateError(
                f"{key} is already in the state as {existing.identity}; `reconcile state rm "
                f"{key}` first if that is wrong"
            )
        entry = Entry(
            "created",
            identity,
            campaign.fingerprint,
            campaign.payload,
            campaign.source,
            iso_z(utc_now()),
        )
        url = current.api_url or api_url_of(api_url, False)
        written = store.write(replace_state(current, {**current.campaigns, key: entry}, url))
    click.echo(f"Imported {key} as {identity} (serial {written.serial}).")


def replace_state(current: Any, entries: dict[str, Any], api_url: str) -> Any:
    from dataclasses import replace

    return replace(current, campaigns=entries, api_url=api_url)


TOKEN_FILE = click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Read the Twin24 token from FILE (else env TWIN24_TOKEN). Never a plain flag.",
)


class Services:
    """The API side of a run: a client, and the embedded sandbox when --sandbox is given."""

    def __init__(self, api_url: str | None, token_file: Path | None, sandbox: bool) -> None:
        from reconciler.client import Timeouts, Twin24Client, read_token

        self.sandbox: Any = None
        if sandbox:
            from reconciler.sandbox import Sandbox, SandboxOptions

            SANDBOX_STATE.parent.mkdir(parents=True, exist_ok=True)
            self.sandbox = Sandbox(
                SandboxOptions(port=0, data_file=SANDBOX_STATE.parent / "sandbox.tasks.json")
            )
            self.sandbox.start()
            url, token = self.sandbox.url, "sandbox"
        else:
            from reconciler.client import DEFAULT_API_URL

            url, token = api_url or DEFAULT_API_URL, read_token(token_file, os.environ)
        self.client = Twin24Client(url, token, timeouts=Timeouts(read=_read_timeout()))

    def close(self) -> None:
        self.client.close()
        if self.sandbox is not None:
            self.sandbox.stop()


READ_TIMEOUT_ENV = "RECONCILE_READ_TIMEOUT"


def _read_timeout() -> float:
    """The client's read timeout: env RECONCILE_READ_TIMEOUT seconds (tests), else the default."""
    from reconciler.client import Timeouts

    text = os.environ.get(READ_TIMEOUT_ENV, "").strip()
    if not text:
        return Timeouts.read
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise ReconcileError(f"{READ_TIMEOUT_ENV}={text!r} is not a number of seconds > 0")
    return seconds


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
    answer = click.prompt("Do you want to create these tasks? Only `yes` is accepted", default="")
    if answer != "yes":
        raise ReconcileError("apply cancelled; nothing was changed")


def _install_signals(stop: Any) -> None:
    import signal

    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        stop.set(f"received {name}: no new creates start; in-flight creates are recorded", name)
        click.echo(
            f"\n{name} received: finishing the creates in flight, starting no more.", err=True
        )

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handler)


@cli.command()
@click.argument("planfile", required=False, type=click.Path(path_type=Path, dir_okay=False))
@CAMPAIGNS
@STATE
@WORKSPACE
@API_URL
@TOKEN_FILE
@LOCK_TIMEOUT
@click.option("--auto-approve", is_flag=True, help="Do not ask for `yes`.")
@click.option("--parallelism", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="At most N creates per second (0: no limit).",
)
@click.option("--retry-pending", multiple=True, metavar="KEY", help="Re-send in-doubt KEY.")
@click.option("--allow-duplicate", multiple=True, metavar="KEY", help="Allow a probable rename.")
@click.option(
    "--no-remote-check",
    is_flag=True,
    help="Skip the lost-state guard if the list endpoint is unavailable.",
)
@click.option("--no-color", is_flag=True, help="Never colour the output.")
@plan_options
def apply(
    planfile: Path | None,
    campaigns_dir: Path,
    state_path: str | None,
    workspace: str,
    api_url: str | None,
    token_file: Path | None,
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
    from reconciler import planfile as planfiles
    from reconciler.apply import Applier, ApplyOptions, Stop
    from reconciler.plan import InDoubt
    from reconciler.render import plan_text

    url = api_url_of(api_url, sandbox)
    saved = planfiles.load(planfile) if planfile is not None else None
    if saved is not None:
        bound = saved["binding"]
        targets, replace = tuple(bound["targets"]), tuple(bound["replace"])
        max_creates = bound["max_creates"]
    store = build_store(state_path, sandbox, workspace)
    with store.lock("reconcile apply", lock_timeout):
        current = store.read()
        the_plan, config = build_plan(
            campaigns_dir, current, targets, replace, timezone, max_creates
        )
        if saved is not None:
            planfiles.check_fresh(saved, config.campaigns, current, url)
        click.echo(plan_text.text(the_plan, color=_color(no_color)), nl=False)
        if the_plan.problems:
            raise InputError(list(the_plan.problems))
        work = the_plan.has_changes or any(isinstance(a, InDoubt) for a in the_plan.actions)
        if not work:
            store.fold()  # a journal left by a killed run goes into the state file now
            click.echo("Apply: 0 created, 0 refused, 0 in doubt.")
            return
        the_plan.raise_if_unsafe(allow_duplicate)
        _confirm(saved is not None, auto_approve)
        services = Services(api_url, token_file, sandbox)
        stop = Stop()
        _install_signals(stop)
        options = ApplyOptions(
            url, parallelism, rate, retry_pending, allow_duplicate, not no_remote_check
        )
        try:
            report = Applier(
                store, services.client, options, click.echo, stop, error=_echo_err
            ).run(the_plan, current)
        finally:
            services.close()
    click.echo(report.summary())
    if report.stopped:
        click.echo(f"stopped: {report.stopped}", err=True)
    raise SystemExit(report.exit_code)


@cli.command("check-remote")
@CAMPAIGNS
@STATE
@WORKSPACE
@API_URL
@TOKEN_FILE
@click.option("--sandbox", is_flag=True, help="Check against the embedded sandbox.")
def check_remote(
    campaigns_dir: Path,
    state_path: str | None,
    workspace: str,
    api_url: str | None,
    token_file: Path | None,
    sandbox: bool,
) -> None:
    """Read-only: compare the state with the remote task list (exit 2 on any difference)."""
    from reconciler.validate import load_config

    current = build_store(state_path, sandbox, workspace).read()
    config = load_config(campaigns_dir)
    services = Services(api_url, token_file, sandbox)
    try:
        remote = services.client.list_tasks()
    finally:
        services.close()
    by_id = {t.identity: t for t in remote}
    known = {e.identity for e in current.campaigns.values()}
    names = {c.payload["name"]: key for key, c in config.campaigns.items()}
    findings = []
    for key, entry in sorted(current.campaigns.items()):
        if entry.status != "created":
            findings.append(f"? {key}: pending (a create is in doubt); run `reconcile apply`")
        elif entry.identity not in by_id:
            findings.append(f"- {key}: task {entry.identity} is gone from the platform")
        elif by_id[entry.identity].status == "HALTED":
            findings.append(f"! {key}: task {entry.identity} is HALTED on the platform")
    for task in sorted(remote, key=lambda t: (t.name, t.identity)):
        if task.identity not in known and task.name in names:
            findings.append(
                f"+ {names[task.name]}: remote task {task.identity} named {task.name!r} is not "
                f"in the state; adopt it with `reconcile import {names[task.name]} "
                f"{task.identity}`"
            )
    for line in findings:
        click.echo(line)
    click.echo(f"check-remote: {len(findings)} difference(s), {len(remote)} remote task(s).")
    if findings:
        raise SystemExit(2)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8024, show_default=True)
@click.option("--token", default="sandbox", show_default=True, help="Bearer token it accepts.")
@click.option("--data", type=click.Path(path_type=Path, dir_okay=False), help="Keep tasks here.")
@click.option("--latency", type=float, default=0.0, help="Seconds added to every request.")
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0)
@click.option("--drop-after-receive-rate", type=click.FloatRange(0, 1), default=0.0)
@click.option("--rate-limit", type=float, default=0.0, help="Creates per second before 429.")
def sandbox(
    host: str,
    port: int,
    token: str,
    data: Path | None,
    latency: float,
    fail_rate: float,
    drop_after_receive_rate: float,
    rate_limit: float,
) -> None:
    """Run a local Twin24-compatible API server."""
    from reconciler.sandbox import SandboxOptions, serve_forever

    serve_forever(
        SandboxOptions(
            host=host,
            port=port,
            token=token,
            data_file=data,
            latency=latency,
            fail_rate=fail_rate,
            drop_after_receive_rate=drop_after_receive_rate,
            rate_limit=rate_limit or None,
        )
    )


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
