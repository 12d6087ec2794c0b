"""The d1 engine and its Worker against the real thing: wrangler dev's local D1 (marker d1).

One `wrangler dev` per session (the `d1_worker` fixture, conftest.py) serves most tests; data
is reset by deleting rows. The tests that need a Worker of their own (stopped and restarted,
started without a token, or a fresh database next to wrangler's migration commands) start
one with `d1util.WorkerProcess`. Needs node and `npm ci` in wrangler-compat/ (docs/d1.md).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from app.config import Settings
from app.db import migrations
from app.db.d1_engine import D1Engine, D1Error, D1Row
from app.db.engine import (
    ATTEMPTS,
    ChangedConcurrently,
    ConstraintFailed,
    EngineAuthFailed,
    EngineUnavailable,
    GuardFailed,
    Read,
    Refused,
    Result,
    Stmt,
    Work,
    Write,
    changed,
    guard,
    guard_name,
)
from tests import d1util
from tests.d1util import RoundTrips, WorkerProcess, Wrangler

pytestmark = pytest.mark.d1

MIGRATION_NAMES = [m.name for m in migrations.list_migrations()]

# A scratch table of this module's own (created once, dropped at the end), so that the tests
# of the engine do not depend on the domain's schema.
PROBE_DDL = ("CREATE TABLE IF NOT EXISTS engine_probe (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
             "n INTEGER NOT NULL DEFAULT 0, note TEXT)")
INSERT = "INSERT INTO engine_probe (name, n) VALUES (?, ?)"
NAMES = "SELECT name FROM engine_probe ORDER BY name"


@pytest.fixture(scope="module")
def probe_table(d1_worker: WorkerProcess) -> Iterator[None]:
    async def run(sql: str) -> None:
        assert d1_worker.token is not None
        engine = D1Engine(d1_worker.url, d1_worker.token)
        try:
            await engine.batch([Stmt(sql)], write=True)
        finally:
            await engine.close()

    anyio.run(run, PROBE_DDL)
    yield
    anyio.run(run, "DROP TABLE IF EXISTS engine_probe")


@pytest.fixture
def engine(d1_engine: D1Engine, probe_table: None) -> D1Engine:
    return d1_engine


async def names(engine: D1Engine) -> list[str]:
    (result,) = await engine.batch([Stmt(NAMES)], write=False)
    return [str(v) for v in result.column()]


@pytest.fixture(scope="module")
def wrangler() -> Wrangler:
    return d1util.require_wrangler()


# --- the Worker's own rules ------------------------------------------------------------------------


def test_the_worker_refuses_a_missing_or_wrong_token(d1_worker: WorkerProcess) -> None:
    good = {"mode": "read", "statements": [{"sql": "SELECT 1 AS one", "params": []}]}
    assert d1_worker.token is not None
    wrong_same_length = secrets.token_hex(len(d1_worker.token) // 2)
    for response in (
        d1_worker.post(good, token=None),
        d1_worker.post(good, token=wrong_same_length),
        d1_worker.post(good, token=d1_worker.token[:-1]),
        d1_worker.post(good, token=None, headers={"Authorization": f"Basic {d1_worker.token}"}),
        d1_worker.post(good, token=None, headers={"Authorization": f"Bearer {d1_worker.token} extra"}),
    ):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert (body["code"], body["outcome"]) == ("unauthorized", "not_run")
        assert d1_worker.token not in response.text
    ok = d1_worker.post(good)
    assert ok.status_code == 200, ok.text
    assert ok.json()["results"][0]["rows"] == [[1]]


def test_the_worker_refuses_a_body_over_8_mib(d1_worker: WorkerProcess) -> None:
    statement = {"sql": "SELECT ? AS big", "params": ["x" * (8 * 1024 * 1024)]}
    declared = d1_worker.post({"mode": "read", "statements": [statement]})
    assert declared.status_code == 413, declared.text
    assert declared.json()["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the Worker counts while reading
        for _ in range(9):
            yield b" " * (1024 * 1024)

    streamed = d1_worker.post(None, content=chunks())
    assert streamed.status_code == 413, streamed.text


@pytest.mark.parametrize(
    ("sql", "params", "says"),
    [
        ("BEGIN", [], "transaction statement BEGIN"),
        ("  commit", [], "transaction statement COMMIT"),
        ("ROLLBACK", [], "transaction statement ROLLBACK"),
        ("SAVEPOINT s1", [], "transaction statement SAVEPOINT"),
        ("/* hi */ RELEASE s1", [], "transaction statement RELEASE"),
        ("ATTACH DATABASE 'x.db' AS other", [], "D1 refuses ATTACH"),
        ("VACUUM", [], "D1 refuses VACUUM"),
        ("PRAGMA journal_mode = DELETE", [], "D1 refuses PRAGMA journal_mode"),
        ("PRAGMA main.synchronous", [], "D1 refuses PRAGMA synchronous"),
        ("SELECT " + ", ".join(["?"] * 101), list(range(101)), "101 bound parameters"),
        ("SELECT 1 AS a -- " + "x" * 100_000, [], "D1 takes at most 100000"),
        ("SELECT ? AS a", [{"an": "object"}], "only null, number, string and boolean"),
        ("SELECT ? AS a", [[1, 2]], "is an array"),
        ("SELECT 1 AS a; SELECT 2 AS b", [], "one SQL statement per entry"),
        ("SELECT 1 AS a; -- trailing", [], "nothing may follow"),
        ("", [], "no SQL statement"),
    ],
)
def test_the_worker_refuses_what_d1_would_refuse_before_running_anything(
    d1_worker: WorkerProcess, probe_table: None, sql: str, params: list[Any], says: str
) -> None:
    before = d1_worker.post({"mode": "read", "statements": [{"sql": "SELECT count(*) AS n FROM engine_probe"}]})
    batch = {"mode": "write", "statements": [
        {"sql": INSERT, "params": ["refused-batch", 1]},
        {"sql": sql, "params": params},
    ]}
    response = d1_worker.post(batch)
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["code"], body["outcome"], body["statement"]) == ("refused", "not_run", 1)
    assert says in body["detail"], body["detail"]
    after = d1_worker.post({"mode": "read", "statements": [{"sql": "SELECT count(*) AS n FROM engine_probe"}]})
    assert after.json()["results"][0]["rows"] == before.json()["results"][0]["rows"]


def test_the_worker_allows_what_d1_allows(d1_worker: WorkerProcess) -> None:
    batch = {"mode": "read", "statements": [
        {"sql": "PRAGMA table_info(d1_migrations)"},
        {"sql": "PRAGMA main.foreign_key_check"},
        {"sql": "SELECT " + ", ".join(f"? AS c{i}" for i in range(100)) + " -- one hundred", "params": list(range(100))},
        {"sql": "-- a comment first\nSELECT 'semi;colon' AS s, \"BEGIN\" IS NULL AS b FROM (SELECT 1 AS \"BEGIN\");"},
    ]}
    response = d1_worker.post(batch)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [c for c in results[0]["columns"]][:3] == ["cid", "name", "type"]
    assert results[2]["rows"] == [list(range(100))]
    assert results[3]["rows"] == [["semi;colon", 0]]


def test_the_worker_runs_a_good_batch_and_answers_rows_columns_changes_and_a_bookmark(
    d1_worker: WorkerProcess, engine: D1Engine
) -> None:
    write = d1_worker.post({"mode": "write", "statements": [
        {"sql": INSERT, "params": ["ada", 3]},
        {"sql": INSERT, "params": ["bea", 4]},
        {"sql": "UPDATE engine_probe SET n = n + ? WHERE n > ?", "params": [10, 0]},
    ]})
    assert write.status_code == 200, write.text
    body = write.json()
    assert [r["changes"] for r in body["results"]] == [1, 1, 2]
    assert isinstance(body["bookmark"], str) and body["bookmark"]
    read = d1_worker.post({"mode": "read", "bookmark": body["bookmark"], "statements": [
        {"sql": "SELECT name, n, note FROM engine_probe ORDER BY name"},
    ]})
    assert read.status_code == 200, read.text
    (result,) = read.json()["results"]
    assert result["columns"] == ["name", "n", "note"]
    assert result["rows"] == [["ada", 13, None], ["bea", 14, None]]
    assert read.json()["bookmark"] >= body["bookmark"]


def test_the_worker_keeps_d1s_message_for_sql_that_fails(d1_worker: WorkerProcess) -> None:
    response = d1_worker.post({"mode": "read", "statements": [{"sql": "SELECT * FROM no_such_table"}]})
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["code"], body["outcome"]) == ("sql_error", "rolled_back")
    assert "no such table: no_such_table" in body["detail"]


def test_a_worker_without_a_token_refuses_everything(wrangler: Wrangler, tmp_path: Path) -> None:
    worker = WorkerProcess(wrangler, tmp_path / "state", token=None).start()
    try:
        for token in (None, "", "x" * 64):
            response = worker.post({"mode": "read", "statements": [{"sql": "SELECT 1 AS one"}]},
                                   token=None, headers={"Authorization": f"Bearer {token}"} if token else {})
            assert response.status_code == 500, response.text
            assert response.json()["code"] == "token_not_configured"
            assert "DREAMTREE_D1_TOKEN is not set" in response.json()["detail"]

        async def open_engine() -> None:
            engine = D1Engine(worker.url, "y" * 64)
            try:
                await engine.open()
            finally:
                await engine.close()

        with pytest.raises(EngineAuthFailed, match="no usable DREAMTREE_D1_TOKEN"):
            anyio.run(open_engine)
    finally:
        worker.stop()


# --- atomic batches, guards and constraints on D1 ------------------------------------------------


@pytest.mark.anyio
async def test_a_write_batch_whose_last_statement_fails_leaves_nothing_written(engine: D1Engine) -> None:
    await engine.batch([Stmt(INSERT, ("kept", 1))], write=True)
    with pytest.raises(GuardFailed) as failed:
        await engine.batch([
            Stmt(INSERT, ("lost-1", 1)),
            Stmt("UPDATE engine_probe SET n = 99 WHERE name = ?", ("kept",)),
            Stmt(INSERT, ("lost-2", 2)),
            guard("never_holds", "? = 1", (0,)),
        ], write=True)
    assert failed.value.name == "never_holds"
    with pytest.raises(ConstraintFailed):
        await engine.batch([
            Stmt(INSERT, ("lost-3", 1)),
            Stmt("UPDATE engine_probe SET n = 98 WHERE name = ?", ("kept",)),
            Stmt(INSERT, ("kept", 2)),  # UNIQUE(name)
        ], write=True)
    (rows,) = await engine.batch([Stmt("SELECT name, n FROM engine_probe")], write=False)
    assert [(r["name"], r["n"]) for r in rows.rows] == [("kept", 1)]


def test_json_extract_carries_the_guard_name_in_workerds_sqlite(d1_worker: WorkerProcess) -> None:
    statement = changed("probe_gone")
    response = d1_worker.post({"mode": "write", "statements": [
        {"sql": "UPDATE d1_migrations SET name = name WHERE id = ?", "params": [-1]},  # changes nothing
        {"sql": statement.sql, "params": list(statement.params)},
    ]})
    assert response.status_code == 409, response.text
    body = response.json()
    assert (body["code"], body["outcome"]) == ("guard_failed", "rolled_back")
    assert "guard:probe_gone" in body["detail"]
    assert guard_name(body["detail"]) == "probe_gone"


@pytest.mark.anyio
async def test_guards_come_back_as_guard_failed_with_their_name(engine: D1Engine) -> None:
    await engine.batch([Stmt(INSERT, ("ada", 1))], write=True)
    with pytest.raises(GuardFailed) as failed:
        await engine.batch([Stmt("UPDATE engine_probe SET n = 2 WHERE name = ?", ("nobody",)),
                            changed("probe_row_gone")], write=True)
    assert failed.value.name == "probe_row_gone"
    with pytest.raises(GuardFailed) as failed:
        await engine.batch([guard("probe_count", "(SELECT count(*) FROM engine_probe) = ?", (5,))], write=True)
    assert failed.value.name == "probe_count"
    # A guard that holds is an ordinary statement.
    results = await engine.batch([Stmt("UPDATE engine_probe SET n = 2 WHERE name = ?", ("ada",)),
                                  changed("probe_row_gone")], write=True)
    assert results[0].changes == 1


@pytest.mark.anyio
async def test_constraints_come_back_as_on_sqlite(engine: D1Engine) -> None:
    await engine.batch([Stmt(INSERT, ("ada", 1))], write=True)
    with pytest.raises(ConstraintFailed) as failed:
        await engine.batch([Stmt(INSERT, ("ada", 2))], write=True)
    # D1's "…: SQLITE_CONSTRAINT (extended: …)" suffix is dropped: the sqlite engine's text.
    assert failed.value.message == "UNIQUE constraint failed: engine_probe.name"
    assert failed.value.unique and failed.value.on("engine_probe.name")
    with pytest.raises(ConstraintFailed, match="NOT NULL constraint failed: engine_probe.name"):
        await engine.batch([Stmt(INSERT, (None, 2))], write=True)


@pytest.mark.anyio
async def test_other_sql_errors_are_d1_errors_with_d1s_message(engine: D1Engine) -> None:
    with pytest.raises(D1Error) as failed:
        await engine.batch([Stmt("SELECT sqlite_version()")], write=False)
    assert failed.value.status == 422 and "not authorized" in failed.value.detail
    with pytest.raises(D1Error) as refused:
        await engine.batch([Stmt("PRAGMA journal_mode")], write=False)
    assert refused.value.status == 400 and "D1 refuses PRAGMA journal_mode" in refused.value.detail


# --- rows and types ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_rows_by_name_and_position_with_d1s_types(engine: D1Engine) -> None:
    await engine.batch([Stmt(INSERT, ("zoë ✓", 7))], write=True)
    (result,) = await engine.batch([Stmt(
        "SELECT id, name, n, note, n * 1.5 AS half, typeof(n) AS n_type, ? AS flag FROM engine_probe", (True,)
    )], write=False)
    (row,) = result.rows
    assert isinstance(row, D1Row)
    assert row.keys() == ["id", "name", "n", "note", "half", "n_type", "flag"]
    assert row["name"] == row[1] == row["NAME"] == "zoë ✓"
    assert row["n"] == 7 and type(row["n"]) is int  # an INTEGER column gives a Python int
    assert row["n_type"] == "integer"  # column affinity stored the bound number as an integer
    assert row["half"] == 10.5 and row["note"] is None
    assert row["flag"] == 1  # booleans are bound as 1 / 0
    assert dict(row) == {"id": row[0], "name": "zoë ✓", "n": 7, "note": None, "half": 10.5, "n_type": "integer", "flag": 1}
    with pytest.raises(IndexError):
        row["missing"]
    assert result.value() == row["id"] and result.one() is row


@pytest.mark.anyio
async def test_d1s_batch_keeps_one_of_two_equal_column_names_and_moves_integer_names_first(engine: D1Engine) -> None:
    """D1's batch() turns rows into objects (docs/d1.md): alias every column of shipped SQL."""
    (same, numbered, aliased) = await engine.batch([
        Stmt("SELECT 1 AS a, 2 AS a"),
        Stmt("SELECT 'x' AS name, 7"),
        Stmt("SELECT 'x' AS name, 7 AS seven"),
    ], write=False)
    assert len(same.rows[0]) == 1
    assert numbered.rows[0].keys() == ["7", "name"]  # the unaliased column jumped to the front
    assert aliased.rows[0].keys() == ["name", "seven"] and tuple(aliased.rows[0]) == ("x", 7)


