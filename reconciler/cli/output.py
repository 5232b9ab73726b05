"""The one way commands print a line of their own words around values they did not write, and
the context the commands they suggest repeat.

Keys, paths, identities and messages from the API or the state are data: `say` escapes the
whole line for a terminal or a CI log (`plan.render.escape.text`), so a value can never add a
line or a workflow command. Renderings (plans, problems) are escaped by their renderers.
"""

from __future__ import annotations

import click
from click.core import ParameterSource

from reconciler.hints import Hints
from reconciler.plan.render import escape


def say(line: str, err: bool = False) -> None:
    """Print one line, escaped for a terminal (control characters as \\uXXXX)."""
    click.echo(escape.text(line), err=err)


def _has_password(state: str) -> bool:
    from reconciler.state.postgres.connection import has_password
    from reconciler.state.postgres.store import is_postgres_url

    return is_postgres_url(state) and has_password(state)


def hints() -> Hints:
    """What a command this run suggests must repeat (`reconciler.hints`): the context options
    of the running command that were given on the command line (not from the environment)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return Hints()

    def given(name: str) -> str | None:
        value = ctx.params.get(name)
        if value is None or ctx.get_parameter_source(name) is not ParameterSource.COMMANDLINE:
            return None
        return str(value)

    state = given("state_path")
    if state is not None and _has_password(state):
        state = "URL"  # never printed whole (and refused anyway): the masked one would not work
    return Hints(
        sandbox=bool(ctx.params.get("sandbox")),
        campaigns=given("campaigns_dir"),
        state=state,
        workspace=given("workspace"),
        api_url=given("api_url"),
        token_file=given("token_file"),
        password_file=given("password_file"),
        iam_url=given("iam_url"),
    )
