"""Which ASGI server runs DreamTree: uvicorn (uvloop + httptools) against granian, one worker each.

Both serve the real app on the same freshly migrated database; wrk drives GET /healthz (a real
database read through the app's own stack) on loopback, 64 connections. Ratios matter more than
absolute numbers on a shared machine; run it twice if in doubt.

    .venv/bin/python bench/server_choice.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PY, ROOT, wait_healthy, wrk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="dreamtree-bench-"))
    db = work / "bench.db"
    subprocess.run([PY, "-m", "app.cli", "migrate", "--db", str(db)], check=True, cwd=ROOT, capture_output=True)
    env = {**os.environ, "DREAMTREE_DB": str(db), "DREAMTREE_RATE_LIMITS": "0"}
    servers = {
        "uvicorn[standard]": [PY, "-m", "uvicorn", "--factory", "app.http.app:create_app", "--port", "8411",
                              "--log-level", "warning", "--no-access-log"],
        "granian": [PY, "-m", "granian", "--interface", "asgi", "--factory", "--port", "8411", "--log-level",
                    "warning", "--no-ws", "app.http.app:create_app"],
    }
    print(f"{'server':<20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'start s':>8}")
    results = {}
    for name, command in servers.items():
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            started = wait_healthy(8411)
            wrk("http://127.0.0.1:8411/healthz", seconds=2)  # warm-up
            r = wrk("http://127.0.0.1:8411/healthz", seconds=args.seconds)
            results[name] = r
            print(f"{name:<20} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>7.0f} {started:>8.2f}")
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
    base = results["uvicorn[standard]"]["rps"]
    for name, r in results.items():
        print(f"{name}: {r['rps'] / base:.2f}x uvicorn's throughput")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
