"""The two storage engines side by side: sqlite (one file) and d1 (the D1 Worker under local
`wrangler dev`), the same readers and the same data, measured in one run.

    .venv/bin/python bench/engines.py [--users 2000] [--seconds 10] [--connections 16 64]

1. The data. bench/dataset.py builds N readers, every one sealed under a real data key and
   holding a session cookie; `dreamtree export-d1` dumps it; the same dump goes into both:
   - sqlite: `dreamtree import-d1 --db FILE dump.sql` (a new file);
   - d1: `wrangler dev` on a fresh `--persist-to` directory, and the dump's statements sent
     through the d1 engine itself (`D1Engine.batch`: write batches of at most 1,000 statements
     and 4 MB, through the Worker's POST /batch into D1). `wrangler d1 execute --local --file
     dump.sql` loads the same file into the same place, but took 5 minutes for 2,000 readers
     where the engine takes about 15 s.
   Every table's row count is compared on both. Just before each engine is served, every
   session is marked as seen now, so no request of the run owes the session's touch (a write
   that the session gate adds at most every 5 minutes per session; docs/engines.md).
2. Each engine is served by `dreamtree serve --engine sqlite|d1 --no-rate-limits` (through
   bench/engines_serve.py: the same command with counters on the engine), one granian worker,
   its event loop on the last core (`--cpu auto`), access lines on as deployed; wrk runs on the
   other cores, wrangler wherever the scheduler puts it. Per engine, each request round-robin
   over all readers (bench/mix.lua):
   - one request at a time (wrk -c1): the latency without queueing;
   - 16 and 64 connections: the outline (GET /api/workbook), the next exercise (GET
     /api/workbook/next), Daily Dos (GET /api/daily-dos), each alone, then the write mix
     (edit an answer, add a tool entry) as bench/load.py runs it;
   - per request answered: batches sent (read / write) and database calls (d1: HTTP requests
     to the Worker; sqlite: jobs handed to a connection's thread), each request's numbers
     kept (so the maximum is exact), the time spent awaiting those calls, the app's CPU (its
     process tree, user + system) and wrangler's (node and workerd).
3. Where d1's time goes, with the app stopped, one call at a time with a kept-alive httpx
   client (the app's own HTTP client), the kinds of call taken in turn over five rounds: the
   Worker answering without D1 (POST /nothing: 404), a trivial batch (`SELECT 1`), and each
   endpoint's own read batch as the app sent it, with wrangler's CPU per call; the same
   statements in plain sqlite3 on the sqlite engine's file; the app's side of a round trip
   (`D1Engine.batch` in this process: its CPU per call); and the Worker alone under wrk at
   16 and 64 connections, with `SELECT 1` and with the outline's batch.

Local numbers: wrangler dev runs the Worker and D1's SQLite on this machine, sharing its two
cores with the app and wrk. It has none of Cloudflare's network between the app and the
Worker, nor between the Worker and D1, and no read replicas (bench/README.md says what that
means for production).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import PY, ROOT, parse_wrk, wait_healthy  # noqa: E402
from dataset import ensure  # noqa: E402

from app.db.d1_engine import D1Engine, encode_batch  # noqa: E402
from app.db.engine import Stmt  # noqa: E402
from app.timeutil import now_iso  # noqa: E402

COMPAT = ROOT / "wrangler-compat"
WRANGLER = COMPAT / "node_modules" / ".bin" / "wrangler"
WRANGLER_ENV = {"CI": "true", "WRANGLER_SEND_METRICS": "false", "WRANGLER_SEND_ERROR_REPORTS": "false",
                "WRANGLER_HIDE_BANNER": "true", "FORCE_COLOR": "0", "NO_COLOR": "1"}
CORES = sorted(os.sched_getaffinity(0))
CLIENT = ["taskset", "-c", ",".join(map(str, CORES[:-1]))] if len(CORES) > 1 and shutil.which("taskset") else []
ANSWER = json.dumps({"response": {"text": "Edited during the engines benchmark: the food bank years taught me planning."}})
TOOL_ENTRY = json.dumps({"content": {"title": "Engines benchmark list", "items": ["one", "two", "three"]}})
READS = {"outline": "/api/workbook", "next": "/api/workbook/next", "daily-dos": "/api/daily-dos"}
LOADS = [*READS, "write mix"]
BATCH_STATEMENTS, BATCH_BYTES = 1000, 4_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- processes and their CPU --------------------------------------------------------------------


def tree(pid: int) -> Iterator[int]:
    todo = [pid]
    while todo:
        current = todo.pop()
        yield current
        try:
            with open(f"/proc/{current}/task/{current}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue


def cpu_by_name(pid: int) -> Counter[str]:
    """CPU seconds (user + system) so far of a process and its descendants, by command name."""
    tick = os.sysconf("SC_CLK_TCK")
    found: Counter[str] = Counter()
    for current in tree(pid):
        try:
            with open(f"/proc/{current}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
            fields = rest.split()
            found[head.split("(", 1)[1]] += (int(fields[11]) + int(fields[12])) / tick
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class Worker:
    """The D1 Worker under `wrangler dev`, as docs/d1.md runs it."""

    proc: subprocess.Popen[bytes]
    url: str
    token: str


@contextmanager
def wrangler_dev(state: Path, scratch: Path) -> Iterator[Worker]:
    token, port = secrets.token_hex(32), free_port()
    proc = subprocess.Popen(
        [str(WRANGLER), "dev", "--ip", "127.0.0.1", "--port", str(port), "--var", f"DREAMTREE_D1_TOKEN:{token}",
         "--persist-to", str(state), "--log-level", "warn"],
        cwd=COMPAT, env={**os.environ, **WRANGLER_ENV, "WRANGLER_LOG_PATH": str(scratch / "logs"),
                         "WRANGLER_REGISTRY_PATH": str(scratch / "registry"), "WRANGLER_CI_DISABLE_CONFIG_WATCHING": "true"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.post(f"http://127.0.0.1:{port}/batch", content=b"{}", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("wrangler dev did not start") from None
                time.sleep(0.2)
        yield Worker(proc, f"http://127.0.0.1:{port}", token)
    finally:
        stop(proc, signal.SIGTERM)


# --- the data ------------------------------------------------------------------------------------


def dump_statements(dump: Path) -> Iterator[str]:
    """The statements of a `dreamtree export-d1` file, each whole (CREATE TABLE spans lines)."""
    lines: list[str] = []
    with dump.open(encoding="utf-8") as f:
        for line in f:
            lines.append(line)
            if sqlite3.complete_statement("".join(lines)):
                yield "".join(lines).strip()
                lines = []
    assert not "".join(lines).strip(), "the dump ends inside a statement"


def table_counts_sql(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table' "
                                            "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name")]
    return [f'SELECT count(*) AS n, \'{name}\' AS t FROM "{name}"' for name in names]


def sqlite_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {t: n for q in table_counts_sql(db) for n, t in conn.execute(q)}


async def load_d1(worker: Worker, dump: Path, db: Path) -> dict[str, Any]:
    """The dump through the d1 engine; then every table's row count, read through it too."""
    engine = D1Engine(worker.url, worker.token, timeout=300)
    try:
        await engine.open()
        started, batch, size, batches, statements = time.perf_counter(), [], 0, 0, 0
        for sql in dump_statements(dump):
            if batch and (len(batch) >= BATCH_STATEMENTS or size + len(sql) > BATCH_BYTES):
                await engine.batch(batch, write=True)
                batches, batch, size = batches + 1, [], 0
            batch.append(Stmt(sql))
            size += len(sql)
            statements += 1
        if batch:
            await engine.batch(batch, write=True)
            batches += 1
        seconds = time.perf_counter() - started
        results = await engine.batch([Stmt(q) for q in table_counts_sql(db)], write=False)
        counts = {r.one()["t"]: r.one()["n"] for r in results}  # type: ignore[index]
    finally:
        await engine.close()
    return {"statements": statements, "batches": batches, "seconds": seconds, "counts": counts}


