"""Hostile campaign files a fork's pull request can hold: how long `validate` takes on each.

    python benchmarks/hostile.py

Each row is one campaigns folder: a file of many extra keys merged with a one-line
`_defaults.yaml` (once quadratic: 16k keys took a minute), a 900 KB one-line flow mapping
(once did not finish), and a 250 KiB file only the slow YAML 1.2 fallback reads. The goal:
each well under 10 seconds, output bounded (a file prints at most 100 problems).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECONCILE = str(Path(sys.executable).parent / "reconcile")
BASE = Path(__file__).resolve().parent.parent / "campaigns" / "onboarding-welcome.yaml"


def case(files: dict[str, str]) -> tuple[float, int]:
    """Seconds and bytes of output of `reconcile validate --format json` on `files`."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "campaigns"
        root.mkdir()
        for name, text in files.items():
            (root / name).write_text(text, encoding="utf-8")
        start = time.perf_counter()
        done = subprocess.run(
            [RECONCILE, "validate", "--format", "json"], cwd=tmp, capture_output=True, check=False
        )
        return time.perf_counter() - start, len(done.stdout) + len(done.stderr)


def main() -> None:
    base = BASE.read_text(encoding="utf-8")
    rows = {
        "16k extra keys + _defaults.yaml": {
            "a.yaml": base + "".join(f"k{i:06d}: 1\n" for i in range(16_000)),
            "_defaults.yaml": "cidType: default\n",
        },
        "900 KB one-line flow mapping": {
            "a.yaml": "{" + ", ".join(f"k{i}:1" for i in range(90_000)) + "}\n",
            "_defaults.yaml": "{cidType: default}\n",
        },
        "250 KiB for the fallback reader": {
            "a.yaml": base
            + "webhookUrls: [https://a.example/b]\n"
            + ("#" + "x" * 1000 + "\n") * 250,
        },
    }
    print(f"{'case':36} {'seconds':>8} {'output bytes':>13}")
    for label, files in rows.items():
        seconds, size = case(files)
        print(f"{label:36} {seconds:8.2f} {size:13,}")


if __name__ == "__main__":
    main()