@pytest.mark.anyio
async def test_d1_binds_every_number_as_real_where_no_affinity_decides(engine: D1Engine) -> None:
    """What docs/d1.md warns about: the binding carries numbers as doubles. An INTEGER column
    turns 3.0 back into 3; an expression or a TEXT column keeps the REAL ("3.0")."""
    (result,) = await engine.batch([Stmt("SELECT typeof(?) AS t, CAST(? AS TEXT) AS s", (3, 3))], write=False)
    assert result.rows[0]["t"] in ("real", "integer")  # real on wrangler's local D1
    if result.rows[0]["t"] == "real":
        assert result.rows[0]["s"] == "3.0"


# --- the engine's semantics: works, gates, touches, retries ---------------------------------------


class FakeGate:
    """A gate like the session's: one statement read with the first batch, then verified."""

    def __init__(self, *, refuse: Exception | None = None, cleanup: Stmt | None = None,
                 touch: Stmt | None = None, holds: bool = True) -> None:
        self.refuse, self.cleanup, self.touch, self._holds = refuse, cleanup, touch, holds
        self.checked: list[Any] = []

    def statement(self) -> Stmt:
        return Stmt("SELECT ? AS gate", ("open",))

    def verify(self, result: Result) -> Stmt | None:
        self.checked.append(result.value())
        if self.refuse is not None:
            raise Refused(self.refuse, cleanup=self.cleanup)
        return self.touch

    def holds(self) -> Stmt:
        return guard("gate_closed", "? = 1", (1 if self._holds else 0,))


