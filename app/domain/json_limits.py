"""Limits on what a reader may store as JSON: depth and numbers every JSON reader agrees on.

Answers, tool entries and imported values are canonicalised (RFC 8785, strings in Unicode
NFC) for hashing and sealing, and must survive a round trip through any JSON implementation
(the browser's included): integers within ±(2^53 − 1), finite numbers, at most MAX_DEPTH
levels of nesting, and no object with two keys that are the same text once normalised to
NFC (`"é"` precomposed and `"e" + U+0301` are one key after canonicalisation: which value
would win is undefined, so such an object is refused instead of silently losing one).
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any, TypeAlias

from app.domain.errors import Invalid

FreeJSON: TypeAlias = Any
"""Free-form JSON: a reader's answer, a tool entry's content, a value sealed for them (held
to `check_json`'s limits), a reference's metadata an editor wrote. It stays `Any` (not a
recursive union of JSON's types): msgspec, Litestar's OpenAPI document and the JSON Schema
take it as "any JSON", and the code that looks inside narrows it with isinstance first."""

MAX_DEPTH = 32
MAX_SAFE_INTEGER = 2**53 - 1


def _keys_collide(obj: dict[object, object]) -> bool:
    """True when two keys of `obj` are equal after NFC normalisation (cheap when every key is
    already NFC, the usual case: no set is built then)."""
    if all(isinstance(k, str) and unicodedata.is_normalized("NFC", k) for k in obj):
        return False
    seen: set[object] = set()
    for key in obj:
        norm = unicodedata.normalize("NFC", key) if isinstance(key, str) else key
        if norm in seen:
            return True
        seen.add(norm)
    return False


def check_json(value: object, *, what: str = "The value", code: str = "validation_failed", max_depth: int = MAX_DEPTH) -> None:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise Invalid(f"{what} nests deeper than {max_depth} levels.", code=code)
        if isinstance(item, dict):
            if _keys_collide(item):
                raise Invalid(f"{what} has an object with two keys that are the same text once written in one "
                              "Unicode form (NFC), such as a precomposed and a combining “é”.", code=code)
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
