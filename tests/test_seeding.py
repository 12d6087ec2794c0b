"""Seeding: idempotent, versioned, validated before writing, and the same SQL for D1."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from click.testing import CliRunner

from app.cli import main, seed_if_empty
from app.db import engine, migrations
from app.db.connection import Database, connect_sync, run_batch
from app.db.engine import ChangedConcurrently, GuardFailed, Work, Write
from app.db.migrations import split_statements
from app.db.sqltext import render
from app.db.upsert import Upsert
from app.domain import seeding
from app.domain.seeding import SeedInvalid, load, read_seed
from app.timeutil import now_iso

T = TypeVar("T")
LOAD = "app.domain.seeding.load"

SMALL = Path(__file__).parent / "fixtures" / "seed_small"


@pytest.fixture
def seed_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "seed"
    shutil.copytree(SMALL, folder)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def table(conn: sqlite3.Connection, name: str, order: str = "1") -> list[dict]:
    quoted = '"references"' if name == "references" else name
    return [dict(r) for r in conn.execute(f"SELECT * FROM {quoted} ORDER BY {order}")]


def snapshot(conn: sqlite3.Connection) -> dict[str, list[dict]]:
    return {name: table(conn, name) for name in seeding.SEED_TABLES}


def test_first_seed_writes_everything_and_second_changes_nothing(conn: sqlite3.Connection, seed_dir: Path) -> None:
    first = seeding.seed(conn, directory=seed_dir)
    assert first.written and first.plan.tables["exercise_sequence"].insert == 4
    before = snapshot(conn)
    second = seeding.seed(conn, directory=seed_dir)
    assert not second.written and second.plan.changes == 0
    assert snapshot(conn) == before


def test_rows_carry_stable_ids_titles_and_derived_fields(conn: sqlite3.Connection, seed_dir: Path) -> None:
    seeding.seed(conn, directory=seed_dir)
    sequence = table(conn, "exercise_sequence", "sequence_order")
    assert [(r["full_exercise_id"], r["sequence_order"], r["unlocks_tool"], r["is_required"]) for r in sequence] == [
        ("1.1.1.v1", 1, "list-builder", 1),
        ("1.1.2.v1", 2, None, 0),
        ("1.2.1.v1", 3, "flow-tracker", 1),
        ("1.2.2.v1", 4, None, 1),
    ]
    first_block = conn.execute("SELECT content_text FROM exercise_content WHERE id = '1.1.1.v1.1'").fetchone()[0]
    assert first_block.startswith("# Your Career So Far\n\nList the jobs")
    module_opening = conn.execute("SELECT content_type, content_text FROM exercise_content WHERE id = '1.1.0.v1.1'").fetchone()
    assert tuple(module_opening) == ("transition", "# Taking Stock\n\nLook back before you look forward.")
    variants = conn.execute(
        "SELECT display_order, variant_group FROM exercise_content WHERE full_exercise_id = '1.1.2.v1' ORDER BY display_order"
    ).fetchall()
    assert [tuple(v) for v in variants] == [(1, "control"), (2, "variant_a"), (3, None)]
    tools = {r["id"]: r["unlocks_at_exercise"] for r in table(conn, "tool_types")}
    assert tools == {"list-builder": "1.1.1.v1", "flow-tracker": "1.2.1.v1"}
    # Citation numbers by first appearance in the workbook, not by file order.
    refs = {r["id"]: r["citation_number"] for r in table(conn, "references")}
    assert refs == {"burnett-evans-2016": 1, "csikszentmihalyi-1990": 2}
    levels = conn.execute("SELECT id, level FROM competency_levels ORDER BY level").fetchall()
    assert [tuple(r) for r in levels][0] == ("analytical-thinking-1", 1)


def test_changed_text_same_version_updates_in_place(conn: sqlite3.Connection, seed_dir: Path) -> None:
    seeding.seed(conn, directory=seed_dir)
    old = dict(conn.execute("SELECT * FROM exercise_content WHERE id = '1.1.1.v1.2'").fetchone())
    edit(seed_dir / "workbook" / "part-1.md", "Which one taught you the most?", "Which job taught you the most, and why?")
    edit(seed_dir / "tool_types.yaml", "Track your flow today", "Log a moment of flow")
    result = seeding.seed(conn, directory=seed_dir)
    assert result.plan.tables["exercise_content"].update == 1
    assert result.plan.tables["tool_types"].update == 1
    new = dict(conn.execute("SELECT * FROM exercise_content WHERE id = '1.1.1.v1.2'").fetchone())
    assert new["content_text"] == "Which job taught you the most, and why?"
    assert new["created_at"] == old["created_at"] and new["updated_at"] > old["updated_at"]
    untouched = conn.execute("SELECT updated_at FROM exercise_content WHERE id = '1.1.1.v1.1'").fetchone()[0]
    assert untouched == old["updated_at"]


def answer(conn: sqlite3.Connection, user: str, full: str) -> None:
    part, module, exercise, version = full.split(".")
    conn.execute("INSERT INTO users (id, created_at, updated_at) VALUES (?, 't', 't') ON CONFLICT DO NOTHING", (user,))
    conn.execute(
        "INSERT INTO exercise_responses VALUES (?, ?, ?, ?, ?, ?, ?, '{}', 't')",
        (f"r-{user}-{full}", user, part, module, exercise, int(version[1:]), full),
    )


def test_new_version_deactivates_old_content_and_keeps_answers(conn: sqlite3.Connection, seed_dir: Path) -> None:
    seeding.seed(conn, directory=seed_dir)
    answer(conn, "reader", "1.1.1.v1")
    edit(seed_dir / "workbook" / "part-1.md", "version: 1\nrequired: true\nunlocks_tool: list-builder", "version: 2\nrequired: true\nunlocks_tool: list-builder")
    result = seeding.seed(conn, directory=seed_dir)
    assert result.plan.tables["exercise_content"].insert == 2
    assert result.plan.tables["exercise_content"].deactivate == 2
    active = conn.execute("SELECT full_exercise_id, is_active FROM exercise_content WHERE exercise_id = '1' AND module_id = '1' AND part_id = '1'").fetchall()
    assert sorted(tuple(r) for r in active) == [("1.1.1.v1", 0), ("1.1.1.v1", 0), ("1.1.1.v2", 1), ("1.1.1.v2", 1)]
    sequence = table(conn, "exercise_sequence", "sequence_order")
    assert [r["full_exercise_id"] for r in sequence] == ["1.1.1.v2", "1.1.2.v1", "1.2.1.v1", "1.2.2.v1"]
    assert sequence[0]["version"] == 2 and sequence[0]["sequence_order"] == 1
    # The reader's answer to v1 is still there, and still sits at the same place of the sequence.
    place = conn.execute(
        "SELECT es.sequence_order FROM exercise_responses er JOIN exercise_sequence es "
        "ON es.part_id = er.part_id AND es.module_id = er.module_id AND es.exercise_id = er.exercise_id "
        "WHERE er.user_id = 'reader'"
    ).fetchone()[0]
    assert place == 1
    assert conn.execute("SELECT full_exercise_id FROM exercise_responses").fetchone()[0] == "1.1.1.v1"
    assert conn.execute("SELECT unlocks_at_exercise FROM tool_types WHERE id = 'list-builder'").fetchone()[0] == "1.1.1.v2"
    assert seeding.seed(conn, directory=seed_dir).plan.changes == 0


def test_removed_exercise_is_deactivated_never_deleted_and_order_closes_up(conn: sqlite3.Connection, seed_dir: Path) -> None:
    seeding.seed(conn, directory=seed_dir)
    answer(conn, "reader", "1.2.2.v1")
    text = (seed_dir / "workbook" / "part-1.md").read_text()
    (seed_dir / "workbook" / "part-1.md").write_text(text[: text.index("### Exercise 1.2.2")])
    result = seeding.seed(conn, directory=seed_dir)
    assert result.plan.tables["exercise_content"].deactivate == 2
    assert result.plan.tables["exercise_sequence"].delete == 1
    assert conn.execute("SELECT count(*) FROM exercise_content WHERE full_exercise_id = '1.2.2.v1'").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM exercise_responses WHERE full_exercise_id = '1.2.2.v1'").fetchone()[0] == 1


def test_inserting_an_exercise_in_the_middle_renumbers_without_conflicts(conn: sqlite3.Connection, seed_dir: Path) -> None:
    seeding.seed(conn, directory=seed_dir)
    part = seed_dir / "workbook" / "part-1.md"
    text = part.read_text()
    text = text.replace("### Exercise 1.1.2: Good Days", "### Exercise 1.1.2: New One\n\n#### prompt\n\nA new question.\n\n### Exercise 1.1.3: Good Days")
    part.write_text(text)
    seeding.seed(conn, directory=seed_dir)
    sequence = [(r["full_exercise_id"], r["sequence_order"]) for r in table(conn, "exercise_sequence", "sequence_order")]
    assert sequence == [("1.1.1.v1", 1), ("1.1.2.v1", 2), ("1.1.3.v1", 3), ("1.2.1.v1", 4), ("1.2.2.v1", 5)]
    assert seeding.seed(conn, directory=seed_dir).plan.changes == 0


def test_dry_run_writes_nothing(conn: sqlite3.Connection, seed_dir: Path) -> None:
    result = seeding.seed(conn, directory=seed_dir, dry_run=True)
    assert result.plan.changes == 33 and not result.written
    assert conn.execute("SELECT count(*) FROM exercise_content").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("workbook/part-1.md", "unlocks_tool: flow-tracker", "unlocks_tool: time-machine", r"workbook/part-1\.md:\d+: unknown tool type 'time-machine'"),
        ("workbook/part-1.md", "### Exercise 1.1.2:", "### Exercise 1.1.3:", r"workbook/part-1\.md:\d+: gap in the order: exercise 3"),
        ("workbook/part-1.md", "### Exercise 1.2.2:", "### Exercise 1.2.1:", r"workbook/part-1\.md:\d+: duplicate exercise number 1"),
        ("workbook/part-1.md", "reference: csikszentmihalyi-1990", "reference: nobody-2020", r"workbook/part-1\.md:\d+: unknown reference 'nobody-2020'"),
        ("workbook/part-1.md", "#### reflection", "#### musing", r"workbook/part-1\.md:\d+: bad content type 'musing'"),
        ("workbook/part-1.md", "usage: concept", "usage: vibes", r"workbook/part-1\.md:\d+: unknown usage type 'vibes'"),
        ("competencies.yaml", "    - {level: 5, description: Sets the agenda., job_context: Directors}\n", "", r"competencies\.yaml:\d+: competency analytical-thinking needs exactly five levels"),
        ("competencies.yaml", "{level: 5,", "{level: 6,", r"competencies\.yaml:\d+: level 6 is outside 1-5"),
        ("tool_types.yaml", "  plural_name: Lists\n", "", r"tool_types\.yaml:\d+: Object missing required field `plural_name`"),
        ("tool_types.yaml", "id: list-builder", "id: mood-ring", r"tool_types\.yaml:\d+: tool 'mood-ring' has no content shape"),
        ("personality_types.yaml", "code: ENFP", "code: XXXX", r"personality_types\.yaml:\d+: Expected `str` matching regex"),
        ("skills.yaml", "name: Composure", "name: active Listening", r"skills\.yaml:\d+: duplicate name 'active Listening'"),
    ],
)
def test_bad_files_name_file_and_line_and_write_nothing(
    conn: sqlite3.Connection, seed_dir: Path, file: str, old: str, new: str, message: str
) -> None:
    edit(seed_dir / file, old, new)
    with pytest.raises(SeedInvalid) as raised:
        seeding.seed(conn, directory=seed_dir)
    assert any(re.match(message, str(p)) for p in raised.value.problems), [str(p) for p in raised.value.problems]
    assert all(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] == 0 for t in seeding.SEED_TABLES)


def test_error_lines_point_at_the_offending_line(seed_dir: Path) -> None:
    edit(seed_dir / "workbook" / "part-1.md", "unlocks_tool: flow-tracker", "unlocks_tool: time-machine")
    with pytest.raises(SeedInvalid) as raised:
        read_seed(seed_dir)
    problem = raised.value.problems[0]
    lines = (seed_dir / "workbook" / "part-1.md").read_text().splitlines()
    assert "time-machine" in lines[problem.line - 1]


def test_only_one_table_and_its_dependency_check(conn: sqlite3.Connection, seed_dir: Path) -> None:
    with pytest.raises(seeding.SeedDependencyMissing, match="seed tool_types first"):
        seeding.seed(conn, directory=seed_dir, only="exercise_sequence")
    result = seeding.seed(conn, directory=seed_dir, only="personality_types")
    assert list(result.plan.tables) == ["personality_types"]
    assert conn.execute("SELECT count(*) FROM personality_types").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM skills").fetchone()[0] == 0


def test_cli_seed_reports_each_problem_on_one_line(db_path: Path, seed_dir: Path) -> None:
    edit(seed_dir / "workbook" / "part-1.md", "#### reflection", "#### musing")
    result = CliRunner().invoke(main, ["seed", "--db", str(db_path), "--seed-dir", str(seed_dir)])
    assert result.exit_code == 1
    assert "bad content type 'musing'" in result.output and "nothing was written" in result.output


def test_cli_seed_twice_says_nothing_changed(db_path: Path, seed_dir: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["seed", "--db", str(db_path), "--seed-dir", str(seed_dir)]).exit_code == 0
    again = runner.invoke(main, ["seed", "--db", str(db_path), "--seed-dir", str(seed_dir)])
    assert again.exit_code == 0 and "nothing to change" in again.output


def apply_sql_file(conn: sqlite3.Connection, text: str) -> None:
    for statement in split_statements(text):
        conn.execute(statement.sql)


def test_emitted_sql_is_d1_shaped_and_gives_the_same_tables(tmp_path: Path, conn: sqlite3.Connection, seed_dir: Path) -> None:
    text = seeding.emit_sql(seed_dir)
    assert not re.search(r"^\s*(BEGIN|COMMIT|PRAGMA)", text, re.M | re.I)
    statements = split_statements(text)
    assert all(len(s.sql.encode()) < 100_000 for s in statements)
    assert all("\n" not in s.sql for s in statements)  # line breaks only through char(10)
    seeding.seed(conn, directory=seed_dir)
    other = connect_sync(tmp_path / "from-sql.db")  # D1-strict: limits and allow-lists apply
    try:
        migrations.apply(other)
        apply_sql_file(other, text)
        apply_sql_file(other, text)  # re-runnable
        strip = lambda rows: [{k: v for k, v in r.items() if k not in ("created_at", "updated_at")} for r in rows]  # noqa: E731
        for name in seeding.SEED_TABLES:
            assert strip(table(other, name)) == strip(table(conn, name)), name
    finally:
        other.close()


def test_a_bulk_upsert_changes_exactly_the_rows_that_differ(tmp_path: Path) -> None:
    conn = connect_sync(tmp_path / "plain.db")  # D1-strict
    try:
        conn.execute('CREATE TABLE "odd ""t""" (id TEXT PRIMARY KEY, name TEXT COLLATE NOCASE, n INTEGER,'
                     " created_at TEXT, updated_at TEXT)")
        upsert = Upsert('odd "t"', "id", ("id", "name", "n", "created_at", "updated_at"),
                        insert_only=("created_at",), touched=("updated_at",))
        rows = [{"id": f"r{i}", "name": f"Name {i}", "n": i, "created_at": "t1", "updated_at": "t1"} for i in range(500)]

        def write(rows: list[dict[str, Any]]) -> int:
            statements = [upsert.statement(chunk) for chunk in upsert.chunks(rows)]
            assert all(len(s.params) == 1 for s in statements)  # 500 rows, one bound parameter
            return sum(r.changes for r in run_batch(conn, statements, True))

        assert write(rows) == 500
        later = [{**r, "updated_at": "t2", "created_at": "t2"} for r in rows]
        assert write(later) == 0  # a new stamp alone is no change
        later[7] = {**later[7], "name": "name 7"}  # a case-only edit is an edit, whatever the collation
        later[9] = {**later[9], "n": None}
        assert write(later) == 2
        changed_rows = conn.execute('SELECT id, name, n, created_at, updated_at FROM "odd ""t""" WHERE updated_at = ?',
                                    ("t2",)).fetchall()
        assert [tuple(r) for r in changed_rows] == [("r7", "name 7", 7, "t1", "t2"), ("r9", "Name 9", None, "t1", "t2")]
    finally:
        conn.close()