class NotAllowed(Exception):
    pass


def read_names() -> Work[list[str]]:
    (result,) = yield Read(Stmt(NAMES))
    return [str(v) for v in result.column()]


def add(name: str) -> Work[str]:
    (existing,) = yield Read(Stmt("SELECT count(*) FROM engine_probe WHERE name = ?", (name,)))
    if existing.value():
        return "exists"
    yield Write(Stmt(INSERT, (name, 1)))
    return "added"


@pytest.mark.anyio
async def test_a_gated_read_is_one_round_trip_with_the_gate_inside(engine: D1Engine, d1_round_trips: RoundTrips) -> None:
    await engine.batch([Stmt(INSERT, ("ada", 1))], write=True)
    d1_round_trips.clear()
    gate = FakeGate()
    assert await engine.query(read_names, gate) == ["ada"]
    assert gate.checked == ["open"]
    d1_round_trips.assert_read_endpoint()


@pytest.mark.anyio
async def test_a_change_is_a_read_then_one_write_batch(engine: D1Engine, d1_round_trips: RoundTrips) -> None:
    assert await engine.change(lambda: add("ada"), FakeGate()) == "added"
    assert d1_round_trips.modes == ["read", "write"]
    d1_round_trips.assert_write_endpoint()
    d1_round_trips.clear()
    assert await engine.change(lambda: add("ada"), FakeGate()) == "exists"
    assert d1_round_trips.modes == ["read"]
    assert await names(engine) == ["ada"]


