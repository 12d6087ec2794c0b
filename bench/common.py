"""Shared helpers for the benchmark scripts: a real server on loopback, wrk, timing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def wait_healthy(port: int, timeout: float = 30.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not become healthy")


@contextmanager
def server(db: Path, port: int, *extra: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`dreamtree serve` on loopback (migrates and seeds an empty database first)."""
    proc = subprocess.Popen(
        [PY, "-m", "app.cli", "serve", "--db", str(db), "--port", str(port), "--log-level", "warning", *extra],
        cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(port)
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def parse_wrk(out: str) -> dict[str, float]:
    """wrk --latency output: requests/s, p50/p99 ms, requests, errors (non-2xx and socket errors)."""

    def ms(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", out)
        assert m, out
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    assert rps and total, out
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)),
        "p50": ms(" 50"),
        "p99": ms(" 99"),
        "requests": float(total.group(1)),
        "errors": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": float(sum(int(x) for x in sockets.groups())) if sockets else 0.0,
    }


def wrk(url: str, *, seconds: int, connections: int = 64, headers: dict[str, str] | None = None) -> dict[str, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in (headers or {}).items():
        args += ["-H", f"{k}: {v}"]
    return parse_wrk(subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout)
