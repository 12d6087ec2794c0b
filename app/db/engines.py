"""`open_engine(settings)`: the storage engine the settings name, opened and checked.

- `sqlite`: the `Database` on `settings.db_path` (app/db/connection.py), exactly as before.
- `d1`: a `D1Engine` on the DreamTree D1 Worker at `DREAMTREE_D1_URL` (app/db/d1_engine.py);
  opening it sends one trivial read batch, so a Worker that is down or a wrong token stops
  `serve` at start with one line instead of failing the first reader.
"""

from __future__ import annotations

from app.config import Settings
from app.db.connection import open_database
from app.db.engine import Engine


async def open_engine(settings: Settings) -> Engine:
    """The opened engine; ConfigError for unusable d1 settings, EngineUnavailable or
    EngineAuthFailed when the Worker does not answer or refuses the token."""
    if settings.engine == "d1":
        from app.db.d1_engine import D1Engine

        url, token = settings.d1_target()
        engine = D1Engine(url, token, timeout=settings.d1_timeout)
        try:
            await engine.open()
        except BaseException:
            await engine.close()
            raise
        return engine
    return await open_database(settings.db_path, strict=settings.d1_strict, readers=settings.readers)


__all__ = ["open_engine"]