@pytest.mark.anyio
async def test_a_refused_gate_writes_its_cleanup_then_raises(engine: D1Engine) -> None:
    cleanup = Stmt(INSERT, ("cleaned-up", 0))
    with pytest.raises(NotAllowed):
        await engine.query(read_names, FakeGate(refuse=NotAllowed("401"), cleanup=cleanup))
    assert await names(engine) == ["cleaned-up"]
    with pytest.raises(NotAllowed):
        await engine.change(lambda: add("never"), FakeGate(refuse=NotAllowed("401")))
    assert await names(engine) == ["cleaned-up"]


@pytest.mark.anyio
async def test_the_gates_touch_is_written_after_a_read_only_work_and_inside_a_write(
    engine: D1Engine, d1_round_trips: RoundTrips
) -> None:
    touch = Stmt("INSERT INTO engine_probe (name, n) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET n = n + 1", ("touched",))
    assert await engine.query(read_names, FakeGate(touch=touch)) == []
    assert d1_round_trips.modes == ["read", "write"]
    assert await names(engine) == ["touched"]
    d1_round_trips.clear()
    assert await engine.change(lambda: add("ada"), FakeGate(touch=touch)) == "added"
    assert d1_round_trips.modes == ["read", "write"]  # the touch rode along with the write batch
    (rows,) = await engine.batch([Stmt("SELECT name, n FROM engine_probe ORDER BY name")], write=False)
    assert [(r[0], r[1]) for r in rows.rows] == [("ada", 1), ("touched", 2)]


