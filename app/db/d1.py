"""D1-strict connections: Cloudflare D1's limits and allow-lists on a plain sqlite3 connection.

Every SQL statement this project ships must also run on D1. Rather than hope, the connections
carry D1's own refusals (D1's documented limits and workerd's source): the `setlimit` values workerd
sets, and an authorizer with workerd's function and PRAGMA allow-lists that also refuses
ATTACH, temporary objects, virtual tables other than FTS5, `_cf_` names and transaction
statements. A statement D1 would refuse therefore fails here first, in the tests.

The database layer itself needs a few things D1 forbids to user SQL (BEGIN IMMEDIATE, the
connection PRAGMAs, integrity_check for `dreamtree check`); it runs them inside
`guard.trusted()`, which is the same split workerd makes between its trusted and untrusted
statements.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

# workerd src/workerd/util/sqlite.c++: the limits it sets on every D1 database.
D1_LIMITS: dict[int, int] = {
    sqlite3.SQLITE_LIMIT_LENGTH: 2_200_000,
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: 100_000,
    sqlite3.SQLITE_LIMIT_COLUMN: 100,
    sqlite3.SQLITE_LIMIT_EXPR_DEPTH: 100,
    sqlite3.SQLITE_LIMIT_COMPOUND_SELECT: 5,
    sqlite3.SQLITE_LIMIT_VDBE_OP: 25_000,
    sqlite3.SQLITE_LIMIT_FUNCTION_ARG: 127,
    sqlite3.SQLITE_LIMIT_ATTACHED: 0,
    sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: 50,
    sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER: 100,
    sqlite3.SQLITE_LIMIT_TRIGGER_DEPTH: 10,
}

# workerd's ALLOWED_SQLITE_FUNCTIONS (sqlite_version and friends are commented out there).
# Functions newer than SQLite 3.40 (concat, unhex, ...) are on D1's list but do not exist in
# 3.40, so they fail here with "no such function", which is what the project wants.
ALLOWED_FUNCTIONS = frozenset(
    """
    abs changes char coalesce concat concat_ws format glob hex ifnull iif instr
    last_insert_rowid length like likelihood likely lower ltrim max_scalar min_scalar nullif
    octet_length printf quote random randomblob replace round rtrim sign soundex substr
    substring total_changes trim typeof unhex unicode unlikely upper zeroblob
    date time datetime julianday unixepoch strftime timediff current_date current_time
    current_timestamp
    avg count group_concat string_agg max min sum total
    row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value
    nth_value
    acos acosh asin asinh atan atan2 atanh ceil ceiling cos cosh degrees exp floor ln log log10
    log2 mod pi pow power radians sin sinh sqrt tan tanh trunc
    json json_array json_array_length json_extract -> ->> json_insert json_object json_patch
    json_remove json_replace json_set json_type json_valid json_quote json_group_array
    json_group_object json_each json_tree
    match highlight bm25 snippet
    sqlite_rename_column sqlite_rename_table sqlite_rename_test sqlite_drop_column
    sqlite_rename_quotefix
    """.split()
)

# PRAGMAs D1 answers (Cloudflare's D1 documentation lists them); the booleans may also be set.
ALLOWED_PRAGMAS = frozenset(
    """
    table_list table_info table_xinfo index_list index_info index_xinfo foreign_key_list
    foreign_key_check quick_check data_version optimize
    foreign_keys defer_foreign_keys case_sensitive_like ignore_check_constraints
    legacy_alter_table recursive_triggers reverse_unordered_selects
    """.split()
)

ALLOWED_VIRTUAL_TABLE_MODULES = frozenset({"fts5", "fts5vocab"})

_TEMP_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_CREATE_TEMP_INDEX,
        sqlite3.SQLITE_CREATE_TEMP_TABLE,
        sqlite3.SQLITE_CREATE_TEMP_TRIGGER,
        sqlite3.SQLITE_CREATE_TEMP_VIEW,
        sqlite3.SQLITE_DROP_TEMP_INDEX,
        sqlite3.SQLITE_DROP_TEMP_TABLE,
        sqlite3.SQLITE_DROP_TEMP_TRIGGER,
        sqlite3.SQLITE_DROP_TEMP_VIEW,
    }
)
_NAMED_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_CREATE_TABLE,
        sqlite3.SQLITE_CREATE_INDEX,
        sqlite3.SQLITE_CREATE_TRIGGER,
        sqlite3.SQLITE_CREATE_VIEW,
        sqlite3.SQLITE_DROP_TABLE,
        sqlite3.SQLITE_DROP_INDEX,
        sqlite3.SQLITE_DROP_TRIGGER,
        sqlite3.SQLITE_DROP_VIEW,
        sqlite3.SQLITE_INSERT,
        sqlite3.SQLITE_UPDATE,
        sqlite3.SQLITE_DELETE,
        sqlite3.SQLITE_READ,
    }
)


class D1Guard:
    """The authorizer of one connection. Not thread-safe; a connection lives on one thread."""

    __slots__ = ("_trusted",)

    def __init__(self) -> None:
        self._trusted = 0

    @contextmanager
    def trusted(self) -> Iterator[None]:
        """Let the database layer's own statements (transactions, tuning PRAGMAs) through."""
        self._trusted += 1
        try:
            yield
        finally:
            self._trusted -= 1

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, dbname: str | None, source: str | None
    ) -> int:
        if self._trusted:
            return sqlite3.SQLITE_OK
        if dbname not in (None, "main"):
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION:
            return sqlite3.SQLITE_OK if (arg2 or "").lower() in ALLOWED_FUNCTIONS else sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA:
            return sqlite3.SQLITE_OK if (arg1 or "").lower() in ALLOWED_PRAGMAS else sqlite3.SQLITE_DENY
        if action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
            return sqlite3.SQLITE_DENY
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH) or action in _TEMP_ACTIONS:
            return sqlite3.SQLITE_DENY
        if action in (sqlite3.SQLITE_CREATE_VTABLE, sqlite3.SQLITE_DROP_VTABLE):
            return sqlite3.SQLITE_OK if (arg2 or "").lower() in ALLOWED_VIRTUAL_TABLE_MODULES else sqlite3.SQLITE_DENY
        if action in _NAMED_ACTIONS and (arg1 or "").lower().startswith("_cf_"):
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK


def make_strict(conn: sqlite3.Connection) -> D1Guard:
    """Give `conn` D1's limits and allow-lists; returns the guard for trusted sections."""
    for limit, value in D1_LIMITS.items():
        conn.setlimit(limit, value)
    guard = D1Guard()
    conn.set_authorizer(guard)
    return guard
