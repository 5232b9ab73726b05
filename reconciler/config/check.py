"""Merge, normalise and validate one loaded campaign; map pydantic's errors to lines.

Imports pydantic (through `models`): `validate.py` only loads this module when some campaign
is not in the cache.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.config import models, normalize, policy
from reconciler.config.campaign import Campaign, fingerprint
from reconciler.config.discovery import CampaignFile
from reconciler.config.merge import merge
from reconciler.config.yamlio import Document, FieldPath, display_path, visible
from reconciler.errors import Problem


def check_campaign(
    campaign_file: CampaignFile,
    chain: list[Document],
    doc: Document,
    calling_policy: policy.Policy = policy.DEFAULT,
) -> tuple[Campaign | None, list[Problem], Document]:
    """Merge, normalise and validate one loaded campaign, then check it against the calling
    policy; also returns the merged document. A policy breach (even at level error) keeps the
    campaign: it is valid for the API."""
    merged = merge([*chain, doc])
    data, friendly = normalize.normalize(merged.data)
    problems = [Problem(merged.at(path), display_path(path), message) for path, message in friendly]
    for path, rule in models.missing_conditionals(data):
        trigger = (*path, rule.trigger)
        problems.append(
            Problem(
                merged.at(trigger),
                display_path((*path, rule.field)),
                f"{rule.describe()}; set {display_path((*path, rule.field))}",
            )
        )
    payload: dict[str, Any] | None = None
    try:
        payload = models.payload_of(data)
    except ValidationError as exc:
        friendly_paths = {path for path, _ in friendly}
        errors = [
            (models.error_path(error["loc"]), error) for error in exc.errors(include_url=False)
        ]
        # In file order, so that only the problems that will be shown (validate shows the first
        # 100 of a file) pay for a "did you mean" (a file of 90,000 unknown keys, in seconds).
        errors.sort(key=lambda item: merged.at(item[0], key=True))
        for path, error in errors:
            if error["type"] == "missing_conditional" or path in friendly_paths:
                continue  # reported above, with a better location
            suggest = len(problems) < SUGGEST_LIMIT
            problems.append(_problem(error, path, merged, campaign_file, chain, suggest))
    problems += _warnings(data, merged) + _nul_problems(data, merged)
    if payload is None or any(p.level == "error" for p in problems):
        return None, problems, merged
    breaches = sorted(policy.check(payload, merged, calling_policy))
    spots = {name: merged.at((name,)) for name in ("name", "startMoment")}
    campaign = Campaign(
        campaign_file.key,
        campaign_file.file,
        payload,
        fingerprint(payload),
        spots,
        tuple(breaches),
    )
    return campaign, problems + breaches, merged


SUGGEST_LIMIT = 200  # more than validate shows of one file


def _problem(
    error: Any,
    path: FieldPath,
    doc: Document,
    campaign_file: CampaignFile,
    chain: list[Document],
    suggest: bool = True,
) -> Problem:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    where = display_path(path)
    if kind == "missing":
        location = doc.at(path, key=True)
        if location.file != campaign_file.file:
            location = doc.at((), key=True)
        if chain:
            whom = f"neither {campaign_file.file} nor any _defaults.yaml above it sets it"
        else:
            whom = f"{campaign_file.file} does not set it"
        return Problem(location, where, f"required field {where} is missing: {whom}")
    if kind == "extra_forbidden":
        return Problem(doc.at(path, key=True), where, _unknown(path, suggest))
    return Problem(doc.at(path), where, _describe(kind, value, ctx, error["msg"]))


_TYPES = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "string_type": "text",
    "float_type": "a number",
    "dict_type": "a mapping (key: value lines)",
    "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
    "list_type": "a list",
}


def _describe(kind: str, value: Any, ctx: dict[str, Any], fallback: str) -> str:
    got = _show(value)
    if kind in _TYPES:
        hint = ""
        if kind == "bool_type" and isinstance(value, str):
            hint = " (YAML 1.2 reads yes/no/on/off as text; write true or false)"
        return f"expected {_TYPES[kind]}, got {got}{hint}"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}, got {got}"
    if kind == "string_pattern_mismatch":
        wanted = {
            models.UUID_PATTERN: "a uuid such as 123e4567-e89b-12d3-a456-426614174000",
            models.URL_PATTERN: "an http:// or https:// URL",
            models.START_MOMENT_PATTERN: 'a date and time "YYYY-MM-DD hh:mm", e.g. '
            '"2030-06-02 10:00"',
        }.get(ctx.get("pattern", ""), f"text matching {ctx.get('pattern')}")
        return f"expected {wanted}, got {got}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, got {got}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}, got {got}"
    if kind == "string_too_short":
        return "must not be empty"
    return fallback


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _unknown(path: FieldPath, suggest: bool = True) -> str:
    model: type[BaseModel] | None = models.CallTask
    for part in path[:-1]:
        if model is None or isinstance(part, int):
            continue
        model = models.submodels(model).get(str(part))
    name = str(path[-1])
    message = f"unknown field {visible(display_path(path))}"
    if name == "<<":
        return message + (
            ": YAML merge keys are not supported (YAML 1.2 has none); share values with a "
            "_defaults.yaml in the folder"
        )
    if model is not None and suggest:
        close = difflib.get_close_matches(name, list(model.model_fields), n=1)
        if close:
            message += f" (did you mean {close[0]}?)"
    return message + "; unknown fields are never dropped silently"


def _nul_problems(value: Any, doc: Document, path: FieldPath = ()) -> list[Problem]:
    """A NUL character (`"\\u0000"` in a quoted YAML string) in any text value: no state can
    hold it (PostgreSQL's jsonb refuses it), so the campaign could never be recorded."""
    if isinstance(value, str):
        if "\x00" not in value:
            return []
        where = display_path(path)
        message = "contains a NUL character (\\u0000), which the state cannot record; remove it"
        return [Problem(doc.at(path), where, message)]
    if isinstance(value, dict):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return []
    return [p for key, item in items for p in _nul_problems(item, doc, (*path, key))]


def _warnings(data: dict[str, Any], doc: Document) -> list[Problem]:
    urls = data.get("webhookUrls")
    if not isinstance(urls, list):
        return []
    problems = []
    for i, item in enumerate(urls):
        path: FieldPath = (i, "url") if isinstance(item, dict) else (i,)
        url = item.get("url") if isinstance(item, dict) else item
        if isinstance(url, str) and normalize.url_has_secret(url):
            full = ("webhookUrls", *path)
            problems.append(
                Problem(
                    doc.at(full),
                    display_path(full),
                    "this URL carries a credential (user:password, or a secret-named value in "
                    "its query or fragment); it will be stored in git and in the state file",
                    level="warning",
                )
            )
    return problems
