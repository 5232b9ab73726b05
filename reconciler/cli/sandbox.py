"""`reconcile sandbox`: run the loopback Twin24-compatible API server."""

from __future__ import annotations

from pathlib import Path

import click


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
@click.option("--latency", type=float, default=0.0, help="Seconds added to every request.")
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of creates answered 500 and not stored.",
)
@click.option(
    "--drop-after-receive-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of creates stored, then answered by a cut connection (an in-doubt create).",
)
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
