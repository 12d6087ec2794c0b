"""Loading the seed: one read batch, a plan in Python, one atomic write batch.

`seed_on(engine)` reads what the seed tables hold (one `Read`), plans in Python against the
files, and when anything differs writes ONE `Write` batch: bulk upserts, renumbering,
deactivations and deletions, each statement guarded by the number of rows the plan says it
changes (plan.py). If the content moved between the read and the write, a guard fails, the
batch is dropped whole, and the engine runs the work again on fresh reads; so a re-seed is
safe on a live database while the service serves, and several processes may race to seed an
empty one. On SQLite the plan runs with the writer free (`split=True`): the guards hold the
line, not a lock. A dry run is a read-only query.

`emit_sql` writes the same statements, without the guards (they need a read), as a file for
`wrangler d1 execute --file`: no BEGIN/COMMIT, every statement under D1's limits, re-runnable.

Versioning (spec §14.2): a new `version` of an exercise gives new content rows; the old ones
are set `is_active = 0`, never deleted, and the exercise's place in `exercise_sequence` now
names the new version. Answers keep pointing at the version they answered; progression
matches answers to sequence places by (part, module, exercise), so nobody loses their place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from app.db.connection import run_work
from app.db.engine import Engine, Read, Row, Stmt, Work, Write
from app.db.queries import Q
from app.db.sqltext import render
from app.db.upsert import MAX_STATEMENT_BYTES, JsonValue
from app.domain.errors import Conflict
from app.domain.seeding.files import read_seed
from app.domain.seeding.plan import Plan, plan, write_statements
from app.domain.seeding.rows import DEPENDS_ON, SEED_TABLES, Rows, desired_rows
from app.domain.seeding.shapes import SEED_DIR, SeedData
from app.timeutil import now_iso


class SeedDependencyMissing(Conflict):
    """`--only` a table whose rows point at rows of another table that are not there yet."""

    code = "seed_dependency_missing"


@dataclass(frozen=True)
class SeedResult:
    plan: Plan
    written: bool


def _tables(only: str | None) -> tuple[str, ...]:
    if only is None:
        return SEED_TABLES
    if only not in SEED_TABLES:
        raise ValueError(f"{only} is not a seed table ({', '.join(SEED_TABLES)})")
    return (only,)


def _as_dict(row: Row) -> dict[str, JsonValue]:
    return {name: row[name] for name in row.keys()}


def _check_dependencies(only: str, wanted: Rows, existing: dict[str, list[dict[str, JsonValue]]]) -> None:
    if only not in DEPENDS_ON:
        return
    parent, column, parent_key = DEPENDS_ON[only]
    needed = {str(r[column]) for r in wanted[only] if r[column] is not None}
    present = {str(r[parent_key]) for r in existing[parent]}
    missing = sorted(needed - present)
    if missing:
        raise SeedDependencyMissing(
            f"{only} needs {parent} that are not in the database ({', '.join(missing[:5])}"
            f"{'…' if len(missing) > 5 else ''}); seed {parent} first"
        )


def seed_work(data: SeedData, *, only: str | None = None, dry_run: bool = False, now: str) -> Work[SeedResult]:
    """Read the seed tables (one batch), plan, and unless there is nothing to do (or this is a
    dry run) write the plan in one guarded batch."""
    tables = _tables(only)
    reads = [*tables]
    if only in DEPENDS_ON:
        reads.append(DEPENDS_ON[only][0])
    results = yield Read(*(Stmt(Q[f"seed_rows_{name}"]) for name in reads))
    existing = {name: [_as_dict(row) for row in result.rows] for name, result in zip(reads, results)}
    wanted = desired_rows(data, now)
    if only is not None:
        _check_dependencies(only, wanted, existing)
    the_plan = plan(existing, wanted, tables)
    if dry_run or the_plan.changes == 0:
        return SeedResult(the_plan, False)
    yield Write(write_statements(wanted, tables, now, guarded_by=the_plan))
    return SeedResult(the_plan, True)


async def seed_on(
    engine: Engine,
    *,
    directory: Path = SEED_DIR,
    dry_run: bool = False,
    only: str | None = None,
) -> SeedResult:
    """Validate the files (SeedInvalid: nothing written), plan against the database, and
    unless `dry_run` or nothing differs, write the changes in one atomic batch."""
    data = await anyio.to_thread.run_sync(read_seed, directory)
    _tables(only)

    def work() -> Work[SeedResult]:
        return seed_work(data, only=only, dry_run=dry_run, now=now_iso())

    if dry_run:
        return await engine.query(work, None)
    return await engine.change(work, None, split=True)


def _unseeded_work() -> Work[bool]:
    (result,) = yield Read(Stmt(Q.is_unseeded))
    return bool(result.value())


async def is_unseeded(engine: Engine) -> bool:
    """True for a database with no workbook yet (no sequence, no tools)."""
    return await engine.query(_unseeded_work, None)


def seed(
    conn: sqlite3.Connection,
    *,
    directory: Path = SEED_DIR,
    dry_run: bool = False,
    only: str | None = None,
) -> SeedResult:
    """`seed_on` for a plain connection (the tests' fixtures, the benchmarks): the same work,
    run whole in one transaction on `conn`."""
    data = read_seed(directory)
    _tables(only)
    return run_work(conn, lambda: seed_work(data, only=only, dry_run=dry_run, now=now_iso()), None, writes=not dry_run)


# --- SQL for D1 ---------------------------------------------------------------------------------


def statements_sql(statements: Sequence[Stmt]) -> list[str]:
    """Each statement as one line with its values written in, checked against D1's limit."""
    lines = []
    for statement in statements:
        line = render(statement.sql, statement.params)
        if len(line.encode()) >= MAX_STATEMENT_BYTES:
            raise ValueError(f"a seed statement takes {len(line.encode())} bytes, over D1's limit: {line[:80]}…")
        lines.append(line)
    return lines


def emit_sql(directory: Path = SEED_DIR, *, only: str | None = None) -> str:
    """The seed as a file for `wrangler d1 execute --file`: no BEGIN/COMMIT, re-runnable."""
    data = read_seed(directory)
    stamp = now_iso()
    lines = [
        "-- DreamTree seed, generated by `dreamtree seed --emit-sql` at " + stamp,
        "-- Apply with: wrangler d1 execute <db> --file <this file>  (re-runnable: every statement decides in SQL)",
    ]
    lines += statements_sql(write_statements(desired_rows(data, stamp), _tables(only), stamp))
    return "\n".join(lines) + "\n"
