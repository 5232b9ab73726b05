"""The sandbox's IAM: logins that issue tokens its task API accepts (spec 9.3).

`POST /api/v1/auth/login` with `{"email", "password", "ttl"}` (any e-mail, the password
`sandbox` unless `SandboxOptions.password` says another, `ttl` seconds, default 3600)
answers `{"token", "refreshToken"}`. The token is a JWT (HS256, signed with a key made per
sandbox run) whose payload holds `sub` (the e-mail), `iat`, `exp` and `jti`, so the
reconciler's expiry check reads it as it reads Twin24's. The task API accepts such a token
until its `exp` on the sandbox's clock; the refresh token is never accepted anywhere.

Faults: `login_status` answers every login with that HTTP status (nothing issued);
`token_uses` makes each issued token good for that many task requests, then answered 401
`Token is expired.` (the re-login path, end to end); `fail_login_next` queues failures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

PASSWORD = "sandbox"
DEFAULT_TTL = 3600
MAX_TTL = 30 * 86400
_HEADER = {"alg": "HS256", "typ": "JWT"}

Answer = tuple[int, dict[str, Any]]  # status, JSON body


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _problem(status: int, error: str, details: Any = None) -> Answer:
    return status, {"error": error, "details": details}


class Issuer:
    """Issues the sandbox's login tokens and says whether the task API accepts one."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        token_uses: int | None = None,
        login_status: int | None = None,
        password: str = PASSWORD,
    ) -> None:
        self._clock = clock
        self._password = password
        self._token_uses = token_uses
        self._login_status = login_status
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._uses: dict[str, int] = {}  # jti -> task requests made with the token
        self._failures: deque[int] = deque()
        self.logins = 0  # tokens issued

    def fail_login_next(self, n: int = 1, status: int = 503) -> None:
        """The next `n` logins are answered `status`; nothing is issued."""
        with self._lock:
            self._failures.extend([status] * n)

    def login(self, body: bytes) -> Answer:
        """Answer one login request."""
        with self._lock:
            status = self._failures.popleft() if self._failures else self._login_status
        if status is not None:
            return _problem(status, "Login failed", "sandbox: a login fault")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _problem(400, "Invalid JSON", "the body is not JSON")
        if not isinstance(data, dict):
            return _problem(400, "Invalid JSON", "the body is not a JSON object")
        email, password, ttl = data.get("email"), data.get("password"), data.get("ttl", DEFAULT_TTL)
        problems = []
        if not isinstance(email, str) or not email.strip():
            problems.append({"path": "email", "message": "a non-empty text is required"})
        if not isinstance(password, str):
            problems.append({"path": "password", "message": "a text is required"})
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL:
            problems.append({"path": "ttl", "message": f"whole seconds 1..{MAX_TTL}"})
        if problems:
            return _problem(422, "Validation failed", problems)
        given = str(password).encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(given, self._password.encode("utf-8", "surrogatepass")):
            return _problem(
                401, "Invalid credentials", "the sandbox accepts any e-mail with its password"
            )
        refresh = _b64(secrets.token_bytes(24))
        return 200, {"token": self._issue(str(email), int(ttl)), "refreshToken": refresh}

    def _issue(self, email: str, ttl: int) -> str:
        now = int(self._clock().timestamp())
        payload = {"sub": email, "iat": now, "exp": now + ttl, "jti": secrets.token_hex(8)}
        head = f"{_b64(json.dumps(_HEADER).encode())}.{_b64(json.dumps(payload).encode())}"
        with self._lock:
            self.logins += 1
        return f"{head}.{self._sign(head)}"

    def _sign(self, head: str) -> str:
        return _b64(hmac.new(self._key, head.encode("ascii"), hashlib.sha256).digest())

    def accepts(self, token: str) -> bool:
        """True for a token this sandbox issued, not expired and (with `token_uses`) not used
        up; each accepted call counts as one use."""
        parts = token.split(".")
        if len(parts) != 3:
            return False
        head = f"{parts[0]}.{parts[1]}"
        try:
            good = hmac.compare_digest(parts[2].encode(), self._sign(head).encode())
            payload = json.loads(_unb64(parts[1])) if good else None
        except (ValueError, UnicodeError):
            return False
        if not isinstance(payload, dict) or payload.get("exp", 0) <= self._clock().timestamp():
            return False
        jti = str(payload.get("jti"))
        with self._lock:
            used = self._uses.get(jti, 0) + 1
            self._uses[jti] = used
        return self._token_uses is None or used <= self._token_uses
