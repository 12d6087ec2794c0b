"""Every error as RFC 9457 problem details with a stable `code`, mapped once for the whole app.

Domain errors carry a kind (app/domain/errors.py) and a code; `STATUS_OF_KIND` below is the one
table from kinds to statuses. Litestar's own exceptions (routing 404/405, bodies it cannot
read or that do not fit) are told apart by their type and their cause, never by their
message text: a body that is not JSON (Litestar's ClientException caused by a
SerializationException, or msgspec's DecodeError) or no body at all is 400 `invalid_json`;
JSON that does not fit the request's shape is 422 `validation_failed`. The CSRF check answers
its own 403 `csrf_failed` (app/http/csrf.py).
An unexpected exception is logged and answered with a bare 500 `internal_error`, never a trace.
A database that does not answer (the D1 Worker down or slow: `EngineUnavailable`) is 503
`database_unavailable` with Retry-After; one that refuses our credentials is a 500.
"""

from __future__ import annotations

import logging
import sqlite3

import msgspec
from litestar import MediaType, Response
from litestar.exceptions import HTTPException, NotFoundException, SerializationException, ValidationException

from app.db.connection import is_busy
from app.db.engine import ChangedConcurrently, ConstraintFailed, EngineAuthFailed, EngineUnavailable
from app.domain.errors import DomainError
from app.domain.keys import CryptoFailure
from app.http.pages import page_not_found, wants_page
from app.http.request import HttpRequest

log = logging.getLogger("dreamtree.http")

PROBLEM_JSON = "application/problem+json"

_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Not signed in"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("too_large", "Request too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_failed", "Invalid request"),
    429: ("too_many_attempts", "Too many attempts"),
    500: ("internal_error", "Internal server error"),
    503: ("unavailable", "Service busy"),
}


# What each kind of domain error is over HTTP: the one place that knows.
STATUS_OF_KIND: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "invalid": 422,
    "too_many_attempts": 429,
    "unavailable": 503,
}


def domain_problem(exc: DomainError) -> Response[dict[str, object]]:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return problem(STATUS_OF_KIND[exc.kind], exc.detail, code=exc.instance_code, title=exc.title, headers=headers,
                   extra=exc.extra)


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> Response[dict[str, object]]:
    default_code, default_title = _CODES.get(status, ("error", "Error"))
    body: dict[str, object] = {
        "type": "about:blank",
        "status": status,
        "title": title or default_title,
        "detail": detail,
        "code": code or default_code,
    }
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    # Never cached: a problem answers one request (exception handlers bypass the router's
    # Cache-Control, so it is set here).
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers={"Cache-Control": "no-store", **(headers or {})})


def _has_no_body(request: HttpRequest) -> bool:
    headers = request.headers
    return headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers


def _validation(request: HttpRequest, exc: ValidationException) -> Response[dict[str, object]]:
    detail = str(exc.detail or "")
    errors = exc.extra if isinstance(exc.extra, list) else []
    if _has_no_body(request) and any(isinstance(e, dict) and e.get("source") == "body" for e in errors):
        # The operation reads a body and the request sent none.
        return problem(400, "The request needs a JSON body.", code="invalid_json")
    messages = [f"{e.get('key') or 'body'}: {e.get('message')}" for e in errors if isinstance(e, dict)]
    return problem(
        422,
        "; ".join(messages) or detail or "The request does not have the expected shape.",
        extra={"errors": errors},
    )


def handle_exception(request: HttpRequest, exc: Exception) -> Response[dict[str, object]]:
    if isinstance(exc, NotFoundException) and wants_page(request):
        return page_not_found()  # type: ignore[return-value]
    answer = _request_problem(request, exc)
    if answer is None:
        answer = _server_problem(request, exc)
    if answer is not None:
        return answer
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem(500, "Something went wrong on our side. Nothing was changed.")


def _request_problem(request: HttpRequest, exc: Exception) -> Response[dict[str, object]] | None:
    """What was wrong with the request (a 4xx), or None when the exception says nothing of it."""
    if isinstance(exc, DomainError):
        return domain_problem(exc)
    if isinstance(exc, ValidationException):
        return _validation(request, exc)
    if isinstance(exc, msgspec.ValidationError):
        return problem(422, str(exc))
    if isinstance(exc, msgspec.DecodeError):
        return problem(400, "The request body is not valid JSON.", code="invalid_json")
    if isinstance(exc, HTTPException):
        return _http_problem(exc)
    if isinstance(exc, RecursionError):
        return problem(400, "The request body nests too deeply to read.", code="invalid_json")
    if isinstance(exc, UnicodeDecodeError):
        return problem(400, "The request body is not valid UTF-8.", code="invalid_json")
    return None


def _http_problem(exc: HTTPException) -> Response[dict[str, object]]:
    """Litestar's own exceptions (routing, bodies it cannot read)."""
    if isinstance(exc.__cause__, SerializationException):
        # Litestar wraps a body that msgspec cannot decode (truncated, a lone surrogate,
        # trailing bytes) in a ClientException.
        return problem(400, "The request body is not valid JSON.", code="invalid_json")
    detail = str(exc.detail) if exc.detail else _CODES.get(exc.status_code, ("", "Error"))[1]
    return problem(exc.status_code, detail, headers=dict(exc.headers or {}))


def _server_problem(request: HttpRequest, exc: Exception) -> Response[dict[str, object]] | None:
    """What kept us from answering (the database, a stored value), logged, or None when unknown."""
    where = (request.method, request.url.path)
    if isinstance(exc, (ChangedConcurrently, ConstraintFailed)):
        # Others kept changing the same rows (or a row this write needed went meanwhile):
        # nothing was written; the same request again will see the new state.
        log.warning("%s on %s %s", type(exc).__name__, *where)
        return problem(409, "This changed while we were saving it; nothing was saved. Please try again.",
                       code="changed_concurrently")
    if isinstance(exc, CryptoFailure):
        # A stored value that does not open under its owner's key: refused, never shown as is.
        log.error("integrity failure on %s %s: %s", *where, type(exc).__name__)
        return problem(500, "A stored value failed its integrity check; it was not shown.", code="integrity_error")
    if isinstance(exc, EngineUnavailable):
        log.warning("database unavailable on %s %s: %s", *where, exc)
        return problem(503, "The database does not answer right now; try again in a moment.",
                       code="database_unavailable", headers={"Retry-After": "2"})
    if isinstance(exc, EngineAuthFailed):
        log.error("database refused our credentials on %s %s: %s", *where, exc)
        return problem(500, "Something went wrong on our side. Nothing was changed.")
    if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
        log.warning("database busy past the timeout on %s %s", *where)
        return problem(503, "The database is busy; try again in a moment.", code="database_busy",
                       headers={"Retry-After": "1"})
    return None


exception_handlers = {Exception: handle_exception}

__all__ = ["MediaType", "exception_handlers", "handle_exception", "problem"]
