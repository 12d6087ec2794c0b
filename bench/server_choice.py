"""Which ASGI server runs DreamTree: uvicorn (uvloop + httptools) against granian, one worker each.

Both serve the real app on the same freshly migrated database; wrk drives GET /healthz (a real
database read through the app's own stack) on loopback, 64 connections. Ratios matter more than
absolute numbers on a shared machine; run it twice if in doubt.

    .venv/bin/python bench/server_choice.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def wait_healthy(port: int, timeout: float = 20.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not become healthy")


def run_wrk(port: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/healthz"],
        capture_output=True, text=True, check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": ms(" 50"),
        "p99": ms(" 99"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


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
            run_wrk(8411, 2)  # warm-up
            r = run_wrk(8411, args.seconds)
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
