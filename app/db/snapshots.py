"""The SQLite file itself: online snapshots, restores, and whole-database dumps in D1's format.

These work on the file, so they belong to the sqlite engine only (app/domain/backups.py says
what to use on D1 instead).

- `backup(db, target)`: SQLite's online backup API, one step under one read snapshot:
  consistent while the service serves, and never restarted by a concurrent write.
- `restore(source, db, accept)`: the snapshot's verdict (app/db/checks.py) goes to `accept`,
  which refuses by raising; then the snapshot is copied in with the backup API, so the live
  file is replaced in one step and never half-written.
- `dump_d1(conn)` / `export_d1(db, target)` / `import_d1(source, db)`: the whole database as
  SQL in the shape `wrangler d1 export` writes and `wrangler d1 execute --file` accepts (no
  BEGIN/COMMIT, `PRAGMA defer_foreign_keys=TRUE` first, tables in creation order with their
  rows, indexes last, `d1_migrations` included so the migration state travels, `_cf_` and
  Litestream's tables never). Snapshots and dumps hold what readers wrote: they are created
  with mode 0600 (app/db/files.py).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

from app.db import migrations
from app.db.checks import Verdict, verdict
from app.db.connection import connect_sync, guard_of, run_in_transaction
from app.db.files import create_private, open_private_text
from app.db.schema import inspector
from app.db.sqltext import sql_literal
from app.db.upsert import quote_identifier

_SKIP = re.compile(r"^(sqlite_|_cf_|_litestream_)", re.I)
_BOOKKEEPING = re.compile(r'(CREATE TABLE( IF NOT EXISTS)?|INSERT INTO)\s+"?_cf_', re.I)


class DumpRefused(Exception):
    """A dump that cannot be loaded here; nothing was changed."""


def backup(db: Path, target: Path) -> int:
    """A consistent online snapshot of `db` at `target`; returns its size in bytes."""
    if target.exists():
        raise FileExistsError(f"{target} exists; choose a new file name")
    create_private(target)  # 0600, like the database it copies
    with closing(connect_sync(db, strict=False, readonly=True)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy, pages=0)  # one step under one read snapshot: never restarts
    return target.stat().st_size


def restore(source: Path, db: Path, accept: Callable[[Verdict], None]) -> Verdict:
    """Replace `db` with the snapshot `source` once `accept` took the snapshot's verdict."""
    with closing(connect_sync(source, strict=False, readonly=True)) as snapshot:
        found = verdict(snapshot)
        accept(found)
        with closing(connect_sync(db, strict=False)) as live:
            snapshot.backup(live, pages=0)
    return found


def dump_d1(conn: sqlite3.Connection) -> Iterator[str]:
    """Statements of a whole-database dump, one per line, in `wrangler d1 export`'s order."""
    yield "PRAGMA defer_foreign_keys=TRUE;"
    tables = inspector(conn)
    objects = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid"
    ).fetchall()
    later = []
    for kind, name, _table, sql in objects:
        if _SKIP.match(name):
            continue
        if kind != "table":
            later.append(sql)
            continue
        create = sql
        if create.startswith('CREATE TABLE "'):
            create = "CREATE TABLE IF NOT EXISTS " + create[len("CREATE TABLE "):]
        yield create + ";"
        columns = ", ".join(quote_identifier(column.name) for column in tables.table(name).columns)
        for row in conn.execute(f"SELECT {columns} FROM {quote_identifier(name)}"):
            yield f"INSERT INTO {quote_identifier(name)} VALUES({','.join(sql_literal(v) for v in row)});"
    if "sqlite_sequence" in tables.table_names():
        with guard_of(conn).trusted():
            sequence = conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall()
        if sequence:
            yield "DELETE FROM sqlite_sequence;"
            for name, seq in sequence:
                yield f'INSERT INTO "sqlite_sequence" VALUES({sql_literal(name)},{seq});'
    for sql in later:
        yield sql + ";"


def export_d1(db: Path, target: Path) -> int:
    """Write the whole database as a D1 SQL dump; returns the number of statements."""
    count = 0
    with closing(connect_sync(db, strict=False, readonly=True)) as conn, open_private_text(target) as out:
        conn.execute("BEGIN")  # one snapshot for the whole dump
        try:
            for statement in dump_d1(conn):
                out.write(statement + "\n")
                count += 1
        finally:
            conn.execute("COMMIT")
    return count


def import_d1(source: Path, db: Path) -> int:
    """Load a D1 SQL dump (ours or `wrangler d1 export`'s) into an empty database file."""
    text = source.read_text(encoding="utf-8")
    statements = migrations.split_statements(text, source.name)
    with closing(connect_sync(db, strict=False)) as conn:
        if conn.execute("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'").fetchone()[0]:
            raise DumpRefused(f"{db} is not empty; import a dump into a new database file")

        def load(c: sqlite3.Connection) -> int:
            c.execute("PRAGMA defer_foreign_keys = ON")
            done = 0
            for statement in statements:
                body = statement.sql.lstrip()
                if body.upper().startswith(("PRAGMA DEFER_FOREIGN_KEYS", "BEGIN", "COMMIT")):
                    continue
                if _BOOKKEEPING.match(body):
                    continue  # D1's own bookkeeping tables are never copied
                try:
                    c.execute(body)
                except sqlite3.Error as exc:
                    raise DumpRefused(f"{source.name}:{statement.line}: {exc}") from exc
                done += 1
            return done

        return run_in_transaction(conn, load, True)