@pytest.mark.anyio
async def test_a_failing_guard_runs_the_work_again_then_answers_changed_concurrently(
    engine: D1Engine, d1_round_trips: RoundTrips
) -> None:
    runs = []

    def stubborn() -> Work[None]:
        runs.append(1)
        yield Read(Stmt(NAMES))
        yield Write(Stmt(INSERT, (f"try-{len(runs)}", 1)), guard("someone_else", "? = 1", (0,)))

    with pytest.raises(ChangedConcurrently) as failed:
        await engine.change(stubborn, FakeGate())
    assert failed.value.name == "someone_else"
    assert len(runs) == ATTEMPTS
    assert d1_round_trips.modes == ["read", "write"] * ATTEMPTS
    assert await names(engine) == []

    with pytest.raises(ChangedConcurrently) as gate_failed:  # the gate's own guard, at the front
        await engine.change(lambda: add("ada"), FakeGate(holds=False))
    assert gate_failed.value.name == "gate_closed"
    assert await names(engine) == []


@pytest.mark.anyio
async def test_a_work_may_turn_a_constraint_into_its_own_answer(engine: D1Engine) -> None:
    await engine.batch([Stmt(INSERT, ("ada", 1))], write=True)

    def claim(name: str) -> Work[str]:
        yield Read()
        try:
            yield Write(Stmt(INSERT, (name, 1)))
        except ConstraintFailed as exc:
            return "taken" if exc.on("engine_probe.name") else "?"
        return "claimed"

    assert await engine.change(lambda: claim("ada"), None) == "taken"
    assert await engine.change(lambda: claim("bea"), None) == "claimed"


@pytest.mark.anyio
async def test_split_mode_runs_the_works_own_code_off_the_event_loop(engine: D1Engine) -> None:
    loop_thread = threading.current_thread()
    seen = []

    def sealing() -> Work[str]:
        seen.append(threading.current_thread())
        yield Read(Stmt(NAMES))
        seen.append(threading.current_thread())
        yield Write(Stmt(INSERT, ("sealed", 1)))
        seen.append(threading.current_thread())
        return "done"

    assert await engine.change(sealing, None, split=True) == "done"
    assert seen and all(thread is not loop_thread for thread in seen)
    assert await names(engine) == ["sealed"]


