"""Spec 9.6: values reach a terminal, a CI log, a GitHub workflow command or a pull-request
comment escaped for that medium (`plan.render.escape`), so a plan never holds a line the
tool did not write.

The renderers get hostile plans and problems directly: campaign discovery refuses such file
names (spec 9.6), but a state file, an API answer or a future message could still carry them.
The attacks of issue 13 are reproduced here and, through the CLI, in test_hostile_cli.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import Location, Problem
from reconciler.plan.diff import FieldChange
from reconciler.plan.plan import (
    Create,
    Drift,
    InDoubt,
    Moved,
    Orphan,
    Plan,
    PlanOptions,
    Replace,
)
from reconciler.plan.render import escape, markdown, plan_text, problems

FORGED = "**Plan: 0 to create, 0 to replace, 0 to move, 0 drifted, 0 orphaned, 0 in doubt.**"
# A path that closes the diff block and the <details>, then forges a summary heading.
FENCE_KEY = f"x\n```\n</details>\n\n{FORGED}\n<details><summary>"
HTML_KEY = "<img src=x onerror=alert(1)>/<b>team</b>/c"  # folder names with raw HTML
COMMAND_KEY = "x\n::stop-commands::pwn\n"  # from the file `x\n::stop-commands::pwn\n.yaml`
IDENTITY = "x\n::warning::pwn"
OTHERS = "\r::error::cr \x1b[31mred\x1b[0m \x85next \u2028sep \u202egnp.exe ##[error]legacy \udcff"
HOSTILE = [FENCE_KEY, HTML_KEY, COMMAND_KEY, IDENTITY, OTHERS]

# Every character a value must never bring into a rendering: a line break for any reader
# (Python's splitlines included), another control character, a lone surrogate.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\ud800-\udfff]")


def payload(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "startType": "time",
        "startMoment": "2030-06-02 10:00",
        "cps": 1.03,
        "additionalOptions": {"useTr": False, name: name},
    }


def hostile_plan() -> Plan:
    """One action of every kind whose key, source, identity and values are hostile."""
    actions = []
    for i, value in enumerate(HOSTILE):
        key = f"{i}{value}"
        source = f"campaigns/{key}.yaml"
        change = FieldChange(value, "changed", value + "old", value + "new")
        actions += [
            Create(f"a{key}", source, "sha256:1", None, payload(value)),
            Replace(f"b{key}", source, "sha256:2", value, payload(value), (change,)),
            Drift(f"c{key}", source, "sha256:3", value, payload(value), (change,)),
            Moved(f"d{key}", source, "sha256:4", value, payload(value), (), old_key=value),
            InDoubt(f"e{key}", source, "sha256:5", None, payload(value), since=value),
            Orphan(f"f{key}", source, "sha256:6", value, payload(value)),
        ]
    actions.sort(key=lambda a: a.key)
    return Plan(tuple(actions), "lineage", 1, PlanOptions(max_creates=100))


def hostile_problems() -> list[Problem]:
    return [
        Problem(Location(f"campaigns/{value}.yaml", 1, 1), value, value, "error")
        for value in HOSTILE
    ]


def assert_log_safe(out: str) -> None:
    """No raw control character, and no line a GitHub runner would take as a command."""
    assert not RAW.search(out), RAW.findall(out)
    for line in out.split("\n"):
        assert not line.lstrip().startswith("::"), line
        assert "##[" not in line, line


# --- the escaping functions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026/spring-promo", "2026/spring-promo"),
        ("Весенняя акция 50% <b>", "Весенняя акция 50% <b>"),
        ("x\n::stop-commands::pwn\n", "x\\u000a::stop-commands::pwn\\u000a"),
        ("a\rb\tc", "a\\u000db\\u0009c"),
        ("\x1b[31mred", "\\u001b[31mred"),
        ("\x85 \u2028 \u2029", "\\u0085 \\u2028 \\u2029"),
        ("\u202egnp.exe", "\\u202egnp.exe"),
        ("bad\udcff.yaml", "bad\\udcff.yaml"),
        ("::warning::x", "\\u003a:warning::x"),
        ("  ::warning::x", "  \\u003a:warning::x"),
        ("key::value", "key::value"),
        ("see ##[error]x", "see ##\\u005berror]x"),
    ],
)
def test_text_escapes_what_would_break_a_line_or_forge_a_command(value: str, expected: str) -> None:
    assert escape.text(value) == expected
    assert escape.text(expected) == expected  # idempotent: a line may be escaped again


def test_markdown_escapes_html_and_backticks_after_text() -> None:
    assert escape.markdown("<b>a & \"b\" 'c'</b> `d`") == (
        "&lt;b&gt;a &amp; &quot;b&quot; &#x27;c&#x27;&lt;/b&gt; &#96;d&#96;"
    )
    assert escape.markdown("x\n</details>") == "x\\u000a&lt;/details&gt;"
    assert escape.markdown("2026/spring-promo") == "2026/spring-promo"


def test_markdown_escapes_mentions_and_issue_references() -> None:
    # Outside a code block GitHub notifies @octocat and the team @org/team, and links #1.
    assert escape.markdown("@org/team") == "&#64;org/team"
    assert escape.markdown("@octocat #1") == "&#64;octocat &#35;1"
    assert escape.markdown("a&#64;b") == "a&amp;&#35;64;b"  # a written reference stays text


def test_markdown_plan_has_no_live_mention_or_reference() -> None:
    actions = (
        Create("@org/team", "campaigns/@org/team.yaml", "sha256:1", None, payload("x")),
        Orphan("@octocat #1", "campaigns/x.yaml", "sha256:2", "7", payload("y")),
    )
    md = markdown.markdown(Plan(actions, "lineage", 1, PlanOptions(max_creates=100)))

    outside = re.sub(r"```.*?```", "", md, flags=re.DOTALL)
    assert "@" not in outside and "#1" not in outside
    assert "<b>&#64;org/team</b>" in md and "<b>&#64;octocat &#35;1</b>" in md


def test_github_escapes_data_and_properties_as_github_documents() -> None:
    # docs.github.com, "Workflow commands": data %25 %0D %0A; properties also %3A %2C
    assert escape.github("50% done\r\nnext: a, b") == "50%25 done%0D%0Anext: a, b"
    assert escape.github("a:b,c%\n", prop=True) == "a%3Ab%2Cc%25%0A"
    assert escape.github("\x1b[31m\udcff", prop=True) == "\\u001b[31m\\udcff"


def test_json_text_escapes_what_a_terminal_would_act_on_and_keeps_the_data() -> None:
    # DEL, U+009B (CSI: a terminal escape sequence in one character), U+0085, the bidi
    # override U+202E, the isolates, U+061C, U+2028/2029 and a lone surrogate pass through
    # json.dumps(ensure_ascii=False) raw.
    value = "a\x7fb\x9b31mc\x85d\u202ee\u2066f\u061cg\u2028h\u2029i\udcffj"
    text = json.dumps({"k": value, value: [value]}, ensure_ascii=False)

    out = escape.json_text(text)

    assert not RAW.search(out) and out.isascii()
    assert json.loads(out) == json.loads(text)
    assert "\\u009b31m" in out and "\\u202e" in out and "\\u2028" in out


def test_state_show_prints_escaped_json(workdir: Path) -> None:
    from click.testing import CliRunner

    from reconciler.cli.main import cli
    from reconciler.config.campaign import fingerprint
    from reconciler.state.model import Entry, State, dumps

    key = "promo\u202e\x9b"
    payload = {"name": key}
    entry = Entry("created", "1", fingerprint(payload), payload, "x.yaml", "2026-11-27T10:00:00Z")
    state = State("8a4c0d4e-8c35-4d0e-9a53-2f1f3c7a9b10", 1, None, {key: entry})
    Path("reconcile.state.json").write_text(dumps(state), encoding="utf-8")

    shown = CliRunner().invoke(cli, ["state", "show", key], catch_exceptions=False)
    pulled = CliRunner().invoke(cli, ["state", "pull"], catch_exceptions=False)

    assert shown.exit_code == 0 and shown.stdout.isascii()
    assert json.loads(shown.stdout)["payload"]["name"] == key
    assert pulled.stdout == dumps(state)  # the state file format, byte for byte


def test_json_text_keeps_the_data_and_drops_the_legacy_command() -> None:
    text = json.dumps({"k": "##[error]x", "n": [1]})
    assert "##[" not in escape.json_text(text)
    assert json.loads(escape.json_text(text)) == json.loads(text)


# --- the renderings -----------------------------------------------------------------------


def test_text_plan_has_one_line_per_line_the_tool_writes() -> None:
    plan = hostile_plan()
    out = plan_text.text(plan)
    assert_log_safe(out)
    lines = out.split("\n")
    headers = [line for line in lines if re.match(r"^(\+|-/\+|~|\?|!|>) \w", line)]
    assert len(headers) == len(plan.actions)  # no value made a header of its own
    assert (
        lines[-2]
        == "Plan: 5 to create, 5 to replace, 5 to move, 5 drifted, 5 orphaned, 5 in doubt."
    )
    # the content is still there, escaped
    assert "+ create a2x\\u000a::stop-commands::pwn\\u000a  (campaigns/" in out
    assert "the old task x\\u000a::warning::pwn stays on the platform" in out
    assert "##\\u005berror]legacy" in out and "\\u202egnp.exe" in out
    coloured = plan_text.text(plan, color=True)
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == out  # colour only around our headers


def test_markdown_holds_only_lines_the_tool_writes() -> None:
    plan = hostile_plan()
    md = markdown.markdown(plan)
    assert_log_safe(md)  # the plan workflow prints it to the log too
    lines = md.split("\n")
    assert lines[1] == (
        "**Plan: 5 to create, 5 to replace, 5 to move, 5 drifted, 5 orphaned, 5 in doubt.**"
    )
    assert [line for line in lines if line.startswith("**")] == [lines[1]]  # no forged one
    in_code, sections = False, 0
    for line in lines:
        if line in ("```", "```diff"):
            in_code = line == "```diff" or not in_code  # ``` opens the banner, closes blocks
            continue
        if in_code:
            assert re.match(r"(\+|-|!|\?|~|>|-/\+) |Who gets called: |  [a-z]", line), line
            continue
        if line.startswith("<details>"):
            sections += 1
            assert re.fullmatch(
                r"<details><summary><code>(\+|-/\+|~|\?|!|>)</code> [a-z ]+ <b>[^<>`\n]*</b>"
                r"</summary>",
                line,
            ), line
            continue
        assert line in ("", "</details>", "<!-- reconcile-plan -->", lines[1]), line
    assert not in_code
    assert sections == lines.count("</details>") == len(plan.actions)
    # the values are visible, escaped for the HTML of the summary and inside the code block
    assert "<b>f1&lt;img src=x onerror=alert(1)&gt;/&lt;b&gt;team&lt;/b&gt;/c</b>" in md
    assert "<b>a0x\\u000a&#96;&#96;&#96;\\u000a&lt;/details&gt;\\u000a\\u000a**Plan: 0 to" in md
    assert "! orphan f0x\\u000a```\\u000a</details>\\u000a\\u000a**Plan: 0 to create" in md


def test_markdown_code_lines_start_with_the_tool_s_own_marks() -> None:
    md = markdown.markdown(hostile_plan())
    body = re.findall(r"```diff\n(.*?)\n```\n", md, re.DOTALL)
    assert len(body) == 30
    for block in body:
        for line in block.split("\n"):
            assert re.match(r"(\+|-|!|\?|~|>|-/\+) ", line), line


def test_github_notices_are_one_command_each_with_escaped_properties() -> None:
    plan = hostile_plan()
    out = plan_text.github_notices(plan)
    lines = out.split("\n")[:-1]
    assert len(lines) == len(plan.creates) == 10
    for line in lines:
        match = re.fullmatch(r"::notice file=([^:,\n]*),line=1,col=1::(.*)", line)
        assert match, line
        assert not RAW.search(line)
    assert "file=campaigns/2x%0A%3A%3Astop-commands%3A%3Apwn%0A.yaml," in out


def test_json_plan_is_the_same_data_without_a_command_for_the_log() -> None:
    plan = hostile_plan()
    out = plan_text.as_json(plan)
    assert "##[" not in out and "\n::" not in out
    assert json.loads(out) == plan_text.data(plan)


def test_problems_are_one_line_each_in_every_format() -> None:
    found = hostile_problems()
    text = problems.text(found)
    assert_log_safe(text)
    assert len(text.split("\n")) == len(found) + 1
    assert "campaigns/x\\u000a::stop-commands::pwn\\u000a.yaml:1:1: error:" in text
    github = problems.github(found)
    assert len(github.split("\n")) == len(found) + 1
    for line in github.split("\n")[:-1]:
        assert re.fullmatch(r"::error file=[^:,\n]*,line=1,col=1::[^\n]*", line), line
    data = problems.as_json(found)
    assert "##[" not in data
    assert json.loads(data) == [p.as_dict() for p in found]
