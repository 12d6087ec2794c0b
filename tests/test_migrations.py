"""The migration runner keeps wrangler's ledger and refuses what wrangler or D1 would break on."""

from __future__ import annotations

import shutil
import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from app.cli import main
from app.db import migrations
from app.db.connection import Database, connect_sync
from app.db.migrations import LEDGER_DDL, MIGRATIONS_DIR, MigrationError, split_statements
from tests.helpers import with_sqlite_database


def user_tables(conn: sqlite3.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    return folder


@pytest.fixture
def empty(tmp_path: Path):
    conn = connect_sync(tmp_path / "empty.db")
    yield conn
    conn.close()


def test_ledger_is_wranglers_table_with_one_row_per_file(conn: sqlite3.Connection) -> None:
    ddl = conn.execute("SELECT sql FROM sqlite_schema WHERE name = 'd1_migrations'").fetchone()[0]
    assert ddl + ";" == LEDGER_DDL.replace("CREATE TABLE IF NOT EXISTS", "CREATE TABLE")
    rows = conn.execute("SELECT id, name, applied_at FROM d1_migrations").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(1, "0001_initial.sql")]
    assert len(rows[0][2]) == len("2026-11-22 18:35:54")  # CURRENT_TIMESTAMP text, as wrangler writes it


def test_second_run_applies_nothing(conn: sqlite3.Connection) -> None:
    assert migrations.apply(conn) == []
    assert conn.execute("SELECT count(*) FROM d1_migrations").fetchone()[0] == 1


def test_files_apply_in_numeric_order(empty: sqlite3.Connection, migrations_dir: Path) -> None:
    (migrations_dir / "0010_later.sql").write_text("CREATE INDEX idx_probe_b ON users(updated_at);\n")
    (migrations_dir / "0002_sooner.sql").write_text("CREATE INDEX idx_probe_a ON users(created_at);\n")
    assert migrations.apply(empty, migrations_dir) == ["0001_initial.sql", "0002_sooner.sql", "0010_later.sql"]
    assert migrations.status(empty, migrations_dir).pending == []
    assert migrations.schema_version(empty) == 10


def test_status_lists_pending(conn: sqlite3.Connection, migrations_dir: Path) -> None:
    (migrations_dir / "0002_more.sql").write_text("CREATE INDEX idx_probe ON users(created_at);\n")
    state = migrations.status(conn, migrations_dir)
    assert state.applied == ["0001_initial.sql"]
    assert state.pending == ["0002_more.sql"]


def test_a_failing_file_changes_nothing_and_names_file_and_statement(
    conn: sqlite3.Connection, migrations_dir: Path
) -> None:
    (migrations_dir / "0002_broken.sql").write_text(
        "-- adds an index, then fails\nCREATE INDEX idx_probe ON users(created_at);\n\nINSERT INTO nowhere VALUES (1);\n"
    )
    with pytest.raises(MigrationError) as raised:
        migrations.apply(conn, migrations_dir)
    assert str(raised.value).startswith("0002_broken.sql:4: statement 2 failed: no such table: nowhere")
    assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'idx_probe'").fetchone()[0] == 0
    assert migrations.applied_names(conn) == ["0001_initial.sql"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("CREATE INDEX idx_probe ON users(created_at)\n", "does not end with ';'"),
        ("BEGIN TRANSACTION;\nCREATE INDEX idx_probe ON users(created_at);\nCOMMIT;\n", "transaction statement BEGIN"),
        ("CREATE INDEX idx_probe ON users(created_at);\nCOMMIT;\n", "transaction statement COMMIT"),
        ("PRAGMA journal_mode = WAL;\n", "D1 refuses this PRAGMA"),
        ("VACUUM;\n", "D1 refuses VACUUM"),
    ],
)
def test_files_wrangler_would_break_on_are_refused_before_running(
    conn: sqlite3.Connection, migrations_dir: Path, text: str, message: str
) -> None:
    (migrations_dir / "0002_bad.sql").write_text("CREATE INDEX idx_first ON users(created_at);\n")
    (migrations_dir / "0003_bad.sql").write_text(text)
    with pytest.raises(MigrationError, match=message):
        migrations.apply(conn, migrations_dir)
    # Refused before anything ran: not even the good 0002 went in.
    assert migrations.applied_names(conn) == ["0001_initial.sql"]


