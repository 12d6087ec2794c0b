"""Migrations with wrangler's own layout and ledger, so D1 and `dreamtree migrate` agree.

wrangler (`d1 migrations apply`) keeps the names of applied files in `d1_migrations`, created
with the DDL below, and applies the files it does not find there in numeric order, each file
atomically together with its ledger row (as wrangler's source does it). This runner does exactly that,
so a database migrated by either tool counts as up to date for the other.

It is stricter than wrangler where wrangler would break later: a file must be named
`NNNN_name.sql`, must end with `;` (wrangler appends its ledger INSERT to the text), and may
not contain transaction statements or connection PRAGMAs (remote D1 refuses them). Such a
file is refused before anything runs.

Two ways in: `apply(conn)` / `status(conn)` on a local sqlite3 connection (the CLI's file
commands), and `apply_on(engine)` / `status_on(engine)` through any engine, the D1 Worker
included. On an engine each pending file is ONE write batch, its statements followed by the
ledger INSERT, which is how `wrangler d1 migrations apply` runs a file; so the two tools stay
interchangeable on the same D1 database (tests/test_d1_engine.py checks both directions).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from app.db.connection import guard_of, run_in_transaction
from app.db.d1 import ALLOWED_PRAGMAS
from app.db.engine import ConstraintFailed, Engine, Read, Stmt, Work, Write

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"

# Byte for byte what wrangler 4 runs (initMigrationsTable), tabs included.
LEDGER_DDL = """CREATE TABLE IF NOT EXISTS d1_migrations(
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		name       TEXT UNIQUE,
		applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
);"""

LEDGER_EXISTS = "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'd1_migrations'"
LEDGER_NAMES = "SELECT name FROM d1_migrations ORDER BY id"
LEDGER_INSERT = "INSERT INTO d1_migrations (name) VALUES (?)"
LEDGER_HAS = "SELECT count(*) FROM d1_migrations WHERE name = ?"

_NAME = re.compile(r"^(\d+)_[A-Za-z0-9_.-]+\.sql$")
_TRANSACTION_WORDS = {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"}


class MigrationError(Exception):
    """A migration file that is refused or fails; says which file and statement."""

    def __init__(self, file: str, message: str, line: int | None = None) -> None:
        self.file, self.line, self.message = file, line, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int  # line of the file where the statement starts


@dataclass(frozen=True)
class MigrationFile:
    name: str
    path: Path
    number: int


def _strip_comments(sql: str) -> str:
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    return re.sub(r"--[^\n]*", " ", sql).strip()


def split_statements(text: str, file: str = "<sql>") -> list[Statement]:
    """Split SQL text into statements (trigger bodies included) with their starting lines."""
    statements: list[Statement] = []
    buffer: list[str] = []
    start = 1
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if not buffer:
            if not _strip_comments(line):
                continue
            start = number
        buffer.append(line)
        candidate = "".join(buffer)
        if sqlite3.complete_statement(candidate):
            statements.append(Statement(candidate.strip(), start))
            buffer = []
    if buffer and _strip_comments("".join(buffer)):
        raise MigrationError(file, "the last statement does not end with ';' (wrangler appends to the file)", start)
    return statements


def check_portable(statements: list[Statement], file: str) -> None:
    """Refuse what wrangler or remote D1 would break on, before anything runs."""
    for statement in statements:
        body = _strip_comments(statement.sql)
        first = body.split(None, 1)[0].upper().rstrip(";") if body else ""
        if first in _TRANSACTION_WORDS:
            raise MigrationError(
                file, f"transaction statement {first} is not allowed (each file already runs atomically)", statement.line
            )
        if first == "PRAGMA":
            name = re.match(r"PRAGMA\s+(\w+)", body, re.I)
            if not name or name.group(1).lower() not in ALLOWED_PRAGMAS:
                raise MigrationError(file, f"D1 refuses this PRAGMA: {body.splitlines()[0]}", statement.line)
        if re.match(r"VACUUM\b|ATTACH\b|DETACH\b", body, re.I):
            raise MigrationError(file, f"D1 refuses {first}", statement.line)


def list_migrations(directory: Path = MIGRATIONS_DIR) -> list[MigrationFile]:
    files = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(path.name, "migration files are named NNNN_description.sql")
        files.append(MigrationFile(path.name, path, int(match.group(1))))
    # wrangler: lexical listing, then a stable sort on the numeric prefix.
    return sorted(files, key=lambda f: f.number)


def load(migration: MigrationFile) -> list[Statement]:
    text = migration.path.read_text(encoding="utf-8")
    statements = split_statements(text, migration.name)
    check_portable(statements, migration.name)
    return statements


def ensure_ledger(conn: sqlite3.Connection) -> None:
    with guard_of(conn).trusted():
        conn.execute(LEDGER_DDL)


def applied_names(conn: sqlite3.Connection) -> list[str]:
    exists = conn.execute(LEDGER_EXISTS).fetchone()[0]
    if not exists:
        return []
    return [row[0] for row in conn.execute(LEDGER_NAMES)]


@dataclass(frozen=True)
class MigrationStatus:
    applied: list[str]
    pending: list[str]


def status(conn: sqlite3.Connection, directory: Path = MIGRATIONS_DIR) -> MigrationStatus:
    done = applied_names(conn)
    done_set = set(done)
    return MigrationStatus(done, [m.name for m in list_migrations(directory) if m.name not in done_set])


def apply(conn: sqlite3.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending files in order, each atomically with its ledger row; returns their names."""
    ensure_ledger(conn)
    done = set(applied_names(conn))
    pending = [m for m in list_migrations(directory) if m.name not in done]
    loaded = [(m, load(m)) for m in pending]  # refuse a bad file before running any of them
    applied = []
    for migration, statements in loaded:

        def run(c: sqlite3.Connection, migration: MigrationFile = migration, statements: list[Statement] = statements) -> bool:
            if c.execute(LEDGER_HAS, (migration.name,)).fetchone()[0]:
                return False  # another process applied it since we read the ledger (we hold the lock now)
            for number, statement in enumerate(statements, start=1):
                try:
                    c.execute(statement.sql)
                except sqlite3.Error as exc:
                    raise MigrationError(
                        migration.name, f"statement {number} failed: {exc}", statement.line
                    ) from exc
            c.execute(LEDGER_INSERT, (migration.name,))
            return True

        if run_in_transaction(conn, run, True):
            applied.append(migration.name)
    return applied


