"""Is the database answering, and at which schema version (for nobody in particular: no gate)."""

from __future__ import annotations

from typing import Literal

import msgspec

from app.db.engine import Engine, Read, Stmt, Work
from app.db.queries import Q


class Health(msgspec.Struct, frozen=True):
    status: Literal["ok"]
    schema_version: int


def health_work() -> Work[Health]:
    (version,) = yield Read(Stmt(Q.schema_version))
    return Health("ok", int(version.value() or 0))


async def health(db: Engine) -> Health:
    """One read batch of one statement: the database answered, and its newest migration."""
    return await db.query(health_work, None)
