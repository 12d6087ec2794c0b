"""Security headers on every response: routes, router 404/405s, errors and static files alike.

A `before_send` hook sees every message the app sends, which a route middleware does not
(router-level 404s never reach it).
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
        # /schema pages load their viewer from a CDN: no CSP there (they carry no user data).
        if name == "content-security-policy" and scope.get("path", "").startswith("/schema"):
            continue
        if name not in headers:
            headers[name] = value
