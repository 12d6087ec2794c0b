"""Export and import of a large account: 2,000 answers and 2,000 tool entries.

Builds a database whose workbook has 2,000 exercises (synthetic places, like a long course),
fills one account through the import path, then measures in-process, one run each, on the
same event loop a server would use:

- the readable export (the one read batch, opening every value, encoding the file);
- another reader's answer saves alone, then while the import of that file into an empty
  account runs on the same loop: saves fall due at random moments, 10 ms apart on average
  (`--save-every-ms`), each starts when due whether or not the one before has answered (so
  the moments the import holds the writer get their share of the saves), and its latency
  counts from when it was due; per import and over all of them, n and p50/p99/max (a p99 of
  fewer than 100 saves is their maximum, and the line says so), beside how long each import
  held the writer (its write batch);
- how late the event loop wakes from a 1 ms sleep meanwhile (p50/p99/max): time a save waits
  for the loop, not for the writer;
- the same import again (all unchanged: one read batch, no write);
  (these three: `--runs` times each, the median shown with every run)
- an encrypted export (including its Argon2id key slot and MAC) and its import into another
  empty account (including unwrapping);
- whether the target holds in this one run: another reader's save p99 < 100 ms over all the
  imports' saves, and the medians of import < 1 s and of the readable export < 300 ms;
- the Python heap peak (tracemalloc, in a second run of the export and a third import, since
  tracing slows Python down) and the process's maximum resident size at the end.

The 2,000 tool entries are split between two tools: a reader holds at most 1,000 entries of
one tool, and the import obeys that limit.

    .venv/bin/python bench/portability.py [--answers 2000] [--tools 2000] [--runs 3] [--save-every-ms 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.db import connection, migrations
from app.db.connection import Database, connect_sync, run_in_transaction
from app.domain import keys, portability, seeding, sessions, workbook
from app.domain.sessions import Principal, ServerKeys

T = TypeVar("T")
TEXT = "I led the migration of our records system, and what I learned is " * 4
PASSWORD = "river lantern pocket moss"


def build(path: Path, answers: int) -> None:
    with closing(connect_sync(path)) as conn:
        migrations.apply(conn)
        seeding.seed(conn, directory=Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "seed_small")
        places = [(f"9.{1 + i // 50}.{1 + i % 50}.v1", "9", str(1 + i // 50), str(1 + i % 50), 1, 100 + i, None, 1)
                  for i in range(answers)]
        run_in_transaction(conn, lambda c: c.executemany(
            "INSERT INTO exercise_sequence VALUES (?, ?, ?, ?, ?, ?, ?, ?)", places), True)


def tool_entry(i: int, tools: int) -> dict[str, Any]:
    if i < tools // 2:
        tool_type, content = "list-builder", {"title": f"List {i}", "items": [TEXT, TEXT]}
    else:
        tool_type, content = "flow-tracker", {"activity": f"Activity {i}", "energy": 1 + i % 5, "notes": TEXT * 2}
    return {"id": f"t{i}", "tool_type": tool_type, "origin": "standalone", "content_json": content,
            "created_at": "2026-01-02T10:00:00.000Z", "updated_at": "2026-01-02T10:00:00.000Z", "skills": []}


def document(answers: int, tools: int) -> dict[str, Any]:
    modules: dict[str, Any] = {}
    for i in range(answers):
        module = f"9.{1 + i // 50}"
        modules.setdefault(module, {"first_completed_at": None, "last_modified_at": None, "exercises": {}})
        modules[module]["exercises"][f"9.{1 + i // 50}.{1 + i % 50}.v1"] = {
            "response_json": {"text": f"{TEXT} ({i})"}, "responded_at": "2026-01-01T10:00:00.000Z", "skills": []}
    return {"version": "1.1", "exported_at": "2026-06-01T00:00:00.000Z", "encrypted": False, "settings": None,
            "competency_scores": [], "modules": modules, "custom_skills": [],
            "tool_instances": [tool_entry(i, tools) for i in range(tools)]}


def line(name: str, text: str) -> None:
    print(f"{name:<52} {text}")


async def timed(name: str, fn: Callable[[], Awaitable[T]]) -> T:
    started = time.perf_counter()
    result = await fn()
    line(name, f"{(time.perf_counter() - started) * 1000:9.0f} ms")
    return result


async def heap(name: str, fn: Callable[[], Awaitable[Any]]) -> None:
    tracemalloc.start()
    await fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    line(name, f"{peak / 2**20:9.1f} MiB")


async def export_bytes(db: Database, server: ServerKeys, reader: Principal, password: str | None = None) -> bytes:
    """What POST /api/export does: the export, then the file's bytes."""
    exported = await portability.export(db, server, reader, password=password)
    return msgspec.json.encode(exported.document)


