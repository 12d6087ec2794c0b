"""How long a full seed of the sample workbook takes, and a re-run that changes nothing.

Each round uses a fresh migrated database (full seed), then seeds it again (no change).
In-process timings, medians of --rounds, so Python's start-up is not counted.

    .venv/bin/python bench/seed_timing.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.db import migrations
from app.db.connection import connect_sync
from app.domain import seeding


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    full, again, emit = [], [], []
    rows = 0
    with tempfile.TemporaryDirectory() as folder:
        for i in range(args.rounds):
            with closing(connect_sync(Path(folder) / f"seed{i}.db")) as conn:
                migrations.apply(conn)
                started = time.perf_counter()
                result = seeding.seed(conn)
                full.append(time.perf_counter() - started)
                rows = result.plan.changes
                started = time.perf_counter()
                assert seeding.seed(conn).plan.changes == 0
                again.append(time.perf_counter() - started)
            started = time.perf_counter()
            seeding.emit_sql()
            emit.append(time.perf_counter() - started)
    print(f"full seed ({rows} rows):      median {1000 * statistics.median(full):7.1f} ms")
    print(f"re-run, nothing to change:   median {1000 * statistics.median(again):7.1f} ms "
          f"({statistics.median(again) / statistics.median(full):.2f}x the full seed)")
    print(f"--emit-sql:                  median {1000 * statistics.median(emit):7.1f} ms")


if __name__ == "__main__":
    main()
