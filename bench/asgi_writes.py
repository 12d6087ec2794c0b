"""The write mix's own cost per request, without sockets: the app's ASGI callable in a loop.

    .venv/bin/python bench/asgi_writes.py [--users 10000] [--requests 2000] [--rounds 5]
                                          [--tree DIR ...] [--data DIR] [--instructions]

The two writes of bench/load.py's write mix, each measured alone: editing a reader's last
answer (`PUT /api/exercises/{id}/response`) and adding a list-builder entry (`POST
/api/tools/list-builder/instances`), as a browser sends them (session and CSRF cookies,
`x-csrftoken`, `application/json`), `--requests` of each from 8 concurrent tasks, round-robin
over the dataset's active readers. The session cookies are opened once before measuring (the
app keeps recently seen cookies opened), so the steady state is what is measured. Then the
same two writes as bench/floor.py runs them: the domain's work through `Database.change`, with
a value sealed once at start, no HTTP at all ("floor answer", "floor tool").

Printed: the process's CPU (user + system, the database threads included) per request, in µs.
`--tree DIR` (repeatable) measures other checkouts in the same run, as bench/asgi_loop.py
does: each round runs every tree once, in turn, in a subprocess of its own, each on its own
copy of the database; reported per tree: the median over the rounds.

`--instructions` counts instructions per request instead, with valgrind's callgrind (as
bench/instructions.py does for the reads): one process per checkout under callgrind, the
instrumentation switched on only around each write's measured requests (every thread of the
process, nothing else). CPU time moves by 15% between runs on a shared machine, instruction
counts by about 1% (the writes change the file), so this is the measure for a change of a
few per cent. Use `--requests 300`; needs `apt-get install valgrind`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from common import callgrind_counts, cpu_rounds, round_arguments  # bench/ is the script's own directory
from floor import ANSWER, TOOL_ENTRY

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TASKS = 8
COUNTING = False  # this process runs under callgrind: around each measured part, READY and DONE on stdout
NAMES = ("answer", "tool", "floor answer", "floor tool")


def _scope(method: str, path: str, body: bytes, cookie: str, token: str) -> dict[str, Any]:
    """A browser's write: its session and CSRF cookies, the CSRF header, a JSON body."""
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
            "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()), (b"x-csrftoken", token.encode()),
                        (b"cookie", f"dt_session={cookie}; csrftoken={token}".encode())]}


async def _timed(one: Callable[[int], Awaitable[int]], requests: int, warm: int) -> float:
    """CPU µs per request of `requests` calls of `one` from TASKS tasks, after `warm` calls per
    task; every call must answer 2xx."""
    per_task = requests // TASKS
    statuses: list[int] = []

    async def loop(start: int, count: int) -> None:
        for n in range(start, start + count):
            statuses.append(await one(n))

    await asyncio.gather(*(loop(t * warm, warm) for t in range(TASKS)))
    statuses.clear()
    if COUNTING:
        print("READY", flush=True)
        sys.stdin.readline()
    cpu = time.process_time()
    await asyncio.gather(*(loop(t * per_task, per_task) for t in range(TASKS)))
    cpu = time.process_time() - cpu
    if COUNTING:
        print("DONE", flush=True)
        sys.stdin.readline()
    bad = [s for s in statuses if not 200 <= s < 300]
    if bad:
        raise SystemExit(f"{len(bad)} answers were not 2xx (first: {bad[0]})")
    return 1e6 * cpu / len(statuses)


