"""Round-trip latency of the d1 engine against the D1 Worker under local `wrangler dev`.

    .venv/bin/python bench/d1_latency.py [--calls 500]

Starts the Worker exactly as docs/d1.md says (`wrangler dev --ip 127.0.0.1 --port P --var
DREAMTREE_D1_TOKEN:T --persist-to DIR`, a throw-away DIR), then times, one after another:
- `batch`: a one-statement read batch (`SELECT 1`) through D1Engine: one HTTP round trip;
- `query`: a work with one Read through `engine.query` (the same round trip plus the driver);
- `write`: a one-statement write batch (an INSERT) through D1Engine;
- `raw`: the same read batch as `batch`, posted with a bare httpx.AsyncClient (the engine's
  own cost is `batch` minus `raw`).
Prints p50 / p90 / p99 / max in milliseconds. Local numbers: they measure the app's HTTP
client, wrangler's proxy, workerd and miniflare's D1, not Cloudflare's network.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.db.d1_engine import D1Engine  # noqa: E402
from app.db.engine import Read, Stmt, Work  # noqa: E402

COMPAT = ROOT / "wrangler-compat"
WRANGLER = COMPAT / "node_modules" / ".bin" / "wrangler"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (f"p50 {at(0.50):6.2f}  p90 {at(0.90):6.2f}  p99 {at(0.99):6.2f}  max {ordered[-1] * 1000:6.2f}  "
            f"mean {statistics.fmean(ordered) * 1000:6.2f} ms  (n={len(ordered)})")


def one_read() -> Work[int]:
    (result,) = yield Read(Stmt("SELECT 1 AS one"))
    return int(result.value())


async def measure(url: str, token: str, calls: int) -> None:
    engine = D1Engine(url, token)
    try:
        await engine.open()
        await engine.batch([Stmt("CREATE TABLE IF NOT EXISTS bench_rows (id INTEGER PRIMARY KEY, v TEXT)")], write=True)
        for _ in range(200):  # warm up: workerd's JIT, the kept-alive connection
            await engine.batch([Stmt("SELECT 1 AS one")], write=False)
        runs = {
            "batch": lambda: engine.batch([Stmt("SELECT 1 AS one")], write=False),
            "query": lambda: engine.query(one_read, None),
            "write": lambda: engine.batch([Stmt("INSERT INTO bench_rows (v) VALUES (?)", ("x",))], write=True),
        }
        raw_client = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"})
        body = b'{"mode":"read","statements":[{"sql":"SELECT 1 AS one","params":[]}]}'

        async def raw() -> None:
            (await raw_client.post(f"{url}/batch", content=body)).raise_for_status()

        runs["raw"] = raw
        for _ in range(50):
            await raw()
        for name, call in runs.items():
            samples = []
            for _ in range(calls):
                started = time.perf_counter()
                await call()
                samples.append(time.perf_counter() - started)
            print(f"{name:<6} {percentiles(samples)}")
        await raw_client.aclose()
    finally:
        await engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    token = secrets.token_hex(32)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CI": "true", "WRANGLER_SEND_METRICS": "false", "WRANGLER_SEND_ERROR_REPORTS": "false",
               "WRANGLER_HIDE_BANNER": "true", "WRANGLER_LOG_PATH": f"{tmp}/logs",
               "WRANGLER_REGISTRY_PATH": f"{tmp}/registry"}
        proc = subprocess.Popen(
            [str(WRANGLER), "dev", "--ip", "127.0.0.1", "--port", str(port), "--var", f"DREAMTREE_D1_TOKEN:{token}",
             "--persist-to", f"{tmp}/state", "--log-level", "warn"],
            cwd=COMPAT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.post(f"http://127.0.0.1:{port}/batch", content=b"{}", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit("wrangler dev did not start") from None
                    time.sleep(0.1)
            print(f"wrangler dev on 127.0.0.1:{port}, {args.calls} calls each, one at a time (cpus: {os.cpu_count()}, "
                  f"load average {os.getloadavg()[0]:.1f})")
            anyio.run(measure, f"http://127.0.0.1:{port}", token, args.calls)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
