"""The seed as SQL for D1: `dreamtree seed --emit-sql` runs on wrangler's local D1, twice, and
gives exactly the tables the Python seeder writes."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest
import sqlite_utils

from app.db import migrations
from app.db.connection import connect_sync
from app.domain import seeding
from app.domain.seed_files import SEED_DIR
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
    # And the D1 database passes our own checks afterwards.
    with closing(connect_sync(state)) as conn:
        assert seeding.plan(conn, seeding.read_seed(SEED_DIR)).changes == 0