async def _measure(db: Path, secret: str, readers: list[dict[str, Any]], token: str,
                   requests: int) -> dict[str, float]:
    from app.config import Settings
    from app.domain import keys
    from app.domain.sessions import ServerKeys, principal_of
    from app.http.app import create_app

    app = create_app(Settings(db_path=db, secret_hex=secret, rate_limits=False, argon2="fast"))
    server = ServerKeys.derive(bytes.fromhex(secret), argon2=keys.Argon2Params.FAST)
    answer_body = json.dumps({"response": ANSWER}).encode()
    tool_body = json.dumps({"content": TOOL_ENTRY}).encode()
    writes: dict[str, Callable[[dict[str, Any]], tuple[str, str, bytes]]] = {
        "answer": lambda r: ("PUT", f"/api/exercises/{r['last_answered']}/response", answer_body),
        "tool": lambda r: ("POST", "/api/tools/list-builder/instances", tool_body),
    }
    results: dict[str, float] = {}
    async with app.lifespan():
        # The steady state: every reader's cookie already opened (and kept), as after their first request.
        for r in readers:
            principal_of(server, r["cookie"])
        for name, write in writes.items():

            async def one(n: int, write: Callable[[dict[str, Any]], tuple[str, str, bytes]] = write) -> int:
                reader = readers[n % len(readers)]
                method, path, body = write(reader)
                status: list[int] = []

                async def receive() -> dict[str, Any]:
                    return {"type": "http.request", "body": body, "more_body": False}

                async def send(message: Any) -> None:
                    if message["type"] == "http.response.start":
                        status.append(message["status"])

                await app(_scope(method, path, body, reader["cookie"], token), receive, send)  # type: ignore[arg-type]
                return status[0]

            # The warm-up reaches every reader, as a steady state would have: their sessions'
            # last_seen_at is fresh (the gate moves it at most every 5 minutes, with a write of its
            # own) and their data key has its cipher and its hashing key (kept with the opened cookie).
            results[name] = await _timed(one, requests, len(readers) // TASKS)
        results.update(await _floor(app.state.db, server, readers, requests))
    return results


async def _floor(engine: Any, server: Any, readers: list[dict[str, Any]], requests: int) -> dict[str, float]:
    """The floor's writes (bench/floor.py's FloorWrites): the same works, values sealed and
    hashed once at start, no HTTP."""
    from floor import FloorWrites

    from app import timeutil
    from app.domain import keys, workbook
    from app.domain.sessions import Principal, principal_of

    dek = keys.new_data_key()
    writes = FloorWrites(dek)
    sessions = [principal_of(server, r["cookie"]).session_id for r in readers]

    def principal(n: int) -> Principal:
        return Principal(readers[n % len(readers)]["user_id"], sessions[n % len(readers)], dek)

    async def floor_answer(n: int) -> int:
        reader, stamp = principal(n), timeutil.now_iso()
        await engine.change(lambda: writes.answer(reader, readers[n % len(readers)]["last_answered"], stamp), reader)
        return 200

    async def floor_tool(n: int) -> int:
        reader, stamp, instance_id = principal(n), timeutil.now_iso(), str(uuid.uuid4())
        await engine.change(lambda: writes.tool(reader, instance_id, stamp), reader)
        return 201

    real_keys = workbook.keys  # type: ignore[attr-defined]
    workbook.keys = writes.presealed  # type: ignore[attr-defined, assignment]  # this process only, after the HTTP writes
    try:
        return {"floor answer": await _timed(floor_answer, requests, 100),
                "floor tool": await _timed(floor_tool, requests, 100)}
    finally:
        workbook.keys = real_keys  # type: ignore[attr-defined]


def child(args: argparse.Namespace) -> None:
    """One round in this process: print the figures as JSON."""
    global COUNTING
    COUNTING = args.instructions
    sys.stderr = open(os.devnull, "w")  # the access lines
    active = json.loads((Path(args.data) / f"dreamtree-bench-{args.users}" / "active.json").read_text())
    from app.domain import keys
    from app.domain.sessions import ServerKeys
    from app.http.csrf import new_token

    token = new_token(ServerKeys.derive(bytes.fromhex(active["secret"]), argon2=keys.Argon2Params.FAST).csrf)
    print(json.dumps(asyncio.run(_measure(Path(args.db), active["secret"], active["readers"], token, args.requests))))


def main() -> None:
    parser = round_arguments(__doc__, requests=2_000)
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per request with callgrind instead of CPU time (one round)")
    args = parser.parse_args()
    if args.db:
        child(args)
        return
    sys.path.insert(0, str(HERE))
    from dataset import ensure

    ensure(Path(args.data) / f"dreamtree-bench-{args.users}", args.users, args.active)
    trees = [ROOT, *(t.resolve() for t in args.tree)]
    if args.instructions:
        counted(trees, args)
    else:
        cpu_rounds(HERE / "asgi_writes.py", args, trees, NAMES, TASKS)


def count(tree: Path, db: Path, args: argparse.Namespace) -> dict[str, float]:
    """Instructions per request of each part, for one checkout, under callgrind."""
    return callgrind_counts([str(HERE / "asgi_writes.py"), "--users", str(args.users), "--data", args.data,
                             "--requests", str(args.requests), "--db", str(db), "--instructions"],
                            tree, NAMES, args.requests // TASKS * TASKS)


def counted(trees: list[Path], args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="dreamtree-asgi-writes-"))
    rows: list[tuple[Path, dict[str, float]]] = []
    try:
        for n, tree in enumerate(trees):
            shutil.copyfile(Path(args.data) / f"dreamtree-bench-{args.users}" / "dreamtree.db", work / f"{n}.db")
            rows.append((tree, count(tree, work / f"{n}.db", args)))
            print(f"counted {tree}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"instructions per request ({args.requests} requests each, {TASKS} tasks); in brackets: the floor's over "
          "the write's")
    print(f"{'tree':<40} " + " ".join(f"{name:>18}" for name in NAMES))
    for tree, figures in rows:
        cells = [f"{figures[name]:>10,.0f}" + (f" ({figures['floor ' + name] / figures[name]:.0%})"
                                                if name in ("answer", "tool") else "") for name in NAMES]
        print(f"{str(tree)[-40:]:<40} " + " ".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
