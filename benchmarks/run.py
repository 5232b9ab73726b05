"""Side-by-side benchmark of reconcile at scale; prints one table (median of --runs runs).

    python benchmarks/run.py [--count 10000] [--runs 3]

Needs the project installed in the running interpreter's environment, plus check-jsonschema
(the peer a user would otherwise put in the PR check; it is in the `test` extra).
Every figure is measured in this one run on this machine, so the ratios hold on a noisy one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate

BIN = Path(sys.executable).parent
RECONCILE = str(BIN / "reconcile")
SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "campaign.schema.json"
TOKEN = "bench-token"


def run(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)
) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd)} exited {code}:\n{err}")
    return seconds, usage.ru_maxrss


def median(runs: int, once: Callable[[], float]) -> float:
    return statistics.median(once() for _ in range(runs))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`reconcile sandbox` in its own process (as a real API would be)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [RECONCILE, "sandbox", "--port", str(self.port), "--token", TOKEN],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("sandbox did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


def env_for(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    env.update(TWIN24_TOKEN=TOKEN, TWIN24_API_URL=url)
    return env


def subset(src: Path, dst: Path, count: int) -> None:
    files = sorted((src / "campaigns").rglob("*.yaml"))[:count]
    for path in files:
        target = dst / "campaigns" / path.relative_to(src / "campaigns")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def import_all(folder: Path, state: Path) -> None:
    """A state that knows every campaign (as `reconcile import` would record it)."""
    code = (
        "import sys; from pathlib import Path\n"
        "from reconciler.config.validate import load_config\n"
        "from reconciler.state.model import Entry, State\n"
        "from reconciler.state.file.store import FileStore\n"
        "c = load_config(Path('campaigns'))\n"
        "e = {k: Entry('created', 'id-' + k, v.fingerprint, v.payload, v.source, "
        "'2026-11-27T00:00:00Z') for k, v in c.campaigns.items()}\n"
        "s = FileStore(Path(sys.argv[1]))\n"
        "with s.lock('bench'):\n"
        "    s.write(State(api_url=sys.argv[2], campaigns=e))\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(state), "http://127.0.0.1:1/api/v1"],
        cwd=folder,
        check=True,
    )


def bare_floor(
    url: str, bodies: list[dict[str, object]], parallelism: int, fresh: bool = False
) -> float:
    """A bare httpx client sending the same bodies at the same parallelism; `fresh`: a new
    connection per request, as the spec requires of creates (a pool per thread, as the
    project's client has), keep-alive otherwise."""
    import threading

    import httpx

    headers = {"Authorization": f"Bearer {TOKEN}"}
    shared = httpx.Client(headers=headers, trust_env=False)
    local = threading.local()
    made: list[httpx.Client] = []

    def client() -> httpx.Client:
        if not fresh:
            return shared
        if not hasattr(local, "client"):
            limits = httpx.Limits(max_keepalive_connections=0)
            local.client = httpx.Client(headers=headers, trust_env=False, limits=limits)
            made.append(local.client)
        return local.client  # type: ignore[no-any-return]

    def send(body: dict[str, object]) -> None:
        client().post(f"{url}/telephony/autoCall", json=body).raise_for_status()

    start = time.perf_counter()
    with ThreadPoolExecutor(parallelism) as pool:
        list(pool.map(send, bodies))
    seconds = time.perf_counter() - start
    for each in [shared, *made]:
        each.close()
    return seconds


class Rows(list[tuple[str, float, str]]):
    """Rows of the table; each is also printed as soon as it is measured."""

    def append(self, row: tuple[str, float, str]) -> None:
        super().append(row)
        print(f"  {row[0]}: {row[1]:.3f} {row[2]}", file=sys.stderr, flush=True)

    def table(self) -> None:
        width = max(len(r[0]) for r in self)
        print(f"| {'measure':<{width}} | {'seconds':>9} | ratio |")
        print(f"|{'-' * (width + 2)}|{'-' * 11}|-------|")
        for name, value, ratio in self:
            print(f"| {name:<{width}} | {value:>9.3f} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    n, runs = args.count, args.runs
    rows = Rows()
    with tempfile.TemporaryDirectory(prefix="reconcile-bench-") as tmp:
        root = Path(tmp)
        big = root / "big"
        generate(big, n)
        cache = root / "cache"
        os.environ["RECONCILE_CACHE_DIR"] = str(cache)  # inherited by every command below

        def cold_validate() -> float:
            shutil.rmtree(cache, ignore_errors=True)
            return run([RECONCILE, "validate"], big)[0]

        peer = median(
            runs,
            lambda: run(
                [
                    str(BIN / "check-jsonschema"),
                    "--schemafile",
                    str(SCHEMA),
                    *map(str, sorted((big / "campaigns").rglob("*.yaml"))),
                ],
                big,
            )[0],
        )
        rows.append((f"check-jsonschema, {n} files", peer, "1.00 (peer)"))
        cold = median(runs, cold_validate)
        rows.append(
            (
                f"reconcile validate, {n} files, cold",
                cold,
                f"{cold / peer:.3f} x peer (target <= 0.2)",
            )
        )
        run([RECONCILE, "validate"], big)
        warm = median(runs, lambda: run([RECONCILE, "validate"], big)[0])
        rows.append((f"reconcile validate, {n} files, warm", warm, f"{warm / peer:.3f} x peer"))

        # The calling policy's share of a cold validate: the same run with its checks stubbed
        # out, alternating with the real one so that both see the same load.
        def cold_with(stub: bool) -> float:
            shutil.rmtree(cache, ignore_errors=True)
            patch = "import reconciler.config.policy as p; p.check = lambda *a: []; "
            patch = patch if stub else ""
            code = f"{patch}from reconciler.cli.main import main; main(['validate'])"
            return run([sys.executable, "-c", code], big)[0]

        pairs = [(cold_with(False), cold_with(True)) for _ in range(runs)]
        shutil.rmtree(cache, ignore_errors=True)  # the stubbed runs cached without the checks
        real, stubbed = (statistics.median(side) for side in zip(*pairs, strict=True))
        rows.append(
            (
                f"validate, {n} files, cold, policy checks stubbed",
                stubbed,
                f"with them: {real / stubbed:.3f} x (target <= 1.05)",
            )
        )

        state = big / "imported.state.json"
        import_all(big, state)
        plan_cmd = [RECONCILE, "plan", "--state", str(state)]

        def cold_plan() -> float:
            shutil.rmtree(cache, ignore_errors=True)
            return run(plan_cmd, big)[0]

        pc = median(runs, cold_plan)
        rows.append((f"plan, {n} unchanged, cold", pc, f"{pc / peer:.3f} x peer (target <= 0.25)"))
        run(plan_cmd, big)
        pw = median(runs, lambda: run(plan_cmd, big)[0])
        rows.append((f"plan, {n} unchanged, warm", pw, f"{pw / peer:.3f} x peer (target <= 0.05)"))
        create_cmd = [
            RECONCILE,
            "plan",
            "--state",
            str(root / "none.json"),
            "--max-creates",
            str(n),
        ]
        pcr = median(runs, lambda: run(create_cmd, big)[0])
        rows.append((f"plan, {n} to create, warm", pcr, f"{pcr / peer:.3f} x peer"))
        rss = run(plan_cmd, big)[1]
        rows.append((f"plan, {n} unchanged: peak RSS", rss / 1024, "MB (target < 400)"))

        # apply: 1,000 creates at parallelism 8 against a sandbox process, and the floor
        thousand = root / "thousand"
        subset(big, thousand, 1000)
        from reconciler.config.validate import load_config

        here = Path.cwd()
        os.chdir(thousand)
        bodies = [c.payload for c in load_config(Path("campaigns")).campaigns.values()]
        os.chdir(here)

        def apply_once(
            folder: Path, state_file: Path, parallelism: int, seed_state: Path | None
        ) -> float:
            server = Server(folder)
            try:
                state_file.unlink(missing_ok=True)
                if seed_state is not None:
                    shutil.copyfile(seed_state, state_file)
                    data = json.loads(state_file.read_text())
                    data["api_url"] = server.url
                    state_file.write_text(json.dumps(data))
                cmd = [
                    RECONCILE,
                    "apply",
                    "--auto-approve",
                    "--rate",
                    "0",
                    "--parallelism",
                    str(parallelism),
                    "--max-creates",
                    "100000",
                    "--state",
                    str(state_file),
                ]
                return run(cmd, folder, env_for(server.url))[0]
            finally:
                server.stop()

        def floor_once(fresh: bool) -> float:
            server = Server(thousand)
            try:
                return bare_floor(server.url, bodies, 8, fresh)
            finally:
                server.stop()

        floor = median(runs, lambda: floor_once(False))
        rows.append(("bare httpx, 1,000 creates, parallelism 8", floor, "1.00 (floor)"))
        fresh = median(runs, lambda: floor_once(True))
        rows.append(
            ("bare httpx, same, a fresh connection each", fresh, f"{fresh / floor:.2f} x floor")
        )
        ap = median(runs, lambda: apply_once(thousand, root / "t.state.json", 8, None))
        rows.append(
            (
                "apply, 1,000 creates, parallelism 8",
                ap,
                f"{ap / floor:.2f} x floor (target <= 1.3); {ap / fresh:.2f} x fresh floor",
            )
        )

        # apply: 200 creates into an empty state and into a 10,000-entry state
        two = root / "two"
        subset(big, two, 200)
        big_state_dir = root / "bigstate"
        shutil.copytree(big / "campaigns", big_state_dir / "campaigns")
        import_all(big_state_dir, big_state_dir / "s.json")
        data = json.loads((big_state_dir / "s.json").read_text())
        data["campaigns"] = {f"old/{k}": v for k, v in data["campaigns"].items()}
        from reconciler.config.campaign import fingerprint

        for entry in data["campaigns"].values():
            entry["payload"]["name"] = "old " + entry["payload"]["name"]
            entry["fingerprint"] = fingerprint(entry["payload"])
        (big_state_dir / "s.json").write_text(json.dumps(data))
        empty = median(runs, lambda: apply_once(two, root / "e.state.json", 4, None))
        rows.append(("apply, 200 creates, empty state", empty, "1.00"))
        full = median(
            runs, lambda: apply_once(two, root / "f.state.json", 4, big_state_dir / "s.json")
        )
        rows.append(
            (
                f"apply, 200 creates, {len(data['campaigns'])}-entry state",
                full,
                f"{full / empty:.2f} x empty (target <= 1.2)",
            )
        )

        helps = median(runs, lambda: run([RECONCILE, "--help"], root)[0])
        click = median(runs, lambda: run([sys.executable, "-c", "import click"], root)[0])
        rows.append(('python -c "import click"', click, "1.00"))
        rows.append(
            ("reconcile --help", helps, f"{helps / click:.2f} x import click (target <= 3)")
        )

    print(f"\nreconcile benchmarks, {n} campaigns, median of {runs} runs", flush=True)
    rows.table()


if __name__ == "__main__":
    main()