def test_badly_named_file_is_refused(migrations_dir: Path) -> None:
    (migrations_dir / "add_thing.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match="named NNNN_description.sql"):
        migrations.list_migrations(migrations_dir)


def test_split_keeps_trigger_bodies_and_lines() -> None:
    text = "-- header\n\nCREATE TABLE t (a);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n"
    statements = split_statements(text)
    assert [s.line for s in statements] == [3, 4]
    assert statements[1].sql.endswith("END;")


def test_cli_migrate_and_status(tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "cli.db"
    first = runner.invoke(main, ["migrate", "--db", str(path)])
    assert first.exit_code == 0, first.output
    assert "applied 0001_initial.sql" in first.output
    again = runner.invoke(main, ["migrate", "--db", str(path)])
    assert "nothing applied" in again.output
    status = runner.invoke(main, ["migrate", "--db", str(path), "--status"])
    assert status.output.splitlines() == ["applied  0001_initial.sql", "up to date"]


def test_cli_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("these are my notes, not a database\n" * 100)
    for command in (["migrate"], ["check"], ["migrate", "--status"]):
        result = CliRunner().invoke(main, [*command[:1], "--db", str(bogus), *command[1:]])
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "not an SQLite database" in lines[0], result.output
    assert bogus.read_text().startswith("these are my notes")


def test_cli_check_passes_on_a_good_database(db_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert [line.split(":")[0] for line in result.output.splitlines()] == [
        "integrity",
        "foreign keys",
        "migrations",
        "schema",
    ]


def test_cli_check_reports_drift_and_orphans(db_path: Path) -> None:
    conn = connect_sync(db_path, strict=False)
    conn.execute("CREATE INDEX idx_extra ON users(created_at)")
    conn.execute("DROP INDEX idx_skills_review")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("INSERT INTO sessions VALUES ('s1', 'no-such-user', 'x', 'x')")
    conn.close()
    result = CliRunner().invoke(main, ["check", "--db", str(db_path)])
    assert result.exit_code == 1
    assert "foreign keys: FAILED (1 rows" in result.output
    assert "missing index idx_skills_review" in result.output
    assert "unexpected index idx_extra" in result.output


def test_cli_check_on_missing_file_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--db", str(tmp_path / "nope.db")])
    assert result.exit_code == 1
    assert result.output.strip().endswith("to create one)")
    assert not (tmp_path / "nope.db").exists()


# --- through an engine (app/db/engine.py): here the sqlite one; the D1 Worker in test_d1_engine.py ---


def test_apply_on_the_sqlite_engine_matches_apply_on_a_connection(tmp_path: Path) -> None:
    by_conn, by_engine = tmp_path / "conn.db", tmp_path / "engine.db"
    conn = connect_sync(by_conn)
    try:
        migrations.apply(conn)
    finally:
        conn.close()

    async def go() -> tuple[list[str], list[str], list[str]]:
        db = Database(by_engine)
        await db.open()
        try:
            before = (await migrations.status_on(db)).pending
            applied = await migrations.apply_on(db)
            again = await migrations.apply_on(db)
            assert (await migrations.status_on(db)).pending == []
            return before, applied, again
        finally:
            await db.close()

    names = [m.name for m in migrations.list_migrations()]
    assert anyio.run(go) == (names, names, [])

    def dump(path: Path) -> list[tuple[Any, ...]]:
        c = connect_sync(path, strict=False)
        try:
            schema = c.execute("SELECT type, name, sql FROM sqlite_schema ORDER BY name").fetchall()
            ledger = c.execute("SELECT id, name FROM d1_migrations ORDER BY id").fetchall()
            return [tuple(r) for r in schema] + [tuple(r) for r in ledger]
        finally:
            c.close()

    assert dump(by_engine) == dump(by_conn)


def test_without_trailing_comment() -> None:
    strip = migrations.without_trailing_comment
    assert strip("CREATE TABLE t (a); -- note") == "CREATE TABLE t (a);"
    assert strip("CREATE TABLE t (a); /* x */ ") == "CREATE TABLE t (a);"
    assert strip("INSERT INTO t VALUES ('a; -- b');") == "INSERT INTO t VALUES ('a; -- b');"
    trigger = "CREATE TRIGGER g AFTER INSERT ON t BEGIN\n  UPDATE t SET a = 1; -- inner\nEND; -- outer"
    assert strip(trigger) == trigger.removesuffix(" -- outer")


# --- several runners at once (several `serve` processes starting on one database) ---------------


def _stale_once(monkeypatch: pytest.MonkeyPatch, name: str, answer: list[str]) -> list[int]:
    """The runner's first ledger read answers `answer`, as it did before the other runner wrote.
    The list it returns fills with the reads, so a test can show the stale one was taken."""
    real = getattr(migrations, name)
    calls: list[int] = []

    def stale(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return list(answer) if len(calls) == 1 else real(*args, **kwargs)

    async def stale_async(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return list(answer) if len(calls) == 1 else await real(*args, **kwargs)

    monkeypatch.setattr(migrations, name, stale_async if name.endswith("_on") else stale)
    return calls


def _with_an_idempotent_file(directory: Path) -> list[str]:
    # A file that runs again without failing: only the ledger's UNIQUE name tells the runner.
    (directory / "0002_idempotent.sql").write_text("CREATE INDEX IF NOT EXISTS idx_probe ON users(created_at);\n")
    return [m.name for m in migrations.list_migrations(directory)]


# Seen before the other runner's first file (its CREATE TABLE fails), or between its files (the
# second file runs again without failing, and only the ledger's UNIQUE name stops it).
STALE = pytest.mark.parametrize("seen", [0, 1], ids=["nothing-seen", "first-file-seen"])


@STALE
def test_a_runner_that_lost_the_race_to_a_migration_finds_it_applied_and_goes_on(
    tmp_path: Path, migrations_dir: Path, monkeypatch: pytest.MonkeyPatch, seen: int
) -> None:
    names = _with_an_idempotent_file(migrations_dir)

    reads: list[list[int]] = []

    async def go(db: Database) -> list[str]:
        assert await migrations.apply_on(db, migrations_dir) == names  # the runner that won
        reads.append(_stale_once(monkeypatch, "applied_names_on", names[:seen]))
        return await migrations.apply_on(db, migrations_dir)  # the one that read the ledger before

    assert anyio.run(with_sqlite_database, tmp_path / "raced.db", go) == []
    assert reads[0]  # the losing runner went by the stale ledger
    conn = connect_sync(tmp_path / "raced.db")
    try:
        assert [tuple(r) for r in conn.execute("SELECT id, name FROM d1_migrations")] == list(enumerate(names, start=1))
    finally:
        conn.close()


@STALE
def test_a_process_that_lost_the_race_on_the_file_finds_it_applied_and_goes_on(
    empty: sqlite3.Connection, migrations_dir: Path, monkeypatch: pytest.MonkeyPatch, seen: int
) -> None:
    names = _with_an_idempotent_file(migrations_dir)
    assert migrations.apply(empty, migrations_dir) == names
    reads = _stale_once(monkeypatch, "applied_names", names[:seen])
    assert migrations.apply(empty, migrations_dir) == []
    assert reads  # the losing process went by the stale ledger
    assert [tuple(r) for r in empty.execute("SELECT id, name FROM d1_migrations")] == list(enumerate(names, start=1))


def test_a_file_that_fails_for_its_own_reason_is_still_an_error_after_the_ledger_is_read_again(
    tmp_path: Path, migrations_dir: Path
) -> None:
    (migrations_dir / "0002_broken.sql").write_text("CREATE TABLE users (id TEXT);\n")

    with pytest.raises(MigrationError, match="0002_broken.sql: the batch failed, nothing applied: table users already exists"):
        anyio.run(with_sqlite_database, tmp_path / "broken.db", partial(migrations.apply_on, directory=migrations_dir))
