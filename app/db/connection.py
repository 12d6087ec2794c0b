"""The `sqlite` engine: one SQLite file, one writer, a few readers, D1's rules on all of them.

Shape (Datasette's): every write is a job on the single writer connection, wrapped in
`BEGIN IMMEDIATE … COMMIT`; reads go to read-only connections, each in its own snapshot.
A job is a plain function over a `sqlite3.Connection` that aiosqlite runs on that
connection's thread, so a whole unit of work (app/db/engine.py) costs one thread hand-off
instead of one per statement: the hand-off costs more than the spec's queries themselves.
Jobs on one connection run one after another, which is what serialises the writer; no
asyncio lock is needed on top.

Durability: WAL with `synchronous=NORMAL`. A commit survives a crash of the process (SIGKILL
included); only an OS crash or power cut can lose the last transactions. That trade is
SQLite's own recommendation for WAL and is written down in docs/operations.md.

Checkpoints: passive, on a connection of their own, shortly after writes; never inside the
writer's commit (app/db/checkpoints.py).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

import aiosqlite
import anyio.to_thread

from app.db.checkpoints import CHECKPOINT_DELAY, Checkpointer
from app.db.d1 import D1Guard, make_strict
from app.db.engine import (
    ATTEMPTS,
    Batch,
    ChangedConcurrently,
    ConstraintFailed,
    Done,
    Driver,
    Engine,
    Gate,
    GuardFailed,
    Refused,
    Result,
    Stmt,
    Work,
    WorkFactory,
    Write,
    advance,
    drive,
    drive_async,
    guard_name,
)
from app.db.files import create_private

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
WRITER_CACHE_KIB = 32 * 1024
"""The writer's page cache: a large import's pages stay in memory until its commit."""
WRITER_AUTOCHECKPOINT_PAGES = 16384
"""The writer's own automatic checkpoint: a backstop (64 MiB of WAL at 4 KiB pages), for when
passive checkpoints cannot keep up (a reader holding a snapshot for long)."""


class NotADatabase(Exception):
    """The file given as database exists but is not an SQLite database."""


class GuardedConnection(sqlite3.Connection):
    """An sqlite3 connection that knows its D1 guard (for trusted sections)."""

    guard: D1Guard


def configure(conn: sqlite3.Connection, *, strict: bool, writer: bool) -> D1Guard:
    """Per-connection settings. The tuning PRAGMAs live here, never in shipped SQL (D1 refuses them)."""
    conn.row_factory = sqlite3.Row
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if writer:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Reading the schema once proves this is an SQLite file before anything else touches it.
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise NotADatabase(str(exc)) from exc
    guard = make_strict(conn) if strict else D1Guard()
    conn.guard = guard  # type: ignore[attr-defined]
    return guard


def guard_of(conn: sqlite3.Connection) -> D1Guard:
    guard: D1Guard = conn.guard  # type: ignore[attr-defined]
    return guard


def connect_sync(path: str | Path, *, strict: bool = True, readonly: bool = False) -> sqlite3.Connection:
    """A plain sqlite3 connection configured like the server's (for the CLI and tests)."""
    if readonly:
        conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True, isolation_level=None, factory=GuardedConnection)
    else:
        create_private(path)  # 0600; SQLite gives -wal and -shm the same mode
        conn = sqlite3.connect(str(path), isolation_level=None, factory=GuardedConnection)
    configure(conn, strict=strict, writer=not readonly)
    return conn


def run_in_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T], immediate: bool) -> T:
    """Run fn inside one transaction on conn; roll back on any exception."""
    guard = guard_of(conn)
    with guard.trusted():
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        result = fn(conn)
    except BaseException:
        with guard.trusted():
            conn.execute("ROLLBACK")
        raise
    with guard.trusted():
        conn.execute("COMMIT")
    return result


def run_statements(conn: sqlite3.Connection, statements: Sequence[Stmt]) -> list[Result]:
    """Execute statements in order on conn (inside the caller's transaction): their results,
    or `GuardFailed` / `ConstraintFailed` for a failed guard or constraint."""
    results = []
    try:
        for statement in statements:
            cursor = conn.execute(statement.sql, statement.params)
            rows = cursor.fetchall()
            count = cursor.rowcount
            results.append(Result(rows, count if count > 0 else 0))
    except sqlite3.IntegrityError as exc:
        raise ConstraintFailed(str(exc)) from None
    except sqlite3.OperationalError as exc:
        name = guard_name(str(exc))
        if name is None:
            raise
        raise GuardFailed(name) from None
    return results


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with guard_of(conn).trusted():
            conn.execute("ROLLBACK")


