"""The draft-07 JSON Schemas: two generated from `models.py`, and the calling policy's.

- `campaign.schema.json`: the complete create payload, with every required field and every
  conditional requirement as `if`/`then` (what `validate` checks after defaults are merged).
- `campaign-file.schema.json`: one campaign file before defaults are merged: the same types,
  enums, ranges and unknown-field rules, every field optional, and the friendly forms
  (`cps: "3/s"`, `"09:00"`) accepted. Conditional requirements are left out, since a
  `_defaults.yaml` may supply the required field.
- `policy.schema.json`: `campaigns/_policy.yaml` (see `policy_file.py`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from reconciler.config import models, normalize, policy_file
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
    return {
        "$schema": DRAFT_07,
        "$id": _ID_BASE + PAYLOAD_FILE,
        "title": "Twin24 call task: the complete create payload",
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
    props = schema["properties"]
    props["cps"] = {
        "description": props["cps"]["description"],
        "anyOf": [
            {key: v for key, v in props["cps"].items() if key != "description"},
            {"type": "string", "pattern": normalize.RATE_PATTERN},
        ],
    }
    options = schema["definitions"]["AdditionalOptions"]["properties"]
    for name in normalize.TIME_FIELDS:
        options[name] = {
            "description": options[name]["description"],
            "anyOf": [
                {key: v for key, v in options[name].items() if key != "description"},
                {"type": "string", "pattern": normalize.TIME_PATTERN},
            ],
        }
    return schema


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


def write(folder: Path) -> list[Path]:
    """Write every schema into `folder`; return the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_files().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(folder: Path) -> list[Path]:
    """The schema files in `folder` that differ from what `write` would produce."""
    out = []
    for name, text in expected_files().items():
        path = folder / name
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != text:
            out.append(path)
    return out
