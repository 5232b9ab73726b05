"""How a value the tool did not write is written into each medium: one function per medium.

Campaign keys and paths, state entries, identities, task names, messages from the API and
problem messages are data, and data never adds a line, a workflow command or markup. Every
such value (or a whole line of the tool's own words around such values) goes through the
function of the medium it reaches:

    text(value)         a terminal or a CI log. Control characters (newlines, CR, ESC...),
                        lone surrogates (non-UTF-8 file names), line and paragraph separators
                        and bidirectional controls become `\\uXXXX`. GitHub's runner also reads
                        workflow commands from the log: `::` at the start of a line and the
                        legacy `##[` anywhere in a line, so those are escaped the same way.
    markdown(value)     text inside the HTML of a pull-request comment: `text()` (so no new
                        line), then `& < > " '` and the backtick as HTML entities. Inside a
                        code block a value needs only `text()`: with no line of its own it
                        cannot close the fence.
    github(value)       a GitHub workflow command, as GitHub documents it: `%`, CR and LF as
                        %25, %0D, %0A in the data; a property value also `:` and `,` as %3A, %2C.
                        Other control characters become `\\uXXXX` as in `text()`.
    json_text(text)     JSON text printed to a log: `##[` inside a string as `##\\u005b`
                        (the same string to a JSON reader).

`text()` and `markdown()` leave ordinary text as it is, and `text()` is idempotent, so a line
whose values were escaped may be escaped again as a whole.
"""

from __future__ import annotations

import html
import re

# C0 and C1 controls and DEL; lone surrogates; line/paragraph separators; bidi controls
# (a right-to-left override makes a reviewer read a name backwards).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_LEGACY_COMMAND = "##["


def _u(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def text(value: str) -> str:
    """`value` for a terminal or a CI log: one line, no control character, no workflow command."""
    out = _UNSAFE.sub(_u, value)
    if _LEGACY_COMMAND in out:
        out = out.replace(_LEGACY_COMMAND, "##\\u005b")
    stripped = out.lstrip()
    if stripped.startswith("::"):  # the runner trims the line before it looks for `::`
        start = len(out) - len(stripped)
        out = out[:start] + "\\u003a" + out[start + 1 :]
    return out


def markdown(value: str) -> str:
    """`value` as text inside the HTML of a Markdown comment (a `<summary>`, a `<b>`)."""
    return html.escape(text(value), quote=True).replace("`", "&#96;")


def github(value: str, *, prop: bool = False) -> str:
    """`value` as a workflow command's data, or (`prop=True`) as one of its property values."""
    out = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    out = _UNSAFE.sub(_u, out)  # what GitHub leaves raw (ESC, lone surrogates...): as text()
    return out.replace(":", "%3A").replace(",", "%2C") if prop else out


def json_text(text: str) -> str:
    """Serialised JSON for a log: the same data, with no legacy `##[` workflow command."""
    return text.replace(_LEGACY_COMMAND, "##\\u005b")
