"""Slow key derivation (Argon2id) off the event loop, bounded, with a queue timeout.

Two pools, so that one kind of work can never starve the other:

- `run_kdf`: passwords (sign-in, claim, password change, recovery, deletion). Each run takes
  64 MiB and 100-300 ms of a core at the service's own cost. At most two run at once; a
  request that cannot get a slot within ten seconds is answered 503 with Retry-After instead
  of piling up memory.
- `run_file_kdf`: the key slot of an export file (export and import), at the cost the file
  names; import only accepts the costs this service writes (keys.FILE_KDF_PROFILES, 128 MiB
  at most). One runs at a time, on a thread of its own at a lower CPU priority (nice +10,
  inherited by Argon2's lane threads), with its own ten-second queue. Imports are the one
  Argon2 input a stranger chooses; however many arrive, sign-in keeps its two slots and
  nearly all of the CPU it needs.

Everything that runs Argon2 goes through here.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread

from app.domain.errors import Unavailable

T = TypeVar("T")
P = ParamSpec("P")

KDF_CONCURRENCY = 2
KDF_QUEUE_SECONDS = 10.0
FILE_KDF_CONCURRENCY = 1
FILE_KDF_NICE = 10
_slots: anyio.CapacityLimiter | None = None
_file_slots: anyio.CapacityLimiter | None = None
_file_thread: ThreadPoolExecutor | None = None
# The cores this process may use, read before anything pins the event loop to one of them.
# Worker threads inherit the loop's core; Argon2 is sent to the others (when there are any),
# so a burst of sign-ins cannot take the core every other request needs.
PROCESS_CORES = frozenset(os.sched_getaffinity(0))
_argon2_cores: frozenset[int] = PROCESS_CORES


def keep_off(cores: set[int]) -> None:
    """Called once the event loop is pinned to `cores`: Argon2 runs on the rest."""
    global _argon2_cores
    _argon2_cores = frozenset(PROCESS_CORES - cores) or PROCESS_CORES


def _on_argon2_cores(call: Callable[[], T]) -> T:
    if os.sched_getaffinity(0) != _argon2_cores:
        os.sched_setaffinity(0, _argon2_cores)
    return call()


async def _acquire(slots: anyio.CapacityLimiter, busy: str) -> None:
    try:
        with anyio.fail_after(KDF_QUEUE_SECONDS):
            await slots.acquire()
    except TimeoutError:
        raise Unavailable(busy, retry_after=5) from None


async def run_kdf(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    global _slots
    if _slots is None:
        _slots = anyio.CapacityLimiter(KDF_CONCURRENCY)
    await _acquire(_slots, "Too many sign-ins at once; try again in a few seconds.")
    try:
        return await anyio.to_thread.run_sync(_on_argon2_cores, functools.partial(fn, *args, **kwargs))
    finally:
        _slots.release()


def _lower_priority() -> None:
    """A thread's nice value is its own on Linux, and threads it starts inherit it. It can
    never be raised back without privileges, which is why file work has a thread of its own
    instead of borrowing (and slowing for good) one that also hashes passwords."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), FILE_KDF_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: the separate slot still holds
        pass


def _file_executor() -> ThreadPoolExecutor:
    global _file_thread
    if _file_thread is None:
        _file_thread = ThreadPoolExecutor(FILE_KDF_CONCURRENCY, thread_name_prefix="dreamtree-file-kdf",
                                          initializer=_lower_priority)
    return _file_thread


async def run_file_kdf(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Argon2 for an export file's key slot, in its own slot and thread (see the module doc)."""
    global _file_slots
    if _file_slots is None:
        _file_slots = anyio.CapacityLimiter(FILE_KDF_CONCURRENCY)
    await _acquire(_file_slots, "Too many imports and exports at once; try again in a minute.")
    try:
        job = asyncio.get_running_loop().run_in_executor(
            _file_executor(), functools.partial(_on_argon2_cores, functools.partial(fn, *args, **kwargs)))
        with anyio.CancelScope(shield=True):  # the slot is held until the thread is really done
            result = await job
        return result
    finally:
        _file_slots.release()
