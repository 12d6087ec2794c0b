"""The health of a database: what `dreamtree check` reports and `restore` requires.

The verdict is a work (reads only), so it runs on either engine: `PRAGMA quick_check` and
`PRAGMA foreign_key_check` (both on D1's allow-list), the schema's objects from `sqlite_schema`
(compared with schema.sql by replaying them, app/db/schema.py), and wrangler's ledger for the
pending migrations. The ledger is read in a second batch only when the first shows it exists:
a statement naming a missing table would fail the whole batch.

On the sqlite engine the full `PRAGMA integrity_check` (which also cross-checks every index
against its table) replaces quick_check. D1 refuses it, so it runs on the file itself, in a
trusted section of a read-only connection: an operator's PRAGMA, never a reader's.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import anyio.to_thread

from app.db import migrations
from app.db.connection import Database, connect_sync, guard_of, run_work
from app.db.engine import Engine, Read, Stmt, Work
from app.db.queries import Q
from app.db.schema import SchemaObject, drift

LEDGER = "d1_migrations"


@dataclass(frozen=True)
class Verdict:
    integrity: list[str]  # ["ok"], or the problems found
    integrity_pragma: Literal["integrity_check", "quick_check"]
    orphans: int  # rows whose parent is missing
    applied: list[str]
    pending: list[str]
    drift: list[str]

    @property
    def ok(self) -> bool:
        return self.integrity == ["ok"] and not self.orphans and not self.pending and not self.drift


def _pending(applied: list[str], directory: Path) -> list[str]:
    done = set(applied)
    return [m.name for m in migrations.list_migrations(directory) if m.name not in done]


def _ledger_work(has_ledger: bool) -> Work[list[str]]:
    if not has_ledger:
        return []
    (ledger,) = yield Read(Stmt(Q.applied_migrations))
    return [str(name) for name in ledger.column()]


def applied_migrations_work() -> Work[list[str]]:
    """The names wrangler's ledger holds, in order ([] before the first migration)."""
    (objects,) = yield Read(Stmt(Q.schema_objects))
    return (yield from _ledger_work(any(row["name"] == LEDGER for row in objects.rows)))


async def pending_migrations(engine: Engine, directory: Path = migrations.MIGRATIONS_DIR) -> list[str]:
    """Migration files the database behind `engine` has not applied yet."""
    return _pending(await engine.query(applied_migrations_work, None), directory)


def verdict_work(*, quick_check: bool = True, directory: Path = migrations.MIGRATIONS_DIR) -> Work[Verdict]:
    """Integrity (quick_check; left empty when `quick_check` is off, for the caller to run the
    full check), foreign keys, pending migrations and drift from schema.sql."""
    checks = [Stmt(Q.foreign_key_check), Stmt(Q.schema_objects)]
    if quick_check:
        checks.insert(0, Stmt(Q.quick_check))
    results = yield Read(*checks)
    integrity = [str(line) for line in results[0].column()] if quick_check else []
    orphans, objects = results[-2:]
    schema: list[SchemaObject] = [(row[0], row[1], row[2], row[3]) for row in objects.rows]
    applied = yield from _ledger_work(any(name == LEDGER for _kind, name, _table, _sql in schema))
    return Verdict(integrity, "quick_check", len(orphans.rows), applied, _pending(applied, directory), drift(schema))


def full_integrity(conn: sqlite3.Connection) -> list[str]:
    """`PRAGMA integrity_check` on an SQLite file (an operator's PRAGMA, not D1's)."""
    with guard_of(conn).trusted():
        return [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]


def _file_integrity(path: Path) -> list[str]:
    with closing(connect_sync(path, readonly=True)) as conn:
        return full_integrity(conn)


async def verdict_on(engine: Engine) -> Verdict:
    """The verdict through an engine; on the sqlite engine with the full integrity_check."""
    if isinstance(engine, Database):
        found = await engine.query(lambda: verdict_work(quick_check=False), None)
        integrity = await anyio.to_thread.run_sync(_file_integrity, engine.path)
        return replace(found, integrity=integrity, integrity_pragma="integrity_check")
    return await engine.query(verdict_work, None)


def verdict(conn: sqlite3.Connection) -> Verdict:
    """The verdict on an SQLite file open as `conn` (a snapshot about to be restored)."""
    found = run_work(conn, lambda: verdict_work(quick_check=False), None, writes=False)
    return replace(found, integrity=full_integrity(conn), integrity_pragma="integrity_check")
