"""The request as this app's handlers and exception handler see it.

Litestar's `Request` is generic in what an authentication middleware puts in `scope["user"]`
and `scope["auth"]`, and in the app state's type. This app has no such middleware (the
session is the app's own: app/http/auth.py), so nothing here reads `request.user` or
`request.auth`: they are `object`. The state is Litestar's plain `State`.
"""

from __future__ import annotations

from typing import TypeAlias

from litestar import Request
from litestar.datastructures import State

from app.domain.bodies import Strict

HttpRequest: TypeAlias = Request[object, object, State]


__all__ = ["HttpRequest", "Strict"]
