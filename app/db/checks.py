"""The health of a database file: what `dreamtree check` reports and `restore` requires."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from app.db import migrations
from app.db.connection import guard_of
from app.db.schema import drift


@dataclass(frozen=True)
class Verdict:
    integrity: list[str]
    orphans: int
    pending: list[str]
    drift: list[str]

    @property
    def ok(self) -> bool:
        return self.integrity == ["ok"] and not self.orphans and not self.pending and not self.drift


def verdict(conn: sqlite3.Connection) -> Verdict:
    """What `dreamtree check` and `restore` look at."""
    with guard_of(conn).trusted():  # integrity_check is an operator's PRAGMA, not D1's
        integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    orphans = len(conn.execute("PRAGMA foreign_key_check").fetchall())
    return Verdict(integrity, orphans, migrations.status(conn).pending, drift(conn))