def schema_version(conn: sqlite3.Connection) -> int:
    """The number of the newest applied migration (0 for an empty database)."""
    numbers = [int(m.group(1)) for name in applied_names(conn) if (m := _NAME.match(name))]
    return max(numbers, default=0)


# --- through an engine (the D1 Worker, or the sqlite engine) --------------------------------------


def without_trailing_comment(sql: str) -> str:
    """The statement without comments after its final ';': D1 reads them as one more, empty,
    statement and refuses the batch ("SQL code did not contain a statement")."""
    end = sql.rfind(";")
    while end >= 0:
        if sqlite3.complete_statement(sql[: end + 1]) and not _strip_comments(sql[end + 1:]):
            return sql[: end + 1]
        end = sql.rfind(";", 0, end)
    return sql


def _applied_work() -> Work[list[str]]:
    (exists,) = yield Read(Stmt(LEDGER_EXISTS))
    if not exists.value():
        return []
    (names,) = yield Read(Stmt(LEDGER_NAMES))
    return [str(name) for name in names.column()]


def _script_work(statements: tuple[Stmt, ...]) -> Work[None]:
    yield Write(*statements)


async def applied_names_on(engine: Engine) -> list[str]:
    """The ledger's names, in order ([] when there is no ledger yet); writes nothing."""
    return await engine.query(_applied_work, None)


async def status_on(engine: Engine, directory: Path = MIGRATIONS_DIR) -> MigrationStatus:
    done = await applied_names_on(engine)
    done_set = set(done)
    return MigrationStatus(done, [m.name for m in list_migrations(directory) if m.name not in done_set])


async def apply_on(engine: Engine, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending files through `engine`, each as one atomic write batch with its ledger row.

    The ledger is created first with wrangler's exact DDL (its own batch: `CREATE TABLE IF NOT
    EXISTS` changes nothing when wrangler made it). Every pending file is loaded and checked
    before the first one runs. A file that fails leaves nothing behind, the files before it
    stay applied, and the error names the file.

    Several runners may start at once on one database (several `serve` processes on one D1).
    The one that loses the race to a file sees its batch fail (the file's CREATE TABLE, or the
    ledger's UNIQUE name); it then reads the ledger again, and a file found there was applied
    by the other runner: it goes on with the next one. Only a file still missing is an error."""
    from app.db.d1_engine import D1Error  # only here: the sqlite-only commands need no HTTP client

    await engine.change(partial(_script_work, (Stmt(LEDGER_DDL),)), None)
    done = set(await applied_names_on(engine))
    pending = [m for m in list_migrations(directory) if m.name not in done]
    loaded = [(m, load(m)) for m in pending]  # refuse a bad file before running any of them
    applied = []
    for migration, statements in loaded:
        if migration.name in done:
            continue  # applied by another runner since we read the ledger
        batch = (*(Stmt(without_trailing_comment(s.sql)) for s in statements), Stmt(LEDGER_INSERT, (migration.name,)))
        try:
            await engine.change(partial(_script_work, batch), None)
        except (ConstraintFailed, sqlite3.Error, D1Error) as exc:
            done = set(await applied_names_on(engine))
            if migration.name in done:
                continue  # another runner applied it first: nothing of ours was written
            detail = exc.message if isinstance(exc, ConstraintFailed) else exc.detail if isinstance(exc, D1Error) else exc
            raise MigrationError(migration.name, f"the batch failed, nothing applied: {detail}") from None
        applied.append(migration.name)
    return applied
