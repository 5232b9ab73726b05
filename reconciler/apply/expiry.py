"""A token's expiry: a JWT's `exp` claim (no signature check), and what is said about it.

token_expiry(token)   TokenExpiry(jwt, expires): any other token has no expiry
check_expiry(...)     raise AuthError for an expired token; a warning within 24 hours
when(moment, now)     `2030-06-02 10:00 UTC (in 5 h)`, for messages
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from reconciler.errors import AuthError

EXPIRY_WARNING: Final = timedelta(hours=24)
LOGIN_HINT: Final = "a login does not expire: set TWIN24_LOGIN and TWIN24_PASSWORD instead"
_JWT_PART = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class TokenExpiry:
    """What a token says of its expiry: whether it is a JWT, and its `exp` if it has one."""

    jwt: bool
    expires: datetime | None = None


def token_expiry(token: str) -> TokenExpiry:
    """A JWT's `exp` claim (three base64url parts, a JSON object header and payload); no
    signature check. Any other token, or a JWT without a usable `exp`, has no expiry."""
    parts = token.split(".")
    if len(parts) != 3 or not all(_JWT_PART.fullmatch(p) for p in parts[:2]):
        return TokenExpiry(False)
    try:
        header, payload = (json.loads(_b64url(part)) for part in parts[:2])
    except (ValueError, binascii.Error, RecursionError):
        return TokenExpiry(False)
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return TokenExpiry(False)
    exp = payload.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        return TokenExpiry(True)
    try:
        return TokenExpiry(True, datetime.fromtimestamp(exp, UTC))
    except (OverflowError, OSError, ValueError):
        return TokenExpiry(True)  # past year 9999: as good as none


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def when(moment: datetime, now: datetime) -> str:
    """`2030-06-02 10:00 UTC (in 5 h)`: a moment for messages, with how far it is from now."""
    seconds = (moment - now).total_seconds()
    size = abs(seconds)
    if size < 3600:
        span = f"{max(1, round(size / 60))} min"
    elif size < 72 * 3600:
        span = f"{round(size / 3600)} h"
    else:
        span = f"{round(size / 86400)} days"
    relative = f"in {span}" if seconds >= 0 else f"{span} ago"
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({relative})"


def check_expiry(token: str, source: str, now: datetime, *, login: bool = False) -> str | None:
    """Raise AuthError for an expired JWT; return a warning when it expires within
    EXPIRY_WARNING (never for a login's token: a new login renews it)."""
    expires = token_expiry(token).expires
    if expires is None:
        return None
    if expires <= now:
        if login:
            raise AuthError(
                f"{source} gave a token that expired at {when(expires, now)} by this machine's "
                "clock; nothing was sent to the task API: check this machine's clock"
            )
        raise AuthError(
            f"the Twin24 token from {source} expired at {when(expires, now)}; nothing was "
            f"sent: get a new token, or use a login ({LOGIN_HINT})"
        )
    if not login and expires - now <= EXPIRY_WARNING:
        return (
            f"the Twin24 token from {source} expires at {when(expires, now)}: renew it before "
            f"then ({LOGIN_HINT})"
        )
    return None
