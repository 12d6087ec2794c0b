"""schema.sql is the spec's schema, object by object; the migrations produce exactly it."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import anyio
import pytest

from app.db.checks import Verdict, verdict_on, verdict_work
from app.db.connection import Database, GuardedConnection, configure, connect_sync
from app.db.migrations import split_statements
from app.db.schema import SCHEMA_SQL, diff, drift, expected_shape, shape, shape_of_objects
from app.db.upsert import quote_identifier

ROOT = Path(__file__).resolve().parents[1]
# The schema document the project implements, kept in the repository so a clean checkout can
# test against it; the team's shared copy beside the checkout, when present, must be the same.
SPEC = ROOT / "docs" / "spec" / "dreamtree-schema.md"
SHARED_SPEC = ROOT.parent / "shared" / "spec" / "dreamtree-schema.md"


def spec_ddl() -> str:
    """The CREATE statements of the spec's ```sql blocks, with only the `references` quoting added."""
    blocks = re.findall(r"```sql\n(.*?)```", SPEC.read_text(encoding="utf-8"), re.S)
    ddl = "\n".join(b for b in blocks if "CREATE TABLE" in b)
    ddl = ddl.replace("CREATE TABLE references (", 'CREATE TABLE "references" (')
    ddl = ddl.replace("REFERENCES references(id)", 'REFERENCES "references"(id)')
    return ddl.replace(" ON references(", ' ON "references"(')


def memory_db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None, factory=GuardedConnection)
    configure(conn, strict=False, writer=False)
    return conn


def test_spec_is_found_and_has_19_tables() -> None:
    assert SPEC.exists(), f"the spec is expected at {SPEC}"
    assert len(re.findall(r"^CREATE TABLE ", spec_ddl(), re.M)) == 19


def test_the_kept_spec_is_the_shared_one() -> None:
    if not SHARED_SPEC.exists():
        pytest.skip("no shared spec beside this checkout")
    assert SPEC.read_bytes() == SHARED_SPEC.read_bytes(), "docs/spec/dreamtree-schema.md differs from the shared spec"


def test_schema_sql_equals_the_spec_object_by_object() -> None:
    conn = memory_db()
    try:
        conn.executescript(spec_ddl())
        from_spec = shape(conn)
    finally:
        conn.close()
    from_schema_sql = expected_shape()
    assert diff(from_spec, from_schema_sql) == []
    assert len(from_schema_sql["tables"]) == 19
    # Every object is there under the spec's name, the partial index with its WHERE clause.
    assert from_schema_sql["indexes"]["idx_skills_review"] == {
        "table": "skills",
        "columns": ["review_status"],
        "unique": False,
        "where": "is_custom = 1",
    }
    assert from_schema_sql["tables"]["skills"]["foreign_keys"] == [
        {"from": "created_by", "table": "users", "to": "id", "on_delete": "SET NULL", "on_update": "NO ACTION"}
    ]
    assert from_schema_sql["tables"]["user_competency_scores"]["checks"] == ["score BETWEEN 1 AND 5"]
    assert from_schema_sql["tables"]["user_competency_scores"]["unique"] == [("user_id", "competency_id")]


def test_shape_sees_every_kind_of_difference() -> None:
    """The comparison is not vacuous: a changed default, check, FK action or index shows up."""
    base = spec_ddl()
    variants = {
        "default": base.replace("DEFAULT 'cream'", "DEFAULT 'sage'"),
        "check": base.replace("CHECK (score BETWEEN 1 AND 5)", "CHECK (score BETWEEN 0 AND 5)"),
        "on_delete": base.replace("REFERENCES users(id) ON DELETE SET NULL", "REFERENCES users(id)"),
        "partial": base.replace("WHERE is_custom = 1", ""),
        "notnull": base.replace("short_citation TEXT NOT NULL", "short_citation TEXT"),
        "type": base.replace("version INTEGER NOT NULL DEFAULT 1,\n    is_active", "version TEXT NOT NULL DEFAULT 1,\n    is_active"),
        "unique": base.replace("email TEXT NOT NULL UNIQUE", "email TEXT NOT NULL"),
    }
    expected = expected_shape()
    for name, ddl in variants.items():
        assert ddl != base, name
        conn = memory_db()
        try:
            conn.executescript(ddl)
            assert diff(expected, shape(conn)), f"{name} change went unnoticed"
        finally:
            conn.close()


