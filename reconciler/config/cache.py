"""The validation cache: clean results of earlier validations, keyed by content.

Correct by construction:
- the key hashes everything a result depends on: the tool, schema and YAML reader versions,
  the calling policy in effect (its thresholds and level, not the bytes of `_policy.yaml`: a
  comment changes nothing), the campaign's key and shown file name, its bytes, and the bytes
  of every `_defaults.yaml` in its chain, in order; an edited file or policy has another key
  and every campaign it touches is validated again;
- only campaigns with no problem at all (no error, no warning) are stored, so a cache hit can
  never hide a problem;
- it is one JSON file, written atomically; a missing, broken or foreign file is an empty cache,
  so it is always safe to delete. It lives outside the working tree (`$XDG_CACHE_HOME/reconcile`,
  else `~/.cache/reconcile`, or env RECONCILE_CACHE_DIR; `off` disables it), so a run never
  changes the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.config.campaign import SCHEMA_VERSION, Campaign
from reconciler.config.discovery import CampaignFile
from reconciler.config.yamlio import READER_VERSION
from reconciler.errors import Location

CACHE_ENV = "RECONCILE_CACHE_DIR"
FILE_NAME = "validate.json"
_SALT = f"reconcile {__version__} schema {SCHEMA_VERSION} reader {READER_VERSION}\n".encode()


def cache_key(
    campaign_file: CampaignFile, raw: bytes | None, chain: list[bytes | None], policy: bytes = b""
) -> str:
    """The content key of one campaign, or `` when a file could not be read (never cached);
    `policy` is `Policy.key()` of the calling policy in effect."""
    if raw is None or any(part is None for part in chain):
        return ""
    digest = hashlib.blake2b(_SALT, digest_size=20)
    for part in (policy, campaign_file.key.encode(), campaign_file.file.encode(), raw, *chain):
        assert part is not None
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class ValidationCache:
    """Clean validation results by content key, loaded once and saved once per run."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE_NAME
        self.entries: dict[str, Any] = {}
        self.used: set[str] = set()
        self.dirty = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("salt") == _SALT.decode() and isinstance(data.get("entries"), dict):
                self.entries = data["entries"]
        except (OSError, ValueError, AttributeError):
            pass

    @classmethod
    def default(cls) -> ValidationCache | None:
        """The cache in env RECONCILE_CACHE_DIR or the user's cache folder; None for `off`."""
        folder = os.environ.get(CACHE_ENV)
        if folder == "off":
            return None
        if not folder:
            base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
            folder = os.path.join(base, "reconcile")
        return cls(Path(folder))

    def get(self, key: str) -> Campaign | None:
        data = self.entries.get(key)
        if not isinstance(data, dict):
            return None
        try:
            campaign = Campaign(
                data["key"],
                data["source"],
                data["payload"],
                data["fingerprint"],
                {name: Location(*spot) for name, spot in data["spots"].items()},
            )
        except (KeyError, TypeError):
            return None
        self.used.add(key)
        return campaign

    def put(self, key: str, campaign: Campaign) -> None:
        self.entries[key] = {
            "key": campaign.key,
            "source": campaign.source,
            "payload": campaign.payload,
            "fingerprint": campaign.fingerprint,
            "spots": {name: list(spot) for name, spot in campaign.spots.items()},
        }
        self.used.add(key)
        self.dirty = True

    def save(self, keep: set[str]) -> None:
        """Write the entries still in use; a failure to write only costs speed next time."""
        stale = set(self.entries) - keep
        if not self.dirty and not stale:
            return
        for key in stale:
            del self.entries[key]
        text = json.dumps({"salt": _SALT.decode(), "entries": self.entries}, ensure_ascii=False)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".validate.")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(tmp, self.path)
        except OSError:
            pass
