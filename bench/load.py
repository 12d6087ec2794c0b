"""Load on the real server at 10,000 and 100,000 readers, each figure against its floor.

    .venv/bin/python bench/load.py [--users 10000 100000] [--seconds 10] [--connections 64]
                                   [--workers 1 2]

For each size: builds (or reuses) a dataset (bench/dataset.py), starts `dreamtree serve` (granian,
`--workers` first value, rate limits off, production Argon2) on it and measures with wrk on
loopback, 64 connections (a closed loop: the load is bounded by the connections):

- cold start (process start to the first healthy answer) and idle memory (resident size of
  the server's process tree before any load);
- reads, each endpoint alone and as a mix: outline, the next exercise, Daily Dos, spread over
  the dataset's active readers (one cookie per request, round-robin);
- writes as a mix: editing an answer, adding a tool entry;
- sign-ins (production Argon2id; 4 connections, since two hashes run at a time);
- export and import (plaintext exports of anonymous readers; importing a reader's own export
  back, which the merge finds unchanged);
- with every other `--workers` value, the read and write mixes measured again on a second
  server started with that many workers;
- the floor (bench/floor.py): the thinnest Litestar app running the domain's own statements
  for the same readers (and, for writes, the domain's own write works), one worker, served
  the same way. The servers run side by side, every one warmed with every active reader's
  reads, and each load runs on the real server and the floor in two halves each, in the
  order real, floor, floor, real.
  Each read and the write mix are reported against it: req/s as a fraction of
  the floor's, p99 as a multiple of the floor's, and "CPU share", the floor's CPU per request
  over the real one's (how much of the real endpoint's CPU is the work the floor does too).

Any answer that is not 2xx, or a socket error, stops the run and says which load and what
the answer was (bench/mix.lua stops the wrk thread that saw it).

Targets: reads ≥ 80% of their floor with p99 ≤ 1.3× the floor's, the write mix ≥ 70% of its
floor, zero errors, and latency at 100,000 readers within 1.3× of 10,000.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import PY, ROOT, parse_wrk, wait_healthy  # noqa: E402
from dataset import ensure  # noqa: E402

from app.domain import keys  # noqa: E402
from app.domain.sessions import ServerKeys  # noqa: E402

PORT, FLOOR_PORT = 8461, 8462
# `dreamtree serve` keeps itself on the last core (--cpu auto); the floor is put on the same
# one, and wrk on the others, so the load generator never takes the server's core.
CORES = sorted(os.sched_getaffinity(0))
SERVER_CORE = CORES[-1]
CLIENT = ["taskset", "-c", ",".join(map(str, CORES[:-1]))] if len(CORES) > 1 and shutil.which("taskset") else []
PASSWORD = "river lantern pocket moss"
ANSWER = json.dumps({"response": {"text": "Edited during the load test: the food bank years taught me planning."}})
TOOL_ENTRY = json.dumps({"content": {"title": "Load test list", "items": ["one", "two", "three"]}})


def tree_rss_mib(pid: int) -> float:
    """Resident size of a process and all its descendants (granian runs its worker as a child)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            with open(f"/proc/{current}/task/{current}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            continue
    return total / 1024


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            with open(f"/proc/{current}/task/{current}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def start(command: list[str], port: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], float]:
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_healthy(port, timeout=120)
    return proc, time.perf_counter() - started


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def http(method: str, port: int, path: str, *, cookie: str = "", csrf: str = "", body: Any = None) -> tuple[int, Any, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Cookie": cookie, "x-csrftoken": csrf}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def csrf_token(port: int) -> str:
    _, _, headers = http("GET", port, "/healthz")
    cookie = headers.get("set-cookie") or headers.get("Set-Cookie") or ""
    return cookie.split("csrftoken=", 1)[1].split(";", 1)[0]


class NotAllAnswered(Exception):
    """wrk saw an answer that was not 2xx, or a socket error: the run stops and says which."""


def wrk(port: int, lines: list[tuple[str, str, str, str]], csrf: str, *, seconds: int, connections: int,
        work: Path, pid: int, name: str = "") -> dict[str, float]:
    """wrk over a request list (bench/mix.lua): common.parse_wrk's figures and the server's CPU
    per request (its process tree, user + system). mix.lua stops at the first answer that is
    not 2xx; that answer, or any socket error, stops the benchmark with what went wrong."""
    listing = work / "requests.tsv"
    listing.write_text("".join("\t".join(line) + "\n" for line in lines))
    cpu_before = tree_cpu_s(pid)
    done = subprocess.run(
        [*CLIENT, "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
         "-s", str(HERE / "mix.lua"), f"http://127.0.0.1:{port}", "--", str(listing), csrf],
        capture_output=True, text=True, check=True)
    cpu = tree_cpu_s(pid) - cpu_before
    result = parse_wrk(done.stdout)
    bad = [line for line in done.stderr.splitlines() if line.startswith("NON-2XX")]
    if bad or result["errors"] or result["socket_errors"]:
        raise NotAllAnswered(f"{name}: {result['errors']:.0f} answers not 2xx, {result['socket_errors']:.0f} socket "
                             f"errors; first: {bad[0] if bad else '(none reported)'}")
    del result["socket_errors"]
    result["cpu_us"] = 1e6 * cpu / max(1.0, result["requests"])
    return result


def combined(first: dict[str, float], second: dict[str, float]) -> dict[str, float]:
    """Two equally long runs of one load as one: requests/s and CPU per request over both,
    latency percentiles the mean of the two (wrk gives no histogram to merge)."""
    requests = first["requests"] + second["requests"]
    return {
        "rps": (first["rps"] + second["rps"]) / 2,
        "p50": (first["p50"] + second["p50"]) / 2,
        "p99": (first["p99"] + second["p99"]) / 2,
        "requests": requests,
        "errors": first["errors"] + second["errors"],
        "cpu_us": (first["cpu_us"] * first["requests"] + second["cpu_us"] * second["requests"]) / max(1.0, requests),
    }


def measure_accounts(run: Callable[..., dict[str, float]], csrf: str, readers: list[dict[str, Any]],
                     users: int) -> dict[str, Any]:
    """Sign-ins, exports and imports on the real server (one worker count: the first)."""
    results: dict[str, Any] = {}
    # Sign-ins: four new accounts claimed with production Argon2id, signed in again and again.
    logins = []
    for n in range(4):
        status, body, headers = http("POST", PORT, "/api/session", csrf=csrf, cookie=f"csrftoken={csrf}")
        session = headers.get("set-cookie", "").split(";", 1)[0]
        jar = f"{session}; csrftoken={csrf}"
        email = f"load{n}-{users}@example.com"
        status, body, headers = http("POST", PORT, "/api/account/claim", cookie=jar, csrf=csrf,
                                     body={"email": email, "password": PASSWORD})
        assert status == 200, (status, body)
        logins.append(("POST", "/api/auth/login", f"csrftoken={csrf}", json.dumps({"email": email, "password": PASSWORD})))
    results["sign-in"] = run("sign-in", logins, 4)

    # Export and import: anonymous readers' plaintext exports, imported back into themselves.
    exports, imports = [], []
    for r in readers[:400]:
        status, me, _ = http("GET", PORT, "/api/me", cookie=r["cookie_header"])
        if status != 200 or not me["is_anonymous"]:
            continue
        exports.append(("POST", "/api/export", r["cookie_header"], "{}"))
        status, document, _ = http("POST", PORT, "/api/export", cookie=r["cookie_header"], csrf=csrf, body={})
        assert status == 200, (status, document)
        imports.append(("POST", "/api/import?dry_run=false", r["cookie_header"], json.dumps({"document": document})))
    results["export"] = run("export", exports, 8)
    results["import"] = run("import", imports, 8)
    return results


def measure_size(users: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every load of one size. The real server, the floor and the server with each other number
    of workers run side by side (each idle while another is measured), and each load is
    measured on them in turn, so a busy moment of a shared machine falls on all of them alike."""
    data_dir = Path(args.data) / f"dreamtree-bench-{users}"
    counts = ensure(data_dir, users, args.active)
    db = work / f"load-{users}.db"
    shutil.copyfile(data_dir / "dreamtree.db", db)  # the write mix must not change the cached dataset
    os.sync()  # the copy's dirty pages written back now, not during the measurements
    active = json.loads((data_dir / "active.json").read_text())
    env = {"DREAMTREE_SECRET": active["secret"], "DREAMTREE_DB": str(db)}
    readers = active["readers"]
    cookie = {r["user_id"]: f"dt_session={r['cookie']}" for r in readers}
    cookie_key = ServerKeys.derive(bytes.fromhex(active["secret"]), argon2=keys.Argon2Params.FAST).cookie
    session_of = {r["user_id"]: keys.open_cookie(cookie_key, r["cookie"])[1] for r in readers}
    results: dict[str, Any] = {"dataset": counts}

    # The default log level: access lines on, as deployed (the bench discards them).
    def serve(workers: int, port: int) -> list[str]:
        return [PY, "-m", "app.cli", "serve", "--db", str(db), "--port", str(port), "--no-rate-limits",
                "--workers", str(workers)]

    procs: list[subprocess.Popen[bytes]] = []
    try:
        proc, cold = start(serve(args.workers[0], PORT), PORT, env)
        procs.append(proc)
        time.sleep(1)
        results["cold_start_s"] = cold
        results["idle_rss_mib"] = tree_rss_mib(proc.pid)
        others: dict[int, tuple[int, subprocess.Popen[bytes]]] = {}
        for n, workers in enumerate(args.workers[1:]):
            other, _ = start(serve(workers, PORT + 10 + n), PORT + 10 + n, env)
            procs.append(other)
            others[workers] = (PORT + 10 + n, other)
        pin = ["taskset", "-c", str(SERVER_CORE)] if CLIENT else []
        floor, _ = start([*pin, PY, "-m", "granian", "--interface", "asgi", "--factory", "--port", str(FLOOR_PORT),
                          "--log-level", "error", "--no-ws", "bench.floor:create_app"], FLOOR_PORT, env)
        procs.append(floor)
        csrf = csrf_token(PORT)
        for r in readers:
            r["cookie_header"] = f"{cookie[r['user_id']]}; csrftoken={csrf}"
        reads = {
            "outline": [("GET", "/api/workbook", r["cookie_header"], "") for r in readers],
            "next": [("GET", "/api/workbook/next", r["cookie_header"], "") for r in readers],
            "daily-dos": [("GET", "/api/daily-dos", r["cookie_header"], "") for r in readers],
        }
        reads["read mix"] = [line for trio in zip(*reads.values()) for line in trio]
        writes = [line for r in readers for line in (
            ("PUT", f"/api/exercises/{r['last_answered']}/response", r["cookie_header"], ANSWER),
            ("POST", "/api/tools/list-builder/instances", r["cookie_header"], TOOL_ENTRY))]

        def query(r: dict[str, Any]) -> str:
            return f"u={r['user_id']}&s={session_of[r['user_id']]}"

        floor_reads = {name: [("GET", f"/floor/{name}?{query(r)}", "", "") for r in readers]
                       for name in ("outline", "next", "daily-dos")}
        floor_reads["read mix"] = [line for trio in zip(*floor_reads.values()) for line in trio]
        floor_writes = [line for r in readers for line in (
            ("POST", f"/floor/answer/{r['last_answered']}?{query(r)}", "", ""),
            ("POST", f"/floor/tool?{query(r)}", "", ""))]

        def run(name: str, lines: list[tuple[str, str, str, str]], c: int = args.connections, *,
                port: int = PORT, pid: int = proc.pid, seconds: int = args.seconds) -> dict[str, float]:
            return wrk(port, lines, csrf if port != FLOOR_PORT else "", seconds=seconds, connections=c, work=work,
                       pid=pid, name=f"{name} ({users:,} readers)")

        def alternated(name: str, lines: list[tuple[str, str, str, str]],
                       floor_lines: list[tuple[str, str, str, str]]) -> None:
            """One load on the real server and the floor in two halves each, in the order real,
            floor, floor, real: neither pays alone for coming first (colder caches, the rows
            the other added, a busy moment of the machine)."""
            half = max(1, (args.seconds + 1) // 2)
            real_first = run(name, lines, seconds=half)
            floor_halves = [run(f"floor {name}", floor_lines, port=FLOOR_PORT, pid=floor.pid, seconds=half)
                            for _ in range(2)]
            results[name] = combined(real_first, run(name, lines, seconds=half))
            results[f"floor {name}"] = combined(*floor_halves)

        # Warm the page cache and every server with every active reader's reads.
        run("warm-up", reads["read mix"], seconds=3)
        run("floor warm-up", floor_reads["read mix"], port=FLOOR_PORT, pid=floor.pid, seconds=3)
        for workers, (port, other) in others.items():
            run(f"warm-up, {workers} workers", reads["read mix"], port=port, pid=other.pid, seconds=3)
        for name, lines in reads.items():
            alternated(name, lines, floor_reads[name])
        for workers, (port, other) in others.items():
            results[f"read mix, {workers} workers"] = run(f"read mix, {workers} workers", reads["read mix"], port=port,
                                                          pid=other.pid)
        # Before the writes: the floor's write works store values sealed under a key of its own.
        results.update(measure_accounts(run, csrf, readers, users))
        alternated("write mix", writes, floor_writes)
        for workers, (port, other) in others.items():
            results[f"write mix, {workers} workers"] = run(f"write mix, {workers} workers", writes, port=port,
                                                           pid=other.pid)

    finally:
        for proc in procs:
            stop(proc)
    return results


def report(all_results: dict[int, dict[str, Any]], workers: list[int]) -> None:
    for users, results in all_results.items():
        d = results["dataset"]
        print(f"\n## {users:,} readers: {d['exercise_responses']:,} answers, {d['tool_instances']:,} tool entries, "
              f"{d['bytes'] / 2**30:.2f} GiB; {workers[0]} worker(s)")
        print(f"cold start to first healthy answer: {results['cold_start_s']:.2f} s; idle memory: {results['idle_rss_mib']:.0f} MiB")
        print(f"{'load':<12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU us/req':>11} "
              f"{'floor req/s':>12} {'floor p99':>10} {'floor CPU':>10} {'of floor':>9} {'p99 ratio':>10} {'CPU share':>10}")
        for name in ("outline", "next", "daily-dos", "read mix", "write mix", "sign-in", "export", "import"):
            r = results[name]
            f = results.get(f"floor {name}")
            cells = (f"{f['rps']:.0f}", f"{f['p99']:.2f}", f"{f['cpu_us']:.0f}", f"{r['rps'] / f['rps']:.0%}",
                     f"{r['p99'] / f['p99']:.2f}x", f"{f['cpu_us'] / r['cpu_us']:.0%}") if f else ("",) * 6
            print(f"{name:<12} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>7.0f} {r['cpu_us']:>11.0f} "
                  + " ".join(f"{c:>{w}}" for c, w in zip(cells, (12, 10, 10, 9, 10, 10))))
        if len(workers) > 1:
            print(f"\n{'workers':<8} {'read mix req/s':>15} {'p99 ms':>8} {'CPU us/req':>11} "
                  f"{'write mix req/s':>16} {'p99 ms':>8} {'CPU us/req':>11}")
            for n in workers:
                read = results["read mix"] if n == workers[0] else results[f"read mix, {n} workers"]
                write = results["write mix"] if n == workers[0] else results[f"write mix, {n} workers"]
                print(f"{n:<8} {read['rps']:>15.0f} {read['p99']:>8.2f} {read['cpu_us']:>11.0f} "
                      f"{write['rps']:>16.0f} {write['p99']:>8.2f} {write['cpu_us']:>11.0f}")
    sizes = sorted(all_results)
    if len(sizes) == 2:
        small, large = (all_results[s] for s in sizes)
        print(f"\nlatency at {sizes[1]:,} against {sizes[0]:,} readers (p50 / p99):")
        for name in ("outline", "next", "daily-dos", "read mix", "write mix"):
            print(f"  {name:<10} {large[name]['p50'] / small[name]['p50']:.2f}x / {large[name]['p99'] / small[name]['p99']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--active", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--data", default=tempfile.gettempdir(), help="where datasets are built and kept")
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="serve with each number of workers; the first gets every load, the others the mixes")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="dreamtree-load-"))
    try:
        results = {users: measure_size(users, args, work) for users in args.users}
    except NotAllAnswered as failed:
        sys.exit(f"stopped: {failed}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, args.workers)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
