"""A valid campaign as the rest of the program sees it. Kept free of pydantic, so that a run
served from the validation cache never imports it."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import Location, Problem

# Bump when the payload contract (models.py) changes in a way that makes old plans, schemas
# or cached validation results wrong.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Campaign:
    """One valid campaign: its key, the file it came from, the exact body and its fingerprint."""

    key: str
    source: str
    payload: dict[str, Any]
    fingerprint: str
    # Where `name` and `startMoment` were written (for problems found later, in the plan).
    spots: dict[str, Location] = field(default_factory=dict, compare=False)
    # Its calling-policy breaches (also in the config's problems); the plan lists them.
    policy: tuple[Problem, ...] = field(default=(), compare=False)


def canonical_json(payload: Any) -> bytes:
    """Sorted keys, no spaces, non-ASCII as itself, UTF-8 (the fingerprint's input)."""
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def fingerprint(payload: Any) -> str:
    """`sha256:` + hex SHA-256 of the canonical JSON of `payload`."""
    return "sha256:" + hashlib.sha256(canonical_json(payload)).hexdigest()


# Unicode whitespace (NBSP, the typographic spaces...): each run is one space in a name key;
# the invisible zero-width ones, which a platform may drop, are nothing.
_SPACES = re.compile(r"\s+")
_INVISIBLE = re.compile("[\u200b\u2060\ufeff]")


def name_key(name: str) -> str:
    """What makes two task names the same name: NFC-normalised, case-folded, whitespace
    collapsed and stripped. A platform that trims, folds or normalises names must never make
    two campaigns one task, nor one campaign two tasks; every name comparison uses this."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())
    return _SPACES.sub(" ", _INVISIBLE.sub("", folded)).strip()
