"""Shell completion of campaign keys (click's `shell_complete=` callbacks).

A completion runs on every Tab press, in whatever folder the user is in: it reads only the
campaigns folder's file names and a state file, never a database, and never fails or prints.
Anything it cannot read simply completes nothing; a key that would need quoting is not offered.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click


def _matching(keys: list[str], incomplete: str) -> list[str]:
    """The keys that start with `incomplete` and can stand on a command line as they are: a
    key the shell would need quoted (a space, `$(...)`, a quote) or that no campaign file can
    have (a newline, an escape character: state keys are anyone's) is never offered, since
    the shell puts a completion on the command line unquoted; nor is one that starts with `-`,
    which would be read as an option."""
    from reconciler.config.discovery import key_problem

    return sorted(
        k
        for k in keys
        if k.startswith(incomplete)
        and shlex.quote(k) == k
        and key_problem(k) is None
        and not k.startswith("-")  # typed as offered, it would be read as an option
    )


def _campaign_keys(ctx: click.Context) -> list[str]:
    from reconciler.config.discovery import discover

    root = ctx.params.get("campaigns_dir") or os.environ.get("RECONCILE_CAMPAIGNS") or "campaigns"
    return [c.key for c in discover(Path(root)).campaigns]


def _state_keys(ctx: click.Context) -> list[str]:
    from reconciler.cli.options import DEFAULT_STATE, SANDBOX_STATE  # options imports this module
    from reconciler.state.file.store import FileStore
    from reconciler.state.postgres.store import is_postgres_url

    given = ctx.params.get("state_path") or os.environ.get("RECONCILE_STATE")
    if given and is_postgres_url(given):
        return []  # a round trip to a database on every Tab press: no
    path = Path(given) if given else SANDBOX_STATE if ctx.params.get("sandbox") else DEFAULT_STATE
    if not path.is_file():
        return []
    return list(FileStore(path).read().campaigns)


def campaign_keys(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Keys of the campaign files below `--campaigns`."""
    try:
        return _matching(_campaign_keys(ctx), incomplete)
    except Exception:  # completion must never fail: no keys rather than a traceback
        return []


def state_keys(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Keys in the state file of `--state` (or the default one)."""
    try:
        return _matching(_state_keys(ctx), incomplete)
    except Exception:
        return []


def new_keys(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Campaign keys the state does not know yet: where `state mv` moves an entry to."""
    known = set(state_keys(ctx, _param, ""))  # an unreadable state hides no file
    try:
        return _matching([k for k in _campaign_keys(ctx) if k not in known], incomplete)
    except Exception:
        return []