SAVE_EVERY = 0.010
"""Mean seconds between another reader's saves during an import (`--save-every-ms`)."""


async def saves_during(db: Database, other: Principal, work: Awaitable[T], seed: int) -> tuple[T, list[float]]:
    """Run `work` while `other` saves an answer at random moments (a Poisson stream, SAVE_EVERY
    apart on average, the same stream for the same seed), each save started when it is due
    whether or not the one before has answered: a save waiting behind the import does not
    hold the next ones back, so the moments the writer is held get their share of the saves.
    Each save's latency in ms, counted from when it was due (a loop late to start it counts)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    arrivals = random.Random(seed)

    async def save(n: int, due: float) -> float:
        await workbook.answer(db, other, "1.1.1.v1", {"text": f"edit {n}"}, None)
        return (loop.time() - due) * 1000

    async def probe() -> None:
        # How late a 1 ms sleep wakes: the event loop waiting for the GIL while another thread
        # holds it (the import decides on a worker thread), or running something long itself.
        while not task.done():
            asked = loop.time()
            await asyncio.sleep(0.001)
            LOOP_LATE.append((loop.time() - asked - 0.001) * 1000)

    probing = asyncio.ensure_future(probe())
    saves: list[asyncio.Future[float]] = []
    due = loop.time()
    while not task.done():
        saves.append(asyncio.ensure_future(save(len(saves), due)))
        due += arrivals.expovariate(1 / SAVE_EVERY)
        await asyncio.sleep(max(0.0, due - loop.time()))
    answer, latencies = await task, list(await asyncio.gather(*saves))
    await probing
    return answer, latencies


WRITER_HELD: list[float] = []
LOOP_LATE: list[float] = []  # ms, each 1 ms sleep of the probe during the imports


def hold_time(real: Callable[..., Any]) -> Callable[..., Any]:
    """connection.run_batch, timing write batches (how long the writer is held)."""
    def run_batch(conn: Any, statements: Any, write: bool) -> Any:
        started = time.perf_counter()
        try:
            return real(conn, statements, write)
        finally:
            if write and len(statements) > 3:
                WRITER_HELD.append((time.perf_counter() - started) * 1000)
    return run_batch


def p99(values: list[float]) -> float:
    """The 99th percentile, nearest rank."""
    ranked = sorted(values)
    return ranked[max(0, -(-99 * len(ranked) // 100) - 1)]


async def main(answers: int, tools: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        build(path, answers)
        connection.run_batch = hold_time(connection.run_batch)  # type: ignore[assignment]
        db = Database(path)
        await db.open()
        try:
            server = ServerKeys.derive(b"b" * 32, argon2=keys.Argon2Params.PRODUCTION)

            async def reader() -> Principal:
                return (await sessions.start_anonymous(db, server))[0]

            ann, other = await reader(), await reader()
            await portability.import_document(db, ann, document(answers, tools), password=None, dry_run=False)
            await workbook.answer(db, other, "1.1.1.v1", {"text": "first"}, None)
            print(f"{answers} answers + {tools} tool entries; median of {runs} runs where it says so")

            times, plain = [], b""
            for _ in range(runs):
                started = time.perf_counter()
                plain = await export_bytes(db, server, ann)
                times.append((time.perf_counter() - started) * 1000)
            line("export, readable (read, open, encode)", f"{statistics.median(times):9.0f} ms  {_all(times)}")
            export_times = times
            line("  file size", f"{len(plain) / 2**20:9.1f} MiB")

            quiet = []
            for _ in range(200):
                started = time.perf_counter()
                await workbook.answer(db, other, "1.1.1.v1", {"text": "quiet"}, None)
                quiet.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.005)
            line("another reader's answer save, alone: p50 / p99", f"{statistics.median(quiet):6.1f} / {p99(quiet):.1f} ms")

            times, during, bob = [], [], ann
            WRITER_HELD.clear()
            for run in range(runs):
                bob = await reader()
                held_before = len(WRITER_HELD)
                started = time.perf_counter()
                report, latencies = await saves_during(db, other, portability.import_document(
                    db, bob, plain, password=None, dry_run=False), seed=run)
                times.append((time.perf_counter() - started) * 1000)
                during += latencies
                assert report.counts.exercises.inserted == answers, report.counts
                assert report.counts.tool_instances.inserted == tools, report.counts
                line(f"  import {run + 1}: import, writer held; saves n, p50 / p99 / max",
                     f"{times[-1]:4.0f}, {_all(WRITER_HELD[held_before:])} ms; {_saves(latencies)}")
            line("import into an empty account", f"{statistics.median(times):9.0f} ms  {_all(times)}")
            line("  of which the writer is held (the write batch)", f"{statistics.median(WRITER_HELD):9.0f} ms  "
                 f"{_all(WRITER_HELD)}")
            line(f"  meanwhile, another reader's saves (~{SAVE_EVERY * 1000:.0f} ms apart): n, p50 / p99 / max",
                 _saves(during))
            line("  meanwhile, the event loop late to wake from 1 ms: p50 / p99 / max",
                 f"{statistics.median(LOOP_LATE):.1f} / {p99(LOOP_LATE):.1f} / {max(LOOP_LATE):.1f} ms")
            export_ms, import_ms, save_p99 = statistics.median(export_times), statistics.median(times), p99(during)
            met = save_p99 < 100 and import_ms < 1000 and export_ms < 300
            line("target: save p99 < 100, import < 1,000, export < 300 ms",
                 f"{'met' if met else 'NOT met'} ({save_p99:.1f} / {import_ms:.0f} / {export_ms:.0f} ms)")

            times = []
            for _ in range(runs):
                started = time.perf_counter()
                again = await portability.import_document(db, bob, plain, password=None, dry_run=False)
                times.append((time.perf_counter() - started) * 1000)
                assert again.counts.tool_instances.unchanged == tools
            line("the same import again (all unchanged)", f"{statistics.median(times):9.0f} ms  {_all(times)}")

            sealed = await timed("export, encrypted (incl. Argon2id m=128 MiB, MAC)", lambda: portability.export_account(
                db, ann.user_id, ann.dek, password=PASSWORD))
            sealed_bytes = msgspec.json.encode(sealed)
            carol = await reader()
            await timed("import of the encrypted file (incl. unwrap, MAC)", lambda: portability.import_document(
                db, carol, sealed_bytes, password=PASSWORD, dry_run=False))

            await heap("heap peak: export, readable", lambda: export_bytes(db, server, ann))
            dave = await reader()
            await heap("heap peak: import into an empty account", lambda: portability.import_document(
                db, dave, plain, password=None, dry_run=False))
        finally:
            await db.close()
    line("max resident size of the process", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:9.0f} MiB")


def _all(times: list[float]) -> str:
    return "(" + ", ".join(f"{t:.0f}" for t in times) + ")"


def _saves(latencies: list[float]) -> str:
    """n, p50 / p99 / max; a p99 of fewer than 100 saves is their maximum, and says so."""
    few = " (n < 100: p99 = max)" if len(latencies) < 100 else ""
    return (f"{len(latencies):4d}, {statistics.median(latencies):.1f} / {p99(latencies):.1f} / "
            f"{max(latencies):.1f} ms{few}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=2000)
    parser.add_argument("--tools", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--save-every-ms", type=float, default=SAVE_EVERY * 1000,
                        help="mean time between another reader's saves during an import")
    args = parser.parse_args()
    SAVE_EVERY = args.save_every_ms / 1000
    asyncio.run(main(args.answers, args.tools, args.runs))
