"""Limits on what a reader may store as JSON: depth and numbers every JSON reader agrees on.

Answers, tool entries and imported values are canonicalised (RFC 8785) for hashing and must
survive a round trip through any JSON implementation (the browser's included): integers
within ±(2^53 − 1), finite numbers, at most MAX_DEPTH levels of nesting.
"""

from __future__ import annotations

import math
from typing import Any

from app.domain.errors import Invalid

MAX_DEPTH = 32
MAX_SAFE_INTEGER = 2**53 - 1


def check_json(value: Any, *, what: str = "The value", code: str = "validation_failed", max_depth: int = MAX_DEPTH) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise Invalid(f"{what} nests deeper than {max_depth} levels.", code=code)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_SAFE_INTEGER:
                raise Invalid(f"{what} holds a number too large to keep exactly ({item}).", code=code)
        elif isinstance(item, float) and not math.isfinite(item):
            raise Invalid(f"{what} holds a number that is not finite.", code=code)
