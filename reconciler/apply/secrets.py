"""The secrets of a run, and scrubbing them out of every text that came from a server.

A run holds one or more secrets: the API token (and, after a new login, the tokens before
it), and with a login the password and the login's refresh token. A server may quote any of
them back: in an error body, an exception's message, a task's identity. `Secrets.scrub`
replaces each secret, in every form a JSON answer can carry it (raw, JSON-escaped, with `\\/`,
ASCII-escaped), by `***`; `Secrets.holds` says whether a text contains one (an identity that
does is no identity: it could only be shown masked).

`add` may run while other threads scrub: the forms are one tuple, replaced whole.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

MASK = "***"


def forms(secret: str) -> set[str]:
    """`secret` as it may appear inside an answer: raw and in the escapes JSON allows."""
    found = {secret}
    for ascii_only in (False, True):
        escaped = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        found |= {escaped, escaped.replace("/", "\\/")}
    return {form for form in found if form}


class Secrets:
    """Every secret of a run, ready to be scrubbed out of texts; never shows them itself."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._forms: tuple[str, ...] = ()
        for secret in secrets:
            self.add(secret)

    def __repr__(self) -> str:
        return f"Secrets({len(self._forms)} forms)"

    def add(self, secret: str) -> None:
        """Scrub `secret` too from now on (an empty text is no secret)."""
        if not secret:
            return
        with self._lock:
            # Longest first: a secret inside another is replaced after the longer one.
            self._forms = tuple(sorted(set(self._forms) | forms(secret), key=len, reverse=True))

    def holds(self, text: str) -> bool:
        """True when `text` contains a secret in any of its forms."""
        return any(form in text for form in self._forms)

    def scrub(self, value: Any) -> Any:
        """`value` with every secret replaced by `***` (strings, lists, dicts, their keys)."""
        if isinstance(value, str):
            for form in self._forms:
                value = value.replace(form, MASK)
            return value
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        return value
