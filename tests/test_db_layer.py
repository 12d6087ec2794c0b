"""D1-strict connections refuse what D1 refuses; the writer is single and BEGIN IMMEDIATE."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path

import anyio
import pytest

from app.db.connection import Database, connect_sync
from app.db.queries import Q, Queries


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT sqlite_version()", ()),
        ("SELECT sqlite_source_id()", ()),
        ("PRAGMA journal_mode", ()),
        ("PRAGMA user_version", ()),
        ("PRAGMA integrity_check", ()),
        ("ATTACH DATABASE ':memory:' AS other", ()),
        ("CREATE TEMP TABLE scratch (a)", ()),
        ("CREATE TABLE _cf_secret (a)", ()),
        ("BEGIN", ()),
        ("SAVEPOINT sp", ()),
        ("SELECT id FROM users WHERE id IN (" + ",".join("?" * 101) + ")", tuple(range(101))),
        ("SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6", ()),
        ("SELECT 'abc' LIKE ?", ("%" + "a" * 60 + "%",)),
        ("SELECT json_pretty('{}')", ()),
    ],
)
def test_d1_strict_refuses_what_d1_refuses(conn: sqlite3.Connection, sql: str, params: tuple) -> None:
    with pytest.raises(sqlite3.Error):
        conn.execute(sql, params).fetchall()


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT id FROM users WHERE id IN (" + ",".join("?" * 100) + ")", tuple(range(100))),
        ("SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5", ()),
        ("SELECT date('now', '-7 days'), datetime('now'), json_extract('{\"a\": 1}', '$.a')", ()),
        ("SELECT coalesce(max(sequence_order), 0) + 1 FROM exercise_sequence", ()),
        ("PRAGMA foreign_keys", ()),
        ("PRAGMA table_info(users)", ()),
        ("PRAGMA foreign_key_check", ()),
    ],
)
def test_d1_strict_allows_what_d1_allows(conn: sqlite3.Connection, sql: str, params: tuple) -> None:
    conn.execute(sql, params).fetchall()


def test_plain_mode_is_not_strict(db_path: Path) -> None:
    loose = connect_sync(db_path, strict=False)
    try:
        assert loose.execute("SELECT sqlite_version()").fetchone()[0]
    finally:
        loose.close()


def test_foreign_keys_are_on_for_every_connection(db_path: Path) -> None:
    for readonly in (False, True):
        c = connect_sync(db_path, readonly=readonly)
        try:
            assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        finally:
            c.close()


def test_every_named_query_prepares_against_the_schema_in_d1_strict_mode(conn: sqlite3.Connection) -> None:
    assert len(Q) >= 1
    for name in Q:
        sql = Q[name]
        placeholders = sql.count("?")
        try:
            conn.execute("EXPLAIN " + sql, (None,) * placeholders).fetchall()
        except sqlite3.ProgrammingError:
            # numbered ?NNN placeholders: bind as many as the highest number
            highest = max(int(n) for n in __import__("re").findall(r"\?(\d+)", sql))
            conn.execute("EXPLAIN " + sql, (None,) * highest).fetchall()
        except sqlite3.Error as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"query {name} ({Q.origin(name)}) does not prepare: {exc}")


def test_duplicate_query_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("-- name: same\nSELECT 1;\n")
    (tmp_path / "b.sql").write_text("-- name: same\nSELECT 2;\n")
    with pytest.raises(ValueError, match="also defined in a.sql"):
        Queries(tmp_path)


@pytest.mark.anyio
async def test_write_commits_and_rolls_back_as_one_transaction(db_path: Path) -> None:
    db = Database(db_path)
    await db.open()
    try:

        def good(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO personality_types VALUES ('INTJ', 'The Architect', 'x')")

        def bad(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO personality_types VALUES ('ENFP', 'The Campaigner', 'x')")
            raise RuntimeError("halfway")

        await db.write(good)
        with pytest.raises(RuntimeError):
            await db.write(bad)
        codes = await db.read(lambda c: [r[0] for r in c.execute("SELECT code FROM personality_types")])
        assert codes == ["INTJ"]
        # readers are read-only
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await db.read(good)
    finally:
        await db.close()


@pytest.mark.anyio
async def test_writer_waits_for_another_process_instead_of_failing(db_path: Path) -> None:
    """A CLI holding the write lock makes the server wait (BEGIN IMMEDIATE + busy timeout), not fail."""
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO personality_types VALUES ('ISTJ', 'The Logistician', 'x')")
    released = threading.Event()

    def release_soon() -> None:
        time.sleep(0.3)
        other.execute("COMMIT")
        released.set()

    db = Database(db_path)
    await db.open()
    try:
        threading.Thread(target=release_soon).start()
        started = time.perf_counter()
        await db.write(lambda c: c.execute("INSERT INTO personality_types VALUES ('ESTP', 'The Entrepreneur', 'x')"))
        assert released.is_set()
        assert time.perf_counter() - started >= 0.25
        count = await db.read(lambda c: c.execute("SELECT count(*) FROM personality_types").fetchone()[0])
        assert count == 2
    finally:
        await db.close()
        other.close()


@pytest.mark.anyio
async def test_concurrent_writes_are_serialised(db_path: Path) -> None:
    db = Database(db_path)
    await db.open()
    try:

        async def add(i: int) -> None:
            await db.write(
                lambda c: c.execute(
                    "INSERT INTO users (id, created_at, updated_at) VALUES (?, 'x', 'x')", (f"u{i}",)
                )
            )

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(add, i)
        assert await db.read(lambda c: c.execute("SELECT count(*) FROM users").fetchone()[0]) == 50
    finally:
        await db.close()


NEXT_PLACE = re.compile(
    r"SELECT COALESCE\(MAX\(es2\.sequence_order\), 0\) \+ 1\s+FROM exercise_responses er\s+"
    r"JOIN exercise_sequence es2\s+ON es2\.part_id = er\.part_id AND es2\.module_id = er\.module_id "
    r"AND es2\.exercise_id = er\.exercise_id\s+WHERE er\.user_id = (\?2?|u\.id)")


def test_the_next_exercise_subquery_is_the_same_wherever_it_is_written_out() -> None:
    # app/sql/workbook.sql says why it is written out four times; a change must reach all four.
    holders = {name: NEXT_PLACE.search(Q[name]) for name in
               ("next_exercise", "exercise_blocks", "exercise_sources", "workbook_state")}
    assert {name for name, found in holders.items() if found is None} == set()
    everywhere = sum(len(NEXT_PLACE.findall(Q[name])) for name in Q)
    assert everywhere == 4, "a new copy of the next-exercise subquery: add it to this test and the note"


# Queries the app names by prefix (`Q[f"seed_rows_{table}"]`), and the one kept only as a
# reference: the spec's per-tool unlock check, which the tools catalogue's one-statement
# version is tested against (tests/test_tools_api.py, tests/test_workbook_api.py).
NAMED_BY_PREFIX = ("seed_rows_", "deactivate_")
REFERENCE_ONLY = {"tool_unlocked"}


def test_every_named_query_is_used_by_the_app() -> None:
    """A query nobody runs is a rule nobody checks (an unused, unscoped tag query once sat here)."""
    app_dir = Path(__file__).resolve().parents[1] / "app"
    source = "\n".join(path.read_text(encoding="utf-8") for path in app_dir.rglob("*.py"))
    unused = [name for name in Q if name not in REFERENCE_ONLY and not name.startswith(NAMED_BY_PREFIX)
              and not re.search(rf"\b{name}\b", source)]
    assert unused == [], f"named queries that nothing in app/ runs: {unused}"
