"""create_app(): the single place where the Litestar app is wired."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from app import __version__
from app.config import Settings
from app.db.connection import Database
from app.http.headers import add_security_headers
from app.http.health import healthz
from app.http.problems import exception_handlers


def provide_db(state: State) -> Database:
    return state.db  # type: ignore[no-any-return]


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    settings.server_secret()  # fail at start, not at the first request, when the secret is unusable

    @asynccontextmanager
    async def database(app: Litestar) -> AsyncIterator[None]:
        db = Database(settings.db_path, strict=settings.d1_strict, readers=settings.readers)
        await db.open()
        app.state.db = db
        try:
            yield
        finally:
            await db.close()

    return Litestar(
        route_handlers=[healthz],
        dependencies={"db": Provide(provide_db, sync_to_thread=False)},
        lifespan=[database],
        state=State({"settings": settings}),
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        before_send=[add_security_headers],
        openapi_config=OpenAPIConfig(
            title="DreamTree store",
            version=__version__,
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin()],
        ),
        debug=False,
    )
