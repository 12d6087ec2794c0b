"""The floor: the thinnest Litestar app that runs the same SQL as the real endpoints.

No session cookie to open, no CSRF middleware, no access log, no decryption or sealing, no
request body to decode and check, and no shaping. The statements are not copied here: they
come from the domain's own works (app/domain/workbook.py, daily_dos.py, tools.py), so the
floor always runs what the real endpoint runs.

- Reads, `GET /floor/<outline|next|daily-dos>?u=<user id>&s=<session id>`: the work's first
  read batch (the outline's content part is cached, so that is all it reads) and the session
  gate's statement, in one read job on the engine's own `Database`; the rows are sent back
  unshaped.
- Writes, `POST /floor/answer/<exercise>?u=&s=` and `POST /floor/tool?u=&s=`: the domain's
  work itself (editing an answer, adding a list-builder entry) run by `Database.change` with
  the session as its gate: its reads, decision and write batch in one `BEGIN IMMEDIATE` job on
  the writer, as the real endpoint runs it. The sealed value is sealed once at start, not per
  request, each new entry's content hash is a different one worked out at start (as real
  entries' hashes differ, and land anywhere in their index), and the answer is not shaped
  into the API's JSON. (Sealed under the floor's own
  key, so those answers and entries no longer open for their reader: bench/load.py runs the
  floor's writes after every load that reads them.)

Whatever the real endpoint costs above this is the service's own overhead; bench/load.py
reports each real figure as a fraction of its floor, measured in the same run.

Served by granian like the real app: `granian --interface asgi --factory bench.floor:create_app`
with DREAMTREE_DB set.
"""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timezone
from typing import Any

from litestar import Litestar, get, post
from litestar.datastructures import State

from app import timeutil
from app.config import Settings
from app.db.connection import run_in_transaction, run_statements
from app.db.engine import Read, Stmt, Work
from app.db.engines import open_engine
from app.domain import daily_dos, keys, tools, workbook
from app.domain.sessions import Principal

Rows = list[list[Any]]
ANSWER = {"text": "Edited during the load test: the food bank years taught me planning."}
TOOL_ENTRY = {"title": "Load test list", "items": ["one", "two", "three"]}
ENTRY_HASHES = 100_000


def _daily_dos(principal: Principal) -> Work[Any]:
    return daily_dos.daily_dos_work(principal, daily_dos.day_bounds(timeutil.now(), timezone.utc))


# The real read endpoints' works (app/http/workbook.py, daily_dos.py call these).
READS: dict[str, Callable[[Principal], Work[Any]]] = {
    "outline": workbook.outline_work,
    "next": workbook.next_work,
    "daily-dos": _daily_dos,
}


def first_read(work: Work[Any]) -> tuple[Stmt, ...]:
    batch = next(work)
    assert isinstance(batch, Read)
    return batch.statements


class Presealed:
    """What the works the floor runs see as app.domain.keys: the same module, except that
    sealing gives back a value sealed once at start (of the same size), so no request seals."""

    def __init__(self, sealed: str) -> None:
        self.sealed = sealed

    def seal_column_of(self, dek: keys.DataKey, canonical: keys.Canonical, *, table: str, row_id: str) -> str:
        return self.sealed

    def __getattr__(self, name: str) -> Any:
        return getattr(keys, name)


class FloorWrites:
    """The floor's two writes, the domain's own works, with what a request would canonicalise,
    seal and hash worked out once at start: `presealed` stands in for app.domain.keys in
    app.domain.workbook while they run, and each new entry gets a content hash of its own, as
    real entries do (a keyed hash lands anywhere in idx_tool_instances_content_hash; one hash
    for all would always hit one cached page)."""

    def __init__(self, dek: keys.DataKey) -> None:
        self.answer_canonical = keys.canonical_json(ANSWER)
        self.presealed = Presealed(keys.seal_column_of(dek, self.answer_canonical, table="exercise_responses",
                                                       row_id="0" * 36))
        self.sealed_entry = keys.seal_column(dek, TOOL_ENTRY, table="tool_instances", row_id="0" * 36)
        self.entry_hashes = itertools.cycle([keys.content_hash(dek, {**TOOL_ENTRY, "title": f"Load test list {n}"})
                                             for n in range(ENTRY_HASHES)])

    def answer(self, principal: Principal, exercise: str, stamp: str) -> Work[Any]:
        """Editing an answer (with `presealed` in place of the keys module)."""
        return workbook.answer_work(principal, exercise, ANSWER, None, stamp, self.answer_canonical)

    def tool(self, principal: Principal, instance_id: str, stamp: str) -> Work[Any]:
        """Adding a list-builder entry."""
        return tools.create_work(principal, "list-builder", TOOL_ENTRY, tools.STANDALONE, None, instance_id,
                                 self.sealed_entry, next(self.entry_hashes), stamp)


def create_app() -> Litestar:
    dek = keys.new_data_key()
    writes = FloorWrites(dek)
    workbook.keys = writes.presealed  # type: ignore[assignment]  # this process only

    @asynccontextmanager
    async def database(app: Litestar) -> AsyncIterator[None]:
        app.state.db = await open_engine(Settings.from_env())
        try:
            yield
        finally:
            await app.state.db.close()

    @get("/floor/{endpoint:str}")
    async def read(endpoint: str, u: str, s: str, state: State) -> dict[str, Rows]:
        """`u` the reader, `s` their session id (the gate's statement is part of the job)."""
        principal = Principal(u, s, dek)
        statements = (principal.statement(), *first_read(READS[endpoint](principal)))

        def job(conn: sqlite3.Connection) -> Rows:
            return [list(row) for result in run_statements(conn, statements) for row in result.rows]

        return {"rows": await state.db._run(state.db._reader_conn(), run_in_transaction, job, False)}

    @post("/floor/answer/{exercise:str}", status_code=200)
    async def answer(exercise: str, u: str, s: str, state: State) -> dict[str, bool]:
        principal = Principal(u, s, dek)
        stamp = timeutil.now_iso()
        await state.db.change(lambda: writes.answer(principal, exercise, stamp), principal)
        return {"saved": True}

    @post("/floor/tool", status_code=200)
    async def tool(u: str, s: str, state: State) -> dict[str, bool]:
        principal = Principal(u, s, dek)
        stamp, instance_id = timeutil.now_iso(), str(uuid.uuid4())
        await state.db.change(lambda: writes.tool(principal, instance_id, stamp), principal)
        return {"saved": True}

    @get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(route_handlers=[read, answer, tool, healthz], lifespan=[database], debug=False)
