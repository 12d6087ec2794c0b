"""The request as this app's handlers and exception handler see it.

Litestar's `Request` is generic in what an authentication middleware puts in `scope["user"]`
and `scope["auth"]`, and in the app state's type. This app has no such middleware (the
session is the app's own: app/http/auth.py), so nothing here reads `request.user` or
`request.auth`: they are `object`. The state is Litestar's plain `State`.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec
from litestar import Request
from litestar.datastructures import State

HttpRequest: TypeAlias = Request[object, object, State]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    """The base of every JSON request body: a field the API does not declare is refused
    (422 `validation_failed`), never silently dropped, so a client's typo cannot pass unseen."""


__all__ = ["HttpRequest", "Strict"]
