"""Instructions per request, counted by valgrind's callgrind: the real endpoints against their floor.

    .venv/bin/python bench/instructions.py [--data DIR] [--tree DIR ...] [--requests 300]

CPU time per request moves by ±15% between runs on a shared machine; instruction counts do
not (the same run twice agrees within 0.5%), so this is the measure for a change of a few per
cent. For each checkout (this one, then every `--tree`, e.g. a `git worktree` of the commit
before a change) and for the floor (bench/floor.py, this checkout's), one process under
`valgrind --tool=callgrind` opens the app on a copy of the 10,000-reader dataset
(bench/dataset.py), warms every endpoint with each of 100 active readers twice (their cookies
opened and kept, as in a long load), then, per endpoint, counts the instructions of
`--requests` requests sent to its ASGI callable from 4 concurrent tasks: every thread of the
process, the database threads included, nothing else (instrumentation is switched on and off
around the measured requests with callgrind_control). Needs `apt-get install valgrind`.

What it cannot see: the kernel (socket writes, the access log's writes to standard error),
the server in front (granian) and waiting. bench/load.py measures those, with the noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import callgrind_counts  # bench/ is the script's own directory

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENDPOINTS = {"outline": "/api/workbook", "next": "/api/workbook/next", "daily-dos": "/api/daily-dos"}
FLOOR = {"outline": "/floor/outline", "next": "/floor/next", "daily-dos": "/floor/daily-dos"}
READERS, TASKS = 100, 4


def child(args: argparse.Namespace) -> None:
    """One checkout in this process (under callgrind): READY / DONE on stdout around each
    endpoint's measured requests, a line on stdin to go on."""
    from app.domain import keys
    from app.domain.sessions import ServerKeys
    from app.http.csrf import new_token

    data = Path(args.data) / "dreamtree-bench-10000"
    active = json.loads((data / "active.json").read_text())
    readers = active["readers"][:READERS]
    server = ServerKeys.derive(bytes.fromhex(active["secret"]), argon2=keys.Argon2Params.FAST)
    token = new_token(server.csrf)
    cookies = [f"dt_session={r['cookie']}; csrftoken={token}".encode() for r in readers]
    db = Path(args.db)
    sys.stderr = open(os.devnull, "w")  # the access lines
    app: Any
    if args.floor:
        os.environ.update({"DREAMTREE_DB": str(db), "DREAMTREE_SECRET": active["secret"]})
        from bench.floor import create_app as floor_app

        app, paths = floor_app(), FLOOR
        queries = [f"u={r['user_id']}&s={keys.open_cookie(server.cookie, r['cookie'])[1]}".encode() for r in readers]
    else:
        from app.config import Settings
        from app.http.app import create_app

        app = create_app(Settings(db_path=db, secret_hex=active["secret"], rate_limits=False, argon2="fast"))
        paths, queries = ENDPOINTS, [b""] * READERS

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start" and not 200 <= message["status"] < 300:
            raise SystemExit(f"an answer was {message['status']}")

    def scope(n: int, path: str) -> dict[str, Any]:
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
                "path": path, "raw_path": path.encode(), "query_string": queries[n % READERS], "root_path": "",
                "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
                "headers": [(b"host", b"127.0.0.1:8000"), (b"cookie", cookies[n % READERS])]}

    async def requests(path: str, count: int) -> None:
        async def loop(start: int) -> None:
            for n in range(start, start + count // TASKS):
                await app(scope(n, path), receive, send)

        await asyncio.gather(*(loop(t * (READERS // TASKS)) for t in range(TASKS)))

    async def main() -> None:
        async with app.lifespan():
            for path in paths.values():
                await requests(path, 2 * READERS)
            for path in paths.values():
                print("READY", flush=True)
                sys.stdin.readline()
                await requests(path, args.requests)
                print("DONE", flush=True)
                sys.stdin.readline()

    asyncio.run(main())


def count(tree: Path, db: Path, args: argparse.Namespace, *, floor: bool) -> dict[str, float]:
    """Instructions per request of each endpoint, for one checkout (or its floor)."""
    return callgrind_counts([str(HERE / "instructions.py"), "--child", "--db", str(db), "--data", args.data,
                             "--requests", str(args.requests), *(["--floor"] if floor else [])],
                            tree, ENDPOINTS, args.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=tempfile.gettempdir(), help="where datasets are built and kept")
    parser.add_argument("--tree", action="append", default=[], type=Path,
                        help="another checkout to count in the same run (repeatable)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    sys.path.insert(0, str(HERE))
    from dataset import ensure

    source = Path(args.data) / "dreamtree-bench-10000"
    ensure(source, 10_000, 2_000)
    work = Path(tempfile.mkdtemp(prefix="dreamtree-instructions-"))
    rows: list[tuple[str, dict[str, float]]] = []
    try:
        for n, (tree, floor) in enumerate([(ROOT, True), (ROOT, False), *((t.resolve(), False) for t in args.tree)]):
            db = work / f"{n}.db"
            shutil.copyfile(source / "dreamtree.db", db)
            rows.append(("floor" if floor else str(tree), count(tree, db, args, floor=floor)))
            print(f"counted {rows[-1][0]}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor_row = rows[0][1]
    print(f"instructions per request ({args.requests} requests per endpoint, {READERS} readers, {TASKS} tasks); "
          "in brackets: the floor's count over this one's")
    print(f"{'':<40} " + " ".join(f"{name:>18}" for name in ENDPOINTS))
    for label, figures in rows:
        cells = [f"{figures[name]:>10,.0f}" + ("" if label == "floor" else f" ({floor_row[name] / figures[name]:.0%})")
                 for name in ENDPOINTS]
        print(f"{label[-40:]:<40} " + " ".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
