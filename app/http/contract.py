"""The problem responses of the API, declared next to each operation for the OpenAPI document.

Every error the API gives is RFC 9457 problem details (`application/problem+json`) with a
stable `code`. Each code has exactly one status (`CODES`, the one table). An operation lists
the codes it can answer with `responses=problems(...)`; the groups below hold the codes every
operation of a kind shares (a signed-in reader's, a JSON body's, a change's). For the OpenAPI
document each (status, codes) pair becomes a schema whose `code` is an enum of exactly those
codes, so a client generated from the document knows every reason it can be refused.

Two tests keep this honest: every operation of the document declares its problems, and every
response the test suite receives is checked against the document (status, body and code).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation, RequestBody

PROBLEM_JSON = "application/problem+json"

# Every problem code the API answers with, and its one status.
CODES: dict[str, int] = {
    # 400: the request could not be read
    "bad_request": 400,
    "invalid_json": 400,
    # 401: nobody signed in, or credentials that do not open
    "unauthorized": 401,
    "no_session": 401,
    "invalid_session": 401,
    "session_expired": 401,
    "invalid_credentials": 401,
    "password_required": 401,
    # 403: not allowed (yet)
    "forbidden": 403,
    "csrf_failed": 403,
    "exercise_locked": 403,
    "tool_locked": 403,
    "not_claimed": 403,
    # 404
    "not_found": 404,
    "tool_not_found": 404,
    "tool_instance_not_found": 404,
    # 405
    "method_not_allowed": 405,
    # 409: clashes with the current state
    "conflict": 409,
    "changed_concurrently": 409,
    "already_claimed": 409,
    "email_taken": 409,
    "anonymous_data_present": 409,
    "tool_instance_limit": 409,
    "too_many_custom_skills": 409,
    "skill_already_shared": 409,
    "conflicting_review": 409,
    "skill_not_pending": 409,
    # 413
    "too_large": 413,
    "import_too_large": 413,
    # 415
    "unsupported_media_type": 415,
    # 422: well-formed, not acceptable
    "validation_failed": 422,
    "empty_answer": 422,
    "response_too_large": 422,
    "unknown_skill": 422,
    "too_many_skills": 422,
    "invalid_email": 422,
    "password_too_short": 422,
    "password_too_long": 422,
    "password_common": 422,
    "password_guessable": 422,
    "invalid_origin": 422,
    "invalid_tool_content": 422,
    "tool_content_too_large": 422,
    "import_invalid": 422,
    "import_kdf_unsupported": 422,
    "import_over_limit": 422,
    "invalid_score": 422,
    "too_many_scores": 422,
    "unknown_competency": 422,
    "duplicate_competency": 422,
    "unknown_setting": 422,
    "unknown_personality_type": 422,
    "invalid_background_color": 422,
    "invalid_text_color": 422,
    "invalid_font": 422,
    "invalid_time_zone": 422,
    "invalid_skill_name": 422,
    "unknown_skill_category": 422,
    "query_too_long": 422,
    # 429
    "too_many_attempts": 429,
    # 500
    "internal_error": 500,
    "integrity_error": 500,
    # 503
    "unavailable": 503,
    "database_busy": 503,
    "database_unavailable": 503,
}

# What every operation can answer: a request it cannot read, a fault on our side (a stored
# value that fails its integrity check is one), or a database that cannot answer now.
ANY = ("bad_request", "internal_error", "integrity_error", "database_busy", "database_unavailable")
# An operation for a signed-in reader (their session is checked with the operation's first read).
READER = ("no_session", "invalid_session", "session_expired")
# An operation that reads a JSON body.
BODY = ("invalid_json", "unsupported_media_type", "validation_failed", "too_large")
# An operation with query parameters.
QUERY = ("validation_failed",)
# An operation that changes something (CSRF applies, a body it is sent must be JSON even when it
# reads none, and guards may keep failing under contention).
CHANGE = ("csrf_failed", "unsupported_media_type", "changed_concurrently")


def problem_schema_name(status: int, codes: tuple[str, ...]) -> str:
    return f"Problem{status}_" + "_".join(codes)


@cache
def problem_type(status: int, codes: tuple[str, ...]) -> type[msgspec.Struct]:
    """The body of a problem with `status` and one of `codes`, as a type for the document."""
    return msgspec.defstruct(
        problem_schema_name(status, codes),
        [
            ("type", str),
            ("status", Literal[status]),
            ("title", str),
            ("detail", str),
            ("code", Literal[codes]),
        ],
        kw_only=True,
    )


def problems(*groups: str | tuple[str, ...]) -> dict[int, ResponseSpec]:
    """The problem responses of an operation, for `responses=` on its route handler:
    `problems(READER, BODY, CHANGE, "exercise_locked", "not_found")`. `ANY` is always included."""
    codes: set[str] = set(ANY)
    for group in groups:
        codes.update((group,) if isinstance(group, str) else group)
    unknown = sorted(c for c in codes if c not in CODES)
    if unknown:
        raise ValueError(f"problem codes without a status in CODES: {unknown}")
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(CODES[code], []).append(code)
    return {
        status: ResponseSpec(
            data_container=problem_type(status, tuple(sorted(found))),
            media_type=PROBLEM_JSON,
            description="Problem details; `code` is one of: " + ", ".join(sorted(found)),
            generate_examples=False,
        )
        for status, found in sorted(by_status.items())
    }


@dataclass
class OptionalBody(Operation):
    """The operation of a handler whose body may be left out (its `data` has a default).
    Litestar marks every request body required; this one says `required: false`."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


def status_of(code: str) -> int | None:
    return CODES.get(code)


__all__ = ["ANY", "BODY", "CHANGE", "CODES", "PROBLEM_JSON", "QUERY", "READER", "problem_type", "problems", "status_of"]


def _check_table(table: dict[str, int]) -> None:
    for code in table:
        if not code.replace("_", "").isalpha() or code != code.lower():
            raise ValueError(f"bad problem code {code!r}")


_check_table(CODES)
