"""GET /healthz."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency

from app.db.engine import Engine
from app.domain import health
from app.domain.health import Health
from app.http.contract import problems


@get("/healthz", tags=["operations"], summary="Health check", cache=False, responses=problems())
async def healthz(db: NamedDependency[Engine]) -> Health:
    """200 `{status: "ok", schema_version}` when the database answers."""
    return await health.health(db)
