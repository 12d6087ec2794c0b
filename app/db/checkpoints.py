"""Passive WAL checkpoints for the `sqlite` engine, on a connection of their own.

SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, so a large
import's commit would copy the whole WAL into the database while holding the writer. Instead,
a passive checkpoint runs shortly after writes (`CHECKPOINT_DELAY`; the writes meanwhile
share it): it never waits for the writer or a reader and never makes them wait, and it keeps
the WAL short, so the next write starts the WAL over and readers search a short one. The
writer's automatic checkpoint stays only as a backstop far above what one write adds
(`WRITER_AUTOCHECKPOINT_PAGES`, app/db/connection.py).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import aiosqlite

CHECKPOINT_DELAY = 0.2
"""Seconds from a write to the passive checkpoint after it."""

log = logging.getLogger("dreamtree.db")

Run = Callable[[aiosqlite.Connection, Callable[[sqlite3.Connection], tuple[int, int, int]]],
               Awaitable[tuple[int, int, int]]]


class Checkpointer:
    """Runs `checkpoint` (a job for the connection's thread) on `conn` shortly after `soon()`."""

    def __init__(self, conn: aiosqlite.Connection, run: Run,
                 checkpoint: Callable[[sqlite3.Connection], tuple[int, int, int]]) -> None:
        self.conn = conn
        self._run = run
        self._checkpoint = checkpoint
        self._due: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self.done: list[tuple[int, int, int]] = []
        """(busy, WAL frames, frames checkpointed) of the last few checkpoints."""

    def soon(self) -> None:
        """A write ended: a checkpoint is due shortly, unless one already is."""
        if self._due is None:
            self._due = asyncio.get_running_loop().call_later(CHECKPOINT_DELAY, self._start)

    def _start(self) -> None:
        self._due = None
        task = asyncio.ensure_future(self.now())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def now(self) -> tuple[int, int, int] | None:
        """One checkpoint now: as much of the WAL as no reader still needs goes into the database."""
        try:
            done = await self._run(self.conn, self._checkpoint)
        except sqlite3.Error as exc:
            log.warning("passive checkpoint failed: %s", exc)
            return None
        self.done = [*self.done[-9:], done]
        return done

    async def close(self) -> None:
        """No more checkpoints; the one running ends first. The connection is the caller's to close."""
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
