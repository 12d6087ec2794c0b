"""Security headers on every response: routes, router 404/405s, errors and static files alike.

A `before_send` hook sees every message the app sends, which a route middleware does not
(router-level 404s never reach it). The Content-Security-Policy has no exception: the reader's
page and the API's Swagger UI at /schema (app/http/schema_viewer.py) both load only files
from this origin and run no inline script or style.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
}


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in SECURITY_HEADERS.items():
        if name not in headers:
            headers[name] = value