def test_migrations_produce_exactly_schema_sql(conn: sqlite3.Connection) -> None:
    assert diff(expected_shape(), shape(conn)) == []
    # ... down to the stored text of every CREATE statement.
    stored = {
        name: sql
        for name, sql in conn.execute("SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL")
        if name not in {"d1_migrations", "sqlite_sequence"}
    }
    wanted = {}
    for statement in split_statements(SCHEMA_SQL.read_text(encoding="utf-8")):
        name = re.search(r"CREATE (?:TABLE|INDEX) (\"?\w+\"?)", statement.sql).group(1).strip('"')
        wanted[name] = statement.sql.rstrip(";")
    assert stored == wanted


def test_schema_sql_runs_statement_by_statement_in_d1_strict_mode(tmp_path: Path) -> None:
    conn = connect_sync(tmp_path / "strict.db", strict=True)
    try:
        for statement in split_statements(SCHEMA_SQL.read_text(encoding="utf-8")):
            conn.execute(statement.sql)
        assert diff(expected_shape(), shape(conn)) == []
    finally:
        conn.close()


# --- the verdict of `dreamtree check`, through an engine --------------------------------------


def engine_verdict(path: Path, *, quick_check: bool) -> Verdict:
    async def main() -> Verdict:
        db = Database(path)  # D1-strict: every statement of the work must be one D1 allows
        await db.open()
        try:
            if quick_check:  # what the d1 engine runs
                return await db.query(verdict_work, None)
            return await verdict_on(db)
        finally:
            await db.close()

    return anyio.run(main)


def test_the_verdict_is_a_read_only_work_d1_allows(db_path: Path) -> None:
    quick = engine_verdict(db_path, quick_check=True)
    assert quick.ok and quick.integrity == ["ok"] and quick.integrity_pragma == "quick_check"
    assert quick.applied == ["0001_initial.sql"] and quick.pending == []
    full = engine_verdict(db_path, quick_check=False)  # the sqlite engine adds the full integrity_check
    assert full.ok and full.integrity_pragma == "integrity_check"


def test_the_verdict_sees_drift_orphans_and_a_missing_ledger(tmp_path: Path, db_path: Path) -> None:
    conn = connect_sync(db_path, strict=False)
    conn.execute("CREATE INDEX idx_extra ON users(created_at)")
    conn.execute("CREATE VIEW v_users AS SELECT id FROM users")
    conn.execute("ALTER TABLE users ADD COLUMN nickname TEXT")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("INSERT INTO sessions VALUES ('s1', 'no-such-user', 'x', 'x')")
    conn.close()
    found = engine_verdict(db_path, quick_check=True)
    assert not found.ok and found.orphans == 1
    assert found.drift[0].startswith("users.columns: ") and "'nickname'" in found.drift[0]
    assert found.drift[1:] == ["unexpected index idx_extra", "unexpected view v_users"]
    empty = tmp_path / "empty.db"
    connect_sync(empty).close()
    bare = engine_verdict(empty, quick_check=True)
    assert bare.applied == [] and bare.pending == ["0001_initial.sql"]
    assert len([line for line in bare.drift if line.startswith("missing table ")]) == 19


def test_replaying_sqlite_schema_gives_the_shape_of_the_database(conn: sqlite3.Connection) -> None:
    objects = [tuple(row) for row in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY rowid")]
    replayed, unreadable = shape_of_objects(objects)
    assert unreadable == [] and replayed == shape(conn)
    assert drift(objects) == []


@pytest.mark.parametrize("name", ["users", "references", 'odd "name"', "with space", "ümlaut", ""])
def test_there_is_one_way_to_quote_an_identifier(conn: sqlite3.Connection, name: str) -> None:
    """Ours, for the SQL the project builds, is the rule of sqlite-utils' inspection."""
    from sqlite_utils.db import quote_identifier as sqlite_utils_quote

    assert quote_identifier(name) == sqlite_utils_quote(name)
    if name:
        assert conn.execute(f"SELECT 1 AS {quote_identifier(name)}").description[0][0] == name
