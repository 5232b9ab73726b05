"""`reconcile sandbox`: run the loopback Twin24-compatible API server."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import Number

# sandbox.listing.LIST_SHAPES, copied (tests/test_sandbox.py checks that they agree): importing
# the sandbox here would load pydantic on every --help and Tab press.
LIST_SHAPES = (
    "bare",
    "no-items",
    "items-not-list",
    "items-not-objects",
    "html",
    "empty",
    "not-json",
)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8024,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option("--token", default="sandbox", show_default=True, help="Bearer token it accepts.")
@click.option("--data", type=click.Path(path_type=Path, dir_okay=False), help="Keep tasks here.")
@click.option("--latency", type=Number(min=0), default=0.0, help="Seconds added to every request.")
@click.option(
    "--fail-rate",
    type=Number(0, 1),
    default=0.0,
    help="Share of creates answered 500 and not stored.",
)
@click.option(
    "--drop-after-receive-rate",
    type=Number(0, 1),
    default=0.0,
    help="Share of creates stored, then answered by a cut connection (an in-doubt create).",
)
@click.option(
    "--rate-limit", type=Number(min=0), default=0.0, help="Creates per second before 429."
)
@click.option(
    "--list-shape", type=click.Choice(LIST_SHAPES), help="Answer the task list in this shape."
)
@click.option("--page-cap", type=click.IntRange(min=1), help="At most N tasks per list page.")
@click.option("--ignore-page", is_flag=True, help="Answer every list page with the first.")
@click.option("--repeat-page", type=click.IntRange(min=1), help="Answer page N with page N-1.")
@click.option("--count-extra", type=click.IntRange(min=0), default=0, help="Overstate `count`.")
@click.option(
    "--clock-skew",
    type=Number(),
    default=0.0,
    help="Seconds the sandbox's clock (Date, createdAt) is ahead of ours; negative: behind.",
)
@click.option(
    "--fail-logins",
    "login_status",
    type=click.IntRange(300, 599),
    metavar="STATUS",
    help="Answer every login (POST /api/v1/auth/login) with HTTP STATUS; issue no token.",
)
@click.option(
    "--token-uses",
    type=click.IntRange(min=0),
    metavar="N",
    help="A login's token is refused (401) after N task requests; a new login gets another.",
)
def sandbox(
    host: str,
    port: int,
    token: str,
    data: Path | None,
    latency: float,
    fail_rate: float,
    drop_after_receive_rate: float,
    rate_limit: float,
    list_shape: str | None,
    page_cap: int | None,
    ignore_page: bool,
    repeat_page: int | None,
    count_extra: int,
    clock_skew: float,
    login_status: int | None,
    token_uses: int | None,
) -> None:
    """Run a local Twin24-compatible API server (and its login: any e-mail, the password
    `sandbox`)."""
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
            list_shape=list_shape,
            page_cap=page_cap,
            ignore_page=ignore_page,
            repeat_page=repeat_page,
            count_extra=count_extra,
            clock_skew=clock_skew,
            login_status=login_status,
            token_uses=token_uses,
        )
    )