@pytest.mark.anyio
async def test_query_refuses_a_work_that_writes(engine: D1Engine) -> None:
    with pytest.raises(RuntimeError, match="reads only"):
        await engine.query(lambda: add("ada"), None)
    assert await names(engine) == []


# --- the Worker down, then back ------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_stopped_worker_is_engine_unavailable_in_time_and_the_engine_recovers(
    wrangler: Wrangler, tmp_path: Path
) -> None:
    token = secrets.token_hex(32)
    worker = WorkerProcess(wrangler, tmp_path / "state", token).start()
    engine = D1Engine(worker.url, token, timeout=2.0)
    try:
        await engine.batch([Stmt(PROBE_DDL), Stmt(INSERT, ("before", 1))], write=True)
        assert await engine.query(read_names, None) == ["before"]  # a kept-alive connection now

        worker.stop()
        for attempt in (lambda: engine.query(read_names, None), lambda: engine.change(lambda: add("during"), None)):
            started = time.monotonic()
            with pytest.raises(EngineUnavailable) as down:
                await attempt()
            assert time.monotonic() - started < engine.timeout + 0.5
            assert token not in str(down.value)

        restarted = WorkerProcess(wrangler, worker.persist_to, token, port=worker.port).start()
        try:
            assert await engine.query(read_names, None) == ["before"]  # same engine, same pool
            assert await engine.change(lambda: add("after"), None) == "added"
            assert await engine.query(read_names, None) == ["after", "before"]
        finally:
            restarted.stop()
    finally:
        await engine.close()
        worker.stop()


@pytest.mark.anyio
async def test_open_checks_the_token_once_with_a_clear_message(d1_worker: WorkerProcess) -> None:
    wrong = D1Engine(d1_worker.url, "w" * 64)
    try:
        with pytest.raises(EngineAuthFailed) as failed:
            await wrong.open()
    finally:
        await wrong.close()
    assert "refused the token" in str(failed.value) and "DREAMTREE_D1_TOKEN" in str(failed.value)
    assert "w" * 64 not in str(failed.value) and "w" * 64 not in repr(wrong)
    assert d1_worker.token is not None
    right = D1Engine(d1_worker.url, d1_worker.token)
    try:
        await right.open()
    finally:
        await right.close()
    nowhere = D1Engine(f"http://127.0.0.1:{d1util.free_port()}", d1_worker.token, timeout=1.0)
    try:
        with pytest.raises(EngineUnavailable, match="does not answer"):
            await nowhere.open()
    finally:
        await nowhere.close()


# --- migrations through the Worker, interchangeable with wrangler's ---------------------------------


def _probe_migration(directory: Path) -> str:
    number = max(int(name.split("_", 1)[0]) for name in MIGRATION_NAMES) + 1
    name = f"{number:04d}_probe.sql"
    (directory / name).write_text(
        f"-- Migration number: {number:04d}\n"
        "CREATE INDEX idx_probe_users_created_at ON users(created_at); -- a comment D1 would choke on\n",
        encoding="utf-8",
    )
    return name


async def _on(worker: WorkerProcess, fn: Any, *args: Any) -> Any:
    assert worker.token is not None
    engine = D1Engine(worker.url, worker.token)
    try:
        return await fn(engine, *args)
    finally:
        await engine.close()


async def _ledger(engine: D1Engine) -> list[tuple[int, str]]:
    (rows,) = await engine.batch([Stmt("SELECT id, name FROM d1_migrations ORDER BY id")], write=False)
    return [(int(r[0]), str(r[1])) for r in rows.rows]


def test_migrations_applied_through_the_worker_leave_nothing_for_wrangler(wrangler: Wrangler, tmp_path: Path) -> None:
    migrations_dir = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, migrations_dir)
    config = d1util.write_config(tmp_path, migrations_dir)
    worker = WorkerProcess(wrangler, tmp_path / "state", secrets.token_hex(32), config=config)

    worker.start()
    try:
        assert anyio.run(_on, worker, migrations.status_on, migrations_dir).pending == MIGRATION_NAMES
        assert anyio.run(_on, worker, migrations.apply_on, migrations_dir) == MIGRATION_NAMES
        assert anyio.run(_on, worker, migrations.apply_on, migrations_dir) == []
    finally:
        worker.stop()
    assert wrangler.migrations_list(persist_to=worker.persist_to, config=config) == []
    assert wrangler.migrations_apply(persist_to=worker.persist_to, config=config) == []

    probe = _probe_migration(migrations_dir)  # a new file: wrangler applies it, we then see it applied
    assert wrangler.migrations_apply(persist_to=worker.persist_to, config=config) == [probe]
    worker.start()
    try:
        state = anyio.run(_on, worker, migrations.status_on, migrations_dir)
        assert (state.applied, state.pending) == ([*MIGRATION_NAMES, probe], [])
        assert anyio.run(_on, worker, migrations.apply_on, migrations_dir) == []
        assert anyio.run(_on, worker, _ledger) == list(enumerate([*MIGRATION_NAMES, probe], start=1))
    finally:
        worker.stop()


