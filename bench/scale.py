"""The reader's hot paths on a database at scale: in-process, over HTTP, and their query plans.

    .venv/bin/python bench/scale.py [--users 100000] [--samples 2000]

Uses the dataset of bench/dataset.py (built once, reused). Reports, for the Daily Dos, the
next exercise and the outline:
- in-process: the domain function through the service's own `Database` (aiosqlite, one job
  per call), p50/p99 over `--samples` calls spread over the active readers;
- over HTTP: the real server (granian, one worker), one client, no concurrency, so the figure
  is the latency of one request and not queueing (bench/load.py measures under load);
- EXPLAIN QUERY PLAN of every statement those endpoints run, and whether any of them scans
  a user table (users, sessions, exercise_responses, tool_instances, …) instead of searching
  it through an index.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from dataset import ensure  # noqa: E402
from load import PY, csrf_token, start, stop  # noqa: E402

from app.db.connection import Database, connect_sync  # noqa: E402
from app.db.queries import Q  # noqa: E402
from app.domain import daily_dos, keys, workbook  # noqa: E402
from app.domain.sessions import Principal  # noqa: E402

PORT = 8463
USER_TABLES = ("users", "auth", "emails", "sessions", "user_settings", "user_modules", "exercise_responses",
               "tool_instances", "user_competency_scores", "exercise_skills")
# Every statement of the three endpoints, with sample parameters (u = a reader's id).
STATEMENTS = {
    "outline": ["content_fingerprint", "answered_orders", "user_modules", "sequence_outline", "openings"],
    "next exercise": ["next_exercise", "answered_at_order", "exercise_blocks", "exercise_sources", "response_at_place",
                      "tags_of"],
    "daily dos": ["reader_workbook_complete", "next_exercise", "exercise_blocks", "daily_reminders", "weekly_reminders",
                  "monthly_reminders"],
    "session": ["session_with_user"],
}


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def plans(path: Path) -> list[tuple[str, str, list[str]]]:
    out = []
    with closing(connect_sync(path, strict=False, readonly=True)) as conn:
        for endpoint, names in STATEMENTS.items():
            for name in names:
                sql = Q[name]
                numbered = [int(n) for n in re.findall(r"\?(\d+)", sql)]
                count = max(numbered) if numbered else sql.count("?")
                params: list[Any] = ["x"] * count
                rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
                out.append((endpoint, name, [r["detail"] for r in rows]))
    return out


def full_scans(details: list[str]) -> list[str]:
    return [d for d in details if re.match(rf"SCAN ({'|'.join(USER_TABLES)})\b", d.replace("SCAN TABLE ", "SCAN "))
            and "USING" not in d]


async def in_process(path: Path, readers: list[dict[str, str]], samples: int) -> dict[str, tuple[float, float]]:
    db = Database(path)
    await db.open()
    try:
        principals = []
        with closing(connect_sync(path, strict=False, readonly=True)) as conn:
            from app.domain.sessions import ServerKeys

            secret = bytes.fromhex(json.loads((path.parent / "active.json").read_text())["secret"])
            server = ServerKeys.derive(secret, argon2=keys.Argon2Params.FAST)
            for r in readers:
                _token, sid, dek, user_id = keys.open_cookie(server.cookie, r["cookie"])
                anonymous = conn.execute("SELECT is_anonymous FROM users WHERE id = ?", (user_id,)).fetchone()[0]
                principals.append(Principal(user_id, sid, dek, bool(anonymous)))
        calls = {
            "outline": lambda p: workbook.outline(db, p),
            "next exercise": lambda p: workbook.next_exercise(db, p),
            "daily dos": lambda p: daily_dos.daily_dos(db, p, None),
            "daily dos (tz)": lambda p: daily_dos.daily_dos(db, p, "America/New_York"),
        }
        results = {}
        for name, call in calls.items():
            for p in principals[:50]:
                await call(p)  # warm
            timings = []
            for i in range(samples):
                started = time.perf_counter()
                await call(principals[i % len(principals)])
                timings.append((time.perf_counter() - started) * 1000)
            results[name] = percentiles(timings)
        return results
    finally:
        await db.close()


def over_http(path: Path, readers: list[dict[str, str]], samples: int) -> dict[str, tuple[float, float]]:
    secret = json.loads((path.parent / "active.json").read_text())["secret"]
    proc, _ = start([PY, "-m", "app.cli", "serve", "--db", str(path), "--port", str(PORT), "--no-rate-limits"],
                    PORT, {"DREAMTREE_SECRET": secret})
    try:
        csrf = csrf_token(PORT)
        results = {}
        for name, route in (("outline", "/api/workbook"), ("next exercise", "/api/workbook/next"),
                            ("daily dos", "/api/daily-dos"), ("daily dos (tz)", "/api/daily-dos?tz=America/New_York")):
            timings = []
            for i in range(samples):
                r = readers[i % len(readers)]
                request = urllib.request.Request(f"http://127.0.0.1:{PORT}{route}",
                                                 headers={"Cookie": f"dt_session={r['cookie']}; csrftoken={csrf}"})
                started = time.perf_counter()
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
                    assert response.status == 200
                timings.append((time.perf_counter() - started) * 1000)
            results[name] = percentiles(timings[len(timings) // 10:])
        return results
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--active", type=int, default=2_000)
    parser.add_argument("--samples", type=int, default=2_000)
    parser.add_argument("--data", default=tempfile.gettempdir())
    args = parser.parse_args()
    data = Path(args.data) / f"dreamtree-bench-{args.users}"
    counts = ensure(data, args.users, args.active)
    readers = json.loads((data / "active.json").read_text())["readers"]
    work = Path(tempfile.mkdtemp(prefix="dreamtree-scale-"))
    try:
        path = work / "dreamtree.db"
        shutil.copyfile(data / "dreamtree.db", path)
        shutil.copyfile(data / "active.json", work / "active.json")
        print(f"{args.users:,} readers: {counts['exercise_responses']:,} answers, {counts['tool_instances']:,} tool "
              f"entries, {counts['user_competency_scores']:,} competency scores, {counts['bytes'] / 2**30:.2f} GiB")
        local = asyncio.run(in_process(path, readers, args.samples))
        remote = over_http(path, readers, args.samples)
        print(f"\n{'endpoint':<16} {'in-process p50':>15} {'p99':>8} {'HTTP p50':>10} {'p99':>8}   (ms, one client)")
        for name in local:
            (lp50, lp99), (hp50, hp99) = local[name], remote[name]
            print(f"{name:<16} {lp50:>15.3f} {lp99:>8.3f} {hp50:>10.3f} {hp99:>8.3f}")
        print("\nquery plans:")
        problems = 0
        for endpoint, name, details in plans(path):
            scans = full_scans(details)
            problems += len(scans)
            print(f"  {endpoint:<14} {name:<26} {'FULL SCAN: ' + '; '.join(scans) if scans else 'ok'}")
            for d in details:
                print(f"  {'':<14} {'':<26}   {d}")
        print(f"\n{'no full scan of a user table' if problems == 0 else f'{problems} full scan(s) of user tables'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
