"""The schema and the migrations ledger against the real thing: wrangler's local D1.

Each test runs the pinned wrangler (wrangler-compat/, `npm ci` there) with its own
`--persist-to` directory and then opens the very file wrangler wrote with our own code, or
the other way round. Needs node; see tests/d1util.py for skip-vs-fail and docs/d1.md.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from app.db import migrations
from app.db.connection import connect_sync
from app.db.schema import diff, expected_shape, shape
from tests import d1util
from tests.d1util import Wrangler, database_id, find_state_file, state_file_name, write_config

pytestmark = pytest.mark.d1

MIGRATION_NAMES = [m.name for m in migrations.list_migrations()]
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")  # CURRENT_TIMESTAMP, UTC


@pytest.fixture(scope="module")
def wrangler() -> Wrangler:
    return d1util.require_wrangler()


@pytest.fixture(scope="module")
def wrangler_migrated_template(wrangler: Wrangler, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A persist dir in which `wrangler d1 migrations apply DB --local` ran once (start-up is slow)."""
    persist = tmp_path_factory.mktemp("wrangler-migrated")
    applied = wrangler.migrations_apply(persist_to=persist)
    assert applied == MIGRATION_NAMES
    return persist


@pytest.fixture
def wrangler_migrated(wrangler_migrated_template: Path, tmp_path: Path) -> Path:
    """A private copy of the template (wrangler has exited, so copying db + -wal + -shm is consistent)."""
    persist = tmp_path / "state"
    shutil.copytree(wrangler_migrated_template, persist)
    return persist


@contextmanager
def opened(path: Path) -> Iterator[sqlite3.Connection]:
    """Our own D1-strict connection on wrangler's state file; always closed (checkpoints the WAL)."""
    with closing(connect_sync(path, strict=True)) as conn:
        yield conn


def ledger(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    rows = conn.execute("SELECT id, name, applied_at FROM d1_migrations ORDER BY id").fetchall()
    assert all(TIMESTAMP.match(row[2]) for row in rows), rows
    return [(row[0], row[1]) for row in rows]


def stored_ledger_sql() -> str:
    """What SQLite itself keeps in sqlite_schema after running LEDGER_DDL."""
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.execute(migrations.LEDGER_DDL)
        return str(conn.execute("SELECT sql FROM sqlite_schema WHERE name = 'd1_migrations'").fetchone()[0])


def test_wrangler_migrated_database_has_the_expected_schema(wrangler_migrated: Path) -> None:
    state = find_state_file(wrangler_migrated)
    # The file name is miniflare's hash of the database_id; docs/d1.md
    # quotes it for the all-zero id. If a wrangler upgrade changes the derivation, this says so.
    assert state.name == state_file_name(database_id())
    with opened(state) as conn:
        assert diff(expected_shape(), shape(conn)) == []
        assert ledger(conn) == list(enumerate(MIGRATION_NAMES, start=1))


def test_our_runner_accepts_a_database_wrangler_migrated(wrangler_migrated: Path) -> None:
    state = find_state_file(wrangler_migrated)
    with opened(state) as conn:
        before = ledger(conn)
        status = migrations.status(conn)
        assert status.pending == []
        assert status.applied == MIGRATION_NAMES
        assert migrations.apply(conn) == []
        assert ledger(conn) == before

        # wrangler runs `CREATE TABLE IF NOT EXISTS d1_migrations(\n\t\tid …\n);` (tabs and
        # column padding included). SQLite, not wrangler, rewrites what it stores: the text
        # from the table name on, prefixed with "CREATE TABLE ", i.e. without "IF NOT EXISTS"
        # and without the final ";"; whitespace is kept byte for byte. So no normalising is
        # needed: the stored text equals what LEDGER_DDL stores, and LEDGER_DDL minus those two.
        stored = conn.execute("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'd1_migrations'").fetchone()[0]
        assert stored == stored_ledger_sql()
        assert stored == migrations.LEDGER_DDL.replace("CREATE TABLE IF NOT EXISTS ", "CREATE TABLE ", 1).removesuffix(";")


def test_wrangler_accepts_a_database_our_runner_migrated(wrangler: Wrangler, tmp_path: Path) -> None:
    persist = tmp_path / "state"
    # A harmless statement makes wrangler create its state file (and _cf_METADATA), but no ledger.
    assert wrangler.execute("SELECT 1 AS one", persist_to=persist) == [{"one": 1}]
    state = find_state_file(persist)
    with opened(state) as conn:
        assert migrations.applied_names(conn) == []
        assert migrations.apply(conn) == MIGRATION_NAMES
        assert diff(expected_shape(), shape(conn)) == []
        ours = ledger(conn)

    assert wrangler.migrations_list(persist_to=persist) == []
    assert wrangler.migrations_apply(persist_to=persist) == []

    with opened(state) as conn:
        assert ledger(conn) == ours == list(enumerate(MIGRATION_NAMES, start=1))
        # wrangler's `CREATE TABLE IF NOT EXISTS` left our table as it was.
        stored = conn.execute("SELECT sql FROM sqlite_schema WHERE name = 'd1_migrations'").fetchone()[0]
        assert stored == stored_ledger_sql()


def probe_migration(directory: Path) -> str:
    """Add a migration after the last real one (NNNN+1_probe.sql, an index); returns its name."""
    number = max(int(name.split("_", 1)[0]) for name in MIGRATION_NAMES) + 1
    name = f"{number:04d}_probe.sql"
    (directory / name).write_text(
        f"-- Migration number: {number:04d}\nCREATE INDEX idx_probe_users_created_at ON users(created_at);\n",
        encoding="utf-8",
    )
    return name


@pytest.mark.parametrize("first", ["wrangler", "ours"])
def test_both_runners_share_one_ledger_across_a_pending_migration(
    first: str, wrangler: Wrangler, wrangler_migrated: Path, tmp_path: Path
) -> None:
    migrations_dir = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, migrations_dir)
    config = write_config(tmp_path, migrations_dir)  # same database_id, so the same state file name

    if first == "wrangler":
        persist = wrangler_migrated  # the real migrations, applied by wrangler
    else:
        persist = tmp_path / "fresh"
        wrangler.execute("SELECT 1", persist_to=persist, config=config)
        with opened(find_state_file(persist)) as conn:
            assert migrations.apply(conn, migrations_dir) == MIGRATION_NAMES

    probe = probe_migration(migrations_dir)
    state = find_state_file(persist)

    if first == "wrangler":
        with opened(state) as conn:
            assert migrations.status(conn, migrations_dir).pending == [probe]
            assert migrations.apply(conn, migrations_dir) == [probe]
        assert wrangler.migrations_list(persist_to=persist, config=config) == []
    else:
        assert wrangler.migrations_list(persist_to=persist, config=config) == [probe]
        assert wrangler.migrations_apply(persist_to=persist, config=config) == [probe]

    expected = list(enumerate([*MIGRATION_NAMES, probe], start=1))
    as_wrangler_reads_it = wrangler.execute(
        "SELECT id, name FROM d1_migrations ORDER BY id", persist_to=persist, config=config
    )
    assert [(row["id"], row["name"]) for row in as_wrangler_reads_it] == expected
    with opened(state) as conn:
        assert ledger(conn) == expected
        assert migrations.status(conn, migrations_dir).pending == []
        assert migrations.apply(conn, migrations_dir) == []
        # The probe really ran (once), whichever runner applied it.
        assert conn.execute(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'idx_probe_users_created_at'"
        ).fetchone()[0] == 1
