"""create_app(): the single place where the Litestar app is wired."""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig

from app import __version__
from app.config import Settings, serve_lock_path
from app.db.engine import Engine
from app.db.engines import open_engine
from app.domain import kdf
from app.domain.sessions import ServerKeys
from app.domain.throttle import Throttle
from app.http.accounts import AccountController, SessionController
from app.http.auth import provide_principal, provide_server_keys, provide_throttle
from app.http.competencies import COMPETENCY_CONTROLLERS
from app.http.csrf import csrf_middleware_factory
from app.http.daily_dos import DAILY_DOS_CONTROLLERS
from app.http.headers import add_security_headers
from app.http.health import healthz
from app.http.observability import AccessLog, Metrics, access_log, metrics_endpoint
from app.http.pages import PAGE_HANDLERS
from app.http.portability import PORTABILITY_CONTROLLERS
from app.http.problems import exception_handlers
from app.http.proxy import TrustedProxies, forwarded_middleware_factory
from app.http.reference import REFERENCE_CONTROLLERS
from app.http.schema_viewer import SCHEMA_PATH, SchemaViewer
from app.http.tools import TOOL_CONTROLLERS
from app.http.workbook import WORKBOOK_CONTROLLERS

API_CONTROLLERS = [
    SessionController,
    AccountController,
    *WORKBOOK_CONTROLLERS,
    *TOOL_CONTROLLERS,
    *DAILY_DOS_CONTROLLERS,
    *COMPETENCY_CONTROLLERS,
    *REFERENCE_CONTROLLERS,
    *PORTABILITY_CONTROLLERS,
]


def provide_db(state: State) -> Engine:
    """The engine the lifespan opened: the sqlite Database, or the D1Engine (Litestar checks
    each dependency against its annotation, so every handler and dependency names `Engine`)."""
    engine: Engine = state.db
    return engine


_slot_lock: int | None = None  # held while this worker lives (see worker_slot)


def worker_slot(settings: Settings) -> int:
    """This process's number among `serve --workers N`'s workers (0 with one worker): the first
    number whose lock file (one per address and number) no living worker holds. The kernel
    drops a lock with its process, so a worker granian starts again takes the dead one's
    number, and with it its core."""
    global _slot_lock
    if settings.workers < 2:
        return 0
    for slot in range(settings.workers):
        lock = os.open(serve_lock_path(settings.host, settings.port, f".worker-{slot}"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock)
            continue
        _slot_lock = lock
        return slot
    return 0


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    # Derived once here, never per request; fails at start when the secret is unusable.
    server_keys = ServerKeys.configured(settings.server_secret(), settings.argon2)
    throttle = Throttle(enabled=settings.rate_limits, key=server_keys.throttle)
    metrics = Metrics()
    proxies = TrustedProxies(settings.trusted_proxies)
    lines = AccessLog() if settings.access_log else None
    engine_middleware = []
    if settings.engine == "d1":
        # The reader's D1 bookmark, from and back to the dt_bookmark cookie (sqlite needs none,
        # and does not load the HTTP client for it).
        from app.http.bookmarks import bookmark_middleware_factory

        engine_middleware.append(bookmark_middleware_factory(secure=settings.cookies_secure))

    @asynccontextmanager
    async def database(app: Litestar) -> AsyncIterator[None]:
        cores = settings.server_cores(worker_slot(settings) if settings.cpu != "none" else 0)
        if cores is not None:
            # This thread is the event loop; the database threads opened next inherit its core,
            # and Argon2 is sent to the other cores.
            os.sched_setaffinity(0, cores)
            kdf.keep_off(cores)
        db = await open_engine(settings)  # sqlite: the Database on db_path; d1: the D1 Worker
        app.state.db = db
        try:
            yield
        finally:
            await db.close()
            if lines is not None:
                lines.flush()

    api = Router(
        path="/api",
        route_handlers=API_CONTROLLERS,
        # Everything under /api is never cached: add_security_headers says so (app/http/headers.py).
        dependencies={"principal": Provide(provide_principal, sync_to_thread=False)},
    )
    return Litestar(
        route_handlers=[healthz, metrics_endpoint, *PAGE_HANDLERS, api],
        dependencies={
            "db": Provide(provide_db, sync_to_thread=False),
            "server_keys": Provide(provide_server_keys, sync_to_thread=False),
            "throttle": Provide(provide_throttle, sync_to_thread=False),
        },
        lifespan=[database],
        state=State({"settings": settings, "server_keys": server_keys, "throttle": throttle, "metrics": metrics,
                     "access_log": lines, "proxies": proxies}),
        # Outermost first: the reader's address and scheme (behind a trusted proxy) are in the
        # scope before the access log, the CSRF cookie or any handler looks. Without a trusted
        # proxy there is nothing to resolve (the peer is the reader), so no layer for it.
        middleware=[*([forwarded_middleware_factory(proxies)] if proxies else []), access_log(metrics, lines),
                    csrf_middleware_factory(server_keys.csrf, secure=settings.cookies_secure), *engine_middleware],
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        before_send=[add_security_headers],
        openapi_config=OpenAPIConfig(
            title="DreamTree store",
            version=__version__,
            path=SCHEMA_PATH,
            # Swagger UI from an installed package, on this origin, under the page's CSP;
            # /schema/openapi.json is added by Litestar (app/http/schema_viewer.py).
            render_plugins=[SchemaViewer()],
        ),
        # Import files are bounded (portability.MAX_DOCUMENT_BYTES) plus room for the envelope.
        request_max_body_size=17 * 1024 * 1024,
        debug=False,
    )
