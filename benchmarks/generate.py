"""Generate N complete campaigns in the raw API form (no _defaults.yaml, no friendly forms),
so that a peer validator sees exactly the content reconcile sees. Every campaign keeps to the
default calling policy (at most 10 calls/s, at most 6 calls per number a day), as a real
repository's campaigns mostly do: a breach is a warning, and warnings are never cached.

    python benchmarks/generate.py OUT_DIR [--count 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import uuid
from pathlib import Path

HEADER = "# yaml-language-server: $schema=../../schemas/campaign.schema.json\n"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def campaign(i: int, rng: random.Random) -> str:
    """One ~1 KB campaign file with varied values."""
    second = rng.choice(["end", "ignore", "ch"])
    cid = rng.choice(["default", "gornum", "pool"])
    start = rng.choice(["manual", "time"])
    per_second = rng.random() < 0.5
    fast, slow = rng.randint(1, 20), rng.randint(2, 90)
    cps = (100 + (fast + 1) // 2) / 100 if per_second else (100 - slow) / 100
    lines = [
        HEADER,
        f"name: Benchmark campaign {i:05d}\n",
        "defaultExec: robot\n",
        f"defaultExecData: {_uuid(rng)}\n",
        f"secondExec: {second}\n",
    ]
    if second == "ch":
        lines.append(f"secondExecData: {_uuid(rng)}\n")
    lines.append(f"cidType: {cid}\n")
    if cid != "default":
        lines.append(f"cidData: {_uuid(rng)}\n")
    lines.append(f"startType: {start}\n")
    if start == "time":
        day = rng.randint(1, 28)
        lines.append(
            f'startMoment: "2031-{rng.randint(1, 12):02d}-{day:02d} {rng.randint(8, 18):02d}:00"\n'
        )
    lines.append(f"cps: {cps}\n")
    lines.append(f"taskComment: Generated for the benchmark, batch {i // 100}\n")
    lines.append("webhookUrls:\n  - https://hooks.example.com/twin24/bench\n")
    record = rng.random() < 0.5
    detect = rng.random() < 0.5
    lines += [
        "additionalOptions:\n",
        "  fullListMethod: reject\n",
        f"  fullListTime: {rng.randint(10, 90)}\n",
        "  useTr: true\n",
        f"  allowCallTimeFrom: {rng.randint(8, 11) * 3600}\n",
        f"  allowCallTimeTo: {rng.randint(18, 21) * 3600}\n",
        f"  recordCall: {'true' if record else 'false'}\n",
    ]
    if record:
        lines.append(f"  recTrimLeft: {rng.randint(0, 5)}\n")
    lines.append(f"  detectRobot: {'true' if detect else 'false'}\n")
    if detect:
        lines.append(f"  detectRobotMode: {rng.choice(['back', 'block'])}\n")
    lines += ["redialStrategyOptions:\n", "  redialStrategyEn: true\n"]
    ringing = 5  # redials that ring a number, besides its first call (congestion never rings)
    for rule in ("busy", "noAnswer", "answerMash", "congestion", "answerNoList"):
        on = rng.random() < 0.6
        t, c = rng.randint(1, 12) * 300, rng.randint(1, 3)
        if rule != "congestion":
            c = min(c, ringing)
            ringing -= c
        if on and c:
            lines.append(f"  {rule}: {{redial: true, time: {t}, count: {c}}}\n")
        else:
            lines.append(f"  {rule}: {{redial: false}}\n")
    return "".join(lines)


def generate(out: Path, count: int, seed: int = 1) -> list[Path]:
    """Write `count` campaigns below `out/campaigns/`, 100 per folder; return their paths."""
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        folder = out / "campaigns" / f"batch-{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"campaign-{i:05d}.yaml"
        path.write_text(campaign(i, rng), encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    generate(args.out, args.count, args.seed)


if __name__ == "__main__":
    main()
