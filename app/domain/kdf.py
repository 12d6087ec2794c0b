"""Slow key derivation (Argon2id) off the event loop, bounded, with a queue timeout.

Each run takes up to 64-128 MiB and 100-300 ms of a core. At most two run at once; a request
that cannot get a slot within ten seconds is answered 503 with Retry-After instead of piling
up memory. Everything that runs Argon2 goes through here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from app.domain.errors import Unavailable

T = TypeVar("T")

KDF_CONCURRENCY = 2
KDF_QUEUE_SECONDS = 10.0
_slots: anyio.CapacityLimiter | None = None
# The cores this process may use, read before anything pins the event loop to one of them.
# Worker threads inherit the loop's core; Argon2 is sent to the others (when there are any),
# so a burst of sign-ins cannot take the core every other request needs.
PROCESS_CORES = frozenset(os.sched_getaffinity(0))
_argon2_cores: frozenset[int] = PROCESS_CORES


def keep_off(cores: set[int]) -> None:
    """Called once the event loop is pinned to `cores`: Argon2 runs on the rest."""
    global _argon2_cores
    _argon2_cores = frozenset(PROCESS_CORES - cores) or PROCESS_CORES


def _on_argon2_cores(fn: Callable[..., T], args: Any, kwargs: Any) -> T:
    if os.sched_getaffinity(0) != _argon2_cores:
        os.sched_setaffinity(0, _argon2_cores)
    return fn(*args, **kwargs)


async def run_kdf(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    global _slots
    if _slots is None:
        _slots = anyio.CapacityLimiter(KDF_CONCURRENCY)
    try:
        with anyio.fail_after(KDF_QUEUE_SECONDS):
            await _slots.acquire()
    except TimeoutError:
        raise Unavailable("Too many sign-ins at once; try again in a few seconds.", retry_after=5) from None
    try:
        return await anyio.to_thread.run_sync(_on_argon2_cores, fn, args, kwargs)
    finally:
        _slots.release()
