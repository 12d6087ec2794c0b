"""Domain errors: what went wrong, in the workbook's words, with a stable machine-readable code.

Services raise these and never import Litestar; the HTTP layer maps them once to RFC 9457
problem details (`app/http/problems.py`), the CLI to a one-line message.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.instance_code = code or self.code
        self.extra = extra or {}
        self.headers: dict[str, str] = {}


class Unauthorized(DomainError):
    status, code, title = 401, "unauthorized", "Not signed in"


class Forbidden(DomainError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(DomainError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(DomainError):
    status, code, title = 409, "conflict", "Conflict"


class TooLarge(DomainError):
    status, code, title = 413, "too_large", "Request too large"


class Invalid(DomainError):
    status, code, title = 422, "validation_failed", "Invalid request"


class TooManyAttempts(DomainError):
    status, code, title = 429, "too_many_attempts", "Too many attempts"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.headers["Retry-After"] = str(max(1, retry_after))


class Unavailable(DomainError):
    status, code, title = 503, "unavailable", "Service busy"

    def __init__(self, detail: str, *, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.headers["Retry-After"] = str(retry_after)
