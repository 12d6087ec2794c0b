"""Every file that holds readers' data is created readable by its owner only (0600), like the
key file: the database, its WAL and shared-memory files, snapshots and D1 dumps. Checked
under the usual umask 022, which would otherwise leave them 0644 (readable by every user of
the machine)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from app.cli import main
from app.db import migrations
from app.db.connection import Database, connect_sync
from app.domain import backups


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def sidecars(db: Path) -> list[Path]:
    return [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm")]


def test_a_new_database_and_its_wal_are_0600(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    with closing(connect_sync(db)) as conn:
        migrations.apply(conn)
        wal, shm = sidecars(db)
        assert wal.exists() and shm.exists()  # while a connection is open, in WAL mode
        assert {p.name: mode(p) for p in (db, wal, shm)} == {db.name: 0o600, wal.name: 0o600, shm.name: 0o600}


def test_the_server_creates_its_database_0600(tmp_path: Path) -> None:
    db = tmp_path / "served.db"

    async def run() -> dict[str, int]:
        database = Database(db)
        await database.open()
        try:
            await database.write(lambda c: c.execute("CREATE TABLE t (x)"))
            return {p.name: mode(p) for p in (db, *sidecars(db))}
        finally:
            await database.close()

    assert set(anyio.run(run).values()) == {0o600}


def test_cli_migrate_backup_and_dumps_are_0600(tmp_path: Path, seeded: Path) -> None:
    runner = CliRunner()
    fresh = tmp_path / "fresh.db"
    assert runner.invoke(main, ["migrate", "--db", str(fresh)]).exit_code == 0
    assert mode(fresh) == 0o600
    snapshot, dump, loaded = tmp_path / "snap.db", tmp_path / "dump.sql", tmp_path / "loaded.db"
    result = runner.invoke(main, ["backup", "--db", str(seeded), str(snapshot)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["export-d1", "--db", str(seeded), str(dump)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["import-d1", "--db", str(loaded), str(dump)])
    assert result.exit_code == 0, result.output
    assert {p.name: mode(p) for p in (snapshot, dump, loaded)} == {"snap.db": 0o600, "dump.sql": 0o600,
                                                                   "loaded.db": 0o600}


def test_a_dump_over_an_existing_readable_file_becomes_0600(tmp_path: Path, seeded: Path) -> None:
    dump = tmp_path / "old-dump.sql"
    dump.write_text("old\n")
    os.chmod(dump, 0o644)
    backups.export_d1(seeded, dump)
    assert mode(dump) == 0o600 and "INSERT INTO" in dump.read_text()


def test_restore_into_a_missing_database_creates_it_0600(tmp_path: Path, seeded: Path) -> None:
    snapshot = tmp_path / "snap.db"
    backups.backup(seeded, snapshot)
    target = tmp_path / "restored.db"
    backups.restore(snapshot, target)
    assert mode(target) == 0o600 and mode(snapshot) == 0o600
