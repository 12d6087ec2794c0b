"""The floor: the thinnest Litestar app that runs the same SQL as the real read endpoints.

No session cookie to open, no CSRF middleware, no access log, no decryption and no shaping:
`GET /floor/<endpoint>?u=<user id>&s=<session id>` runs, in one read job on the same
`Database` class, exactly the named queries (`app/sql/*.sql`) the real endpoint runs (its
session lookup included), and sends back the rows they return, unshaped. Whatever the real
endpoint costs above this is our own overhead; bench/load.py reports each real endpoint as a
fraction of its floor, measured in the same run.

Served by granian like the real app: `granian --interface asgi --factory bench.floor:create_app`
with DREAMTREE_DB set.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timezone
from typing import Any

from litestar import Litestar, get
from litestar.datastructures import State

from app import timeutil
from app.db.connection import Database
from app.db.queries import Q
from app.domain.daily_dos import day_bounds

Rows = list[tuple[Any, ...]]


def rows(conn: sqlite3.Connection, name: str, *params: Any) -> Rows:
    return [tuple(r) for r in conn.execute(Q[name], params)]


def outline(conn: sqlite3.Connection, u: str) -> Rows:
    # The skeleton (sequence_outline, openings) is read only when the content fingerprint moves.
    return rows(conn, "content_fingerprint") + rows(conn, "answered_orders", u) + rows(conn, "user_modules", u)


def next_exercise(conn: sqlite3.Connection, u: str) -> Rows:
    place = conn.execute(Q.next_exercise, (u,)).fetchone()
    if place is None:
        return []
    full = place["full_exercise_id"]
    answer = rows(conn, "response_at_place", u, place["part_id"], place["module_id"], place["exercise_id"])
    tags = rows(conn, "tags_of", json.dumps([a[0] for a in answer]))
    return [tuple(place)] + rows(conn, "answered_at_order", u, place["sequence_order"] - 1) + rows(
        conn, "exercise_blocks", full) + rows(conn, "exercise_sources", full) + answer + tags


def daily_dos(conn: sqlite3.Connection, u: str) -> Rows:
    b = day_bounds(timeutil.now(), timezone.utc)
    found = rows(conn, "reader_workbook_complete", u)
    place = conn.execute(Q.next_exercise, (u,)).fetchone()
    if place is not None:
        found += [tuple(place)] + rows(conn, "exercise_blocks", place["full_exercise_id"])[:1]
    return found + rows(conn, "daily_reminders", u, b.start_of_today, b.start_of_tomorrow) + rows(
        conn, "weekly_reminders", u, b.start_of_week) + rows(conn, "monthly_reminders", u, b.start_of_month)


# The statements each real read endpoint runs (app/domain/workbook.py, daily_dos.py), by name;
# the floor sends back what they return, unshaped, since a real endpoint must send its data too.
ENDPOINTS: dict[str, Callable[[sqlite3.Connection, str], Rows]] = {
    "outline": outline,
    "next": next_exercise,
    "daily-dos": daily_dos,
}


def create_app() -> Litestar:
    @asynccontextmanager
    async def database(app: Litestar) -> AsyncIterator[None]:
        db = Database(os.environ["DREAMTREE_DB"], strict=True)
        await db.open()
        app.state.db = db
        try:
            yield
        finally:
            await db.close()

    @get("/floor/{endpoint:str}")
    async def floor(endpoint: str, u: str, s: str, state: State) -> dict[str, Rows]:
        """`u` the reader, `s` their session id: the session lookup every signed-in request
        makes is part of the same SQL, run here in the same job."""
        job = ENDPOINTS[endpoint]
        return {"rows": await state.db.read(lambda c: rows(c, "session_with_user", s) + job(c, u))}

    @get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(route_handlers=[floor, healthz], lifespan=[database], debug=False)
