"""The schema as data: compare two databases object by object, not by eye.

`shape(conn)` describes every table (columns with type, NOT NULL, DEFAULT and primary-key
position; UNIQUE constraints; CHECK constraints; foreign keys with ON DELETE/ON UPDATE) and
every index (table, columns, uniqueness, partial WHERE clause) of the user schema.
Wrangler's ledger, SQLite's own tables and D1's `_cf_` tables are not part of it.
`drift()` lists the differences as readable lines; `dreamtree check` and the tests use it.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from app.db.connection import GuardedConnection, configure

SCHEMA_SQL = Path(__file__).resolve().parents[2] / "schema.sql"
# SQLite's own tables, D1's bookkeeping (_cf_) and Litestream's (_litestream_) are not the schema.
_IGNORED = re.compile(r"^(sqlite_|_cf_|_litestream_|d1_migrations$)", re.I)


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


def _table(conn: sqlite3.Connection, name: str, create_sql: str) -> dict[str, Any]:
    q = name.replace('"', '""')
    columns = [
        {"name": r[1], "type": r[2].upper(), "notnull": bool(r[3]), "default": r[4], "pk": r[5]}
        for r in conn.execute(f'PRAGMA table_info("{q}")')
    ]
    # foreign_key_list columns: id, seq, table, from, to, on_update, on_delete, match
    fks = sorted(
        (r[3], r[2], r[4], r[6], r[5]) for r in conn.execute(f'PRAGMA foreign_key_list("{q}")')
    )
    uniques = []
    for index in conn.execute(f'PRAGMA index_list("{q}")'):
        if index[3] == "u":  # a UNIQUE constraint (column or table level), not a named index
            cols = tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{index[1]}")'))
            uniques.append(cols)
    return {
        "columns": columns,
        "foreign_keys": [
            {"from": f[0], "table": f[1], "to": f[2], "on_delete": f[3], "on_update": f[4]} for f in fks
        ],
        "unique": sorted(uniques),
        "checks": _checks(create_sql),
    }


def shape(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    tables: dict[str, Any] = {}
    indexes: dict[str, Any] = {}
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name").fetchall()
    for kind, name, table, sql in rows:
        if _IGNORED.match(name) or _IGNORED.match(table):
            continue
        if kind == "table":
            tables[name] = _table(conn, name, sql)
        elif kind == "index" and sql is not None:
            q = name.replace('"', '""')
            unique = bool(re.match(r"CREATE\s+UNIQUE", sql, re.I))
            where = re.search(r"\bWHERE\b(.*)$", sql, re.I | re.S)
            indexes[name] = {
                "table": table,
                "columns": [r[2] for r in conn.execute(f'PRAGMA index_info("{q}")')],
                "unique": unique,
                "where": _norm(where.group(1)) if where else None,
            }
        elif kind in ("view", "trigger"):
            tables.setdefault(f"{kind}s", {})[name] = _norm(sql)
    return {"tables": tables, "indexes": indexes}


def expected_shape(schema_sql: Path = SCHEMA_SQL) -> dict[str, dict[str, Any]]:
    """The shape schema.sql produces on an empty in-memory database."""
    conn = sqlite3.connect(":memory:", isolation_level=None, factory=GuardedConnection)
    try:
        configure(conn, strict=False, writer=False)
        conn.executescript(schema_sql.read_text(encoding="utf-8"))
        return shape(conn)
    finally:
        conn.close()


def diff(expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]]) -> list[str]:
    """Human-readable differences between two shapes; empty when they are the same."""
    problems = []
    for kind in ("tables", "indexes"):
        want, have = expected[kind], actual[kind]
        for name in sorted(want.keys() - have.keys()):
            problems.append(f"missing {kind[:-1] if kind == 'tables' else 'index'} {name}")
        for name in sorted(have.keys() - want.keys()):
            problems.append(f"unexpected {kind[:-1] if kind == 'tables' else 'index'} {name}")
        for name in sorted(want.keys() & have.keys()):
            if want[name] == have[name]:
                continue
            if isinstance(want[name], dict):
                for part in sorted(want[name].keys() | have[name].keys()):
                    if want[name].get(part) != have[name].get(part):
                        problems.append(
                            f"{name}.{part}: expected {want[name].get(part)!r}, found {have[name].get(part)!r}"
                        )
            else:
                problems.append(f"{name}: expected {want[name]!r}, found {have[name]!r}")
    return problems


def drift(conn: sqlite3.Connection, schema_sql: Path = SCHEMA_SQL) -> list[str]:
    return diff(expected_shape(schema_sql), shape(conn))
