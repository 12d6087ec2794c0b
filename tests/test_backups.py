"""Backups, verified restores and D1-format dumps."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from app import cli
from app.cli import main
from app.db.connection import connect_sync
from app.domain import backups
from tests.helpers import Reader


def rows(path: Path, sql: str) -> list[tuple]:
    with closing(connect_sync(path, strict=False)) as conn:
        return [tuple(r) for r in conn.execute(sql)]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def busy_db(seeded: Path, new_reader) -> Path:
    r: Reader = new_reader()
    r.start()
    r.put("/api/exercises/1.1.1.v1/response", {"response": {"text": "line one\nline two, it's mine"}})
    return seeded


def test_backup_while_writing_then_restore(busy_db: Path, tmp_path: Path) -> None:
    stop = threading.Event()

    def writer() -> None:
        with closing(connect_sync(busy_db, strict=False)) as conn:
            i = 0
            while not stop.is_set():
                conn.execute("INSERT INTO users (id, created_at, updated_at) VALUES (?, 't', 't')", (f"load-{i}",))
                i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = invoke("backup", "--db", str(busy_db), str(tmp_path / "snap.db"))
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output
    snap = tmp_path / "snap.db"
    assert invoke("check", "--db", str(snap)).exit_code == 0
    answers = rows(busy_db, "SELECT id, response_json FROM exercise_responses")
    with closing(connect_sync(busy_db, strict=False)) as conn:
        conn.execute("DELETE FROM exercise_responses")
    restored = invoke("restore", "--db", str(busy_db), str(snap), "--yes")
    assert restored.exit_code == 0, restored.output
    assert rows(busy_db, "SELECT id, response_json FROM exercise_responses") == answers


def test_restore_refuses_a_bad_snapshot_and_changes_nothing(busy_db: Path, tmp_path: Path) -> None:
    snap = tmp_path / "snap.db"
    backups.backup(busy_db, snap)
    with closing(sqlite3.connect(snap)) as conn:
        conn.execute("CREATE INDEX idx_not_in_schema ON users(created_at)")
        conn.commit()
    before = rows(busy_db, "SELECT count(*) FROM users")
    result = invoke("restore", "--db", str(busy_db), str(snap), "--yes")
    assert result.exit_code == 1 and "refused, nothing changed" in result.output
    assert rows(busy_db, "SELECT count(*) FROM users") == before
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    assert invoke("restore", "--db", str(busy_db), str(garbage), "--yes").exit_code == 1


def test_backup_refuses_to_overwrite(busy_db: Path, tmp_path: Path) -> None:
    (tmp_path / "exists.db").write_text("keep me")
    result = invoke("backup", "--db", str(busy_db), str(tmp_path / "exists.db"))
    assert result.exit_code == 1 and (tmp_path / "exists.db").read_text() == "keep me"


def test_d1_dump_round_trip_in_python(busy_db: Path, tmp_path: Path) -> None:
    dump = tmp_path / "dump.sql"
    assert invoke("export-d1", "--db", str(busy_db), str(dump)).exit_code == 0
    text = dump.read_text()
    assert text.startswith("PRAGMA defer_foreign_keys=TRUE;\n")
    assert "BEGIN" not in text and "COMMIT" not in text
    assert 'CREATE TABLE IF NOT EXISTS "references"' in text
    copy = tmp_path / "copy.db"
    loaded = invoke("import-d1", "--db", str(copy), str(dump))
    assert loaded.exit_code == 0, loaded.output
    assert invoke("check", "--db", str(copy)).exit_code == 0
    for table in ("users", "exercise_responses", "exercise_content", "d1_migrations", "references"):
        assert rows(copy, f'SELECT * FROM "{table}" ORDER BY 1') == rows(busy_db, f'SELECT * FROM "{table}" ORDER BY 1'), table
    again = invoke("import-d1", "--db", str(copy), str(dump))
    assert again.exit_code == 1 and "not empty" in again.output


@pytest.mark.parametrize("command", ["backup", "restore", "export-d1", "import-d1"])
def test_file_commands_refuse_on_the_d1_engine_in_one_line(
    busy_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    snap = tmp_path / "snap.db"
    backups.backup(busy_db, snap)
    before = rows(busy_db, "SELECT count(*) FROM users")
    real = cli.settings_for
    # The settings of a service on the d1 engine (Settings gains its `engine` field with that engine).
    monkeypatch.setattr(cli, "settings_for", lambda db, **flags: SimpleNamespace(**{**vars(real(db, **flags)), "engine": "d1"}))
    target = {"backup": tmp_path / "new.db", "restore": snap, "export-d1": tmp_path / "dump.sql",
              "import-d1": snap}[command]
    result = invoke(command, "--db", str(busy_db), str(target), *(["--yes"] if command == "restore" else []))
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert f"`dreamtree {command}` works on the SQLite file only" in line
    assert "wrangler d1 time-travel restore" in line and "wrangler d1 export" in line
    assert not (tmp_path / "new.db").exists() and not (tmp_path / "dump.sql").exists()
    assert rows(busy_db, "SELECT count(*) FROM users") == before


def test_restore_names_every_failed_check(busy_db: Path, tmp_path: Path) -> None:
    snap = tmp_path / "snap.db"
    backups.backup(busy_db, snap)
    with closing(sqlite3.connect(snap)) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("INSERT INTO sessions VALUES ('s1', 'no-such-user', 'x', 'x')")
        conn.execute("DELETE FROM d1_migrations")
        conn.commit()
    with pytest.raises(backups.RestoreRefused) as refused:
        backups.restore(snap, busy_db)
    assert refused.value.code == "restore_refused"
    assert "1 rows point at missing parents" in refused.value.detail
    assert "migrations pending: 0001_initial.sql" in refused.value.detail
