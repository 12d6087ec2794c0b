"""Cost against size: every read endpoint at 10,000 and 100,000 readers, skill search at
100,000 custom skills, and the query plan of every statement the read endpoints run.

    .venv/bin/python bench/scale.py [--sizes 10000 100000] [--samples 400] [--skills 100000]

Uses the datasets of bench/dataset.py (built once per size, reused), copied, so nothing here
changes them. In one run:

1. Every read endpoint (GET /api/…) over HTTP: one real server (granian, one worker) per size,
   both running, one client, one request at a time (latency without queueing; bench/load.py
   measures under load). Requests alternate between the sizes, and go round every endpoint
   for one reader after another, so the machine's noise and the caches' warmth fall on all
   alike. Each endpoint's p50 at the largest size over its p50 at the smallest is the
   growth; the target is at most 1.3.
2. EXPLAIN QUERY PLAN of every statement those endpoints ran (captured in-process, with their
   real parameters), and whether any scans a user table instead of searching an index.
3. Skill search at `--skills` custom skills (added to the largest dataset's copy: a tenth
   pending, the rest approved or rejected; then all pending, where the SQL scan sorts least):
   in-process, the SQL scan (`search_skills`, what search was) against the index
   (app/domain/skill_index.py), calls alternating; the index's full rebuild; and the
   endpoint over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from dataset import ensure  # noqa: E402
from load import PY, csrf_token, start, stop  # noqa: E402

from app.db import connection  # noqa: E402
from app.db.connection import Database, connect_sync  # noqa: E402
from app.domain import keys, skills  # noqa: E402
from app.domain.sessions import Principal, ServerKeys  # noqa: E402

PORT = 8463
USER_TABLES = ("users", "auth", "emails", "sessions", "user_settings", "user_modules", "exercise_responses",
               "tool_instances", "user_competency_scores", "exercise_skills")
TARGET_GROWTH = 1.3
SEARCH_TARGET_MS = 5.0
# Every read endpoint; {tool}, {instance}, {exercise} are the reader's own (see `readers_with_paths`).
ENDPOINTS = {
    "me": "/api/me",
    "account sessions": "/api/account/sessions",
    "settings": "/api/settings",
    "personality types": "/api/personality-types",
    "competencies": "/api/competencies",
    "references": "/api/references",
    "competency scores": "/api/competencies/scores",
    "competency summary": "/api/competencies/summary",
    "outline": "/api/workbook",
    "next exercise": "/api/workbook/next",
    "exercise": "/api/exercises/{exercise}",
    "modules": "/api/modules",
    "daily dos": "/api/daily-dos",
    "daily dos (tz)": "/api/daily-dos?tz=America/New_York",
    "tools": "/api/tools",
    "tool entries": "/api/tools/{tool}/instances",
    "tool entry": "/api/tool-instances/{instance}",
    "skills": "/api/skills",
    "skills ?q=list": "/api/skills?q=list",
    "skills ?q=&category": "/api/skills?q=custom&category=knowledge",
}
# Skill searches: (label, q, category).
SEARCHES = [
    ("everything", "", None),
    ("one letter", "a", None),
    ("common word", "plan", None),
    ("in a category", "plan", "transferable"),
    ("rare word", "zeugma", None),
    ("no match", "qqqq", None),
]
WORDS = ("planning project budget team lead coaching writing design data analysis care teaching sales "
         "negotiation welding carpentry cooking logistics research editing coding testing support safety "
         "finance marketing gardening nursing driving translation music painting event retail training").split()


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def readers_with_paths(path: Path, readers: list[dict[str, str]]) -> list[dict[str, str]]:
    """The active readers, each with one of their tool entries and its tool, and an exercise
    they answered (for the endpoints with a path parameter)."""
    out = []
    with closing(connect_sync(path, strict=False, readonly=True)) as conn:
        for r in readers:
            entry = conn.execute("SELECT id, tool_type FROM tool_instances WHERE user_id = ? LIMIT 1",
                                 (r["user_id"],)).fetchone()
            if entry is None:
                continue
            out.append({**r, "tool": entry["tool_type"], "instance": entry["id"], "exercise": r["last_answered"]})
    return out


def http_get(port: int, route: str, cookie: str) -> float:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{route}", headers={"Cookie": cookie})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        assert response.status == 200, (route, response.status)
    return (time.perf_counter() - started) * 1000


def serve(path: Path, port: int, secret: str) -> Any:
    proc, _ = start([PY, "-m", "app.cli", "serve", "--db", str(path), "--port", str(port), "--no-rate-limits",
                     "--log-level", "warning"], port, {"DREAMTREE_SECRET": secret})
    return proc


def endpoints_over_http(paths: dict[int, Path], readers: dict[int, list[dict[str, str]]], secret: str,
                        samples: int) -> dict[str, dict[int, tuple[float, float]]]:
    """Every endpoint, on every size's server, requests alternating between the sizes."""
    procs = {size: serve(path, PORT + i, secret) for i, (size, path) in enumerate(paths.items())}
    ports = {size: PORT + i for i, size in enumerate(paths)}
    try:
        cookies = {size: [f"dt_session={r['cookie']}; csrftoken={csrf_token(ports[size])}" for r in readers[size]]
                   for size in paths}
        timings: dict[str, dict[int, list[float]]] = {name: {size: [] for size in paths} for name in ENDPOINTS}
        order = list(paths)
        # Rounds: every endpoint once per round, for the next reader, so that no endpoint is
        # measured on a colder cache than another.
        for i in range(samples + samples // 10):
            for name, template in ENDPOINTS.items():
                order.reverse()
                for size in order:
                    r = readers[size][i % len(readers[size])]
                    took = http_get(ports[size], template.format(**r), cookies[size][i % len(readers[size])])
                    if i >= samples // 10:  # the first tenth warms the page cache and the server
                        timings[name][size].append(took)
        return {name: {size: percentiles(t) for size, t in by_size.items()} for name, by_size in timings.items()}
    finally:
        for proc in procs.values():
            stop(proc)


def captured_statements(path: Path, readers: list[dict[str, str]], secret: str) -> dict[str, list[tuple[str, tuple[Any, ...]]]]:
    """The statements each endpoint runs, with their parameters: the app in-process, one reader."""
    from litestar.testing import TestClient

    from app.config import Settings
    from app.http.app import create_app

    seen: list[tuple[str, tuple[Any, ...]]] = []
    real = connection.run_statements

    def recording(conn: Any, statements: Any, *args: Any, **kwargs: Any) -> Any:
        seen.extend((s.sql, s.params) for s in statements)
        return real(conn, statements, *args, **kwargs)

    connection.run_statements = recording  # type: ignore[assignment]
    try:
        logging.getLogger("httpx").setLevel(logging.WARNING)
        app = create_app(Settings(db_path=path, secret_hex=secret, rate_limits=False, d1_strict=False, argon2="fast",
                                  access_log=False))
        out = {}
        with TestClient(app, base_url="http://testserver.local") as client:
            r = readers[0]
            for name, template in ENDPOINTS.items():
                seen.clear()
                response = client.get(template.format(**r), headers={"Cookie": f"dt_session={r['cookie']}"})
                assert response.status_code == 200, (name, response.status_code, response.text)
                out[name] = list(dict.fromkeys(seen))
        return out
    finally:
        connection.run_statements = real  # type: ignore[assignment]


def plans(path: Path, statements: dict[str, list[tuple[str, tuple[Any, ...]]]]) -> list[tuple[str, str, list[str]]]:
    out = []
    with closing(connect_sync(path, strict=False, readonly=True)) as conn:
        for endpoint, found in statements.items():
            for sql, params in found:
                rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
                first_line = " ".join(line.strip() for line in sql.strip().splitlines() if not line.strip().startswith("--"))
                out.append((endpoint, first_line[:70], [r["detail"] for r in rows]))
    return out


def full_scans(details: list[str]) -> list[str]:
    return [d for d in details if re.match(rf"SCAN ({'|'.join(USER_TABLES)})\b", d.replace("SCAN TABLE ", "SCAN "))
            and "USING" not in d]


def add_custom_skills(path: Path, wanted: int, pending_share: float, seed: int = 5) -> dict[str, int]:
    """Custom skills up to `wanted` in all, by readers of the dataset (a few each, under the
    per-reader limit): two words and a number, a tenth pending (the review queue), the rest
    approved or rejected; a few readers with many of their own."""
    rng = random.Random(seed)
    with closing(connect_sync(path, strict=False)) as conn:
        have = conn.execute("SELECT count(*) FROM skills WHERE is_custom = 1").fetchone()[0]
        users = [r[0] for r in conn.execute("SELECT id FROM users LIMIT 50000")]
        rows = []
        for n in range(max(0, wanted - have)):
            roll = rng.random()
            status = "pending" if roll < pending_share else ("approved" if roll < (1 + pending_share) / 2 else "rejected")
            name = f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS)} {n}"
            if n % 5000 == 0:
                name = f"Zeugma {n}"
            rows.append((str(uuid.uuid4()), name, rng.choice(["transferable", "self_management", "knowledge", None]),
                         1, rng.choice(users), status, "2026-11-01T00:00:00.000Z"))
        with conn:
            conn.executemany("INSERT INTO skills (id, name, category, is_custom, created_by, review_status, created_at)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        return dict(conn.execute("SELECT review_status, count(*) FROM skills WHERE is_custom = 1 GROUP BY 1").fetchall())


def principals_of(path: Path, readers: list[dict[str, str]], secret: str) -> list[Principal]:
    server = ServerKeys.derive(bytes.fromhex(secret), argon2=keys.Argon2Params.FAST)
    out = []
    with closing(connect_sync(path, strict=False, readonly=True)) as conn:
        for r in readers:
            _token, sid, dek, user_id = keys.open_cookie(server.cookie, r["cookie"])
            anonymous = conn.execute("SELECT is_anonymous FROM users WHERE id = ?", (user_id,)).fetchone()[0]
            out.append(Principal(user_id, sid, dek, bool(anonymous)))
    return out


async def search_in_process(path: Path, principals: list[Principal], samples: int) -> dict[str, Any]:
    """The SQL scan and the index, calls alternating, through the service's own `Database`
    with the reader's session checked in the same batch, as the endpoint runs them."""
    db = Database(path)
    await db.open()
    try:
        holder = skills.index_of(db)

        def by_sql(p: Principal, q: str, category: Any) -> Awaitable[Any]:
            return db.query(lambda: skills.sql_search_work(p, q, category), p)

        def by_index(p: Principal, q: str, category: Any) -> Awaitable[Any]:
            return skills.search(db, p, q, category)

        started = time.perf_counter()
        await by_index(principals[0], "", None)
        first = (time.perf_counter() - started) * 1000
        out: dict[str, Any] = {"first search (builds the index) ms": first}
        for label, q, category in SEARCHES:
            timings: dict[str, list[float]] = {"sql": [], "index": []}
            calls: list[tuple[str, Callable[..., Awaitable[Any]]]] = [("sql", by_sql), ("index", by_index)]
            for i in range(samples):
                calls.reverse()
                p = principals[i % len(principals)]
                answers = []
                for kind, call in calls:
                    started = time.perf_counter()
                    answers.append(await call(p, q, category))
                    timings[kind].append((time.perf_counter() - started) * 1000)
                assert answers[0] == answers[1], (label, p.user_id)
            out[label] = {kind: percentiles(t[len(t) // 10:]) for kind, t in timings.items()}
        with closing(connect_sync(path, strict=False, readonly=True)) as conn:
            waiting = [r[0] for r in conn.execute("SELECT id FROM skills WHERE is_custom = 1 AND review_status = "
                                                  "'pending' AND created_by IS NOT NULL LIMIT 10")]
        after_review = []
        for n, skill_id in enumerate(waiting):  # an editor's decision, then the next search
            await skills.review(db, **({"approve": [skill_id]} if n % 2 == 0 else {"reject": [skill_id]}))
            started = time.perf_counter()
            await by_index(principals[0], "plan", None)
            after_review.append((time.perf_counter() - started) * 1000)
        out["after a review ms"] = statistics.median(after_review) if after_review else float("nan")
        out["builds"] = holder.builds
        builds = []
        for _ in range(5):
            holder.index = None
            started = time.perf_counter()
            await by_index(principals[0], "plan", None)
            builds.append((time.perf_counter() - started) * 1000)
        out["rebuild ms"] = statistics.median(builds)
        return out
    finally:
        await db.close()


def search_over_http(path: Path, readers: list[dict[str, str]], secret: str, samples: int) -> dict[str, tuple[float, float]]:
    proc = serve(path, PORT, secret)
    try:
        csrf = csrf_token(PORT)
        out = {}
        for label, q, category in SEARCHES:
            route = f"/api/skills?q={q}" + (f"&category={category}" if category else "")
            timings = [http_get(PORT, route, f"dt_session={readers[i % len(readers)]['cookie']}; csrftoken={csrf}")
                       for i in range(samples + samples // 10)]
            out[label] = percentiles(timings[samples // 10:])
        return out
    finally:
        stop(proc)


def report_search(title: str, local: dict[str, Any], remote: dict[str, tuple[float, float]]) -> None:
    print(f"\n{title}")
    print(f"  first search (builds the index): {local['first search (builds the index) ms']:.0f} ms; "
          f"the search after a review decision (no rebuild): {local['after a review ms']:.1f} ms "
          f"({local['builds']} full build(s) so far); a full rebuild: {local['rebuild ms']:.0f} ms")
    print(f"  {'search':<16} {'SQL scan p50':>13} {'p99':>8} {'index p50':>10} {'p99':>8} {'HTTP p50':>9} {'p99':>8}   (ms)")
    for label, _q, _c in SEARCHES:
        (sp50, sp99), (ip50, ip99) = local[label]["sql"], local[label]["index"]
        hp50, hp99 = remote[label]
        flag = "" if ip50 < SEARCH_TARGET_MS else "   over the target"
        print(f"  {label:<16} {sp50:>13.3f} {sp99:>8.3f} {ip50:>10.3f} {ip99:>8.3f} {hp50:>9.3f} {hp99:>8.3f}{flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--active", type=int, default=2_000)
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--skills", type=int, default=100_000, help="custom skills for the search measurement")
    parser.add_argument("--data", default=tempfile.gettempdir())
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    work = Path(tempfile.mkdtemp(prefix="dreamtree-scale-"))
    try:
        paths, readers, secret = {}, {}, ""
        for size in sizes:
            data = Path(args.data) / f"dreamtree-bench-{size}"
            counts = ensure(data, size, args.active)
            active = json.loads((data / "active.json").read_text())
            secret = active["secret"]
            paths[size] = work / f"scale-{size}.db"
            shutil.copyfile(data / "dreamtree.db", paths[size])
            readers[size] = readers_with_paths(paths[size], active["readers"])
            print(f"{size:,} readers: {counts['exercise_responses']:,} answers, {counts['tool_instances']:,} tool "
                  f"entries, {counts['user_competency_scores']:,} competency scores, {counts['bytes'] / 2**30:.2f} GiB")

        remote = endpoints_over_http(paths, readers, secret, args.samples)
        small, large = sizes[0], sizes[-1]
        print(f"\n{'endpoint':<20}" + "".join(f" {f'{s:,} p50':>12} {'p99':>7}" for s in sizes)
              + f" {'growth':>7}   (ms, HTTP, one client; growth = p50 at {large:,} / p50 at {small:,})")
        over = []
        for name, by_size in remote.items():
            growth = by_size[large][0] / by_size[small][0]
            if growth > TARGET_GROWTH:
                over.append(name)
            print(f"{name:<20}" + "".join(f" {by_size[s][0]:>12.3f} {by_size[s][1]:>7.3f}" for s in sizes)
                  + f" {growth:>7.2f}{'   over ' + str(TARGET_GROWTH) if growth > TARGET_GROWTH else ''}")
        print(f"every endpoint within {TARGET_GROWTH}x" if not over else f"over {TARGET_GROWTH}x: {', '.join(over)}")

        print("\nquery plans (every statement the read endpoints ran, at the largest size):")
        problems = 0
        for endpoint, sql, details in plans(paths[large], captured_statements(paths[large], readers[large], secret)):
            scans = full_scans(details)
            problems += len(scans)
            print(f"  {endpoint:<20} {'FULL SCAN' if scans else 'ok':<9} {sql}")
            for d in details:
                print(f"  {'':<30}   {d}")
        print(f"\n{'no full scan of a user table' if problems == 0 else f'{problems} full scan(s) of user tables'}")

        for share, title in ((0.1, "a tenth pending"), (1.0, "then all pending, nobody reviewing")):
            if share == 1.0:
                with closing(connect_sync(paths[large], strict=False)) as conn, conn:
                    conn.execute("UPDATE skills SET review_status = 'pending' WHERE is_custom = 1")
                statuses = {"pending": args.skills}
            else:
                statuses = add_custom_skills(paths[large], args.skills, share)
            principals = principals_of(paths[large], readers[large][:200], secret)
            local = asyncio.run(search_in_process(paths[large], principals, args.samples))
            remote_search = search_over_http(paths[large], readers[large], secret, args.samples)
            report_search(f"skill search at {args.skills:,} custom skills ({title}: {statuses}), "
                          f"{large:,} readers", local, remote_search)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