def test_a_named_query_is_written_out_as_one_line_with_its_values() -> None:
    sql = """-- name: x
    -- a comment with a ? in it
    UPDATE "t ?" SET a = ?2, b = 'it''s ?' /* not ?3 */
    WHERE c = ?1 AND d IN (SELECT value FROM json_each(?2));"""
    assert render(sql, ("one\ntwo", '["a","b"]')) == (
        "UPDATE \"t ?\" SET a = '[\"a\",\"b\"]', b = 'it''s ?' WHERE c = replace('one\\ntwo','\\n',char(10))"
        " AND d IN (SELECT value FROM json_each('[\"a\",\"b\"]'));")
    with pytest.raises(ValueError):
        render("SELECT ?, ?", (1,))
    with pytest.raises(ValueError):
        render("SELECT ?3", (1, 2))


def test_serve_seeds_an_empty_database_once(db_path: Path, seed_dir: Path) -> None:
    seed_if_empty(db_path, directory=seed_dir)
    conn = connect_sync(db_path)
    try:
        assert conn.execute("SELECT count(*) FROM exercise_sequence").fetchone()[0] == 4
        conn.execute("UPDATE exercise_content SET content_text = 'edited by hand' WHERE id = '1.1.1.v1.2'")
    finally:
        conn.close()
    seed_if_empty(db_path, directory=seed_dir)  # not empty any more: leaves the content alone
    conn = connect_sync(db_path)
    try:
        assert conn.execute("SELECT content_text FROM exercise_content WHERE id = '1.1.1.v1.2'").fetchone()[0] == "edited by hand"
    finally:
        conn.close()


