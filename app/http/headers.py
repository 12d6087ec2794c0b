"""Security headers on every response: routes, router 404/405s, errors and static files alike.

A `before_send` hook sees every message the app sends, which a route middleware does not
(router-level 404s never reach it). The Content-Security-Policy has no exception: the reader's
page and the API's Swagger UI at /schema (app/http/schema_viewer.py) both load only files
from this origin and run no inline script or style.
"""

from __future__ import annotations

from litestar.types import Message, Scope

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
}
_RAW = tuple((name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items())


# Everything under /api is the reader's own data: never cached (unless a response says otherwise).
API_PREFIX = "/api/"
_NO_STORE = (b"cache-control", b"no-store")
_API = (*_RAW, _NO_STORE)
_OURS = frozenset(name for name, _ in _API)


async def add_security_headers(message: Message, scope: Scope) -> None:
    """Adds each header the response does not set itself, and `Cache-Control: no-store` to the
    API's (here rather than as the API router's cache_control, which cost each API response
    more than this whole hook: bench/README.md). The hook runs on every response, so it costs
    every request: no set of every header name is built, and a response that sets none of
    ours (nearly all) gets them in one extend."""
    if message["type"] != "http.response.start":
        return
    headers = [*(message.get("headers") or ())]
    wanted = _API if scope["path"].startswith(API_PREFIX) else _RAW
    present = [name.lower() for name, _ in headers if name.lower() in _OURS]
    headers.extend([pair for pair in wanted if pair[0] not in present] if present else wanted)
    message["headers"] = headers
