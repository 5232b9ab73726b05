"""Test tokens: JWTs with a chosen `exp` (no real signature: the reconciler checks none).
Not a test module: helpers for test_auth.py, test_login_e2e.py and test_doctor.py."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any


def b64(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(exp: datetime | float | None = None, **claims: Any) -> str:
    """`header.payload.signature` with `exp` (a moment or seconds) and any other claims."""
    payload = dict(claims)
    if isinstance(exp, datetime):
        payload["exp"] = int(exp.timestamp())
    elif exp is not None:
        payload["exp"] = exp
    return f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(payload)}.{b64(b'not-checked')}"
