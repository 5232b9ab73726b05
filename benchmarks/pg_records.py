"""Cost of one write-ahead `pending()` record, by backend and state size (spec section 5, 8).

    python benchmarks/pg_records.py [--records 500] [--url postgresql://...]

Without --url it starts a throw-away cluster with fsync on (tests/pg_fixtures.py, so it needs
the PostgreSQL server installed), as a real server commits. The file backend runs in a
temporary folder on the same disk. Prints milliseconds per record, median of three runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pg_fixtures import Cluster, find_bindir

from reconciler.state.file.store import FileStore
from reconciler.state.model import Entry, State
from reconciler.state.postgres.store import PostgresStore

SIZES = (0, 10_000)
PAYLOAD = {"name": "Bench", "cps": 1.03, "defaultExec": "robot", "options": {"a": 1, "b": [1, 2]}}


def entry(status: str = "created", identity: str | None = "id") -> Entry:
    return Entry(
        status, identity, "sha256:" + "0" * 64, PAYLOAD, "campaigns/x.yaml", "2030-01-01T00:00:00Z"
    )  # type: ignore[arg-type]


def per_record(store: FileStore | PostgresStore, size: int, records: int) -> float:
    """Milliseconds per `pending()` on a state of `size` entries (median of three runs)."""
    with store.lock("bench"):
        store.write(State(campaigns={f"k{i:05d}": entry() for i in range(size)}))
        runs = []
        for run in range(3):
            journal = store.journal()
            start = time.perf_counter()
            for i in range(records):
                journal.pending(f"new{run}-{i}", entry("pending", None))
            runs.append((time.perf_counter() - start) * 1000 / records)
            journal.close()
            store.fold()
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--url", help="an initialised database (else a throw-away cluster)")
    args = parser.parse_args()
    cluster = None
    if args.url is None:
        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("no PostgreSQL server installed; give --url")
        cluster = Cluster.start(bindir, durable=True)
    url = args.url or (cluster.url() if cluster else "")
    try:
        with tempfile.TemporaryDirectory(dir=Path.cwd()) as folder:
            print("backend     entries  ms per pending()")
            for size in SIZES:
                file_store = FileStore(Path(folder) / f"s{size}-{time.time_ns()}.json")
                pg_store = PostgresStore(url, f"bench-{size}-{time.time_ns()}")
                for name, store in (("file", file_store), ("postgresql", pg_store)):
                    ms = per_record(store, size, args.records)
                    print(f"{name:<11} {size:>7}  {ms:.3f}")
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
