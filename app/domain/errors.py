"""Domain errors: what went wrong, in the workbook's words, with a stable machine-readable code.

Services raise these and never import Litestar; the HTTP layer maps them once to RFC 9457
problem details (`app/http/problems.py`), the CLI to a one-line message.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Something the reader (or operator) asked for that cannot be done, and why.

    `kind` says what sort of refusal it is; the HTTP layer alone turns kinds into statuses
    (app/http/problems.py, one table) and the CLI into a one-line message. `code` is the
    stable machine-readable reason (`exercise_locked`, `email_taken`, ...)."""

    kind: ClassVar[str] = "bad_request"
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, extra: dict[str, object] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.instance_code = code or self.code
        self.extra = extra or {}
        self.retry_after: int | None = None


class Unauthorized(DomainError):
    """Not signed in, or the credentials are wrong."""

    kind, code, title = "unauthorized", "unauthorized", "Not signed in"


class Forbidden(DomainError):
    """Signed in, but not allowed (yet): a locked exercise, a locked tool."""

    kind, code, title = "forbidden", "forbidden", "Forbidden"


class NotFound(DomainError):
    """No such thing, or not the reader's: the two are never told apart."""

    kind, code, title = "not_found", "not_found", "Not found"


class Conflict(DomainError):
    """The request clashes with the current state: a limit reached, an email taken."""

    kind, code, title = "conflict", "conflict", "Conflict"


class TooLarge(DomainError):
    """The request is larger than the service takes."""

    kind, code, title = "too_large", "too_large", "Request too large"


class Invalid(DomainError):
    """The request is well-formed but its content is not acceptable."""

    kind, code, title = "invalid", "validation_failed", "Invalid request"


class TooManyAttempts(DomainError):
    """Rate limited: try again after `retry_after` seconds."""

    kind, code, title = "too_many_attempts", "too_many_attempts", "Too many attempts"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = max(1, retry_after)


class Unavailable(DomainError):
    """The service cannot take this now (busy); try again after `retry_after` seconds."""

    kind, code, title = "unavailable", "unavailable", "Service busy"

    def __init__(self, detail: str, *, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after
