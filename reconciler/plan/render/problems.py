"""Problems as text, JSON or GitHub workflow commands: pure functions, chosen by name."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from reconciler.errors import Problem
from reconciler.plan.render import escape


def _line(problem: Problem) -> str:
    path = "" if problem.path.startswith("(") else f"{problem.path}: "
    return escape.text(f"{problem.location}: {problem.level}: {path}{problem.message}")


def text(problems: Iterable[Problem]) -> str:
    """`FILE:LINE:COL: error: PATH: MESSAGE`, one per line."""
    return "".join(_line(p) + "\n" for p in problems)


def as_json(problems: Iterable[Problem]) -> str:
    """A JSON list of `{file, line, column, path, level, message}`."""
    text = json.dumps([p.as_dict() for p in problems], indent=2, ensure_ascii=False)
    return escape.json_text(text) + "\n"


def as_json_object(problems: Iterable[Problem]) -> str:
    """`{"format_version": 1, "problems": [...]}`: what `plan --format json` prints instead of
    a plan when the campaign files have problems."""
    body = {"format_version": 1, "problems": [p.as_dict() for p in problems]}
    return escape.json_text(json.dumps(body, indent=2, ensure_ascii=False)) + "\n"


def github_command(level: str, file: str, line: int, col: int, message: str) -> str:
    """One GitHub workflow command (`::error file=F,line=L,col=C::MESSAGE`)."""
    props = f"file={escape.github(file, prop=True)},line={line},col={col}"
    return f"::{level} {props}::{escape.github(message)}\n"


def github(problems: Iterable[Problem]) -> str:
    """Problems as GitHub annotations."""
    out = []
    for p in problems:
        path = "" if p.path.startswith("(") else f"{p.path}: "
        out.append(
            github_command(
                p.level, p.location.file, p.location.line, p.location.col, path + p.message
            )
        )
    return "".join(out)


FORMATS: dict[str, Callable[[Iterable[Problem]], str]] = {
    "text": text,
    "json": as_json,
    "github": github,
}
