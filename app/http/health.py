"""GET /healthz."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency

from app.db.connection import Database
from app.domain import health


@get("/healthz", tags=["operations"], summary="Health check", cache=False)
async def healthz(db: NamedDependency[Database]) -> dict[str, object]:
    """200 `{status: "ok", schema_version}` when the database answers."""
    return await health.health(db)
