"""The loopback Twin24 sandbox: `Sandbox`, its `SandboxOptions`, and `serve_forever` for the CLI."""

from reconciler.sandbox.api import SandboxOptions
from reconciler.sandbox.server import Sandbox, serve_forever

__all__ = ["Sandbox", "SandboxOptions", "serve_forever"]
