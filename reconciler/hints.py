"""The commands messages suggest, written so that they act on what the run acted on (spec 9.4).

Every `reconcile ...` a message suggests (`state rm`, `state mv`, `import`, `apply PLANFILE`,
`plan`, `state unlock`, `--retry-pending`...) is rendered by `Hints.command` from the run's
context: the `--sandbox`, `--campaigns`, `--state`, `--workspace` and `--api-url` the user gave
as flags, each on the commands that take it, and on the commands that talk to the API the
`--token-file`, `--password-file` and `--iam-url` (paths and a URL, never a secret). A value
that came from the environment (RECONCILE_STATE, RECONCILE_CAMPAIGNS, RECONCILE_WORKSPACE,
TWIN24_API_URL, TWIN24_IAM_URL) is not repeated: it
holds in the shell the hint is run in too, and a log never shows more than the user typed.
Every word is shell-quoted (`shlex.quote`), so a key or a path with a space or a quote works as
printed; the line is then escaped for the terminal by whoever prints it (`escape.text`).

A leaf like `errors.py`: every layer may use it (the CLI fills it in and passes it down to the
stores, the plan and apply), and it uses none of them.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass

SANDBOX_API_URL = "sandbox:embedded"  # the API a --sandbox run records in state and plans

_ALL = ("--sandbox", "--campaigns", "--state", "--workspace", "--api-url")
# The commands that talk to the API also repeat where the credentials come from (file paths
# and a URL, never a secret): without them a hint run as printed has no token, or sends the
# login's password to the default IAM rather than the one the run used.
_API = (*_ALL, "--token-file", "--password-file", "--iam-url")
_STATE = ("--sandbox", "--state", "--workspace")
# The context options each command takes (by its words, else its first word).
_TAKES: dict[str, tuple[str, ...]] = {
    "plan": _ALL,
    "apply": _API,
    "import": _API,
    "check-remote": _API,
    "doctor": _API,
    "state": _STATE,
    "state init": ("--sandbox", "--state"),  # a schema serves every workspace
    "validate": ("--campaigns",),
    "fmt": ("--campaigns",),
}

Flag = tuple[str, str | None]  # `("--target", KEY)`, or `("--auto-approve", None)`


@dataclass(frozen=True)
class Hints:
    """The options a suggested command repeats; None: not given as a flag."""

    sandbox: bool = False
    campaigns: str | None = None
    state: str | None = None
    workspace: str | None = None
    api_url: str | None = None
    token_file: str | None = None
    password_file: str | None = None
    iam_url: str | None = None

    def context(self, words: str) -> list[Flag]:
        """The context flags the command `words` (`"state rm"`) takes, in a fixed order."""
        takes = _TAKES.get(words, _TAKES.get(words.split()[0], ()))
        given: list[Flag] = [("--sandbox", None)] if self.sandbox else []
        for name, value in (
            ("--campaigns", self.campaigns),
            ("--state", self.state),
            ("--workspace", self.workspace),
            ("--api-url", self.api_url),
            ("--token-file", self.token_file),
            ("--password-file", self.password_file),
            ("--iam-url", self.iam_url),
        ):
            if value is not None:
                given.append((name, value))
        return [flag for flag in given if flag[0] in takes]

    def flags(self, words: str) -> str:
        """The context flags of the command `words`, shell-quoted (`--sandbox --state s.json`)."""
        return " ".join(_rendered(self.context(words)))

    def command(self, words: str, *args: str, flags: Iterable[Flag] = ()) -> str:
        """`reconcile WORDS [CONTEXT] [FLAGS] [--] ARGS`, every word shell-quoted.

        `words` are the command's own (`"state rm"`); `args` its positional arguments (keys,
        identities, files); `flags` more options. A value or an argument that starts with `-`
        is written so that it cannot be read as an option (`--flag=VALUE`, `--` before ARGS).
        """
        out = ["reconcile", *words.split(), *_rendered([*self.context(words), *flags])]
        if any(a.startswith("-") for a in args):
            out.append("--")
        out += [shlex.quote(a) for a in args]
        return " ".join(out)


def _rendered(flags: Iterable[Flag]) -> list[str]:
    out: list[str] = []
    for name, value in flags:
        if value is None:
            out.append(name)
        elif value.startswith("-"):
            out.append(shlex.quote(f"{name}={value}"))
        else:
            out += [name, shlex.quote(value)]
    return out
