"""Bulk upserts built from identifiers, and the one function that quotes an identifier.

An `Upsert` describes a table the way a loader sees it (its key, the columns it writes, those
set only on insert, those moved on every real change) and builds ONE statement that upserts
many rows at once: the rows travel as one JSON array parameter and `json_each` unpacks them,

    INSERT INTO "t" ("id", "name", "updated_at")
    SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true
    ON CONFLICT ("id") DO UPDATE SET "name" = excluded."name", "updated_at" = excluded."updated_at"
    WHERE "t"."name" IS NOT excluded."name" COLLATE BINARY

so a statement has one bound parameter whatever the number of rows (D1 binds at most 100),
and a row whose compared columns already hold the wanted values is not touched at all: its
`updated_at` stays, and `changes()` counts exactly the rows inserted or really updated.
`chunks` cuts the rows so that each statement stays under D1's 100 KB of SQL even when it is
written out with its values in it (`dreamtree seed --emit-sql`).

SQL is built here from identifiers only, never from values; `quote_identifier` is the one
quoting function of the project (the rule sqlite-utils' table inspection quotes with too;
tests/test_seeding.py holds them equal). It is not imported from sqlite-utils: that import
costs every `dreamtree` command about 140 ms, for one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from app.db.engine import Stmt

JsonValue = str | int | float | None
"""A column value that travels inside a JSON parameter and comes back out with its type."""

Row = Mapping[str, JsonValue]

MAX_STATEMENT_BYTES = 100_000
"""D1's limit on the SQL text of one statement (workerd's SQLITE_LIMIT_SQL_LENGTH)."""

_ROOM = 2_000
"""Bytes a chunk leaves free besides the statement's own text (the quotes around the value)."""


def quote_identifier(name: str) -> str:
    """A table or column name as an SQL identifier: in double quotes, inner quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


class RowTooLarge(ValueError):
    """One row alone does not fit in a statement under D1's limit."""


def rows_json(rows: Sequence[Sequence[JsonValue]]) -> str:
    """Rows as the compact JSON array `json_each` unpacks (UTF-8 kept as it is)."""
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _literal_bytes(text: str) -> int:
    """How many bytes `text` takes as an SQL string literal (each ' doubled)."""
    return len(text.encode()) + text.count("'") + 2


@dataclass(frozen=True)
class Upsert:
    """How a loader writes one table: by `key`, the `columns` it owns.

    `insert_only` columns are set when a row is inserted and never updated (created_at);
    `touched` columns are set again on every real change (updated_at) but a difference in
    them alone is no change. Every other column is compared."""

    table: str
    key: str
    columns: tuple[str, ...]
    insert_only: tuple[str, ...] = ()
    touched: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.key not in self.columns:
            raise ValueError(f"{self.table}: the key {self.key} is not among the columns")

    @property
    def compared(self) -> tuple[str, ...]:
        """The columns whose difference makes a row change (the key is matched, not compared)."""
        return tuple(c for c in self.columns if c not in self.insert_only and c not in self.touched and c != self.key)

    @cached_property
    def sql(self) -> str:
        """The statement, with one `?`: a JSON array of rows, each an array in `columns` order."""
        table = quote_identifier(self.table)
        names = [quote_identifier(c) for c in self.columns]
        values = ", ".join(f"value ->> {i}" for i in range(len(names)))
        insert = f"INSERT INTO {table} ({', '.join(names)}) SELECT {values} FROM json_each(?) WHERE true"
        updates = [quote_identifier(c) for c in self.columns if c != self.key and c not in self.insert_only]
        if not self.compared or not updates:
            return f"{insert} ON CONFLICT ({quote_identifier(self.key)}) DO NOTHING"
        assignments = ", ".join(f"{c} = excluded.{c}" for c in updates)
        # BINARY whatever a column's collation: a row differs exactly when its values differ,
        # as a loader comparing in Python sees it (a case-only edit is an edit).
        differs = " OR ".join(
            f"{table}.{quote_identifier(c)} IS NOT excluded.{quote_identifier(c)} COLLATE BINARY" for c in self.compared
        )
        return f"{insert} ON CONFLICT ({quote_identifier(self.key)}) DO UPDATE SET {assignments} WHERE {differs}"

    def values(self, row: Row) -> list[JsonValue]:
        return [row[c] for c in self.columns]

    def chunks(self, rows: Sequence[Row]) -> Iterator[list[Row]]:
        """The rows cut into runs whose statement stays under D1's 100 KB, values written in."""
        budget = MAX_STATEMENT_BYTES - len(self.sql.encode()) - _ROOM
        chunk: list[Row] = []
        size = 0
        for row in rows:
            grows = _literal_bytes(rows_json([self.values(row)])) - 2  # its array and a comma
            if grows > budget:
                raise RowTooLarge(
                    f"{self.table} row {row[self.key]!r} takes {grows} bytes, more than one D1 statement holds"
                )
            if chunk and size + grows > budget:
                yield chunk
                chunk, size = [], 0
            chunk.append(row)
            size += grows
        if chunk:
            yield chunk

    def statement(self, rows: Sequence[Row]) -> Stmt:
        """One statement upserting `rows` (take them from `chunks`)."""
        return Stmt(self.sql, (rows_json([self.values(row) for row in rows]),))


__all__ = ["MAX_STATEMENT_BYTES", "JsonValue", "Row", "RowTooLarge", "Upsert", "quote_identifier", "rows_json"]
