"""The engine seam on the sqlite engine: batches, guards, constraints, gates, retries.

The same rules hold on the d1 engine (tests/test_d1_engine.py runs the D1 side); here they
are shown on SQLite, where a work runs inside one BEGIN IMMEDIATE transaction (or split like
D1), and where a failed batch must leave nothing behind exactly as D1's batch() does.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest

from app.db.connection import connect_sync, run_batch
from app.db.engine import (
    ChangedConcurrently,
    ConstraintFailed,
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
from app.domain import keys, workbook
from app.domain.errors import Unauthorized
from app.domain.sessions import Principal
from app.domain.skill_tags import tag_statements
from tests.helpers import with_sqlite_database

STAMP = "2026-03-08T07:30:00.000Z"


def users(path: Path) -> list[str]:
    with connect_sync(path) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM users ORDER BY id")]


def insert_user(user_id: str) -> Stmt:
    return Stmt("INSERT INTO users (id, created_at, updated_at) VALUES (?, ?, ?)", (user_id, STAMP, STAMP))


def run(path: Path, fn: Any) -> Any:
    return anyio.run(with_sqlite_database, path, fn)


def test_a_guard_names_itself_in_the_error(db_path: Path) -> None:
    with connect_sync(db_path) as conn:
        with pytest.raises(GuardFailed) as failed:
            run_batch(conn, [guard("nothing_here", "EXISTS (SELECT 1 FROM users)")], True)
    assert failed.value.name == "nothing_here"
    assert guard_name("JSON path error near 'guard:answer_exists'") == "answer_exists"
    assert guard_name("bad JSON path: 'guard:answer_exists'") == "answer_exists"
    assert guard_name("UNIQUE constraint failed: emails.email") is None


def test_a_write_batch_that_fails_at_its_last_statement_leaves_nothing(db_path: Path) -> None:
    def work() -> Work[None]:
        yield Read()
        yield Write(insert_user("u1"), insert_user("u2"), guard("always_fails", "0"))

    with pytest.raises(ChangedConcurrently):
        run(db_path, lambda db: db.change(work, None))
    assert users(db_path) == []

    def constraint() -> Work[None]:
        yield Read()
        yield Write(insert_user("u1"), insert_user("u1"))

    with pytest.raises(ConstraintFailed) as failed:
        run(db_path, lambda db: db.change(constraint, None))
    assert failed.value.unique
    assert users(db_path) == []


def test_a_failed_guard_reaches_the_work_and_is_retried_until_it_gives_up(db_path: Path) -> None:
    attempts: list[int] = []

    def work() -> Work[str]:
        attempts.append(1)
        yield Read()
        yield Write(insert_user("u1"), changed("never", 5))
        return "done"

    with pytest.raises(ChangedConcurrently) as gave_up:
        run(db_path, lambda db: db.change(work, None))
    assert gave_up.value.name == "never" and len(attempts) == 3
    assert users(db_path) == []


def test_a_work_may_answer_for_a_failed_constraint_and_nothing_is_written(db_path: Path) -> None:
    run(db_path, lambda db: db.change(lambda: (yield Write(insert_user("taken"))), None))

    def work() -> Work[str]:
        yield Read()
        try:
            yield Write(insert_user("new"), insert_user("taken"))
        except ConstraintFailed as failed:
            return "taken" if failed.unique else "?"
        return "written"

    assert run(db_path, lambda db: db.change(work, None)) == "taken"
    assert users(db_path) == ["taken"]


@pytest.mark.parametrize("split", [False, True])
def test_reads_results_and_changes_come_back_in_order(db_path: Path, split: bool) -> None:
    def work() -> Work[tuple[int, int, list[Any]]]:
        (count,) = yield Read(Stmt("SELECT count(*) FROM users"))
        written = yield Write(insert_user("a"), insert_user("b"),
                              Stmt("UPDATE users SET updated_at = ? WHERE id IN ('a', 'b')", (STAMP,)),
                              Stmt("SELECT id FROM users ORDER BY id"))
        return count.value(), written[2].changes, written[3].column()

    assert run(db_path, lambda db: db.change(work, None, split=split)) == (0, 2, ["a", "b"])


class FakeGate:
    def __init__(self, refuse: bool = False, cleanup: Stmt | None = None, touch: Stmt | None = None) -> None:
        self.refuse, self.cleanup, self.touch = refuse, cleanup, touch
        self.checked = 0

    def statement(self) -> Stmt:
        return Stmt("SELECT 'gate'")

    def verify(self, result: Result) -> Stmt | None:
        assert result.value() == "gate"
        self.checked += 1
        if self.refuse:
            raise Refused(Unauthorized("no"), cleanup=self.cleanup)
        return self.touch

    def holds(self) -> Stmt:
        return guard("gate_closed", "1")


def test_a_gate_reads_with_the_first_batch_and_its_refusal_writes_its_cleanup(db_path: Path) -> None:
    def reads() -> Work[list[Any]]:
        (rows,) = yield Read(Stmt("SELECT 1"))
        return rows.column()

    gate = FakeGate()
    assert run(db_path, lambda db: db.query(reads, gate)) == [1] and gate.checked == 1

    refusing = FakeGate(refuse=True, cleanup=insert_user("cleaned"))
    with pytest.raises(Unauthorized):
        run(db_path, lambda db: db.query(reads, refusing))
    assert users(db_path) == ["cleaned"]


def test_a_touch_is_written_with_the_write_or_after_a_read(db_path: Path) -> None:
    def reads() -> Work[None]:
        yield Read()

    run(db_path, lambda db: db.query(reads, FakeGate(touch=insert_user("after_read"))))
    assert users(db_path) == ["after_read"]

    def writes() -> Work[None]:
        yield Read()
        yield Write(insert_user("work"))

    run(db_path, lambda db: db.change(writes, FakeGate(touch=insert_user("with_write"))))
    assert users(db_path) == ["after_read", "with_write", "work"]


def test_a_query_cannot_write_and_a_gated_work_reads_first(db_path: Path) -> None:
    def writes() -> Work[None]:
        yield Write(insert_user("x"))

    with pytest.raises(RuntimeError):
        run(db_path, lambda db: db.query(writes, None))
    with pytest.raises(RuntimeError):
        run(db_path, lambda db: db.change(writes, FakeGate()))
    assert users(db_path) == []


# --- the guards of real works, with a change made between their read and their write --------


def drive_with_interference(conn: sqlite3.Connection, work: Work[Any], interfere: Any) -> Any:
    """Run a work by hand like the d1 engine does (read batch, then write batch), with
    `interfere(conn)` run between them: what a second process could do meanwhile."""
    batch = next(work)
    results = run_batch(conn, batch.statements, False)
    interfere(conn)
    batch = work.send(results)
    assert isinstance(batch, Write)
    try:
        run_batch(conn, batch.statements, True)
    except GuardFailed as failed:
        return failed.name
    raise AssertionError("the guard let a stale decision write")


def principal(conn: sqlite3.Connection, user_id: str) -> Principal:
    conn.execute("INSERT INTO users (id, created_at, updated_at) VALUES (?, ?, ?)", (user_id, STAMP, STAMP))
    return Principal(user_id, "sid-" + user_id, keys.new_data_key(), True)


def test_two_first_answers_at_once_leave_one_answer(seeded: Path) -> None:
    with connect_sync(seeded) as conn:
        ann = principal(conn, "ann")
        answer = {"text": "first"}
        first = workbook.answer_work(ann, "1.1.1.v1", answer, None, STAMP, keys.canonical_json(answer))

        def meanwhile(c: sqlite3.Connection) -> None:
            # the same reader's other tab saves its first answer between our read and write
            list(run_batch(c, [Stmt("INSERT INTO exercise_responses (id, user_id, part_id, module_id, exercise_id,"
                                    " version, full_exercise_id, response_json, responded_at)"
                                    " VALUES ('other', 'ann', '1', '1', '1', 1, '1.1.1.v1', '{}', ?)", (STAMP,))], True))

        assert drive_with_interference(conn, first, meanwhile) == "answer_exists"
        assert conn.execute("SELECT count(*) FROM exercise_responses WHERE user_id = 'ann'").fetchone()[0] == 1


def test_tag_statements_never_reach_another_readers_row(seeded: Path) -> None:
    with connect_sync(seeded) as conn:
        conn.execute("INSERT INTO users (id, created_at, updated_at) VALUES ('ann', ?, ?), ('bob', ?, ?)",
                     (STAMP,) * 4)
        conn.execute("INSERT INTO exercise_responses (id, user_id, part_id, module_id, exercise_id, version,"
                     " full_exercise_id, response_json, responded_at)"
                     " VALUES ('bobs-answer', 'bob', '1', '1', '1', 1, '1.1.1.v1', '{}', ?)", (STAMP,))
        skill = conn.execute("SELECT id FROM skills LIMIT 1").fetchone()[0]
        conn.execute("INSERT INTO exercise_skills (id, exercise_instance_id, skill_id, created_at)"
                     " VALUES ('t1', 'bobs-answer', ?, ?)", (skill, STAMP))
        run_batch(conn, tag_statements("ann", "bobs-answer", [], STAMP), True)
        run_batch(conn, tag_statements("ann", "bobs-answer", [skill], STAMP), True)
        assert [r[0] for r in conn.execute("SELECT id FROM exercise_skills")] == ["t1"]