# --- on the engine: one read batch, one guarded write batch ---------------------------------------


def on_engine(path: Path, fn: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database(path)  # D1-strict: D1's limits and allow-lists hold for every statement
        await db.open()
        try:
            return await fn(db)
        finally:
            await db.close()

    return anyio.run(main)


@pytest.fixture
def batches() -> Any:
    """Every batch an engine sends: (kind, module of the work, number of statements)."""
    seen: list[tuple[str, str, int]] = []

    def observe(kind: str, origin: str, count: int) -> None:
        seen.append((kind, origin, count))

    engine.observers.append(observe)
    yield seen
    engine.observers.remove(observe)


def test_seeding_is_one_read_batch_and_one_write_batch(db_path: Path, seed_dir: Path, batches: list) -> None:
    first = on_engine(db_path, lambda db: seeding.seed_on(db, directory=seed_dir))
    assert first.written and first.plan.changes == 33
    assert [(kind, origin) for kind, origin, _ in batches] == [("read", LOAD), ("write", LOAD)]
    # Bulk statements, each followed by its guard: one upsert per table (however many rows)
    # and the seven that renumber, deactivate and delete; not one statement per row.
    assert batches[1][2] == 2 * (len(seeding.SEED_TABLES) + 7)
    batches.clear()
    again = on_engine(db_path, lambda db: seeding.seed_on(db, directory=seed_dir))
    assert not again.written and again.plan.changes == 0
    assert [(kind, origin) for kind, origin, _ in batches] == [("read", LOAD)]
    batches.clear()
    edit(seed_dir / "workbook" / "part-1.md", "Which one taught you the most?", "Which job taught you the most?")
    dry = on_engine(db_path, lambda db: seeding.seed_on(db, directory=seed_dir, dry_run=True))
    assert not dry.written and dry.plan.tables["exercise_content"].update == 1
    assert [(kind, origin) for kind, origin, _ in batches] == [("read", LOAD)]


def test_the_engine_and_a_plain_connection_seed_the_same(tmp_path: Path, db_path: Path, seed_dir: Path) -> None:
    on_engine(db_path, lambda db: seeding.seed_on(db, directory=seed_dir))
    other = tmp_path / "other.db"
    with closing(connect_sync(other)) as conn:
        migrations.apply(conn)
        seeding.seed(conn, directory=seed_dir)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("created_at", "updated_at")} for r in rows]  # noqa: E731
    with closing(connect_sync(db_path)) as a, closing(connect_sync(other)) as b:
        for name in seeding.SEED_TABLES:
            assert strip(table(a, name)) == strip(table(b, name)), name
    assert on_engine(db_path, lambda db: seeding.is_unseeded(db)) is False


