"""Data through D1: the seed SQL (`dreamtree seed --emit-sql`) and whole-database dumps
(`dreamtree export-d1` / `import-d1`) run on wrangler's local D1 and come back identical."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest
import sqlite_utils

from app.db import migrations
from app.db.checks import verdict_work
from app.db.connection import connect_sync, run_work
from app.db.migrations import MIGRATIONS_DIR
from app.domain import backups, seeding
from app.domain.seeding import SEED_DIR
from tests import d1util
from tests.d1util import BINDING, find_state_file

pytestmark = pytest.mark.d1
TIMESTAMPS = {"created_at", "updated_at"}


def table_contents(path: Path) -> dict[str, list[dict]]:
    """Every seed table's rows, timestamps left out (each run stamps its own), via sqlite-utils."""
    db = sqlite_utils.Database(path)
    try:
        out = {}
        for name in seeding.SEED_TABLES:
            table = db.table(name)
            key = seeding.SPECS[name].key
            out[name] = sorted(({k: v for k, v in row.items() if k not in TIMESTAMPS} for row in table.rows),
                               key=lambda r, key=key: r[key])
        return out
    finally:
        db.close()


def test_emitted_seed_runs_on_d1_and_matches_the_python_seed(tmp_path: Path) -> None:
    wrangler = d1util.require_wrangler()
    persist = tmp_path / "d1"
    wrangler.migrations_apply(persist_to=persist)
    sql_file = tmp_path / "seed.sql"
    sql_file.write_text(seeding.emit_sql(SEED_DIR), encoding="utf-8")
    for _ in range(2):  # re-runnable: upserts only
        wrangler.d1("execute", BINDING, "--file", str(sql_file), "--yes", persist_to=persist)

    python_db = tmp_path / "python.db"
    with closing(connect_sync(python_db)) as conn:
        migrations.apply(conn)
        seeding.seed(conn, directory=SEED_DIR)

    state = find_state_file(persist)
    from_d1 = table_contents(state)
    from_python = table_contents(python_db)
    for name in seeding.SEED_TABLES:
        assert len(from_d1[name]) == len(from_python[name]) > 0, name
        assert from_d1[name] == from_python[name], name
    # And the D1 database passes our own checks afterwards: the seed finds nothing to change,
    # and the verdict D1 can compute (quick_check, foreign keys, ledger, schema) is clean.
    with closing(connect_sync(state)) as conn:
        assert seeding.seed(conn, directory=SEED_DIR, dry_run=True).plan.changes == 0
        found = run_work(conn, verdict_work, None, writes=False)
    assert found.ok and found.integrity_pragma == "quick_check", found


def test_whole_database_dump_round_trips_through_d1(seeded: Path, new_reader, tmp_path: Path) -> None:
    """dreamtree export-d1 → wrangler d1 execute --file → wrangler d1 export → dreamtree import-d1."""
    wrangler = d1util.require_wrangler()
    reader = new_reader()
    reader.start()
    reader.put("/api/exercises/1.1.1.v1/response", {"response": {"text": "it's a line\nand another"}})
    ours = tmp_path / "ours.sql"
    backups.export_d1(seeded, ours)
    folder = tmp_path / "d1"
    folder.mkdir()
    config = d1util.write_config(folder, MIGRATIONS_DIR)
    loaded = wrangler.run("d1", "execute", BINDING, "--local", "--file", str(ours), "--yes", "-c", str(config))
    assert loaded.returncode == 0, loaded.describe()
    theirs = tmp_path / "theirs.sql"
    exported = wrangler.run("d1", "export", BINDING, "--local", "--output", str(theirs), "-c", str(config))
    assert exported.returncode == 0, exported.describe()
    back = tmp_path / "back.db"
    backups.import_d1(theirs, back)
    with closing(connect_sync(back, strict=False)) as a, closing(connect_sync(seeded, strict=False)) as b:
        for table in ("users", "sessions", "exercise_responses", "exercise_content", "exercise_sequence", "references", "d1_migrations"):
            q = f'SELECT * FROM "{table}" ORDER BY 1'
            assert [tuple(r) for r in a.execute(q)] == [tuple(r) for r in b.execute(q)], table
