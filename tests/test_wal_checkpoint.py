"""The sqlite engine checkpoints its WAL passively, on a connection of its own, shortly after
writes: the WAL stays short while writes keep coming, and a checkpoint never waits for the
writer or a reader (nor makes them wait)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import pytest

from app.db import checkpoints, connection
from app.db.connection import Database
from app.db.engine import Stmt, Work, Write
from tests.helpers import with_sqlite_database

pytestmark = pytest.mark.anyio

ROW = "x" * 50_000  # a few pages per write




def wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def writes_a_row(value: str) -> Callable[[sqlite3.Connection], None]:
    def write(conn: sqlite3.Connection) -> None:
        with connection.guard_of(conn).trusted():
            conn.execute("CREATE TABLE IF NOT EXISTS scratch (v TEXT)")
            conn.execute("DELETE FROM scratch")
            conn.execute("INSERT INTO scratch VALUES (?)", (value,))

    return write


def held_write(release: threading.Event, why: str, value: str | None = ROW) -> Callable[[sqlite3.Connection], None]:
    """A write job that writes a row (none when `value` is None) and then keeps its transaction
    open until `release` is set; `why` is what it says when it never is."""

    def write(conn: sqlite3.Connection) -> None:
        if value is not None:
            writes_a_row(value)(conn)
        assert release.wait(10), why

    return write


async def until_checkpointed(db: Database, count: int) -> None:
    with anyio.fail_after(10):
        while len(db.checkpointed) < count:
            await anyio.sleep(0.02)


async def test_a_write_is_followed_by_a_passive_checkpoint_of_the_whole_wal(db_path: Path) -> None:
    async def scenario(db: Database) -> None:
        await db.write(writes_a_row(ROW))
        await until_checkpointed(db, 1)
        busy, frames, copied = db.checkpointed[-1]
        assert busy == 0 and frames > 0 and copied == frames

    await with_sqlite_database(db_path, scenario)


async def test_the_wal_does_not_grow_while_writes_keep_coming(db_path: Path) -> None:
    async def scenario(db: Database) -> list[int]:
        sizes = []
        for n in range(8):
            await db.write(writes_a_row(f"{n}{ROW}"))
            await until_checkpointed(db, n + 1)
            sizes.append(wal_size(db_path))
        return sizes

    sizes = await with_sqlite_database(db_path, scenario)
    assert max(sizes[1:]) <= sizes[1], sizes  # each write starts the checkpointed WAL over


async def test_the_writer_commits_no_checkpoint_of_its_own(db_path: Path) -> None:
    def setting(conn: sqlite3.Connection) -> int:
        with connection.guard_of(conn).trusted():
            return int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

    async def scenario(db: Database) -> int:
        return await db.write(setting)

    assert await with_sqlite_database(db_path, scenario) >= 10_000


async def test_a_checkpoint_never_waits_for_an_open_write_transaction(db_path: Path) -> None:
    """The writer holds its transaction until the checkpoint has answered: a checkpoint that
    waited for the writer would never answer (the test would time out)."""
    release = threading.Event()

    held = held_write(release, "the checkpoint waited for the writer")

    async def scenario(db: Database) -> None:
        await db.write(writes_a_row("before"))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(db.write, held)
            await anyio.sleep(0.1)  # the write transaction is open
            with anyio.fail_after(5):
                done = await db.checkpoint()
            release.set()
        assert done is not None and done[0] == 0

    await with_sqlite_database(db_path, scenario)


async def test_a_write_never_waits_for_a_checkpoint_held_back_by_a_reader(db_path: Path) -> None:
    """A reader keeps an old snapshot, so the checkpoint cannot copy everything; it returns at
    once instead of waiting, and writes go on committing meanwhile."""

    async def scenario(db: Database) -> None:
        await db.write(writes_a_row("first"))
        with sqlite3.connect(db_path, isolation_level=None) as old_reader:
            old_reader.execute("BEGIN")
            old_reader.execute("SELECT count(*) FROM scratch").fetchone()  # holds its snapshot
            for n in range(3):
                await db.write(writes_a_row(f"{n}{ROW}"))
                with anyio.fail_after(5):
                    busy, frames, copied = await db.checkpoint() or (1, 0, 0)
                assert copied < frames  # the reader's snapshot is kept
                assert busy == 0
            old_reader.execute("COMMIT")
        with anyio.fail_after(5):
            busy, frames, copied = await db.checkpoint() or (1, 0, 0)
        assert copied == frames

    await with_sqlite_database(db_path, scenario)


def held_checkpoint(monkeypatch: pytest.MonkeyPatch, release: threading.Event, events: list[str]) -> threading.Event:
    """The engine's passive checkpoint (patched before the database opens): once the event
    returned is set, held on its thread until `release` is set."""
    real, armed = connection._passive_checkpoint, threading.Event()

    def slow(conn: sqlite3.Connection) -> tuple[int, int, int]:
        if not armed.is_set():
            return real(conn)
        events.append("checkpoint starts")
        assert release.wait(10), "the checkpoint was never released"
        done = real(conn)
        events.append("checkpoint ends")
        return done

    monkeypatch.setattr(connection, "_passive_checkpoint", slow)
    return armed


def checkpoint_under_way(monkeypatch: pytest.MonkeyPatch, max_wait: float) -> tuple[
        threading.Event, list[str], Callable[[Database, Any], Awaitable[None]]]:
    """A checkpoint the test starts (none of the engine's own) and holds until `release` is set;
    `under_way(db, tasks)` writes a row, starts it in `tasks` and returns once it has begun.
    A large write waits `max_wait` seconds at most for it."""
    monkeypatch.setattr(checkpoints, "MAX_WAIT_FOR_CHECKPOINT", max_wait)
    monkeypatch.setattr(checkpoints, "CHECKPOINT_DELAY", 60.0)
    release, events = threading.Event(), list[str]()
    armed = held_checkpoint(monkeypatch, release, events)

    async def under_way(db: Database, tasks: Any) -> None:
        await db.write(writes_a_row(ROW))
        armed.set()
        tasks.start_soon(db.checkpoint)
        with anyio.fail_after(5):
            while "checkpoint starts" not in events:
                await anyio.sleep(0.01)

    return release, events, under_way


def recorded(events: list[str], name: str) -> Callable[[sqlite3.Connection], None]:
    def write(conn: sqlite3.Connection) -> None:
        writes_a_row(name)(conn)
        events.append(name)

    return write


async def test_a_large_write_starts_after_the_checkpoint_under_way_and_small_writes_do_not_wait(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import's write batch and a checkpoint copying megabytes would make each other (and
    every save queued behind the import) wait on the disk; small writes never wait for it."""
    release, events, under_way = checkpoint_under_way(monkeypatch, 30.0)

    async def scenario(db: Database) -> None:
        async with anyio.create_task_group() as tasks:
            await under_way(db, tasks)
            tasks.start_soon(lambda: db._write(connection.run_in_transaction, recorded(events, "large"), True,
                                               large=True))
            with anyio.fail_after(5):
                await db.write(recorded(events, "small"))
            release.set()
        assert events == ["checkpoint starts", "small", "checkpoint ends", "large"]

    await with_sqlite_database(db_path, scenario)


async def test_a_large_write_waits_for_a_checkpoint_a_bounded_time(db_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    release, events, under_way = checkpoint_under_way(monkeypatch, 0.05)

    async def scenario(db: Database) -> None:
        async with anyio.create_task_group() as tasks:
            await under_way(db, tasks)
            with anyio.fail_after(5):
                await db._write(connection.run_in_transaction, recorded(events, "large"), True, large=True)
            release.set()
        assert events == ["checkpoint starts", "large", "checkpoint ends"]

    await with_sqlite_database(db_path, scenario)


async def test_no_checkpoint_starts_while_a_large_write_runs_and_one_follows_it(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoints, "CHECKPOINT_DELAY", 0.01)
    release = threading.Event()

    held = held_write(release, "the large write was never released")

    async def scenario(db: Database) -> None:
        await db.write(writes_a_row("before"))
        await until_checkpointed(db, 1)
        assert db._checkpointer is not None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: db._write(connection.run_in_transaction, held, True, large=True))
            await anyio.sleep(0.05)
            db._checkpointer.soon()  # as a small write ending now would ask
            await anyio.sleep(0.3)
            assert len(db.checkpointed) == 1  # held back while the large write runs
            release.set()
        await until_checkpointed(db, 2)
        busy, frames, copied = db.checkpointed[-1]
        assert busy == 0 and copied == frames > 0

    await with_sqlite_database(db_path, scenario)


async def test_a_checkpoint_held_back_by_large_writes_runs_after_a_bounded_time(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large writes back to back cannot keep the WAL from being checkpointed."""
    monkeypatch.setattr(checkpoints, "CHECKPOINT_DELAY", 0.01)
    monkeypatch.setattr(checkpoints, "MAX_HELD_BACK", 0.1)
    release = threading.Event()

    held = held_write(release, "the large write was never released", value=None)

    async def scenario(db: Database) -> None:
        await db.write(writes_a_row(ROW))
        await until_checkpointed(db, 1)
        await db.write(writes_a_row("x" + ROW))
        assert db._checkpointer is not None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: db._write(connection.run_in_transaction, held, True, large=True))
            await until_checkpointed(db, 2)  # while the large write still runs
            release.set()

    await with_sqlite_database(db_path, scenario)


async def test_a_long_wal_starts_over_although_a_save_committed_during_its_checkpoint(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A save committing while the checkpoint copies leaves the WAL not wholly copied, so the
    next large write would append to it; the second checkpoint, on the writer's own queue,
    copies that save, and the next write starts the WAL over instead of growing it."""
    monkeypatch.setattr(checkpoints, "CHECKPOINT_DELAY", 60.0)  # only the checkpoints the test starts
    monkeypatch.setattr(checkpoints, "RESTART_FRAMES", 10)
    real, pending = connection._passive_checkpoint, []

    def save_meanwhile(conn: sqlite3.Connection) -> tuple[int, int, int]:
        if not pending:
            return real(conn)
        with closing(sqlite3.connect(db_path, isolation_level=None)) as other:  # a save, under way
            other.execute("BEGIN IMMEDIATE")
            other.execute("INSERT INTO scratch VALUES (?)", (pending.pop(),))
            done = real(conn)
            other.execute("COMMIT")  # after the checkpoint, which could not copy it
        return done

    monkeypatch.setattr(connection, "_passive_checkpoint", save_meanwhile)
    large = "y" * 400_000

    async def scenario(db: Database) -> tuple[int, int]:
        await db.write(writes_a_row(large))
        first = wal_size(db_path)
        pending.append("a save")
        await db.checkpoint()
        assert not pending
        await db.write(writes_a_row(large))
        return first, wal_size(db_path)

    first, second = await with_sqlite_database(db_path, scenario)
    assert second < first * 1.5, (first, second)


async def test_the_write_batch_of_a_split_work_is_a_large_write(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports, sign-in merges and seeding run with `split=True`: their write batch is the one
    that keeps out of a checkpoint's way; a plain work's is not."""
    entered: list[str] = []
    real = checkpoints.Checkpointer.large_write

    def large_write(self: checkpoints.Checkpointer) -> Any:
        entered.append("large")
        return real(self)

    monkeypatch.setattr(checkpoints.Checkpointer, "large_write", large_write)

    def work(value: str) -> Work[None]:
        yield Write(Stmt("CREATE TABLE IF NOT EXISTS scratch (v TEXT)"), Stmt("INSERT INTO scratch VALUES (?)", (value,)))

    async def scenario(db: Database) -> None:
        await db.change(lambda: work("plain"), None)
        assert entered == []
        await db.change(lambda: work("split"), None, split=True)
        assert entered == ["large"]

    await with_sqlite_database(db_path, scenario)