def test_migrations_wrangler_applied_leave_nothing_for_the_worker(wrangler: Wrangler, tmp_path: Path) -> None:
    migrations_dir = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, migrations_dir)
    config = d1util.write_config(tmp_path, migrations_dir)
    worker = WorkerProcess(wrangler, tmp_path / "state", secrets.token_hex(32), config=config)
    assert wrangler.migrations_apply(persist_to=worker.persist_to, config=config) == MIGRATION_NAMES

    probe = _probe_migration(migrations_dir)  # a new file: we apply it through the Worker
    worker.start()
    try:
        state = anyio.run(_on, worker, migrations.status_on, migrations_dir)
        assert (state.applied, state.pending) == (MIGRATION_NAMES, [probe])
        assert anyio.run(_on, worker, migrations.apply_on, migrations_dir) == [probe]
        assert anyio.run(_on, worker, migrations.apply_on, migrations_dir) == []
    finally:
        worker.stop()
    assert wrangler.migrations_list(persist_to=worker.persist_to, config=config) == []
    rows = wrangler.execute("SELECT id, name FROM d1_migrations ORDER BY id", persist_to=worker.persist_to, config=config)
    assert [(r["id"], r["name"]) for r in rows] == list(enumerate([*MIGRATION_NAMES, probe], start=1))
    index = wrangler.execute("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'idx_probe_users_created_at'",
                             persist_to=worker.persist_to, config=config)
    assert index == [{"n": 1}]


def test_a_failing_migration_file_applies_nothing_and_names_the_file(d1_worker: WorkerProcess, tmp_path: Path) -> None:
    migrations_dir = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, migrations_dir)
    number = max(int(name.split("_", 1)[0]) for name in MIGRATION_NAMES) + 1
    bad = f"{number:04d}_broken.sql"
    (migrations_dir / bad).write_text(
        "CREATE TABLE broken_half (id INTEGER PRIMARY KEY);\nINSERT INTO no_such_table VALUES (1);\n", encoding="utf-8")
    with pytest.raises(migrations.MigrationError) as failed:
        anyio.run(_on, d1_worker, migrations.apply_on, migrations_dir)
    assert failed.value.file == bad and "no such table: no_such_table" in str(failed.value)
    state = anyio.run(_on, d1_worker, migrations.status_on, migrations_dir)
    assert state.pending == [bad]

    async def table_exists(engine: D1Engine) -> int:
        (rows,) = await engine.batch([Stmt("SELECT count(*) FROM sqlite_schema WHERE name = 'broken_half'")], write=False)
        return int(rows.value())

    assert anyio.run(_on, d1_worker, table_exists) == 0


# --- the commands ---------------------------------------------------------------------------------


def test_dreamtree_migrate_and_serve_on_d1(d1_worker: WorkerProcess, tmp_path: Path) -> None:
    assert d1_worker.token is not None
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "DREAMTREE_ENGINE": "d1", "DREAMTREE_D1_URL": d1_worker.url,
           "DREAMTREE_D1_TOKEN": d1_worker.token, "DREAMTREE_ARGON2": "fast"}

    def dreamtree(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=root, env={**env, **extra},
                              capture_output=True, text=True, timeout=120)

    status = dreamtree("migrate", "--status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines() == [*(f"applied  {name}" for name in MIGRATION_NAMES), "up to date"]
    migrate = dreamtree("migrate")
    assert migrate.stdout.strip() == f"D1 via {d1_worker.url}: already up to date, nothing applied"

    wrong = dreamtree("serve", "--db", str(tmp_path / "dreamtree.db"), "--port", str(d1util.free_port()),
                      DREAMTREE_D1_TOKEN="w" * 64)
    assert wrong.returncode == 1
    assert wrong.stderr.strip().splitlines() == [
        f"dreamtree: error: the D1 Worker at {d1_worker.url} refused the token (the D1 Worker at {d1_worker.url} "
        "answered 401 unauthorized); DREAMTREE_D1_TOKEN must equal the Worker's"]

    port = d1util.free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--db", str(tmp_path / "dreamtree.db"), "--port", str(port),
         "--cpu", "none", "--log-level", "warning"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()[0]
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.1)
        assert page.status_code == 200 and "<html" in page.text.lower()
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)  # through the Worker
        assert health.json() == {"status": "ok", "schema_version": int(MIGRATION_NAMES[-1].split("_")[0])}
    finally:
        os.killpg(server.pid, 15)
        output = server.communicate(timeout=30)[0]
    assert f"(database D1 via {d1_worker.url})" in output
    assert d1_worker.token not in output


