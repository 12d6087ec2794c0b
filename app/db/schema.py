"""The schema as data: compare two databases object by object, not by eye.

`shape(conn)` describes every table (columns with type, NOT NULL, DEFAULT and primary-key
position; UNIQUE constraints; CHECK constraints; foreign keys with ON DELETE/ON UPDATE), every
index (table, columns, uniqueness, partial WHERE clause), view and trigger of the user schema.
Wrangler's ledger, SQLite's own tables, D1's `_cf_` tables and Litestream's are not part of it.
`diff()` lists the differences as readable lines; `dreamtree check` and the tests use it.

The tables are inspected with sqlite-utils (`PRAGMA table_info`, `foreign_key_list`,
`index_list`, `index_info`: PRAGMAs D1 answers too, so this runs on D1-strict connections).
A database reached only through an engine (D1) is inspected from its `sqlite_schema` rows:
`shape_of_objects` replays their CREATE statements into a private in-memory database and
inspects that. SQLite builds a table's columns, keys and indexes from that very text, so the
shape is the same as inspecting the database itself, and it costs one read statement.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    import sqlite_utils

SCHEMA_SQL = Path(__file__).resolve().parents[2] / "schema.sql"
# SQLite's own tables, D1's bookkeeping (_cf_) and Litestream's (_litestream_) are not the schema.
_IGNORED = re.compile(r"^(sqlite_|_cf_|_litestream_|d1_migrations$)", re.I)

Default = str | int | float | None


class ColumnShape(TypedDict):
    name: str
    type: str
    notnull: bool
    default: Default
    pk: int


# Column lists comma-separated (one column for every key of the spec); "from" is a keyword.
ForeignKeyShape = TypedDict(
    "ForeignKeyShape", {"from": str, "table": str, "to": str | None, "on_delete": str, "on_update": str}
)


class TableShape(TypedDict):
    columns: list[ColumnShape]
    foreign_keys: list[ForeignKeyShape]
    unique: list[tuple[str, ...]]
    checks: list[str]


class IndexShape(TypedDict):
    table: str
    columns: list[str | None]
    unique: bool
    where: str | None


class Shape(TypedDict):
    tables: dict[str, TableShape]
    indexes: dict[str, IndexShape]
    views: dict[str, str | None]
    triggers: dict[str, str | None]


SchemaObject = tuple[str, str, str, str | None]
"""A row of `sqlite_schema`: type, name, tbl_name, sql."""


def _norm(sql: str | None) -> str | None:
    if sql is None:
        return None
    sql = re.sub(r"\s+", " ", sql.strip())
    return re.sub(r"\s*([(),])\s*", r"\1", sql)


def _checks(create_sql: str) -> list[str]:
    """CHECK constraint expressions of a CREATE TABLE statement, balanced parentheses."""
    found = []
    for match in re.finditer(r"\bCHECK\s*\(", create_sql, re.I):
        depth, i = 1, match.end()
        while depth and i < len(create_sql):
            depth += {"(": 1, ")": -1}.get(create_sql[i], 0)
            i += 1
        found.append(_norm(create_sql[match.end() : i - 1]) or "")
    return sorted(found)


def inspector(conn: sqlite3.Connection) -> sqlite_utils.Database:
    """sqlite-utils over `conn`, running nothing of its own: no PRAGMA recursive_triggers, no
    plugins (its table inspection then uses only PRAGMAs D1 allows). Imported here, by the
    commands that inspect, so that the others do not pay for it."""
    import sqlite_utils

    return sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)


def _objects(conn: sqlite3.Connection) -> list[SchemaObject]:
    return [tuple(row) for row in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name")]


def shape(conn: sqlite3.Connection) -> Shape:
    """The user schema of the database behind `conn`."""
    db = inspector(conn)
    found = Shape(tables={}, indexes={}, views={}, triggers={})
    objects = _objects(conn)
    sql_of = {name: sql for _kind, name, _table, sql in objects}
    for kind, name, table_name, sql in objects:
        if _IGNORED.match(name) or _IGNORED.match(table_name):
            continue
        if kind == "view":
            found["views"][name] = _norm(sql)
        elif kind == "trigger":
            found["triggers"][name] = _norm(sql)
        elif kind == "table":
            table = db.table(name)
            uniques = []
            for index in table.indexes:
                if index.origin == "u":  # a UNIQUE constraint (column or table level)
                    uniques.append(tuple(index.columns))
                elif index.origin == "c":  # CREATE [UNIQUE] INDEX
                    where = re.search(r"\bWHERE\b(.*)$", sql_of.get(index.name) or "", re.I | re.S)
                    found["indexes"][index.name] = IndexShape(
                        table=name, columns=list(index.columns), unique=bool(index.unique),
                        where=_norm(where.group(1)) if where else None,
                    )
            found["tables"][name] = TableShape(
                columns=[
                    ColumnShape(name=c.name, type=(c.type or "").upper(), notnull=bool(c.notnull),
                                default=c.default_value, pk=c.is_pk)
                    for c in table.columns
                ],
                foreign_keys=sorted(
                    (
                        ForeignKeyShape({
                            "from": ", ".join(fk.columns),
                            "table": fk.other_table,
                            "to": ", ".join(str(c) for c in fk.other_columns if c is not None) or None,
                            "on_delete": fk.on_delete,
                            "on_update": fk.on_update,
                        })
                        for fk in table.foreign_keys
                    ),
                    key=lambda fk: (fk["from"], fk["table"], fk["to"] or ""),
                ),
                unique=sorted(uniques),
                checks=_checks(sql or ""),
            )
    return found


def shape_of_objects(objects: Iterable[SchemaObject]) -> tuple[Shape, list[str]]:
    """The shape of a database known by its `sqlite_schema` rows (in creation order), and the
    objects whose CREATE statement could not be replayed (as drift lines)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    problems = []
    try:
        for kind, name, table_name, sql in objects:
            if sql is None or name.lower().startswith("sqlite_") or _IGNORED.match(table_name):
                continue
            exists = conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = ?", (name,)).fetchone()[0]
            if exists:  # a virtual table's shadow tables are created with it
                continue
            try:
                conn.execute(sql)
            except sqlite3.Error as exc:
                problems.append(f"{kind} {name}: cannot be read ({exc})")
        return shape(conn), problems
    finally:
        conn.close()


