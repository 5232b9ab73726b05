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
                        line), then `& < > " '`, the backtick, `@` and `#` as HTML character
                        references (`@team` and `#123` would notify or link). Inside a
                        code block a value needs only `text()`: with no line of its own it
                        cannot close the fence.
    github(value)       a GitHub workflow command, as GitHub documents it: `%`, CR and LF as
                        %25, %0D, %0A in the data; a property value also `:` and `,` as %3A, %2C.
                        Other control characters become `\\uXXXX` as in `text()`.
    json_text(text)     JSON text printed to a terminal or a log: what `text()` escapes as
                        `\\uXXXX` and `##[` inside a string as `##\\u005b` (the same string to
                        a JSON reader). `state pull` prints the state file format unchanged.

`text()` and `markdown()` leave ordinary text as it is, and `text()` is idempotent, so a line
whose values were escaped may be escaped again as a whole.
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL; lone surrogates; line/paragraph separators; bidi controls
# (a right-to-left override makes a reviewer read a name backwards).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_LEGACY_COMMAND = "##["
# In serialised JSON: the same less C0 (json.dumps escapes those in strings; outside them
# they are the text's own line breaks and indentation).
_UNSAFE_IN_JSON = re.compile(
    "[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


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


# HTML's specials, the backtick, and what GitHub turns into a live reference outside code: an
# @mention (notifies a user or a team) and #123 (links an issue), as character references.
_MARKDOWN = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&#x27;",
        "`": "&#96;",
        "@": "&#64;",
        "#": "&#35;",
    }
)


def markdown(value: str) -> str:
    """`value` as text inside the HTML of a Markdown comment (a `<summary>`, a `<b>`)."""
    return text(value).translate(_MARKDOWN)


def github(value: str, *, prop: bool = False) -> str:
    """`value` as a workflow command's data, or (`prop=True`) as one of its property values."""
    out = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    out = _UNSAFE.sub(_u, out)  # what GitHub leaves raw (ESC, lone surrogates...): as text()
    return out.replace(":", "%3A").replace(",", "%2C") if prop else out


def json_text(text: str) -> str:
    """Serialised JSON for a terminal or a log: the same data, with what `text()` escapes
    (DEL, C1 controls such as U+009B, the terminal's CSI; bidi controls; U+0085, U+2028,
    U+2029; lone surrogates) as `\\uXXXX` escapes, and no legacy `##[` workflow command.
    Outside strings JSON text is ASCII, so every such character stands inside a string, where
    `\\uXXXX` is the same character to a JSON reader."""
    return _UNSAFE_IN_JSON.sub(_u, text).replace(_LEGACY_COMMAND, "##\\u005b")
