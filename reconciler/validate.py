"""load -> merge -> normalize -> validate: every campaign, every problem, at the right line.

`load_config` never raises for bad input: problems are values. Only reading files happens here.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler import models, normalize
from reconciler.discovery import CampaignFile, Move, discover, display, load_moves
from reconciler.errors import Problem
from reconciler.merge import merge
from reconciler.state import fingerprint
from reconciler.yamlio import Document, FieldPath, display_path, load_file


@dataclass
class Config:
    """The desired campaigns of one campaigns folder, with every problem found."""

    campaigns: dict[str, models.Campaign] = field(default_factory=dict)
    moves: list[Move] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]


def load_config(root: Path) -> Config:
    """Discover, load and validate every campaign below `root`."""
    layout = discover(root)
    config = Config(problems=list(layout.problems))
    defaults: dict[Path, Document] = {}
    names: dict[str, models.Campaign] = {}
    name_at: dict[str, Document] = {}
    for campaign_file in layout.campaigns:
        chain = [_defaults(path, defaults, config.problems) for path in campaign_file.defaults]
        doc = load_file(campaign_file.path, campaign_file.file)
        if doc.problems or any(d.problems for d in chain):
            config.problems += doc.problems
            continue
        campaign, problems, merged = check_campaign(campaign_file, chain, doc)
        config.problems += problems
        if campaign is None:
            continue
        name = campaign.payload["name"]
        if name in names:
            other = names[name]
            for that, d in ((other, merged), (campaign, name_at[name])):
                config.problems.append(
                    Problem(
                        d.at(("name",)),
                        "name",
                        f"name {name!r} is also used by {that.source}; names must be unique "
                        "(they find an in-doubt create again on the platform)",
                    )
                )
            continue
        names[name] = campaign
        name_at[name] = merged
        config.campaigns[campaign.key] = campaign
    for path in layout.defaults:  # also those no campaign uses yet: every file is checked
        _defaults(path, defaults, config.problems)
    if layout.moved is not None:
        moves, problems = load_moves(layout.moved, {c.key for c in layout.campaigns})
        config.moves, config.problems = moves, config.problems + problems
    config.problems = sorted(dict.fromkeys(config.problems))
    return config


def _defaults(path: Path, cache: dict[Path, Document], problems: list[Problem]) -> Document:
    if path not in cache:
        cache[path] = load_file(path, display(path))
        problems += cache[path].problems
    return cache[path]


def check_campaign(
    campaign_file: CampaignFile, chain: list[Document], doc: Document
) -> tuple[models.Campaign | None, list[Problem], Document]:
    """Merge, normalise and validate one loaded campaign; also returns the merged document."""
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
        for error in exc.errors(include_url=False):
            path = tuple(p for p in error["loc"] if not (isinstance(p, str) and p[:1] == "<"))
            if error["type"] == "missing_conditional" or path in friendly_paths:
                continue  # reported above, with a better location
            problems.append(_problem(error, path, merged, campaign_file, chain))
    problems += _warnings(data, merged)
    if payload is None or any(p.level == "error" for p in problems):
        return None, problems, merged
    spots = {name: merged.at((name,)) for name in ("name", "startMoment")}
    campaign = models.Campaign(
        campaign_file.key, campaign_file.file, payload, fingerprint(payload), spots
    )
    return campaign, problems, merged


def _problem(
    error: Any, path: FieldPath, doc: Document, campaign_file: CampaignFile, chain: list[Document]
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
        return Problem(doc.at(path, key=True), where, _unknown(path))
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


def _unknown(path: FieldPath) -> str:
    model: type[BaseModel] | None = models.CallTask
    for part in path[:-1]:
        if model is None or isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        model = models._submodel(info.annotation) if info else None
    name = str(path[-1])
    message = f"unknown field {display_path(path)}"
    if model is not None:
        close = difflib.get_close_matches(name, list(model.model_fields), n=1)
        if close:
            message += f" (did you mean {close[0]}?)"
    return message + "; unknown fields are never dropped silently"


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
                    "this URL carries a credential (user:password or a secret-named query "
                    "value); it will be stored in git and in the state file",
                    level="warning",
                )
            )
    return problems