def run_batch(conn: sqlite3.Connection, statements: Sequence[Stmt], write: bool) -> list[Result]:
    """One batch in its own transaction: a read snapshot, or an atomic `BEGIN IMMEDIATE` write."""
    return run_in_transaction(conn, lambda c: run_statements(c, statements), write)


def run_work(conn: sqlite3.Connection, work: WorkFactory[T], gate: Gate | None, *, writes: bool) -> T:
    """A whole work in one transaction on conn (the SQLite engine's fused mode).

    Reads and the write batch share one `BEGIN IMMEDIATE` transaction on the writer (or one
    snapshot on a reader), so what the work decided on cannot change under it. A write batch
    that fails rolls the transaction back before the failure reaches the work, exactly as D1
    drops a batch that fails."""
    guard = guard_of(conn)
    driver = Driver(gate, writes=writes)

    def execute(batch: Batch, statements: tuple[Stmt, ...]) -> list[Result]:
        if isinstance(batch, Write):
            try:
                return run_statements(conn, statements)
            except (GuardFailed, ConstraintFailed):
                _rollback(conn)
                raise
        return run_statements(conn, statements)

    with guard.trusted():
        conn.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
    try:
        answer = drive(work(), driver, execute)
        touch = driver.leftover()
        if touch is not None and writes:
            run_statements(conn, (touch,))
            touch = None
    except BaseException:
        _rollback(conn)
        raise
    if conn.in_transaction:
        with guard.trusted():
            conn.execute("COMMIT")
    if touch is not None:
        raise _Touch(answer, touch)
    return answer


class _Touch(Exception):  # a signal, not an error
    """A read-only work finished and its gate asked for a write (the session's last_seen_at)."""

    def __init__(self, answer: Any, touch: Stmt) -> None:
        super().__init__("touch")
        self.answer = answer
        self.touch = touch


