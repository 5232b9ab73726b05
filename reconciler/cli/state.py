"""`reconcile state ...` and `reconcile import`: inspect and edit the state, under the lock."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from reconciler.cli.build import (
    Services,
    api_url_of,
    build_config,
    build_postgres_store,
    build_store,
    read_state_file,
)
from reconciler.cli.complete import campaign_keys, new_keys, state_keys
from reconciler.cli.options import (
    CAMPAIGNS,
    LOCK_TIMEOUT,
    STATE,
    WORKSPACE,
    api_options,
)
from reconciler.cli.output import hints, say
from reconciler.errors import StateError
from reconciler.plan.render import escape

SANDBOX = click.option(
    "--sandbox", is_flag=True, help="The sandbox's state (.reconcile/sandbox.state.json)."
)


def _unknown(keys: list[str]) -> StateError:
    listed = ", ".join(repr(k) for k in keys[:5]) + (
        f" and {len(keys) - 5} more" if len(keys) > 5 else ""
    )
    entry = "entry" if len(keys) == 1 else "entries"
    return StateError(f"no state {entry} {listed}; see `{hints().command('state list')}`")


@click.group()
def state() -> None:
    """Inspect and edit the state (under the lock)."""


@state.command("list")
@STATE
@WORKSPACE
@SANDBOX
def state_list(state_path: str | None, workspace: str, sandbox: bool) -> None:
    """List the keys in the state with their status and identity."""
    current = build_store(state_path, sandbox, workspace).read()
    for key, entry in sorted(current.campaigns.items()):
        click.echo("\t".join(escape.text(v) for v in (key, entry.status, entry.identity or "-")))


@state.command("show")
@STATE
@WORKSPACE
@SANDBOX
@click.argument("key", shell_complete=state_keys)
def state_show(state_path: str | None, workspace: str, sandbox: bool, key: str) -> None:
    """Show one state entry as JSON."""
    import json

    current = build_store(state_path, sandbox, workspace).read()
    if key not in current.campaigns:
        raise _unknown([key])
    text = json.dumps(current.campaigns[key].to_json(), indent=2, ensure_ascii=False)
    click.echo(escape.json_text(text))


@state.command("rm")
@STATE
@WORKSPACE
@SANDBOX
@LOCK_TIMEOUT
@click.option(
    "--force",
    is_flag=True,
    help="Forget a create in doubt too (a pending entry): its task may exist.",
)
@click.argument("keys", metavar="KEY...", nargs=-1, required=True, shell_complete=state_keys)
def state_rm(
    state_path: str | None,
    workspace: str,
    sandbox: bool,
    lock_timeout: float,
    force: bool,
    keys: tuple[str],
) -> None:
    """Forget every KEY (the tasks stay on the platform): one write, and none at all when a
    KEY is not in the state or is a create in doubt (unless --force)."""
    wanted = list(dict.fromkeys(keys))
    store = build_store(state_path, sandbox, workspace)
    with store.lock("reconcile state rm", lock_timeout):
        current = store.read()
        missing = [k for k in wanted if k not in current.campaigns]
        if missing:
            raise _unknown(missing)
        pending = [k for k in wanted if current.campaigns[k].status == "pending"]
        if pending and not force:
            raise _in_doubt(pending, wanted, current.campaigns[pending[0]].created_at)
        entries = {k: e for k, e in current.campaigns.items() if k not in wanted}
        written = store.write(current.with_entries(entries))
    if len(wanted) == 1:
        say(
            f"Removed {wanted[0]} from the state (serial {written.serial}); the task stays on "
            "the platform."
        )
        return
    for key in wanted:
        say(f"Removed {key} from the state.")
    say(f"Removed {len(wanted)} entries (serial {written.serial}); the tasks stay on the platform.")


def _in_doubt(keys: list[str], wanted: list[str], sent: str) -> StateError:
    """`state rm` of creates in doubt: forgetting one lets the next apply create it again
    while the first task may exist (and without the grace a pending entry gets)."""
    shown = ", ".join(keys)
    return StateError(
        f"{shown}: a create in doubt (sent {sent}, its answer never recorded): forgetting "
        f"{'it' if len(keys) == 1 else 'them'} would let the next apply create "
        f"{'it' if len(keys) == 1 else 'them'} again while the task may exist; nothing was "
        f"changed. Run `{hints().command('apply')}` first: it looks the task up and records "
        f"it, or `{hints().command('state rm', *wanted, flags=[('--force', None)])}` if you are "
        "sure no task was made"
    )


@state.command("mv")
@STATE
@WORKSPACE
@SANDBOX
@LOCK_TIMEOUT
@click.argument("old", shell_complete=state_keys)
@click.argument("new", shell_complete=new_keys)
def state_mv(
    state_path: str | None, workspace: str, sandbox: bool, lock_timeout: float, old: str, new: str
) -> None:
    """Rename the state entry OLD to NEW (after a campaign file was renamed)."""
    if old == new:
        raise StateError(f"OLD and NEW are the same key ({old!r}); nothing to move")
    from reconciler.config.discovery import key_problem  # the YAML reader: not for --help

    why = key_problem(new)
    if why is not None:
        raise StateError(f"NEW {new!r} is not a campaign key: {why}; nothing was changed")
    store = build_store(state_path, sandbox, workspace)
    with store.lock("reconcile state mv", lock_timeout):
        current = store.read()
        if old not in current.campaigns:
            raise _unknown([old])
        if new in current.campaigns:
            raise StateError(
                f"the state already has {new!r}; if that entry is stale, "
                f"`{hints().command('state rm', new)}` first; nothing was changed"
            )
        entries = dict(current.campaigns)
        entries[new] = entries.pop(old)
        written = store.write(current.with_entries(entries))
    say(f"Moved {old} to {new} (serial {written.serial}).")


@state.command("unlock")
@STATE
@WORKSPACE
@SANDBOX
@click.argument("lock_id")
def state_unlock(state_path: str | None, workspace: str, sandbox: bool, lock_id: str) -> None:
    """Remove a lock left behind by a dead run."""
    build_store(state_path, sandbox, workspace).unlock(lock_id)
    say(f"Removed lock {lock_id}.")


@state.command("init")
@STATE
@SANDBOX
def state_init(state_path: str | None, sandbox: bool) -> None:
    """Create or upgrade the reconcile schema in a PostgreSQL --state (idempotent)."""
    from reconciler.state.postgres.store import SCHEMA_VERSION, display_url

    created = build_postgres_store(state_path, "default", "state init", sandbox).init()
    done = "Created" if created else "Found"
    say(f"{done} the reconcile schema version {SCHEMA_VERSION} in {display_url(state_path or '')}.")


@state.command("pull")
@STATE
@WORKSPACE
@SANDBOX
def state_pull(state_path: str | None, workspace: str, sandbox: bool) -> None:
    """Print the state in the state-file format (from either backend)."""
    from reconciler.state.model import dumps

    current = build_store(state_path, sandbox, workspace).pull()
    click.echo(dumps(current), nl=False)


@state.command("push")
@STATE
@WORKSPACE
@SANDBOX
@LOCK_TIMEOUT
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def state_push(
    state_path: str | None, workspace: str, sandbox: bool, lock_timeout: float, file: Path
) -> None:
    """Upload the state file FILE into an empty PostgreSQL workspace, its lineage and serial
    kept (pushing the very state the workspace holds changes nothing; any other workspace is
    refused)."""
    local = read_state_file(file)
    if not local.exists:
        raise StateError(f"{file}: no state file; nothing was pushed")
    store = build_postgres_store(state_path, workspace, "state push", sandbox)
    with store.lock("reconcile state push", lock_timeout):
        pushed = store.push(local)
    say(
        f"Pushed {file} (lineage {pushed.lineage}, serial {pushed.serial}, "
        f"{len(pushed.campaigns)} entries) to {store.where}."
    )


@click.command("import")
@CAMPAIGNS
@STATE
@WORKSPACE
@api_options
@LOCK_TIMEOUT
@click.option("--sandbox", is_flag=True, help="Read the embedded sandbox; write its state.")
@click.option(
    "--all",
    "adopt_all",
    is_flag=True,
    help="Adopt every remote task named like exactly one campaign the state does not know.",
)
@click.option("--force", is_flag=True, help="Import even if the task's name is not KEY's.")
@click.argument("key", shell_complete=campaign_keys, required=False)
@click.argument("identity", required=False)
def import_(
    campaigns_dir: Path,
    state_path: str | None,
    workspace: str,
    api_url: str | None,
    token_file: Path | None,
    password_file: Path | None,
    iam_url: str | None,
    lock_timeout: float,
    sandbox: bool,
    adopt_all: bool,
    force: bool,
    key: str | None,
    identity: str | None,
) -> None:
    """Record the remote task IDENTITY as the applied version of campaign KEY, after reading it
    on the platform; or, with --all, every remote task named like a campaign (a lost state)."""
    from reconciler.apply import adopt
    from reconciler.config.normalize import mask_url
    from reconciler.state.store import iso_z, utc_now

    if adopt_all and (key or force):
        raise click.UsageError("--all takes no KEY, IDENTITY or --force")
    if not adopt_all and (key is None or identity is None):
        missing = "KEY" if key is None else "IDENTITY"
        raise click.UsageError(f"Missing argument '{missing}' (or pass --all).")
    config = build_config(campaigns_dir)
    if key is not None and key not in config.campaigns:
        raise StateError(f"no campaign file has the key {key!r}")
    url = api_url_of(api_url, sandbox)
    store = build_store(state_path, sandbox, workspace)
    with store.lock("reconcile import", lock_timeout):
        current = store.read()
        if current.api_url and current.api_url != url:
            raise StateError(
                f"the state belongs to {mask_url(current.api_url)}, not {url}; import with the "
                "matching --api-url or another --state"
            )
        if key is not None and identity is not None:
            adopt.check_local(key, current, identity, hints())  # before any request
        with Services(api_url, token_file, sandbox, password_file, iam_url) as services:
            for warning in services.warnings:
                say(f"warning: {warning}", err=True)
            remote = services.client.list_tasks()
        now = iso_z(utc_now())
        if key is not None and identity is not None:
            one = adopt.adopt_one(
                config.campaigns[key], current, remote, identity, now, force, hints()
            )
            recovery = adopt.Recovery([one])
        else:
            recovery = adopt.adopt_all(config.campaigns, current, remote, now, hints())
        found, skipped = recovery.adopted, recovery.skipped
        written = current
        if found:
            entries = {**current.campaigns, **{a.key: a.entry for a in found}}
            written = store.write(replace(current, campaigns=entries, api_url=url))
    for adoption in found:
        for warning in adoption.warnings:
            say(warning, err=True)
        serial = "" if adopt_all else f" (serial {written.serial})"
        say(f"Imported {adoption.key} as {adoption.task.identity}{serial}.")
    if not adopt_all:
        return
    for line in skipped:
        say(f"error: {line}", err=True)
    click.echo(
        f"Imported {len(found)} campaign(s) (serial {written.serial}); {len(skipped)} skipped "
        f"(each said why, as an error); {len(remote)} remote task(s) read."
    )
    if skipped:
        raise SystemExit(1)