async def mark_sessions_seen_d1(worker: Worker) -> None:
    engine = D1Engine(worker.url, worker.token)
    try:
        await engine.batch([Stmt("UPDATE sessions SET last_seen_at = ?", (now_iso(),))], write=True)
    finally:
        await engine.close()


def mark_sessions_seen_sqlite(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE sessions SET last_seen_at = ?", (now_iso(),))


# --- the app under load ----------------------------------------------------------------------------


@dataclass
class App:
    engine: str
    proc: subprocess.Popen[bytes]
    port: int
    probe: Path
    wrangler: Worker | None
    csrf: str = ""
    captured: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def probe_totals(app: App) -> dict[str, Any]:
    """The counters of bench/engines_serve.py, added up over the server's processes: the /api
    requests answered, the sums of their batches, calls and time awaiting the database, and
    how many requests had which shape."""
    totals: dict[str, Any] = {"requests": 0, "sums": Counter(), "shapes": Counter()}
    for path in app.probe.parent.glob(f"{app.probe.name}.*[0-9].json"):
        data = json.loads(path.read_text())
        totals["requests"] += data["requests"]
        totals["sums"].update(data["sums"])
        totals["shapes"].update(data["shapes"])
    return totals


def settled(app: App) -> dict[str, Any]:
    """The totals once the app has answered what was still in flight when wrk stopped."""
    last = probe_totals(app)
    for _ in range(60):
        time.sleep(0.5)
        now = probe_totals(app)
        if now["requests"] == last["requests"]:
            return now
        last = now
    return last


def captured(app: App) -> list[dict[str, Any]]:
    """The batches granian's worker sent first (the server's own process only migrates and seeds)."""
    found: list[dict[str, Any]] = []
    for path in app.probe.parent.glob(f"{app.probe.name}.*.captured.json"):
        if path.name != f"{app.probe.name}.{app.proc.pid}.captured.json":
            found += json.loads(path.read_text())
    return found


@contextmanager
def serve(engine: str, db: Path, work: Path, secret: str, worker: Worker | None) -> Iterator[App]:
    port = free_port()
    probe = work / f"probe-{engine}"
    for stale in work.glob(f"{probe.name}.*"):
        stale.unlink()
    env = {"DREAMTREE_SECRET": secret, "DREAMTREE_ENGINE": engine, "DREAMTREE_BENCH_PROBE": str(probe)}
    if worker is not None:
        env |= {"DREAMTREE_D1_URL": worker.url, "DREAMTREE_D1_TOKEN": worker.token}
    proc = subprocess.Popen(
        [PY, str(HERE / "engines_serve.py"), "serve", "--engine", engine, "--db", str(db), "--port", str(port),
         "--no-rate-limits"],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        wait_healthy(port, timeout=120)
        yield App(engine, proc, port, probe, worker)
    finally:
        stop(proc)


def http(app: App, method: str, path: str, *, cookie: str = "", body: str | None = None) -> tuple[int, dict[str, str]]:
    headers = {"Cookie": cookie, "x-csrftoken": app.csrf}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(f"http://127.0.0.1:{app.port}{path}", data=None if body is None else body.encode(),
                                     method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            r.read()
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)


def wrk(port: int, script: list[str], *, connections: int, seconds: float, work: Path) -> dict[str, float]:
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        [*CLIENT, "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s",
         *script[:1], f"http://127.0.0.1:{port}", "--", *script[1:]],
        capture_output=True, text=True, check=True).stdout
    result = parse_wrk(out)
    result["errors"] += result.pop("socket_errors")
    mean = re.search(r"Latency\s+([\d.]+)(us|ms|s)\b", out)
    assert mean, out
    value, unit = float(mean.group(1)), mean.group(2)
    result["mean"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return result


def measure(app: App, lines: list[tuple[str, str, str, str]], *, connections: int, seconds: float,
            work: Path) -> dict[str, Any]:
    """wrk over a request list, with what the engine and the processes did per request."""
    listing = work / "requests.tsv"
    listing.write_text("".join("\t".join(line) + "\n" for line in lines))
    before, app_cpu = settled(app), sum(cpu_by_name(app.proc.pid).values())
    wrangler_cpu = cpu_by_name(app.wrangler.proc.pid) if app.wrangler else Counter()
    result: dict[str, Any] = wrk(app.port, ["-s" + str(HERE / "mix.lua"), str(listing), app.csrf],
                                 connections=connections, seconds=seconds, work=work)
    after = settled(app)
    n = max(1, after["requests"] - before["requests"])  # answered by the app
    result["answered"] = n
    result["app_cpu_us"] = 1e6 * (sum(cpu_by_name(app.proc.pid).values()) - app_cpu) / n
    if app.wrangler:
        spent = cpu_by_name(app.wrangler.proc.pid)
        spent.subtract(wrangler_cpu)
        result["wrangler_cpu_us"] = {name: 1e6 * s / n for name, s in spent.items() if s > 0}
    sums = after["sums"]
    sums.subtract(before["sums"])
    result["per_request"] = {k: v / n for k, v in sums.items() if k != "awaiting s"}
    result["awaiting_ms"] = 1e3 * sums["awaiting s"] / n
    shapes = after["shapes"]
    shapes.subtract(before["shapes"])
    result["shapes"] = {k: v for k, v in shapes.items() if v}
    return result


def run_engine(app: App, readers: list[dict[str, str]], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    _, headers = http(app, "GET", "/healthz")
    cookie_header = headers.get("set-cookie") or headers.get("Set-Cookie") or ""
    app.csrf = cookie_header.split("csrftoken=", 1)[1].split(";", 1)[0]
    jar = {r["user_id"]: f"dt_session={r['cookie']}; csrftoken={app.csrf}" for r in readers}
    lines = {name: [("GET", path, jar[r["user_id"]], "") for r in readers] for name, path in READS.items()}
    lines["write mix"] = [line for r in readers for line in (
        ("PUT", f"/api/exercises/{r['last_answered']}/response", jar[r["user_id"]], ANSWER),
        ("POST", "/api/tools/list-builder/instances", jar[r["user_id"]], TOOL_ENTRY))]
    results: dict[str, Any] = {"load_before": os.getloadavg()}

    # Each endpoint once, as the first reader: the batches it sends (replayed in part 3).
    first = readers[0]
    for name, (method, path, body) in {
        **{name: ("GET", path, None) for name, path in READS.items()},
        "edit an answer": ("PUT", f"/api/exercises/{first['last_answered']}/response", ANSWER),
        "add a tool entry": ("POST", "/api/tools/list-builder/instances", TOOL_ENTRY),
    }.items():
        time.sleep(0.3)  # the probe has written what came before
        seen = len(captured(app))
        status, _ = http(app, method, path, cookie=jar[first["user_id"]], body=body)
        assert status in (200, 201), (name, status)
        time.sleep(0.3)
        app.captured[name] = captured(app)[seen:]

    mixed = [line for trio in zip(*(lines[name] for name in READS)) for line in trio]
    measure(app, mixed, connections=16, seconds=3, work=work)  # warm-up: caches, the JIT, connections
    one_at_a_time = max(3.0, args.seconds / 2)
    for name in READS:
        results[f"{name} c1"] = measure(app, lines[name], connections=1, seconds=one_at_a_time, work=work)
    for connections in args.connections:
        for name in READS:
            results[f"{name} c{connections}"] = measure(app, lines[name], connections=connections,
                                                        seconds=args.seconds, work=work)
    results["write mix c1"] = measure(app, lines["write mix"], connections=1, seconds=one_at_a_time, work=work)
    for connections in args.connections:
        results[f"write mix c{connections}"] = measure(app, lines["write mix"], connections=connections,
                                                       seconds=args.seconds, work=work)
    results["load_after"] = os.getloadavg()
    results["captured"] = app.captured
    return results


# --- where d1's time goes -------------------------------------------------------------------------


ROUNDS = 5


def timings(calls: dict[str, Callable[[], Any]], n: int, cpu_of: int | None = None) -> dict[str, dict[str, Any]]:
    """Each call `n` times, one at a time, in ROUNDS rounds that take the calls in turn (so a
    change in the machine's load falls on all of them alike): latency in ms, and with
    `cpu_of` the CPU per call of that process tree (µs, by command name)."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, Counter[str]] = {name: Counter() for name in calls}
    for call in calls.values():
        for _ in range(30):
            call()
    for _ in range(ROUNDS):
        for name, call in calls.items():
            before = cpu_by_name(cpu_of) if cpu_of else Counter()
            for _ in range(max(1, n // ROUNDS)):
                started = time.perf_counter()
                call()
                samples[name].append(time.perf_counter() - started)
            if cpu_of:
                spent = cpu_by_name(cpu_of)
                spent.subtract(before)
                cpu[name].update(spent)
    found: dict[str, dict[str, Any]] = {}
    for name, taken in samples.items():
        taken.sort()
        found[name] = {"p50": 1e3 * taken[len(taken) // 2], "p99": 1e3 * taken[min(len(taken) - 1, int(0.99 * len(taken)))],
                       "mean": 1e3 * statistics.fmean(taken)}
        if cpu_of:
            found[name]["wrangler_cpu_us"] = {k: 1e6 * v / len(taken) for k, v in cpu[name].items() if v > 0}
    return found


def read_batches(captured: dict[str, list[dict[str, Any]]]) -> dict[str, list[Stmt]]:
    """Each endpoint's read batch (the first one it sent: the session gate's statement with
    the endpoint's own reads)."""
    found = {}
    for name, batches in captured.items():
        reads = [b for b in batches if b["mode"] == "read"]
        assert reads, name
        found[name] = [Stmt(sql, tuple(params)) for sql, params in reads[0]["statements"]]
    return found


async def client_cost(worker: Worker, outline: list[Stmt], calls: int) -> dict[str, dict[str, float]]:
    """The app's side of one round trip: `D1Engine.batch` in this process (the engine's encoding,
    httpx, decoding the rows), its CPU per call and the wall time."""
    engine = D1Engine(worker.url, worker.token)
    found = {}
    try:
        await engine.open()
        for name, statements in {"SELECT 1": [Stmt("SELECT 1 AS one")], "outline": outline}.items():
            for _ in range(30):
                await engine.batch(statements, write=False)
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(calls):
                await engine.batch(statements, write=False)
            found[name] = {"cpu_us": 1e6 * (time.process_time() - cpu) / calls,
                           "mean": 1e3 * (time.perf_counter() - wall) / calls}
    finally:
        await engine.close()
    return found


def direct(worker: Worker, batches: dict[str, list[Stmt]], db: Path, args: argparse.Namespace,
           work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    client = httpx.Client(headers={"Authorization": f"Bearer {worker.token}", "Content-Type": "application/json"},
                          timeout=30, trust_env=False)
    trivial = encode_batch([Stmt("SELECT 1 AS one")], write=False, bookmark=None)

    def post(path: str, body: bytes, expect: int = 200) -> Callable[[], None]:
        def call() -> None:
            response = client.post(f"{worker.url}{path}", content=body)
            assert response.status_code == expect, response.text[:300]
        return call

    bodies = {name: encode_batch(statements, write=False, bookmark=None) for name, statements in batches.items()}
    calls = {"worker, no D1 (404)": post("/nothing", b"{}", 404), "SELECT 1": post("/batch", trivial),
             **{name: post("/batch", body) for name, body in bodies.items()}}
    results.update(timings(calls, args.calls, cpu_of=worker.proc.pid))
    for name, body in bodies.items():
        results[name]["statements"] = len(batches[name])
        results[name]["request_bytes"] = len(body)
        results[name]["answer_bytes"] = len(client.post(f"{worker.url}/batch", content=body).content)
    client.close()

    # The same statements in plain sqlite3, on the sqlite engine's file.
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None) as conn:
        def run(statements: list[Stmt]) -> Callable[[], None]:
            def call() -> None:
                conn.execute("BEGIN")
                for s in statements:
                    conn.execute(s.sql, s.params).fetchall()
                conn.execute("COMMIT")
            return call

        plain = timings({name: run(statements) for name, statements in batches.items()}, args.calls)
        results.update({f"sqlite3 {name}": found for name, found in plain.items()})

    results["client"] = anyio.run(client_cost, worker, batches["outline"], args.calls)

    # The Worker alone under load: SELECT 1 and the outline's batch.
    for name, body in {"SELECT 1": trivial, "outline": bodies["outline"]}.items():
        path = work / "body.json"
        path.write_bytes(body)
        for connections in args.connections:
            before = cpu_by_name(worker.proc.pid)
            r: dict[str, Any] = wrk(int(worker.url.rsplit(":", 1)[1]),
                                    ["-s" + str(HERE / "engines_worker.lua"), str(path), worker.token],
                                    connections=connections, seconds=args.seconds / 2, work=work)
            spent = cpu_by_name(worker.proc.pid)
            spent.subtract(before)
            r["wrangler_cpu_us"] = {k: 1e6 * v / max(1.0, r["requests"]) for k, v in spent.items() if v > 0}
            results[f"worker alone {name} c{connections}"] = r
    return results


# --- report ---------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    wrangler = json.loads((COMPAT / "node_modules" / "wrangler" / "package.json").read_text())["version"]
    workerd_pkg = COMPAT / "node_modules" / "@cloudflare" / "workerd-linux-64" / "package.json"
    workerd = json.loads(workerd_pkg.read_text())["version"] if workerd_pkg.exists() else "?"
    from importlib.metadata import version

    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": f"{model}, {len(CORES)} cores",
            "memory": f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB",
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "litestar": version("litestar"), "granian": version("granian"), "wrangler": wrangler, "workerd": workerd}


def cpu_text(cpu: dict[str, float]) -> str:
    return f"{sum(cpu.values()):,.0f} ({', '.join(f'{k} {v:,.0f}' for k, v in sorted(cpu.items()) if v >= 1)})"


def d1_round_trips_hold(all_results: dict[str, Any], levels: tuple[int, ...]) -> bool:
    """The d1 engine's promise (docs/engines.md): one Worker request per read endpoint, at most
    two per write, for every request answered."""
    for name in LOADS:
        for c in levels:
            for shape in all_results["d1"][f"{name} c{c}"]["shapes"]:
                reads, writes = map(int, re.fullmatch(r"\S+ \d+r\d+w calls (\d+)r(\d+)w", shape).groups())  # type: ignore[union-attr]
                if (name in READS and (reads, writes) != (1, 0)) or reads + writes > 2:
                    return False
    return True


def _report_machine_and_data(all_results: dict[str, Any]) -> None:
    m = all_results["machine"]
    print(f"\n{m['date']}; {m['cpu']}, {m['memory']}; Python {m['python']}, SQLite {m['sqlite']}, Litestar "
          f"{m['litestar']}, granian {m['granian']}, wrangler {m['wrangler']} (workerd {m['workerd']})")
    d = all_results["data"]
    print(f"data: {d['counts']['users']:,} readers, {d['counts']['exercise_responses']:,} answers, "
          f"{d['counts']['tool_instances']:,} tool entries, {sum(d['counts'].values()):,} rows in "
          f"{len(d['counts'])} tables; dump {d['dump_bytes'] / 2**20:.1f} MiB, {d['d1']['statements']:,} statements; "
          f"into sqlite {d['sqlite_seconds']:.1f} s (import-d1), into D1 {d['d1']['seconds']:.1f} s "
          f"({d['d1']['batches']} write batches through the engine); row counts equal: {d['same_rows']}")
    for engine in ("sqlite", "d1"):
        r = all_results[engine]
        print(f"{engine}: load average {r['load_before'][0]:.1f} before, {r['load_after'][0]:.1f} after")


def _report_loads(all_results: dict[str, Any], levels: tuple[int, ...]) -> None:

    print("\n| load | connections | sqlite req/s | p50 ms | p99 ms | d1 req/s | p50 ms | p99 ms | d1 ÷ sqlite req/s | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in LOADS:
        for c in levels:
            s, d1 = all_results["sqlite"][f"{name} c{c}"], all_results["d1"][f"{name} c{c}"]
            print(f"| {name} | {c} | {s['rps']:,.0f} | {s['p50']:.2f} | {s['p99']:.2f} | {d1['rps']:,.0f} | "
                  f"{d1['p50']:.2f} | {d1['p99']:.2f} | {d1['rps'] / s['rps']:.2f} | {s['errors'] + d1['errors']:.0f} |")


def _report_round_trips(all_results: dict[str, Any], levels: tuple[int, ...]) -> None:
    print("\nBatches and database calls per request, every request answered in the runs above "
          "(METHOD reads r writes w; sqlite: jobs handed to a connection's thread; d1: HTTP requests to the Worker):")
    print("| load | sqlite | d1 |")
    print("|---|---|---|")
    for name in LOADS:
        cells = []
        for engine in ("sqlite", "d1"):
            shapes: Counter[str] = Counter()
            for c in levels:
                shapes.update(all_results[engine][f"{name} c{c}"]["shapes"])
            cells.append("; ".join(f"{shape}: {count:,}" for shape, count in sorted(shapes.items())))
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    print(f"d1: every read one HTTP request to the Worker, every write at most two: {d1_round_trips_hold(all_results, levels)}")


def _report_cpu(all_results: dict[str, Any], args: argparse.Namespace) -> None:
    c = args.connections[-1]
    print(f"\nPer request at {c} connections:")
    print("| load | sqlite app CPU µs | d1 app CPU µs | wrangler CPU µs | d1 mean ms | of which awaiting the Worker |")
    print("|---|---|---|---|---|---|")
    for name in LOADS:
        s, d1 = all_results["sqlite"][f"{name} c{c}"], all_results["d1"][f"{name} c{c}"]
        print(f"| {name} | {s['app_cpu_us']:,.0f} | {d1['app_cpu_us']:,.0f} | {cpu_text(d1['wrangler_cpu_us'])} | "
              f"{d1['mean']:.1f} | {d1['awaiting_ms']:.1f} |")

    print("\nOne request at a time:")
    print("| load | sqlite mean ms | sqlite app CPU µs | d1 mean ms | awaiting the Worker | the rest | d1 app CPU µs | "
          "wrangler CPU µs |")
    print("|---|---|---|---|---|---|---|---|")
    for name in LOADS:
        s, d1 = all_results["sqlite"][f"{name} c1"], all_results["d1"][f"{name} c1"]
        print(f"| {name} | {s['mean']:.2f} | {s['app_cpu_us']:,.0f} | {d1['mean']:.2f} | {d1['awaiting_ms']:.2f} | "
              f"{d1['mean'] - d1['awaiting_ms']:.2f} | {d1['app_cpu_us']:,.0f} | {cpu_text(d1['wrangler_cpu_us'])} |")


def _report_direct(all_results: dict[str, Any], args: argparse.Namespace) -> None:
    w = all_results["direct"]
    print("\nDirectly, one call at a time (mean / p50 / p99 ms):")
    print("| call | statements | bytes sent / answered | to the Worker (httpx) | wrangler CPU µs per call | "
          "the same statements in plain sqlite3 |")
    print("|---|---|---|---|---|---|")
    for name in ("worker, no D1 (404)", "SELECT 1"):
        x = w[name]
        print(f"| {name} | | | {x['mean']:.2f} / {x['p50']:.2f} / {x['p99']:.2f} | {cpu_text(x['wrangler_cpu_us'])} | |")
    for name in all_results["d1"]["captured"]:
        x, q = w[name], w[f"sqlite3 {name}"]
        print(f"| {name} (its read batch) | {x['statements']} | {x['request_bytes']:,} / {x['answer_bytes']:,} | "
              f"{x['mean']:.2f} / {x['p50']:.2f} / {x['p99']:.2f} | {cpu_text(x['wrangler_cpu_us'])} | "
              f"{q['mean']:.3f} / {q['p50']:.3f} / {q['p99']:.3f} |")
    print("\nThe app's side of a round trip (D1Engine.batch in one process, one call at a time):")
    for name, x in w["client"].items():
        print(f"- {name}: {x['cpu_us']:,.0f} µs CPU per call, {x['mean']:.2f} ms mean")
    print("\nThe Worker alone under wrk:")
    print("| batch | connections | req/s | p50 ms | p99 ms | wrangler CPU µs/req |")
    print("|---|---|---|---|---|---|")
    for name in ("SELECT 1", "outline"):
        for c in args.connections:
            x = w[f"worker alone {name} c{c}"]
            print(f"| {name} | {c} | {x['rps']:,.0f} | {x['p50']:.2f} | {x['p99']:.2f} | {cpu_text(x['wrangler_cpu_us'])} |")


def report(all_results: dict[str, Any], args: argparse.Namespace) -> None:
    levels = (1, *args.connections)
    _report_machine_and_data(all_results)
    _report_loads(all_results, levels)
    _report_round_trips(all_results, levels)
    _report_cpu(all_results, args)
    _report_direct(all_results, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2_000, help="readers, all with sessions (default 2,000)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per load (one at a time: half)")
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--calls", type=int, default=300, help="calls per direct timing")
    parser.add_argument("--data", default=tempfile.gettempdir(), help="where the dataset is built and kept")
    parser.add_argument("--keep", type=Path, help="keep the run's files here (the D1 state, the sqlite file)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (apt-get install wrk)")
    if not WRANGLER.exists():
        sys.exit("wrangler is needed: (cd wrangler-compat && npm ci)")
    work = args.keep or Path(tempfile.mkdtemp(prefix="dreamtree-engines-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        results: dict[str, Any] = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}}
        data_dir = Path(args.data) / f"dreamtree-engines-{args.users}"
        ensure(data_dir, args.users, args.users)
        active = json.loads((data_dir / "active.json").read_text())
        readers, secret = active["readers"], active["secret"]
        dump, db = work / "dump.sql", work / "sqlite.db"
        for path in (dump, db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            path.unlink(missing_ok=True)
        cli = [PY, "-m", "app.cli"]
        subprocess.run([*cli, "export-d1", "--db", str(data_dir / "dreamtree.db"), str(dump)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        started = time.perf_counter()
        subprocess.run([*cli, "import-d1", "--db", str(db), str(dump)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        sqlite_seconds = time.perf_counter() - started
        shutil.rmtree(work / "d1-state", ignore_errors=True)
        with wrangler_dev(work / "d1-state", work / "wrangler") as worker:
            d1 = anyio.run(load_d1, worker, dump, db)
            counts = sqlite_counts(db)
            results["data"] = {"dump_bytes": dump.stat().st_size, "sqlite_seconds": sqlite_seconds, "d1": d1,
                               "counts": counts, "same_rows": counts == d1["counts"]}
            print(f"data loaded: sqlite {sqlite_seconds:.1f} s, D1 {d1['seconds']:.1f} s, same rows: "
                  f"{counts == d1['counts']}", flush=True)
            if counts != d1["counts"]:
                sys.exit(f"row counts differ: sqlite {counts}, d1 {d1['counts']}")

            mark_sessions_seen_sqlite(db)
            with serve("sqlite", db, work, secret, None) as app:
                results["sqlite"] = run_engine(app, readers, args, work)
            print(f"sqlite done (load average {os.getloadavg()[0]:.1f})", flush=True)
            anyio.run(mark_sessions_seen_d1, worker)
            with serve("d1", db, work, secret, worker) as app:
                results["d1"] = run_engine(app, readers, args, work)
            print(f"d1 done (load average {os.getloadavg()[0]:.1f})", flush=True)
            results["direct"] = direct(worker, read_batches(results["d1"]["captured"]), db, args, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
