"""The one way commands print a line of their own words around values they did not write.

Keys, paths, identities and messages from the API or the state are data: `say` escapes the
whole line for a terminal or a CI log (`plan.render.escape.text`), so a value can never add a
line or a workflow command. Renderings (plans, problems) are escaped by their renderers.
"""

from __future__ import annotations

import click

from reconciler.plan.render import escape


def say(line: str, err: bool = False) -> None:
    """Print one line, escaped for a terminal (control characters as \\uXXXX)."""
    click.echo(escape.text(line), err=err)
