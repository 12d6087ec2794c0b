"""Argon2's two pools: an export file's key slot (import, export) never holds up a password.

Imports are the one Argon2 input a stranger chooses. They hash in a slot of their own, on a
thread of their own at a lower CPU priority; sign-in, claim and password change keep their
two slots however many imports are queued.
"""

from __future__ import annotations

import os
import threading
import time

import anyio
import pytest

from app.domain import kdf
from app.domain.errors import Unavailable


def test_sign_in_does_not_wait_for_file_key_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kdf, "KDF_QUEUE_SECONDS", 1.0)
    release = threading.Event()

    def stuck_import() -> str:
        release.wait(10)
        return "import"

    async def scenario() -> tuple[list[str], float, str]:
        done: list[str] = []
        async with anyio.create_task_group() as tg:

            async def file_job() -> None:
                try:
                    done.append(await kdf.run_file_kdf(stuck_import))
                except Unavailable:
                    done.append("503")

            for _ in range(3):  # one hashing, two queued behind it
                tg.start_soon(file_job)
            await anyio.sleep(0.1)
            started = time.perf_counter()
            results = [await kdf.run_kdf(lambda: "sign-in") for _ in range(4)]
            took = time.perf_counter() - started
            await anyio.sleep(1.2)  # the queued imports time out (503), the sign-ins never did
            release.set()
        return done, took, results[0]

    done, took, signed_in = anyio.run(scenario)
    assert signed_in == "sign-in" and took < 0.5
    assert sorted(done) == ["503", "503", "import"]


def test_file_key_work_runs_at_a_lower_priority_and_passwords_do_not() -> None:
    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    async def scenario() -> tuple[int, int]:
        return await kdf.run_file_kdf(nice), await kdf.run_kdf(nice)

    base = nice()
    file_nice, password_nice = anyio.run(scenario)
    assert file_nice == min(base + kdf.FILE_KDF_NICE, 19) and password_nice == base
