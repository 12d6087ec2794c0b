"""The content pipeline: the seed files (seed/) into the database, validated, planned, safely re-runnable.

    files.py, markdown.py, shapes.py   read and validate the files; every problem has its file:line
    rows.py                            the tables the seed owns and every row the files describe
    plan.py                            the diff against the database, and the seed as SQL statements
    load.py                            the work: one read batch, the plan, one guarded write batch;
                                       `--emit-sql` for wrangler

`seed_on(engine, ...)` is the entry point (the CLI, `dreamtree serve` on an empty database);
`seed(conn, ...)` runs the same work on a plain connection for the tests and benchmarks.
"""

from app.domain.seeding.files import read_seed
from app.domain.seeding.load import (
    SeedDependencyMissing,
    SeedResult,
    emit_sql,
    is_unseeded,
    seed,
    seed_on,
    seed_work,
)
from app.domain.seeding.plan import Plan, TablePlan, plan, write_statements
from app.domain.seeding.rows import SEED_TABLES, SPECS, TableSpec, desired_rows
from app.domain.seeding.shapes import SEED_DIR, SeedData, SeedInvalid, SeedProblem

__all__ = [
    "SEED_DIR",
    "SEED_TABLES",
    "SPECS",
    "Plan",
    "SeedData",
    "SeedDependencyMissing",
    "SeedInvalid",
    "SeedProblem",
    "SeedResult",
    "TablePlan",
    "TableSpec",
    "desired_rows",
    "emit_sql",
    "is_unseeded",
    "plan",
    "read_seed",
    "seed",
    "seed_on",
    "seed_work",
    "write_statements",
]
