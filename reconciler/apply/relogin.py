"""One new login per run, when the API answers 401 to a run that started with a login.

A 401 means the request was refused, so it can be sent again once a new token is there.
Creates run in several threads: the first 401 logs in again (`renew`), and every request
sent with the old token that meets a 401 afterwards is sent again with the new one. A 401
with the new token, a second expiry, or a login that fails, stops the run (spec 9.3).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from reconciler.errors import ReconcileError

MAX_RENEWALS = 1


class Relogin:
    """Whether a request refused with 401 may be sent again, and what to say when not."""

    def __init__(self, renew: Callable[[], None] | None, announce: Callable[[str], None]) -> None:
        self._renew = renew  # log in again; the client sends the new token from then on
        self._announce = announce
        self._lock = threading.Lock()
        self.generation = 0  # new logins made so far: read before a request is sent
        self.error: str | None = None  # why the new login failed

    def after_401(self, generation: int) -> bool:
        """A request sent with token `generation` got a 401: True when a newer token is
        there to send it again with (a new login made now, or by another thread before)."""
        with self._lock:
            if self.generation != generation:
                return True
            if self._renew is None or self.generation >= MAX_RENEWALS or self.error:
                return False
            try:
                self._renew()
            except ReconcileError as exc:
                self.error = str(exc)
                return False
            self.generation += 1
        self._announce("warning: the API answered 401: logged in again; going on")
        return True

    def remedy(self) -> str:
        """What a 401 that stops the run means, and what to do."""
        if self._renew is None:
            return (
                "the token is missing, wrong or expired; stopping (set TWIN24_TOKEN or "
                "--token-file, or use a login: TWIN24_LOGIN and TWIN24_PASSWORD)"
            )
        if self.error:
            return f"the token expired and logging in again failed; stopping: {self.error}"
        return (
            "the token is missing, wrong or expired, also after logging in again; stopping "
            "(check the login's access to the API)"
        )
