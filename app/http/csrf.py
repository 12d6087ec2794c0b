"""CSRF protection as docs/api.md describes it, plus JSON-only writes and Fetch Metadata.

- Every response of a request that does not carry a valid `csrftoken` cookie sets one
  (random token + HMAC under a key derived from the server secret; readable by the page).
- A state-changing request (POST, PUT, PATCH, DELETE) made with a session cookie must carry
  header `x-csrftoken` equal to that cookie, else 403 `csrf_failed`.
- Any state-changing request announced as cross-site by the browser (`Sec-Fetch-Site:
  cross-site`) is refused, and a body must be `application/json` (415 otherwise): a form on
  another site can then neither post to us nor sign a reader into someone else's account.
Litestar's own CSRFMiddleware cannot exempt the very first request of a new reader (there is
no session and no token yet), which docs/api.md allows; hence this small middleware.

Cookies are read once, by Litestar's own parser, into the request's connection state, where
authentication (`request.cookies`) finds the same dict: a Cookie header can never hold a
session for one and none for the other (http.cookies once dropped a whole header over one
malformed pair, `x="y; dt_session=…`, and the check was skipped for a request that
authenticated).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any

import msgspec
from litestar._parsers import parse_cookie_string  # what ASGIConnection.cookies runs
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Empty, HTTPResponseStartEvent, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from app.domain.sessions import COOKIE_NAME

CSRF_COOKIE = "csrftoken"
CSRF_HEADER = b"x-csrftoken"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _sign(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()[:32]


def new_token(key: bytes) -> str:
    token = secrets.token_hex(16)
    return f"{token}.{_sign(key, token)}"


def valid_token(key: bytes, value: str | None) -> bool:
    if not value or value.count(".") != 1:
        return False
    return _valid(key, value)


@functools.lru_cache(maxsize=4096)
def _valid(key: bytes, value: str) -> bool:
    """Every request checks its CSRF cookie, and a reader sends the same one for its whole
    visit: the most recent answers are kept (a pure function of key and cookie)."""
    token, mac = value.split(".")
    return hmac.compare_digest(_sign(key, token), mac)


def cookies_of(scope: Scope) -> dict[str, str]:
    """The request's cookies exactly as `request.cookies` gives them to authentication: the
    same parser, parsed once and kept in the connection state they share (a dict of the
    request's own)."""
    state = ScopeState.from_scope(scope)
    if state.cookies is not Empty:
        return state.cookies
    raw = header(scope, b"cookie")
    if raw is None:
        return ASGIConnection(scope).cookies
    state.cookies = cookies = dict(_parsed_cookies(raw))
    return cookies


@functools.lru_cache(maxsize=4096)
def _parsed_cookies(raw: str) -> tuple[tuple[str, str], ...]:
    """A Cookie header parsed by Litestar's own parser (what `request.cookies` would run on
    it). A reader sends the same header for their whole visit, so the most recent ones are
    kept, as immutable pairs: each request gets a dict of its own."""
    return tuple(parse_cookie_string(raw).items())


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


async def _refuse(send: Send, status: int, code: str, detail: str) -> None:
    body = msgspec.json.encode(
        {"type": "about:blank", "status": status, "title": "Forbidden" if status == 403 else "Unsupported media type",
         "detail": detail, "code": code}
    )
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]}
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


def csrf_middleware_factory(key: bytes, *, secure: Callable[[str], bool]) -> Any:
    """`secure(scheme)` says whether a cookie set on a request made with that scheme is Secure:
    Settings.cookies_secure, the same answer the session cookie gets."""

    def csrf_middleware(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            cookies = cookies_of(scope)
            method = scope["method"]
            if method in UNSAFE:
                if header(scope, b"sec-fetch-site") == "cross-site":
                    await _refuse(send, 403, "csrf_failed", "Cross-site requests cannot change anything here.")
                    return
                content_type = (header(scope, b"content-type") or "").split(";")[0].strip().lower()
                length = header(scope, b"content-length")
                has_body = (length not in (None, "0")) or header(scope, b"transfer-encoding") is not None
                if has_body and content_type != "application/json":
                    await _refuse(send, 415, "unsupported_media_type", "Send the body as application/json.")
                    return
                if COOKIE_NAME in cookies:
                    sent = header(scope, CSRF_HEADER)
                    cookie = cookies.get(CSRF_COOKIE)
                    if not (valid_token(key, cookie) and sent is not None and hmac.compare_digest(sent, cookie or "")):
                        await _refuse(send, 403, "csrf_failed",
                                      "Missing or wrong x-csrftoken header (it must equal the csrftoken cookie).")
                        return
            if valid_token(key, cookies.get(CSRF_COOKIE)):
                await app(scope, receive, send)
                return
            token = new_token(key)
            attributes = "; Path=/; SameSite=Lax" + ("; Secure" if secure(scope["scheme"]) else "")

            async def send_with_token(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []),
                                          (b"set-cookie", f"{CSRF_COOKIE}={token}{attributes}".encode())]
                await send(message)

            await app(scope, receive, send_with_token)

        return middleware

    return csrf_middleware
