"""Export and import of a large account: 2,000 answers and 2,000 tool instances.

Builds a database whose workbook has 2,000 exercises (synthetic places, like a long course),
fills one account through the import path, then measures in-process, one run each:
anonymous (plaintext) export, import of that file into an empty account, the same import
again (all unchanged), a claimed-style encrypted export (including its Argon2id key slot),
and the import of the encrypted file (including unwrapping). Peak memory is the Python heap
peak (tracemalloc) of each step, and the process's maximum resident size at the end.

    .venv/bin/python bench/portability.py [--answers 2000] [--tools 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
import tracemalloc
from contextlib import closing
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.db import migrations  # noqa: E402
from app.db.connection import Database, connect_sync, run_in_transaction  # noqa: E402
from app.domain import keys, portability, seeding, sessions  # noqa: E402
from app.domain.sessions import ServerKeys  # noqa: E402

TEXT = "I led the migration of our records system, and what I learned is " * 4


def build(path: Path, answers: int) -> None:
    with closing(connect_sync(path)) as conn:
        migrations.apply(conn)
        seeding.seed(conn, directory=Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "seed_small")
        places = [(f"9.{1 + i // 50}.{1 + i % 50}.v1", "9", str(1 + i // 50), str(1 + i % 50), 1, 100 + i, None, 1)
                  for i in range(answers)]
        run_in_transaction(conn, lambda c: c.executemany(
            "INSERT INTO exercise_sequence VALUES (?, ?, ?, ?, ?, ?, ?, ?)", places), True)


def document(answers: int, tools: int) -> dict:
    modules: dict = {}
    for i in range(answers):
        module = f"9.{1 + i // 50}"
        modules.setdefault(module, {"first_completed_at": None, "last_modified_at": None, "exercises": {}})
        modules[module]["exercises"][f"9.{1 + i // 50}.{1 + i % 50}.v1"] = {
            "response_json": {"text": f"{TEXT} ({i})"}, "responded_at": "2026-01-01T10:00:00.000Z", "skills": []}
    return {"version": "1.1", "exported_at": "2026-06-01T00:00:00.000Z", "encrypted": False, "settings": None,
            "competency_scores": [], "modules": modules, "custom_skills": [],
            "tool_instances": [{"id": f"t{i}", "tool_type": "list-builder", "origin": "standalone",
                                "content_json": {"title": f"List {i}", "items": [TEXT, TEXT]},
                                "created_at": "2026-01-02T10:00:00.000Z", "updated_at": "2026-01-02T10:00:00.000Z",
                                "skills": []} for i in range(tools)]}


def measure(name: str, fn) -> object:
    tracemalloc.start()
    started = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{name:<44} {elapsed * 1000:9.0f} ms   heap peak {peak / 2**20:7.1f} MiB")
    return result


async def main(answers: int, tools: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        build(path, answers)
        db = Database(path)
        await db.open()
        loop = asyncio.get_running_loop()
        try:
            server = ServerKeys.derive(b"b" * 32, argon2=keys.Argon2Params.PRODUCTION)
            ann, _ = await sessions.start_anonymous(db, server)
            bob, _ = await sessions.start_anonymous(db, server)
            carol, _ = await sessions.start_anonymous(db, server)
            await portability.import_document(db, ann.user_id, ann.dek, document(answers, tools), password=None, dry_run=False)

            def run(coro_fn):
                return lambda: asyncio.run_coroutine_threadsafe(coro_fn(), loop).result()

            async def in_thread(fn):
                return await loop.run_in_executor(None, fn)

            plain = await in_thread(lambda: measure(
                f"export, plaintext ({answers} + {tools})",
                run(lambda: portability.export(db, ann.user_id, ann.dek, encrypted=False))))
            size = len(msgspec.json.encode(plain))
            print(f"{'  file size':<44} {size / 2**20:9.1f} MiB")
            report = await in_thread(lambda: measure("import into an empty account", run(
                lambda: portability.import_document(db, bob.user_id, bob.dek, plain, password=None, dry_run=False))))
            assert report.counts["exercises"]["inserted"] == answers, report.counts
            again = await in_thread(lambda: measure("the same import again (all unchanged)", run(
                lambda: portability.import_document(db, bob.user_id, bob.dek, plain, password=None, dry_run=False))))
            assert again.counts["tool_instances"]["unchanged"] == tools
            sealed = await in_thread(lambda: measure("export, encrypted (incl. Argon2id m=128 MiB)", run(
                lambda: portability.export(db, ann.user_id, ann.dek, encrypted=True, password="river lantern pocket moss"))))
            await in_thread(lambda: measure("import of the encrypted file (incl. unwrap)", run(
                lambda: portability.import_document(db, carol.user_id, carol.dek, sealed,
                                                    password="river lantern pocket moss", dry_run=False))))
        finally:
            await db.close()
    print(f"{'max resident size of the process':<44} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:9.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=2000)
    parser.add_argument("--tools", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.answers, args.tools))