def test_the_app_opens_the_d1_engine_in_one_round_trip(d1_settings: Settings, d1_round_trips: RoundTrips) -> None:
    from litestar.testing import TestClient

    from app.http.app import create_app

    with TestClient(create_app(d1_settings), base_url="https://testserver.local") as client:
        assert isinstance(client.app.state.db, D1Engine)
        assert d1_round_trips.modes == ["read"]  # open(): the Worker answers and takes the token
        page = client.get("/")
        assert page.status_code == 200
    assert d1_round_trips.modes == ["read"]  # a page touches no database


def test_the_app_on_d1_keeps_the_readers_bookmark_in_a_cookie(d1_settings: Settings, d1_round_trips: RoundTrips) -> None:
    from litestar.testing import TestClient

    from app.http.app import create_app

    with TestClient(create_app(d1_settings), base_url="https://testserver.local") as client:
        d1_round_trips.clear()
        assert client.get("/healthz").status_code == 200
        assert "dt_bookmark" not in client.cookies  # a read sets no bookmark cookie
        started = client.post("/api/session")  # a write: a new anonymous workbook
        assert started.status_code == 201, started.text
        cookies = [c for c in started.headers.get_list("set-cookie") if c.startswith("dt_bookmark=")]
        assert len(cookies) == 1 and cookies[0].endswith("; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax; Secure")
        bookmark = client.cookies.get("dt_bookmark")
        assert bookmark and d1_round_trips.bookmarks[-1] is None  # the write went without one
        d1_round_trips.clear()
        me = client.get("/api/me")
        assert me.status_code == 200, me.text
        assert d1_round_trips.bookmarks and all(b is not None and b >= bookmark for b in d1_round_trips.bookmarks)


@pytest.mark.anyio
async def test_the_sample_workbook_seeds_through_the_worker_in_one_read_and_one_write(
    engine: D1Engine, d1_round_trips: RoundTrips
) -> None:
    """What `serve` does on an empty D1 (seed_if_empty): the seed's own batches, as D1 takes them."""
    from app.domain import seeding

    assert await seeding.is_unseeded(engine)
    d1_round_trips.clear()
    result = await seeding.seed_on(engine)
    assert result.written and result.plan.changes > 0
    assert d1_round_trips.modes == ["read", "write"]
    assert not await seeding.is_unseeded(engine)
    again = await seeding.seed_on(engine)  # a re-run finds nothing to change
    assert again.plan.changes == 0 and not again.written


READ_ENDPOINTS = ["/healthz", "/api/me", "/api/settings", "/api/daily-dos", "/api/workbook/next", "/api/tools",
                  "/api/competencies", "/api/skills?q=a"]


def test_endpoints_on_d1_keep_to_one_round_trip_per_read_and_two_per_write(
    d1_settings: Settings, d1_round_trips: RoundTrips
) -> None:
    """How to use d1_round_trips on the app: every read endpoint one batch (the session checked
    inside it), every write at most a read batch and a write batch."""
    from litestar.testing import TestClient

    from app.http.app import create_app

    with TestClient(create_app(d1_settings), base_url="https://testserver.local") as client:
        client.get("/healthz")  # picks up the CSRF cookie
        assert client.post("/api/session").status_code == 201
        for path in READ_ENDPOINTS:
            d1_round_trips.clear()
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
            d1_round_trips.assert_read_endpoint()
        d1_round_trips.clear()
        changed = client.patch("/api/settings", json={"font": "serif"},
                               headers={"x-csrftoken": client.cookies.get("csrftoken") or ""})
        assert changed.status_code == 200, changed.text
        d1_round_trips.assert_write_endpoint()
        assert client.get("/api/settings").json()["font"] == "serif"
