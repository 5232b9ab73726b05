"""Reading the campaigns folder of a checkout that may be hostile (spec 9.1 and 9.6).

Regular files only: a symlink (to a file, a folder, `/dev/zero`, `/etc/passwd`), a FIFO, a
socket is an error naming it, never followed or opened; reads stop at the size limit
whatever the file reports; names that would make unsafe keys are errors shown escaped (and
never become a line of their own under GitHub Actions); `x.YAML` is an error saying to rename.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import VALID_CAMPAIGN, WriteFiles, edit

from reconciler.cli.main import cli, main
from reconciler.config import files
from reconciler.config.discovery import escaped
from reconciler.config.fmt import format_files
from reconciler.config.validate import load_config
from reconciler.config.yamlio import MAX_FILE_BYTES

SYMLINK = "not a regular file but a symbolic link"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def problems_of(root: Path) -> list[tuple[str, str]]:
    return [(p.location.file, p.message) for p in load_config(root).problems]


def test_a_symlink_to_dev_zero_is_named_and_never_opened(write_campaigns: WriteFiles) -> None:
    root = write_campaigns({"ok.yaml": VALID_CAMPAIGN})
    (root / "zero.yaml").symlink_to("/dev/zero")

    tracemalloc.start()
    try:
        result = run("validate", "--format", "json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert result.exit_code == 1
    assert [(p["file"], p["line"], p["column"]) for p in json.loads(result.stdout)] == [
        ("campaigns/zero.yaml", 1, 1)
    ]
    assert SYMLINK in json.loads(result.stdout)[0]["message"]
    assert peak < 20 * MAX_FILE_BYTES  # /dev/zero once grew this to 1.9 GB


def test_a_symlink_to_etc_passwd_is_never_followed(
    write_campaigns: WriteFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = Path(write_campaigns({})).parent / "secret.txt"
    secret.write_text("root:x:0:0:the secret\n", encoding="utf-8")
    root = write_campaigns({"ok.yaml": VALID_CAMPAIGN})
    (root / "passwd.yaml").symlink_to(secret)
    (root / "etc.yaml").symlink_to("/etc/passwd")
    opened: list[tuple[str, int]] = []
    real_open = os.open

    def spy(path: str, flags: int, *args: int) -> int:
        opened.append((os.fspath(path), flags))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", spy)

    result = run("validate")

    assert result.exit_code == 1
    assert "the secret" not in result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"campaigns/etc.yaml:1:1: error: {SYMLINK}")
    assert lines[1].startswith(f"campaigns/passwd.yaml:1:1: error: {SYMLINK}")
    tried = [flags for path, flags in opened if path.endswith(("passwd.yaml", "etc.yaml"))]
    assert tried
    assert all(flags & os.O_NOFOLLOW and flags & os.O_NONBLOCK for flags in tried)


def test_a_fifo_never_blocks(write_campaigns: WriteFiles) -> None:
    root = write_campaigns({"ok.yaml": VALID_CAMPAIGN, "sub/b.yaml": VALID_CAMPAIGN})
    os.mkfifo(root / "fifo.yaml")
    os.mkfifo(root / "sub" / "_defaults.yaml")
    done: list[list[tuple[str, str]]] = []
    worker = threading.Thread(target=lambda: done.append(problems_of(root)), daemon=True)

    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock a reader stuck in open() before failing
        for fifo in (root / "fifo.yaml", root / "sub" / "_defaults.yaml"):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not worker.is_alive(), "validate blocked on a FIFO"

    # The FIFO _defaults.yaml is reported once; the campaign below it is not checked.
    assert [(file, message.split(";")[0]) for file, message in done[0]] == [
        ("campaigns/fifo.yaml", "not a regular file but a FIFO (named pipe)"),
        ("campaigns/sub/_defaults.yaml", "not a regular file but a FIFO (named pipe)"),
    ]


def test_a_socket_and_a_symlinked_folder_are_named(
    write_campaigns: WriteFiles, workdir: Path
) -> None:
    root = write_campaigns({"ok.yaml": VALID_CAMPAIGN})
    (workdir / "elsewhere").mkdir()
    (workdir / "elsewhere" / "x.yaml").write_text("name: [\n", encoding="utf-8")
    (root / "2031").symlink_to(workdir / "elsewhere", target_is_directory=True)
    (root / "notes.md").symlink_to("/etc/hostname")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind("campaigns/s.yaml")  # relative: a socket path is short
        problems = problems_of(root)
    finally:
        server.close()

    assert [(file, message.split(";")[0]) for file, message in problems] == [
        ("campaigns/2031", "not a regular file but a symbolic link"),
        ("campaigns/notes.md", "not a regular file but a symbolic link"),
        ("campaigns/s.yaml", "not a regular file but a socket"),
    ]


def test_a_symlinked_defaults_file_is_reported_once_and_hides_no_other_file(
    write_campaigns: WriteFiles,
) -> None:
    root = write_campaigns({"team/a.yaml": edit("cidType: default\n", ""), "b.yaml": "name: [\n"})
    (root / "team" / "_defaults.yaml").symlink_to("/etc/passwd")

    problems = problems_of(root)

    assert [(file, message.split(";")[0]) for file, message in problems] == [
        (
            "campaigns/b.yaml",
            "invalid YAML: did not find expected node content (while parsing a flow node)",
        ),
        ("campaigns/team/_defaults.yaml", SYMLINK),
    ]


def test_a_symlinked_policy_file_is_named_and_never_followed(write_campaigns: WriteFiles) -> None:
    root = write_campaigns({"ok.yaml": VALID_CAMPAIGN})
    (root / "_policy.yaml").symlink_to("/etc/passwd")

    assert [(file, message.split(";")[0]) for file, message in problems_of(root)] == [
        ("campaigns/_policy.yaml", SYMLINK)
    ]


def test_a_symlinked_campaigns_folder_is_refused(
    workdir: Path, write_campaigns: WriteFiles
) -> None:
    real = write_campaigns({"a.yaml": VALID_CAMPAIGN})
    real.rename(workdir / "real")
    (workdir / "campaigns").symlink_to(workdir / "real", target_is_directory=True)

    result = run("validate")

    assert result.exit_code == 1
    assert result.stderr.startswith(
        "campaigns:1:1: error: the campaigns folder is a symbolic link, which is never followed"
    )


def test_reads_stop_at_the_limit_whatever_the_file_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (3 * MAX_FILE_BYTES))
    real_fstat, real_read = os.fstat, os.read
    asked: list[int] = []

    class Small:  # what a file that lies about its size (or grows) reports
        def __init__(self, info: os.stat_result) -> None:
            self.st_mode, self.st_size = info.st_mode, 10

    def read(fd: int, n: int) -> bytes:
        asked.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(os, "fstat", lambda fd: Small(real_fstat(fd)))
    monkeypatch.setattr(os, "read", read)

    with pytest.raises(files.Unreadable, match="more than 1048576 bytes, over the 1 MiB limit"):
        files.read_regular(big, MAX_FILE_BYTES)
    assert sum(asked) <= MAX_FILE_BYTES + 1


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_is_refused_before_reading(device: str) -> None:
    with pytest.raises(files.Unreadable, match="not a regular file but a device"):
        files.read_regular(device, MAX_FILE_BYTES)


# --- names ---------------------------------------------------------------------------------

INJECTED = "x\n::stop-commands::pwn\n.yaml"


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_a_newline_in_a_file_name_never_becomes_a_line_of_its_own(
    command: str,
    fmt: str,
    write_campaigns: WriteFiles,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = write_campaigns({"ok.yaml": VALID_CAMPAIGN})
    (root / INJECTED).write_text(edit("Spring promo", "Other"), encoding="utf-8")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    fmt = "markdown" if command == "plan" and fmt == "github" else fmt

    with pytest.raises(SystemExit) as exited:
        main([command, "--format", fmt])

    assert exited.value.code == 1
    out, err = capsys.readouterr()
    every_line = out.splitlines() + err.splitlines()
    assert not [line for line in every_line if line.startswith("::stop-commands")]
    annotations = [line for line in every_line if line.startswith("::")]
    assert annotations  # GitHub Actions: the problem is also an annotation ...
    assert all(  # ... in one line, the name escaped and then encoded as GitHub documents
        line.startswith("::error file=campaigns/x\\n%3A%3Astop-commands%3A%3Apwn\\n.yaml,")
        for line in annotations
    )
    if fmt == "json" and command == "validate":
        assert json.loads(out)[0]["file"] == "campaigns/x\\n::stop-commands::pwn\\n.yaml"
    elif fmt == "text":
        assert "campaigns/x\\n::stop-commands::pwn\\n.yaml:1:1: error: " in err


def test_a_name_that_is_not_utf8_is_shown_escaped(
    write_campaigns: WriteFiles, workdir: Path
) -> None:
    root = write_campaigns({"ok.yaml": VALID_CAMPAIGN})
    name = os.fsencode(root) + b"/caf\xe9.yaml"
    with open(name, "wb") as out:
        out.write(edit("Spring promo", "Other").encode())
    os.mkdir(os.fsencode(root) + b"/\xff\xfe")

    text, as_json = run("validate"), run("validate", "--format", "json")

    assert text.exit_code == as_json.exit_code == 1
    assert [line.split(": error: ")[0] for line in text.stderr.splitlines()[:-1]] == [
        "campaigns/\\xff\\xfe:1:1",
        "campaigns/caf\\xe9.yaml:1:1",
    ]
    assert [p["file"] for p in json.loads(as_json.stdout)] == [
        "campaigns/\\xff\\xfe",
        "campaigns/caf\\xe9.yaml",
    ]


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("a`b.yaml", "a\\u0060b.yaml"),
        ("a<b>.yaml", "a\\u003cb\\u003e.yaml"),
        ("a&b.yaml", "a\\u0026b.yaml"),
        ("tab\there.yaml", "tab\\there.yaml"),
        ("esc\x1b[31m.yaml", "esc\\u001b[31m.yaml"),
        ("rtl\u202egpj.yaml", "rtl\\u202egpj.yaml"),
        ("x\ufffe.yaml", "x\\ufffe.yaml"),  # no `_moved.yaml` line could name it
        ("dir\nname", "dir\\nname"),
    ],
)
def test_unsafe_names_are_errors_shown_escaped(
    name: str, shown: str, write_campaigns: WriteFiles
) -> None:
    target = name if name.endswith(".yaml") else f"{name}/a.yaml"
    root = write_campaigns({"ok.yaml": VALID_CAMPAIGN, target: edit("Spring promo", "Other")})

    problems = problems_of(root)

    assert len(problems) == 1
    assert problems[0][0] == f"campaigns/{shown}"
    assert "no campaign key may hold" in problems[0][1]
    assert "it is not read" in problems[0][1]


def test_escaped_is_plain_for_plain_names() -> None:
    assert escaped("2030/spring-promo.yaml") == "2030/spring-promo.yaml"
    assert escaped("a\\b\n") == "a\\\\b\\n"


@pytest.mark.parametrize(
    ("old", "said"),
    [
        ('"old\\n::warning::x"', "old\\n::warning::x is not a campaign key: it has a character"),
        ("../x", "../x is not a campaign key: it is not a relative path below the campaigns"),
        ("x.yaml", "x.yaml is not a campaign key: a key is the file's path without .yaml (x)"),
        ("_drafts/x", "_drafts/x is not a campaign key: a name or folder starting with _ or ."),
    ],
)
def test_keys_no_campaign_can_have_in_moved_yaml_are_errors(
    write_campaigns: WriteFiles, old: str, said: str
) -> None:
    """`from: ../x` or `from: x.yaml` was accepted silently (it can never match a file)."""
    root = write_campaigns({"a.yaml": VALID_CAMPAIGN, "_moved.yaml": f"- {{from: {old}, to: a}}\n"})

    problems = problems_of(root)

    assert len(problems) == 1 and problems[0][0] == "campaigns/_moved.yaml", problems
    assert problems[0][1].startswith(said), problems


# --- letter case ---------------------------------------------------------------------------


def test_yaml_suffixes_in_another_case_are_errors_that_say_to_rename(
    write_campaigns: WriteFiles,
) -> None:
    root = write_campaigns(
        {
            "ok.yaml": VALID_CAMPAIGN,
            "x.YAML": VALID_CAMPAIGN,
            "sub/y.Yml": VALID_CAMPAIGN,
            "sub/_defaults.YAML": "cps: 1.03\n",
            "_Policy.Yml": "nightWindow: 21-8\n",
            "_draft.YAML": "ignored: it starts with _\n",
            ".hidden.YML": "ignored: it starts with .\n",
        }
    )

    problems = problems_of(root)

    assert problems == [
        (
            "campaigns/_Policy.Yml",
            "the suffix .Yml is not read (only .yaml and .yml, in lower case): rename it to "
            "_policy.yml",
        ),
        (
            "campaigns/sub/_defaults.YAML",
            "the suffix .YAML is not read (only .yaml and .yml, in lower case): rename it to "
            "_defaults.yaml",
        ),
        (
            "campaigns/sub/y.Yml",
            "the suffix .Yml is not read (only .yaml and .yml, in lower case): rename it to y.yml",
        ),
        (
            "campaigns/x.YAML",
            "the suffix .YAML is not read (only .yaml and .yml, in lower case): rename it to "
            "x.yaml",
        ),
    ]


def test_fmt_names_special_files_and_formats_the_others(write_campaigns: WriteFiles) -> None:
    root = write_campaigns({"ok.yaml": VALID_CAMPAIGN, "x.YAML": VALID_CAMPAIGN})
    (root / "zero.yaml").symlink_to("/dev/zero")
    os.mkfifo(root / "fifo.yaml")

    results = format_files(root)

    assert sorted((r.file, r.problem is None) for r in results) == [
        ("campaigns/fifo.yaml", False),
        ("campaigns/ok.yaml", True),
        ("campaigns/x.YAML", False),
        ("campaigns/zero.yaml", False),
    ]