@lru_cache(maxsize=4)
def expected_shape(schema_sql: Path = SCHEMA_SQL) -> Shape:
    """The shape schema.sql produces on an empty in-memory database (computed once per file)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.executescript(schema_sql.read_text(encoding="utf-8"))
        return shape(conn)
    finally:
        conn.close()


def _kinds(expected: Shape, actual: Shape) -> Iterator[tuple[str, Mapping[str, object], Mapping[str, object]]]:
    yield "table", expected["tables"], actual["tables"]
    yield "index", expected["indexes"], actual["indexes"]
    yield "view", expected["views"], actual["views"]
    yield "trigger", expected["triggers"], actual["triggers"]


def diff(expected: Shape, actual: Shape) -> list[str]:
    """Human-readable differences between two shapes; empty when they are the same."""
    problems = []
    for word, want, have in _kinds(expected, actual):
        for name in sorted(want.keys() - have.keys()):
            problems.append(f"missing {word} {name}")
        for name in sorted(have.keys() - want.keys()):
            problems.append(f"unexpected {word} {name}")
        for name in sorted(want.keys() & have.keys()):
            wanted, found = want[name], have[name]
            if wanted == found:
                continue
            if isinstance(wanted, dict) and isinstance(found, dict):
                for part in sorted(wanted.keys() | found.keys()):
                    if wanted.get(part) != found.get(part):
                        problems.append(f"{name}.{part}: expected {wanted.get(part)!r}, found {found.get(part)!r}")
            else:
                problems.append(f"{name}: expected {wanted!r}, found {found!r}")
    return problems


def drift(objects: Iterable[SchemaObject], schema_sql: Path = SCHEMA_SQL) -> list[str]:
    """How a database known by its `sqlite_schema` rows differs from schema.sql."""
    found, unreadable = shape_of_objects(objects)
    return unreadable + diff(expected_shape(schema_sql), found)
