"""The draft-07 JSON Schemas: two generated from `models.py`, and the calling policy's.

- `campaign.schema.json`: a complete campaign, that is the create payload with every required
  field and every conditional requirement as `if`/`then` (what `validate` checks after
  defaults are merged), also as a campaign file that uses no `_defaults.yaml` may write it:
  the friendly forms (`cps: "3/s"`, `"09:00"`) are accepted exactly as `validate` accepts
  them (spec 9.1: an editor must not flag what `validate` accepts).
- `campaign-file.schema.json`: one campaign file before defaults are merged: the same types,
  enums, ranges, friendly forms and unknown-field rules, every field optional. Conditional
  requirements are left out, since a `_defaults.yaml` may supply the required field.
- `policy.schema.json`: `campaigns/_policy.yaml` (see `policy_file.py`).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from reconciler.config import files, models, normalize, policy_file
from reconciler.config.campaign import SCHEMA_VERSION

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
PAYLOAD_FILE = "campaign.schema.json"
CAMPAIGN_FILE = "campaign-file.schema.json"
_ID_BASE = "https://reconcile.invalid/schemas/"


def payload_schema() -> dict[str, Any]:
    """The complete create payload."""
    schema = models.CallTask.model_json_schema(ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", {})
    for name, sub in [("CallTask", schema), *definitions.items()]:
        model = getattr(models, name)
        _tidy(sub)
        rules = [_if_then(rule) for rule in getattr(model, "CONDITIONALS", ())]
        if rules:
            sub["allOf"] = rules
    _friendly(schema, definitions["AdditionalOptions"])
    return {
        "$schema": DRAFT_07,
        "$id": _ID_BASE + PAYLOAD_FILE,
        "title": "Twin24 campaign: the complete create payload (friendly forms accepted)",
        "x-reconcile-schema-version": SCHEMA_VERSION,
        **schema,
        "definitions": dict(sorted(definitions.items())),
    }


def file_schema() -> dict[str, Any]:
    """One campaign file: every field optional, friendly forms accepted."""
    schema = copy.deepcopy(payload_schema())
    schema["$id"] = _ID_BASE + CAMPAIGN_FILE
    schema["title"] = "Twin24 campaign file (before _defaults.yaml is merged)"
    for sub in [schema, *schema["definitions"].values()]:
        sub.pop("required", None)
        sub.pop("allOf", None)
    return schema


def _friendly(task: dict[str, Any], options: dict[str, Any]) -> None:
    """Let `cps` be a rate text and the call-time fields a time of day, with the very patterns
    `normalize` parses (both sides refuse the same texts)."""
    props = task["properties"]
    props["cps"] = _either(props["cps"], normalize.RATE_PATTERN)
    for name in normalize.TIME_FIELDS:
        options["properties"][name] = _either(options["properties"][name], normalize.TIME_PATTERN)


def _either(number: dict[str, Any], pattern: str) -> dict[str, Any]:
    return {
        "description": number["description"],
        "anyOf": [
            {key: v for key, v in number.items() if key != "description"},
            {"type": "string", "pattern": pattern},
        ],
    }


def _tidy(sub: dict[str, Any]) -> None:
    # Pydantic titles every property after its name and writes `default: null` for fields the
    # payload simply omits; neither helps an editor.
    for prop in sub.get("properties", {}).values():
        prop.pop("title", None)
        if prop.get("default", 0) is None:
            del prop["default"]


def _if_then(rule: models.Conditional) -> dict[str, Any]:
    return {
        "if": {
            "properties": {rule.trigger: {"enum": list(rule.values)}},
            "required": [rule.trigger],
        },
        "then": {"required": [rule.field]},
    }


def render(schema: dict[str, Any]) -> str:
    """The file text of a schema: two-space indent, trailing newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> text, for every schema."""
    return {
        PAYLOAD_FILE: render(payload_schema()),
        CAMPAIGN_FILE: render(file_schema()),
        policy_file.SCHEMA_FILE: render(policy_file.schema()),
    }


MAX_SCHEMA_BYTES = 1024 * 1024  # the schemas are tens of KiB
_WHERE = "as schema files"


def write(folder: Path) -> list[Path]:
    """Write every schema into `folder` (each atomically, never through a symlink); return the
    paths written. Raises `Unwritable` before writing anything when a schema path is a
    symlink or another special file."""
    for name in expected_files():
        what = files.is_special(folder / name)
        if what is not None:
            raise Unwritable(
                f"{folder / name}: not a regular file but {what}; `reconcile schema` never "
                "writes through it: remove it, then run `reconcile schema` again"
            )
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_files().items():
        path = folder / name
        _replace(path, text.encode("utf-8"))
        written.append(path)
    return written


class Unwritable(Exception):
    """A schema path that is a symlink or another special file; `str()` says which."""


def _replace(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)  # replaces a name, never follows it
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stale(folder: Path) -> list[Path]:
    """The schema files in `folder` that differ from what `write` would produce."""
    return [path for path, _ in differences(folder)]


def differences(folder: Path, again: str = "reconcile schema") -> list[tuple[Path, str]]:
    """The schema files in `folder` that differ from what `write` would produce, each with
    why: out of date, missing, or not a regular file (a symlink, a FIFO: never opened), and
    the advice to run `again`, the command that rewrites them."""
    out = []
    for name, text in expected_files().items():
        path = folder / name
        try:
            current = files.read_regular(path, MAX_SCHEMA_BYTES, _WHERE).decode("utf-8")
        except files.Unreadable as exc:
            if not os.path.lexists(path):
                out.append((path, f"missing; run `{again}` and commit it"))
            elif files.is_special(path) is not None:
                out.append((path, f"{exc}, then run `{again}`"))
            else:
                out.append((path, f"{exc}; run `{again}` and commit it"))
            continue
        except ValueError:
            current = None
        if current != text:
            out.append((path, f"out of date; run `{again}` and commit it"))
    return out
