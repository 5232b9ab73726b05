"""Fuzz: mutated example campaigns never end in an internal error (spec 9.1).

A seeded mutator turns the example campaigns (and the survey `_defaults.yaml`) into hostile
files: control characters, tabs, `\\r`, byte order marks, UTF-16/32, bytes that are not
UTF-8, flow and block indicators, anchors, tags, directives, huge numbers, deep nesting,
cut, doubled and re-indented lines. They are validated in folders of `BATCH` files through
the CLI, in-process, and every run must:

- exit 0 or 1, with no traceback, no `internal error` and no `please report it` (what the
  loader's last-resort guard says);
- print a JSON list with `--format json`, with every line number inside its file (1 to the
  file's line count) and every column at least 1 (at most one past its line when the file is
  UTF-8 text);
- print every problem in text and GitHub formats too (checked on some folders);
- and `fmt --check` on some folders: exit 0 or 1, no internal error.

`FUZZ_FILES` sets the number of files (2,000 by default, about 10 s); `FUZZ_SEED` the seed.
    FUZZ_FILES=100000 .venv/bin/pytest -q -s tests/test_fuzz_campaigns.py
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli.main import cli

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = [p.read_bytes() for p in sorted((REPO / "campaigns").rglob("*.yaml"))]
DEFAULTS = (REPO / "campaigns" / "survey" / "_defaults.yaml").read_bytes()
CAMPAIGNS = [raw for raw in EXAMPLES if raw != DEFAULTS]
FILES = int(os.environ.get("FUZZ_FILES", "2000"))
SEED = int(os.environ.get("FUZZ_SEED", "11"))
BATCH = 100

TOKENS = [
    *(bytes([c]) for c in (0, 7, 8, 0x0B, 0x0C, 0x1B, 0x1C, 0x1F, 0x7F)),
    *(c.encode() for c in ("\x85", "\u2028", "\u2029", "\ufeff", "\ufffe", "\u202e")),
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\t",
    b"\r",
    b"\r\n",
    b"\n",
    b" ",
    *(bytes([c]) for c in b"[]{},:-?|>&*!%#@`'\"\\~"),
    b": ",
    b"- ",
    b"? ",
    b"|-\n",
    b">+\n  ",
    b"&a ",
    b"*a",
    b"!!str ",
    b"!!python/object:os.system ",
    b"%YAML 1.1\n---\n",
    b"%TAG ! tag:x,2000:\n",
    b"---\n",
    b"...\n",
    b" # c",
    b"#c",
    b"1: x\n",
    b"~: x\n",
    b"true: x\n",
    b"'1': x\n",
    b"? [a]\n: b\n",
    b"{ ?time: 1, count: 2 }",
    b"[https://hooks.example.com/x]",
    b"{url: https://a.example/b}",
    b"9" * 5000,
    b"0x" + b"f" * 5000,
    b"1e999",
    b"-1e400",
    b".inf",
    b".nan",
    b"1" * 101,
    b"0o17",
    b"1:30",
    b"2030-06-02 10:00",
    b"x" * 70_000,
]
UTF = ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-16", "utf-32"]


def mutate(rng: random.Random, raw: bytes) -> bytes:
    """One hostile variant of `raw`: one to three byte or token mutations."""
    data = bytearray(raw)
    for _ in range(rng.choice((1, 1, 2, 3))):
        at = rng.randrange(len(data) + 1)
        op = rng.randrange(13)
        if op < 3:  # insert a token
            data[at:at] = rng.choice(TOKENS)
        elif op == 3:  # overwrite with a token
            data[at : at + rng.randrange(1, 8)] = rng.choice(TOKENS)
        elif op == 4:  # delete a span
            del data[at : at + rng.randrange(1, 40)]
        elif op == 5:  # cut the file short
            del data[at:]
        elif op in (6, 7):  # double, drop, swap or re-indent a line
            lines = bytes(data).split(b"\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            how = rng.randrange(4)
            if how == 0:
                lines.insert(i, lines[j])
            elif how == 1:
                del lines[i]
            elif how == 2:
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines[i] = rng.choice((b" ", b"  ", b"\t", b" \t", b"")) + lines[i].lstrip(b" ")
            data = bytearray(b"\n".join(lines))
        elif op == 8:  # deep nesting, flow or block
            depth = rng.choice((30, 31, 32, 33, 100, 1000, 20_000))
            if rng.random() < 0.5:
                data[at:at] = b"[" * depth + b"]" * depth
            else:
                block = b"".join(b"  " * k + b"k%d:\n" % k for k in range(min(depth, 400)))
                data[at:at] = block + b"  " * min(depth, 400) + b"x: 1\n"
        elif op == 9:  # a number made huge
            numbers = [m.span() for m in re.finditer(rb"\b[0-9]+(\.[0-9]+)?\b", bytes(data))]
            if numbers:
                start, end = rng.choice(numbers)
                data[start:end] = rng.choice((b"9" * 5000, b"1e999", b"-1e999", b"1" * 200))
        elif op == 10:  # the last line: spaces and no line break, or no final newline
            data = bytearray(bytes(data).rstrip(b"\n") + rng.choice((b"\n   ", b"", b"\n\t")))
        elif op == 11:  # the whole file in UTF-16 or UTF-32
            text = bytes(data).decode("utf-8", "replace")
            return text.encode(rng.choice(UTF))
        else:  # random bytes
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
    return bytes(data)


def line_count(raw: bytes) -> int:
    """Lines as YAML counts them (`\\n`, `\\r\\n`, `\\r`); at least 1."""
    return max(1, len(re.split(rb"\r\n|\r|\n", raw.removesuffix(b"\n").removesuffix(b"\r"))))


def write_batch(rng: random.Random, folder: Path, n: int, first: int) -> dict[str, bytes]:
    """`n` mutated files below `folder` (some in a sub-folder under a mutated defaults file)."""
    written: dict[str, bytes] = {}
    for i in range(n):
        base = re.sub(rb"(?m)^name: .*$", b"name: fuzz %d" % (first + i), rng.choice(CAMPAIGNS))
        name = f"c{i}.yaml" if i % 2 else f"sub/c{i}.yaml"
        written[name] = mutate(rng, base) if rng.random() < 0.95 else base
    written["sub/_defaults.yaml"] = mutate(rng, DEFAULTS) if rng.random() < 0.3 else DEFAULTS
    if rng.random() < 0.2:
        written["_moved.yaml"] = mutate(rng, b"- {from: old, to: c1}\n")
    for name, raw in written.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
    return {f"{folder.name}/{name}": raw for name, raw in written.items()}


def check_batch(runner: CliRunner, folder: Path, files: dict[str, bytes], full: bool) -> int:
    """Validate one folder; return the number of problems; assert the contract."""
    result = runner.invoke(cli, ["validate", "--campaigns", folder.name, "--format", "json"])
    context = f"seed {SEED}, folder {folder.name}: {result.output[-2000:]}"
    assert result.exit_code in (0, 1), context
    assert result.exception is None or isinstance(result.exception, SystemExit), context
    for sign in ("Traceback", "internal error", "please report it"):
        assert sign not in result.output, context
    problems = json.loads(result.stdout)
    assert isinstance(problems, list), context
    for problem in problems:
        raw = files[problem["file"]]
        lines = line_count(raw)
        assert 1 <= problem["line"] <= lines, f"{problem} in a file of {lines} lines; {context}"
        assert problem["column"] >= 1, f"{problem}; {context}"
        try:
            text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
        except UnicodeDecodeError:
            continue
        line = [*re.split(r"\r\n|\r|\n", text), ""][problem["line"] - 1]
        assert problem["column"] <= len(line) + 1, f"{problem}: {line!r}; {context}"
    if full:
        text = runner.invoke(cli, ["validate", "--campaigns", folder.name])
        github = runner.invoke(cli, ["validate", "--campaigns", folder.name, "--format", "github"])
        assert text.exit_code == github.exit_code == result.exit_code, context
        shown = [line for line in text.stderr.splitlines() if re.match(r"\S+:\d+:\d+: ", line)]
        assert len(shown) == len(problems), context
        assert github.stdout.count("\n::") + github.stdout.startswith("::") == len(problems)
        fmt = runner.invoke(cli, ["fmt", "--check", "--campaigns", folder.name])
        assert fmt.exit_code in (0, 1), f"fmt: {fmt.output[-2000:]}"
        for sign in ("Traceback", "internal error", "please report it"):
            assert sign not in fmt.output, fmt.output
    return len(problems)


def test_mutated_campaigns_never_end_in_an_internal_error(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILE_CACHE_DIR", "off")
    rng = random.Random(SEED)
    runner = CliRunner()
    start = time.perf_counter()
    done = problems = 0
    batch = 0
    while done < FILES:
        folder = workdir / f"b{batch}"
        n = min(BATCH, FILES - done)
        files = write_batch(rng, folder, n, done)
        problems += check_batch(runner, folder, files, full=batch % 5 == 0)
        done += n
        batch += 1
        if FILES > 10_000:  # a long run: keep the disk small
            for path in sorted(folder.rglob("*"), reverse=True):
                path.rmdir() if path.is_dir() else path.unlink()
            folder.rmdir()
    seconds = time.perf_counter() - start
    print(f"\nfuzz: {done} mutated files in {batch} folders, {problems} problems, {seconds:.1f} s")
    assert problems > done / 2  # the mutations do break files (or the test proves little)
