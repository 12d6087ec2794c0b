"""The sqlite engine checkpoints its WAL passively, on a connection of its own, shortly after
writes: the WAL stays short while writes keep coming, and a checkpoint never waits for the
writer or a reader (nor makes them wait)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from app.db import connection
from app.db.connection import Database
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

    def held_write(conn: sqlite3.Connection) -> None:
        writes_a_row(ROW)(conn)
        assert release.wait(10), "the checkpoint waited for the writer"

    async def scenario(db: Database) -> None:
        await db.write(writes_a_row("before"))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(db.write, held_write)
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
