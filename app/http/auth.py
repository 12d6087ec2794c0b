"""Who is asking: the session cookie turned into a Principal, and the cookies we set back."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie, State
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.types import ExceptionHandlersMap

from app.db.engine import Engine
from app.domain.errors import Unauthorized
from app.domain.sessions import COOKIE_NAME, IssuedCookie, Principal, ServerKeys, principal_of
from app.domain.throttle import Throttle
from app.http.problems import handle_exception
from app.http.request import HttpRequest


def provide_server_keys(state: State) -> ServerKeys:
    keys: ServerKeys = state.server_keys
    return keys


def provide_throttle(state: State) -> Throttle:
    throttle: Throttle = state.throttle
    return throttle


def provide_principal(request: Request[Any, Any, Any], state: State, db: NamedDependency[Engine]) -> Principal:
    """The reader the session cookie names; 401 problem details when there is none or it is
    forged. Whether the session still stands is checked inside the request's own first read
    batch (the `Principal` is the gate of every work it runs: docs/engines.md), so checking
    it costs no round trip of its own.

    It takes `db`, which it does not use, on purpose: a handler's dependencies that do not
    depend on each other are resolved concurrently, in an anyio task group per request;
    chained, they are resolved one after the other, which costs less (bench/README.md)."""
    return _principal(request, state)


def reader_of(request: HttpRequest) -> tuple[Engine, Principal]:
    """The engine and the reader for the hottest read endpoints, straight from the app's
    state, without Litestar's dependency injection (`provide_principal` gives the same
    Principal, or the same 401); its resolution costs more CPU per request than the
    endpoint's own SQL (bench/README.md)."""
    state = request.app.state
    engine: Engine = state.db
    return engine, _principal(request, state)


def _principal(request: Request[Any, Any, Any], state: State) -> Principal:
    """The reader the session cookie names, or 401 (the one rule of both ways in)."""
    return principal_of(state.server_keys, request.cookies.get(COOKIE_NAME))


def client_address(request: Request[Any, Any, Any]) -> str:
    """The reader's address, for rate limits: behind a trusted proxy, the one it forwarded
    (app/http/proxy.py has already put it into the scope)."""
    return request.client.host if request.client else "unknown"


def cookies_secure(request: Request[Any, Any, Any]) -> bool:
    """Secure as the reader connected (https directly or through a trusted proxy), unless
    DREAMTREE_SECURE_COOKIES / --secure / --insecure says otherwise; the CSRF cookie asks the same."""
    return bool(request.app.state.settings.cookies_secure(request.scope["scheme"]))


def session_cookie(request: Request[Any, Any, Any], issued: IssuedCookie) -> Cookie:
    return Cookie(
        key=COOKIE_NAME, value=issued.value, max_age=issued.max_age, path="/", httponly=True,
        secure=cookies_secure(request), samesite="lax",
    )


def cleared_session_cookie(request: Request[Any, Any, Any]) -> Cookie:
    return Cookie(key=COOKIE_NAME, value="", max_age=0, path="/", httponly=True,
                  secure=cookies_secure(request), samesite="lax")


def with_session(content: Any, request: Request[Any, Any, Any], issued: IssuedCookie,
                 status_code: int = 200) -> Response[Any]:
    return Response(content, status_code=status_code, cookies=[session_cookie(request, issued)])


def session_first(request: HttpRequest, exc: ValidationException) -> Response[dict[str, object]]:
    """A hot write's body that does not fit its shape (422, or 400 when there is none), unless
    the request has no session that opens: then the 401 it always had first.

    The answer and a new tool entry take their reader from the request in the handler
    (`auth.reader_of`, as the hot reads do) instead of through `db` and `principal` by
    dependency injection, which cost about 100,000 instructions per write (bench/README.md).
    Injected, the reader was resolved after the body was read and before its shape was
    checked; the handler runs after both, so this puts the session first again for a body
    of the wrong shape: each request gets the error it got before."""
    try:
        reader_of(request)
    except Unauthorized as refused:
        return handle_exception(request, refused)
    return handle_exception(request, exc)


# A hot write's handler takes its reader itself (`reader_of`) and declares this.
SESSION_FIRST: ExceptionHandlersMap = {ValidationException: session_first}


__all__ = ["SESSION_FIRST", "client_address", "provide_principal", "reader_of", "with_session"]
