"""Passive WAL checkpoints for the `sqlite` engine, on a connection of their own.

SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, so a large
import's commit would copy the whole WAL into the database while holding the writer. Instead,
a passive checkpoint runs shortly after writes (`CHECKPOINT_DELAY`; the writes meanwhile
share it): it never waits for the writer or a reader and never makes them wait, and it keeps
the WAL short, so the next write starts the WAL over and readers search a short one. The
writer's automatic checkpoint stays only as a backstop far above what one write adds
(`WRITER_AUTOCHECKPOINT_PAGES`, app/db/connection.py).

A large write (an import's batch: megabytes of pages) and a checkpoint keep out of each
other's way (`large_write`): the write starts once a checkpoint under way has finished (small
writes go on meanwhile), and no checkpoint starts while it waits or runs. Copying and syncing
megabytes of WAL beside a large write made that write, and every save queued behind it on the
writer, wait on the disk. A checkpoint held back that way runs after the write; one held back
for `MAX_HELD_BACK` seconds runs anyway.

The WAL starts over from its beginning only when a write begins with every frame of it copied;
while saves keep committing during checkpoints, each large write would append to it instead.
So when a checkpoint leaves a WAL of `RESTART_FRAMES` or more copied, a second passive
checkpoint runs as a job on the writer: it copies only what was committed since (a few saves),
and since no write can come between it and the writer's next one, that one starts the WAL
over. The WAL stays bounded while writes keep coming.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite

CHECKPOINT_DELAY = 0.2
"""Seconds from a write to the passive checkpoint after it."""
MAX_HELD_BACK = 2.0
"""Seconds a due checkpoint waits for large writes at most; then it runs beside them."""
MAX_WAIT_FOR_CHECKPOINT = 0.25
"""Seconds a large write waits at most for a checkpoint under way to finish."""
RESTART_FRAMES = 4096
"""A WAL this long (16 MiB at 4 KiB pages), once checkpointed, is started over by the next write."""

log = logging.getLogger("dreamtree.db")

Run = Callable[[aiosqlite.Connection, Callable[[sqlite3.Connection], tuple[int, int, int]]],
               Awaitable[tuple[int, int, int]]]


class Checkpointer:
    """Runs `checkpoint` (a job for the connection's thread) on `conn` shortly after `soon()`."""

    def __init__(self, conn: aiosqlite.Connection, run: Run,
                 checkpoint: Callable[[sqlite3.Connection], tuple[int, int, int]],
                 writer: aiosqlite.Connection | None = None) -> None:
        self.conn = conn
        self._writer = writer
        self._run = run
        self._checkpoint = checkpoint
        self._due: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._copying: set[asyncio.Future[Any]] = set()  # checkpoints under way (timed or `now`)
        self._large = 0  # large writes waiting or running
        self._held_since: float | None = None  # when a due checkpoint was first held back
        self.done: list[tuple[int, int, int]] = []
        """(busy, WAL frames, frames checkpointed) of the last few checkpoints."""

    def soon(self) -> None:
        """A write ended: a checkpoint is due shortly, unless one already is."""
        if self._due is None:
            self._due = asyncio.get_running_loop().call_later(CHECKPOINT_DELAY, self._start)

    def _start(self) -> None:
        self._due = None
        loop = asyncio.get_running_loop()
        if self._large:
            self._held_since = self._held_since if self._held_since is not None else loop.time()
            if loop.time() - self._held_since < MAX_HELD_BACK:
                self._due = loop.call_later(CHECKPOINT_DELAY, self._start)  # after the large write
                return
        self._held_since = None
        task = asyncio.ensure_future(self.now())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def now(self) -> tuple[int, int, int] | None:
        """One checkpoint now: as much of the WAL as no reader still needs goes into the database."""
        copying = asyncio.get_running_loop().create_future()
        self._copying.add(copying)
        try:
            done = await self._run(self.conn, self._checkpoint)
        except sqlite3.Error as exc:
            log.warning("passive checkpoint failed: %s", exc)
            return None
        finally:
            self._copying.discard(copying)
            copying.set_result(None)
        self.done = [*self.done[-9:], done]
        busy, frames, copied = done
        if self._writer is not None and not busy and copied == frames >= RESTART_FRAMES and not self._large:
            return await self._restart_soon()
        return done

    async def _restart_soon(self) -> tuple[int, int, int] | None:
        """What was committed since the checkpoint, copied on the writer's own queue: its next
        write then finds the whole WAL copied and starts it over."""
        assert self._writer is not None
        try:
            done = await self._run(self._writer, self._checkpoint)
        except (sqlite3.Error, ValueError) as exc:  # ValueError: the writer closed meanwhile
            log.warning("passive checkpoint on the writer failed: %s", exc)
            return None
        self.done = [*self.done[-9:], done]
        return done

    @asynccontextmanager
    async def large_write(self) -> AsyncIterator[None]:
        """Around a large write: it starts once a checkpoint under way has finished (waiting
        `MAX_WAIT_FOR_CHECKPOINT` at most), and no checkpoint starts until it has ended."""
        self._large += 1
        try:
            under_way = self._copying | self._running  # a timed one may not have started its job yet
            if under_way:
                await asyncio.wait(under_way, timeout=MAX_WAIT_FOR_CHECKPOINT)
            yield
        finally:
            self._large -= 1

    async def close(self) -> None:
        """No more checkpoints; the one running ends first. The connection is the caller's to close."""
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
