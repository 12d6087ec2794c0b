"""Shared helpers for the benchmark scripts: a real server on loopback, wrk, timing."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
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


def callgrind_counts(script: list[str], tree: Path, parts: Iterable[str], requests: int) -> dict[str, float]:
    """Instructions per request of each part of `script` (a Python script and its arguments),
    run in checkout `tree` under valgrind's callgrind. The script prints READY before each
    part's measured requests and DONE after them, and waits for a line on stdin before each;
    instrumentation is on only in between, so start-up and warm-up are not counted. Every
    thread of the process is counted. Needs `apt-get install valgrind`."""
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    out = Path(tempfile.mkdtemp(prefix="dreamtree-callgrind-"))
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}/cg.%p", PY, *script],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    assert proc.stdin is not None and proc.stdout is not None

    def control(*what: str) -> None:
        subprocess.run(["callgrind_control", *what, str(proc.pid)], capture_output=True, check=True)

    figures: dict[str, float] = {}
    try:
        for name in parts:
            if proc.stdout.readline().strip() != "READY":
                raise SystemExit(f"{tree}: the measured process stopped (run it without valgrind to see why)")
            control("--zero")
            control("--instr=on")
            proc.stdin.write("\n")
            proc.stdin.flush()
            if proc.stdout.readline().strip() != "DONE":
                raise SystemExit(f"{tree}: the measured process stopped during {name}")
            control("--instr=off")
            for old in out.glob("cg.*"):
                old.unlink()
            control("--dump")
            totals = [int(line.split()[1]) for dump in out.glob("cg.*") for line in dump.open()
                      if line.startswith(("summary:", "totals:"))]
            figures[name] = max(totals) / requests
            proc.stdin.write("\n")
            proc.stdin.flush()
        proc.stdout.read()
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(out, ignore_errors=True)
    return figures


def round_arguments(description: str | None, requests: int) -> argparse.ArgumentParser:
    """The arguments of a script whose figures `cpu_rounds` takes over checkouts."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=requests)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tree", action="append", default=[], type=Path,
                        help="another checkout to measure in the same run (repeatable)")
    parser.add_argument("--data", default=tempfile.gettempdir(), help="where datasets are built and kept")
    parser.add_argument("--db", help=argparse.SUPPRESS)  # set for a round's subprocess
    return parser


def cpu_rounds(script: Path, args: argparse.Namespace, trees: list[Path], names: Sequence[str], tasks: int) -> None:
    """Each of `args.rounds` rounds runs `script` once in every checkout in turn (a subprocess
    of its own in that checkout, on its own copy of the dataset's database: the requests write
    to it), so a noisy moment of the machine falls on them alike. Each run prints its figures,
    CPU µs per request by name, as JSON. Prints every run's figures as it ends, then, per
    checkout, the median of each over the rounds."""
    work = Path(tempfile.mkdtemp(prefix="dreamtree-rounds-"))
    figures: dict[Path, list[dict[str, float]]] = {tree: [] for tree in trees}
    try:
        for n in range(len(trees)):
            shutil.copyfile(Path(args.data) / f"dreamtree-bench-{args.users}" / "dreamtree.db", work / f"{n}.db")
        for round_ in range(args.rounds):
            for n, tree in enumerate(trees):
                out = subprocess.run(
                    [PY, str(script), "--users", str(args.users), "--data", args.data, "--requests", str(args.requests),
                     "--db", str(work / f"{n}.db")],
                    cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, check=True)
                figures[tree].append(json.loads(out.stdout))
                print(f"round {round_ + 1} {tree}: " + ", ".join(f"{name} {figures[tree][-1][name]:.0f}"
                                                                for name in names), file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(10, *(len(name) for name in names)) + 1
    print(f"CPU µs per request, median of {args.rounds} rounds ({args.requests} requests each, {tasks} tasks)")
    print(f"{'tree':<40} " + " ".join(f"{name:>{width}}" for name in names))
    for tree in trees:
        print(f"{str(tree)[-40:]:<40} " + " ".join(
            f"{statistics.median(r[name] for r in figures[tree]):>{width}.0f}" for name in names))
