"""The app's own cost per request, without sockets: its ASGI callable called in a loop.

    .venv/bin/python bench/asgi_loop.py [--users 10000] [--requests 4000] [--rounds 5]
                                        [--tree DIR ...]

Builds (or reuses) the dataset of bench/dataset.py, copies its file, opens the app
(`create_app`, rate limits off, access lines on and sent to /dev/null) and, for each read
endpoint (outline, next exercise, Daily Dos, /healthz), sends `--requests` requests straight
to the ASGI callable from 8 concurrent tasks, spread round-robin over the active readers.
It prints the process's CPU (user + system, the database threads included) per request, in
µs: what a change to the HTTP layer saves, free of wrk, granian and the network.

`--tree DIR` (repeatable) measures other checkouts of the project (e.g. a `git worktree` of
the commit before a change) in the same run: each round runs every tree once, in turn, in a
subprocess of its own, so a noisy moment of the machine hits them alike. Reported per tree:
the median over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENDPOINTS = {"outline": "/api/workbook", "next": "/api/workbook/next", "daily-dos": "/api/daily-dos",
             "healthz": "/healthz"}
TASKS = 8


async def _measure(db: Path, secret: str, cookies: list[str], requests: int) -> dict[str, float]:
    from app.config import Settings
    from app.http.app import create_app

    app = create_app(Settings(db_path=db, secret_hex=secret, rate_limits=False, argon2="fast"))
    results: dict[str, float] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async with app.lifespan():
        for name, path in ENDPOINTS.items():
            statuses: list[int] = []

            async def send(message: Any, statuses: list[int] = statuses) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            def scope(n: int, path: str = path) -> dict[str, Any]:
                return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
                        "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
                        "headers": [(b"host", b"127.0.0.1:8000"), (b"cookie", cookies[n % len(cookies)].encode())]}

            async def loop(start: int, count: int) -> None:
                for n in range(start, start + count):
                    await app(scope(n), receive, send)  # type: ignore[arg-type]

            per_task = requests // TASKS
            # Warm: every reader once (their cookie opened and kept, as in a long load), then
            # the measured requests.
            warm = -(-len(cookies) // TASKS)
            await asyncio.gather(*(loop(t * warm, warm) for t in range(TASKS)))
            statuses.clear()
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(loop(t * per_task, per_task) for t in range(TASKS)))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            bad = [s for s in statuses if not 200 <= s < 300]
            if bad:
                raise SystemExit(f"{name}: {len(bad)} answers were not 2xx (first: {bad[0]})")
            results[name] = 1e6 * cpu / len(statuses)
            results[f"{name} wall"] = 1e6 * wall / len(statuses)
    return results


def child(args: argparse.Namespace) -> None:
    """One round in this process: print the figures as JSON."""
    sys.stderr = open(os.devnull, "w")  # the access lines
    data = Path(args.data) / f"dreamtree-bench-{args.users}"
    active = json.loads((data / "active.json").read_text())
    from app.domain import keys
    from app.domain.sessions import ServerKeys
    from app.http.csrf import new_token

    # A browser's requests carry the CSRF cookie it was given (bench/load.py's too).
    token = new_token(ServerKeys.derive(bytes.fromhex(active["secret"]), argon2=keys.Argon2Params.FAST).csrf)
    cookies = [f"dt_session={r['cookie']}; csrftoken={token}" for r in active["readers"]]
    print(json.dumps(asyncio.run(_measure(Path(args.db), active["secret"], cookies, args.requests))))


def main() -> None:
    sys.path.insert(0, str(HERE))
    from common import cpu_rounds, round_arguments
    from dataset import ensure

    args = round_arguments(__doc__, requests=4_000).parse_args()
    if args.db:
        child(args)
        return
    ensure(Path(args.data) / f"dreamtree-bench-{args.users}", args.users, args.active)
    cpu_rounds(HERE / "asgi_loop.py", args, [ROOT, *(t.resolve() for t in args.tree)], list(ENDPOINTS), TASKS)


if __name__ == "__main__":
    main()
