"""The reader's D1 bookmark in a cookie, so that they read their own writes on any replica.

Only installed with the d1 engine. D1's Sessions API hands back a *bookmark* after every
batch: a read sent with it goes to a replica at least that recent (or to the primary). The
engine keeps the bookmark of the request's reader in `current_bookmarks`
(app/db/d1_engine.py); this middleware fills it from the `dt_bookmark` cookie and, when a
write of this request moved it on, sends the newer one back:

    Set-Cookie: dt_bookmark=<bookmark>; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax[; Secure]

The cookie is per browser, so it works across any number of app processes. It holds no
secret (a position in D1's log); a forged or stale one can only make that reader's own reads
wait for, or skip, a replica. A value that is not shaped like a bookmark is ignored.
"""

from __future__ import annotations

from collections.abc import Callable

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.db.d1_engine import BOOKMARK_COOKIE, Bookmarks, current_bookmarks
from app.http.csrf import cookies_of

MAX_AGE = 3600  # replicas catch up in well under a second; an hour covers a closed laptop lid


def bookmark_cookie(value: str, *, secure: bool) -> str:
    return f"{BOOKMARK_COOKIE}={value}; Path=/; Max-Age={MAX_AGE}; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")


def bookmark_middleware_factory(*, secure: Callable[[str], bool]) -> Callable[[ASGIApp], ASGIApp]:
    """`secure(scheme)`: whether a cookie set on a request made with that scheme is Secure
    (Settings.cookies_secure, the answer the session and CSRF cookies get too)."""

    def bookmark_middleware(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            incoming = cookies_of(scope).get(BOOKMARK_COOKIE)
            box = Bookmarks(incoming)

            async def send_with_bookmark(message: Message) -> None:
                if message["type"] == "http.response.start" and box.written and box.value and box.value != incoming:
                    https = secure(scope["scheme"])
                    MutableScopeHeaders.from_message(message).add("set-cookie", bookmark_cookie(box.value, secure=https))
                await send(message)

            token = current_bookmarks.set(box)
            try:
                await app(scope, receive, send_with_bookmark)
            finally:
                current_bookmarks.reset(token)

        return middleware

    return bookmark_middleware


__all__ = ["MAX_AGE", "bookmark_cookie", "bookmark_middleware_factory"]