class Database(Engine):
    """The `sqlite` engine: one SQLite file, one writer connection and a few readers.

    `query` runs a work on a read-only connection in one snapshot; `change` runs it whole
    inside `BEGIN IMMEDIATE … COMMIT` on the writer (one thread hand-off), or with
    `split=True` reads on a reader and holds the writer only for the write batch."""

    name = "sqlite"

    def __init__(self, path: str | Path, *, strict: bool = True, readers: int = 2) -> None:
        self.path = Path(path)
        self.strict = strict
        self._reader_count = readers
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader: itertools.cycle[aiosqlite.Connection] | None = None
        self._checkpointer: Checkpointer | None = None

    def _connector(self, *, writer: bool) -> Callable[[], sqlite3.Connection]:
        def connect() -> sqlite3.Connection:
            if writer:
                create_private(self.path)
                conn = sqlite3.connect(
                    str(self.path), isolation_level=None, check_same_thread=False, factory=GuardedConnection
                )
            else:
                conn = sqlite3.connect(
                    f"file:{self.path}?mode=ro",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                    factory=GuardedConnection,
                )
            configure(conn, strict=self.strict, writer=writer)
            if writer:
                with guard_of(conn).trusted():
                    conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
                    conn.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}")
            return conn

        return connect

    def _checkpointer_connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, factory=GuardedConnection)
        configure(conn, strict=self.strict, writer=False)
        return conn

    async def open(self) -> None:
        # The writer first, so the WAL and -shm files exist before the read-only readers open.
        self._writer = await aiosqlite.Connection(self._connector(writer=True), 64)
        try:
            for _ in range(self._reader_count):
                self._readers.append(await aiosqlite.Connection(self._connector(writer=False), 64))
            self._checkpointer = Checkpointer(await aiosqlite.Connection(self._checkpointer_connect, 64), self._run,
                                              _passive_checkpoint, self._writer)
        except BaseException:
            await self.close()
            raise
        self._next_reader = itertools.cycle(self._readers)

    async def close(self) -> None:
        # aiosqlite >= 0.22 threads are not daemons: an unclosed connection keeps the process alive.
        if self._checkpointer is not None:
            await self._checkpointer.close()
        connections = [c for c in [self._writer, *self._readers] if c is not None]
        if self._checkpointer is not None:
            connections.append(self._checkpointer.conn)
        self._writer, self._readers, self._next_reader, self._checkpointer = None, [], None, None
        for conn in connections:
            await conn.close()

    @property
    def checkpointed(self) -> list[tuple[int, int, int]]:
        """(busy, WAL frames, frames checkpointed) of the last few passive checkpoints."""
        return self._checkpointer.done if self._checkpointer is not None else []

    async def checkpoint(self) -> tuple[int, int, int] | None:
        """A passive checkpoint now (the engine runs one shortly after writes by itself)."""
        return await self._checkpointer.now() if self._checkpointer is not None else None

    async def _write(self, fn: Callable[..., T], *args: Any, large: bool = False) -> T:
        """A job on the writer, then a checkpoint shortly (a large one keeps out of its way)."""
        try:
            async with self._checkpointer.large_write() if large and self._checkpointer else nullcontext():
                return await self._run(self._writer_conn(), fn, *args)
        finally:
            if self._checkpointer is not None:
                self._checkpointer.soon()

    @staticmethod
    async def _run(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
        # aiosqlite's own methods are all built on _execute: it queues fn onto the connection's
        # thread. Using it directly is what lets one job hold a whole transaction.
        execute = cast(Callable[..., Awaitable[T]], conn._execute)
        return await execute(fn, conn._conn, *args)

    def _writer_conn(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("database is not open")
        return self._writer

    def _reader_conn(self) -> aiosqlite.Connection:
        if self._next_reader is None:
            raise RuntimeError("database is not open")
        return next(self._next_reader)

    async def _refused(self, refused: Refused) -> NoReturn:
        if refused.cleanup is not None:
            await self._write(run_batch, (refused.cleanup,), True)
        raise refused.error from None

    async def query(self, work: WorkFactory[T], gate: Gate | None) -> T:
        try:
            return await self._run(self._reader_conn(), lambda c: run_work(c, work, gate, writes=False))
        except _Touch as done:
            await self._write(run_batch, (done.touch,), True)
            return cast(T, done.answer)
        except Refused as refused:
            await self._refused(refused)

    async def change(self, work: WorkFactory[T], gate: Gate | None, *, split: bool = False) -> T:
        last: GuardFailed | None = None
        for _attempt in range(ATTEMPTS):
            try:
                if split:
                    return await self._change_split(work, gate)
                return await self._write(lambda c: run_work(c, work, gate, writes=True))
            except GuardFailed as failed:
                last = failed
            except Refused as refused:
                await self._refused(refused)
        assert last is not None
        raise ChangedConcurrently(last.name)

    async def _change_split(self, work: WorkFactory[T], gate: Gate | None) -> T:
        driver = Driver(gate, writes=True)

        async def execute(batch: Batch, statements: tuple[Stmt, ...]) -> list[Result]:
            if isinstance(batch, Write):
                return await self._write(run_batch, statements, True, large=True)
            return await self._run(self._reader_conn(), run_batch, statements, False)

        answer = await drive_async(work(), driver, execute, resume_in_thread)
        touch = driver.leftover()
        if touch is not None:
            await self._write(run_batch, (touch,), True)
        return answer

    # --- the job API the modules not yet moved to works still use ----------------------------

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn in one `BEGIN IMMEDIATE` transaction on the writer; commit, or roll back on error."""
        return await self._write(run_in_transaction, fn, True)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn on a read-only connection, inside one snapshot."""
        return await self._run(self._reader_conn(), run_in_transaction, fn, False)


def _passive_checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
    with guard_of(conn).trusted():
        busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(busy), int(frames), int(done)


async def resume_in_thread(work: Work[Any], results: list[Result] | None, failure: BaseException | None) -> Batch | Done:
    """Resume a work on a worker thread: its decisions (sealing, hashing) stay off the loop."""
    return await anyio.to_thread.run_sync(advance, work, results, failure)


async def open_database(path: str | Path, *, strict: bool = True, readers: int = 2) -> Database:
    db = Database(path, strict=strict, readers=readers)
    await db.open()
    return db


def is_busy(exc: BaseException) -> bool:
    """True for SQLite's 'database is locked' after the busy timeout ran out."""
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


__all__ = [
    "BUSY_TIMEOUT_MS",
    "CHECKPOINT_DELAY",
    "Database",
    "NotADatabase",
    "configure",
    "connect_sync",
    "guard_of",
    "is_busy",
    "open_database",
    "run_batch",
    "run_in_transaction",
    "run_statements",
    "run_work",
]