def hand_edit(sql: str) -> Callable[[sqlite3.Connection], None]:
    return lambda conn: conn.execute(sql)


# Changes another process could make between a re-seed's read and its write, each reaching a
# different statement of the write batch.
MEANWHILE = {
    "a row the plan saw unchanged": hand_edit(
        "UPDATE exercise_content SET content_text = 'meanwhile' WHERE id = '1.1.2.v1.1'"),
    "a place of the sequence gone": hand_edit("DELETE FROM exercise_sequence WHERE full_exercise_id = '1.2.2.v1'"),
    "a tool deactivated": hand_edit("UPDATE tool_types SET is_active = 0 WHERE id = 'flow-tracker'"),
    "a reference renumbered": hand_edit('UPDATE "references" SET citation_number = 7 WHERE id = \'burnett-evans-2016\''),
    "content the files no longer have": hand_edit(
        "INSERT INTO exercise_content (id, part_id, module_id, exercise_id, version, full_exercise_id, content_type,"
        " content_text, display_order, is_active, created_at, updated_at)"
        " VALUES ('9.9.9.v1.1', '9', '9', '9', 1, '9.9.9.v1', 'prompt', 'stray', 1, 1, 't', 't')"),
}


@pytest.mark.parametrize("meanwhile", MEANWHILE, ids=list(MEANWHILE))
def test_a_reseed_racing_a_content_change_refuses_its_stale_plan(db_path: Path, seed_dir: Path, meanwhile: str) -> None:
    with closing(connect_sync(db_path)) as conn:
        seeding.seed(conn, directory=seed_dir)
        edit(seed_dir / "workbook" / "part-1.md", "Which one taught you the most?", "Which job taught you the most?")
        work = seeding.seed_work(read_seed(seed_dir), now=now_iso())
        read = next(work)
        results = run_batch(conn, read.statements, False)
        MEANWHILE[meanwhile](conn)  # committed by "another process" between the read and the write
        before = snapshot(conn)
        write = work.send(results)
        assert isinstance(write, Write)
        with pytest.raises(GuardFailed) as failed:
            run_batch(conn, write.statements, True)
        assert failed.value.name == "content_changed"
        assert snapshot(conn) == before  # the stale plan wrote nothing at all
        assert conn.execute("SELECT content_text FROM exercise_content WHERE id = '1.1.1.v1.2'").fetchone()[0] == (
            "Which one taught you the most?")


