"""Is the database answering, and at which schema version."""

from __future__ import annotations

import sqlite3

from app.db import migrations
from app.db.connection import Database
from app.db.queries import Q


async def health(db: Database) -> dict[str, object]:
    def probe(conn: sqlite3.Connection) -> int:
        conn.execute(Q.ping).fetchone()
        return migrations.schema_version(conn)

    return {"status": "ok", "schema_version": await db.read(probe)}