def interfered(times: int, meanwhile: Callable[[], None], attempts: list[int]) -> Callable[..., Work[Any]]:
    """`seed_work`, with `meanwhile()` run between its read and its write on its first `times` runs."""
    real = load.seed_work

    def seed_work(*args: Any, **kwargs: Any) -> Work[Any]:
        attempts.append(1)
        work = real(*args, **kwargs)
        results = yield next(work)
        if len(attempts) <= times:
            meanwhile()
        try:
            batch = work.send(results)
        except StopIteration as done:
            return done.value
        written = yield batch  # a failed guard is raised here, and goes on to the engine
        try:
            work.send(written)
        except StopIteration as done:
            return done.value
        raise AssertionError("a seed yields nothing after its write")

    return seed_work


def test_a_reseed_racing_a_content_change_runs_again_on_fresh_reads(
    db_path: Path, seed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_engine(db_path, lambda db: seeding.seed_on(db, directory=seed_dir))
    edit(seed_dir / "workbook" / "part-1.md", "Which one taught you the most?", "Which job taught you the most?")

    def meanwhile() -> None:
        with closing(connect_sync(db_path)) as other:  # another process, while the plan is being made
            other.execute("UPDATE exercise_content SET content_text = 'meanwhile' WHERE id = '1.1.2.v1.1'")

    attempts: list[int] = []
    monkeypatch.setattr(load, "seed_work", interfered(1, meanwhile, attempts))
    result = on_engine(db_path, lambda db: seeding.seed_on(db, directory=seed_dir))
    assert len(attempts) == 2 and result.written
    # The plan that was written is the one made on the second read: it saw both changes.
    assert result.plan.tables["exercise_content"].update == 2
    with closing(connect_sync(db_path)) as conn:
        texts = dict(conn.execute("SELECT id, content_text FROM exercise_content WHERE id IN ('1.1.1.v1.2', '1.1.2.v1.1')"))
    assert texts == {"1.1.1.v1.2": "Which job taught you the most?", "1.1.2.v1.1": "# Good Days\n\nDescribe a good day at work."}
    monkeypatch.undo()
    assert on_engine(db_path, lambda db: seeding.seed_on(db, directory=seed_dir)).plan.changes == 0


def test_a_reseed_that_keeps_losing_the_race_gives_up_and_writes_nothing(
    db_path: Path, seed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_engine(db_path, lambda db: seeding.seed_on(db, directory=seed_dir))
    edit(seed_dir / "workbook" / "part-1.md", "Which one taught you the most?", "Which job taught you the most?")
    # Each time, a row the plan has just seen as it should be.
    rows = iter(["1.1.2.v1.1", "1.1.2.v1.2", "1.1.2.v1.3", "1.2.1.v1.1"])

    def meanwhile() -> None:
        with closing(connect_sync(db_path)) as other:
            other.execute("UPDATE exercise_content SET content_text = 'meanwhile' WHERE id = ?", (next(rows),))

    attempts: list[int] = []
    monkeypatch.setattr(load, "seed_work", interfered(99, meanwhile, attempts))
    with pytest.raises(ChangedConcurrently):
        on_engine(db_path, lambda db: seeding.seed_on(db, directory=seed_dir))
    assert len(attempts) == 3
    with closing(connect_sync(db_path)) as conn:
        assert conn.execute("SELECT content_text FROM exercise_content WHERE id = '1.1.1.v1.2'").fetchone()[0] == (
            "Which one taught you the most?")


def test_citation_numbers_move_without_conflicts_and_dropped_references_stay(conn: sqlite3.Connection, seed_dir: Path) -> None:
    seeding.seed(conn, directory=seed_dir)
    numbers = lambda: dict(conn.execute('SELECT id, citation_number FROM "references"'))  # noqa: E731
    assert numbers() == {"burnett-evans-2016": 1, "csikszentmihalyi-1990": 2}
    part = seed_dir / "workbook" / "part-1.md"
    # The two sources swap places: their numbers swap (through the UNIQUE constraint).
    edit(part, "  - reference: burnett-evans-2016\n    usage: framework", "  - reference: csikszentmihalyi-1990\n    usage: framework")
    edit(part, "  - reference: csikszentmihalyi-1990\n    usage: concept", "  - reference: burnett-evans-2016\n    usage: concept")
    assert seeding.seed(conn, directory=seed_dir).plan.tables["references"].update == 2
    assert numbers() == {"csikszentmihalyi-1990": 1, "burnett-evans-2016": 2}
    assert seeding.seed(conn, directory=seed_dir).plan.changes == 0
    # A reference dropped from the files keeps its row and its number...
    edit(part, "sources:\n  - reference: burnett-evans-2016\n    usage: concept\n    notes: Flow conditions\n", "")
    refs = seed_dir / "references.yaml"
    text = refs.read_text()
    refs.write_text(text[: text.index("- id: burnett-evans-2016")])
    result = seeding.seed(conn, directory=seed_dir)
    assert result.plan.tables["references"].kept == 1
    assert numbers() == {"csikszentmihalyi-1990": 1, "burnett-evans-2016": 2}
    assert seeding.seed(conn, directory=seed_dir).plan.changes == 0
    # ... until a new one needs the number: then it moves after every number in use.
    refs.write_text(refs.read_text() + (
        "- id: new-2020\n  author_surname: New\n  full_citation: New, A. *Book*. 2020.\n  short_citation: New, *Book*\n"))
    edit(part, "  - reference: csikszentmihalyi-1990\n    usage: framework",
         "  - reference: csikszentmihalyi-1990\n    usage: framework\n  - reference: new-2020\n    usage: concept")
    seeding.seed(conn, directory=seed_dir)
    assert numbers() == {"csikszentmihalyi-1990": 1, "new-2020": 2, "burnett-evans-2016": 4}
    assert seeding.seed(conn, directory=seed_dir).plan.changes == 0


def test_long_content_is_cut_into_statements_under_d1s_limit(tmp_path: Path, conn: sqlite3.Connection, seed_dir: Path) -> None:
    part = seed_dir / "workbook" / "part-1.md"
    long_text = "\n\n".join(f"Paragraph {n}: it's " + " ".join(["a long 'line' of words."] * 80) for n in range(18))
    assert 30_000 < len(long_text.encode()) < 40_000
    blocks = "".join(f"#### reflection\n\n{long_text}\n\n" for _ in range(6))
    edit(part, "#### reflection\n\nWhat made it good?", blocks + "#### reflection\n\nWhat made it good?")
    statements = split_statements(seeding.emit_sql(seed_dir))
    content = [s for s in statements if s.sql.startswith('INSERT INTO "exercise_content"')]
    assert len(content) >= 3
    assert all(len(s.sql.encode()) < 100_000 for s in statements)
    first = seeding.seed(conn, directory=seed_dir)
    assert first.plan.tables["exercise_content"].insert == 12 + 6
    assert seeding.seed(conn, directory=seed_dir).plan.changes == 0
    assert conn.execute("SELECT count(*) FROM exercise_content WHERE content_text = ?", (long_text,)).fetchone()[0] == 6
    other = connect_sync(tmp_path / "from-sql.db")
    try:
        migrations.apply(other)
        apply_sql_file(other, seeding.emit_sql(seed_dir))
        assert other.execute("SELECT count(*) FROM exercise_content WHERE content_text = ?", (long_text,)).fetchone()[0] == 6
    finally:
        other.close()


def test_a_block_too_long_for_d1_is_refused_with_its_line(seed_dir: Path) -> None:
    part = seed_dir / "workbook" / "part-1.md"
    edit(part, "What made it good?", "What made it good? " + "x" * 41_000)
    with pytest.raises(SeedInvalid) as raised:
        read_seed(seed_dir)
    (problem,) = raised.value.problems
    assert "reflection block is 41,019 bytes; at most 40,000" in problem.message
    assert part.read_text().splitlines()[problem.line - 1] == "#### reflection"
