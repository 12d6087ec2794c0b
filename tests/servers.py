"""Real `dreamtree serve` processes in tests: a free port, and waiting until one answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from typing import Any


def free_port() -> int:
    """A port nobody listens on now: `serve` refuses a busy one, and fixed numbers collide with
    another test run (or another xdist worker) on the same machine."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthz_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
            return True
    except OSError:
        return False


def wait_until_up(port: int, proc: subprocess.Popen[bytes] | subprocess.Popen[str], *, seconds: float = 30,
                  answers: Callable[[int], bool] = healthz_answers, why: Callable[[], str] = lambda: "") -> None:
    """Until the server on `port` answers (GET /healthz by default); RuntimeError, with `why()`
    appended (its log, say), when the process ends first or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while not answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server on port {port} did not start {why()}".rstrip())
        time.sleep(0.1)


def up_or_killed(port: int, proc: subprocess.Popen[bytes] | subprocess.Popen[str], **wait: Any) -> None:
    """`wait_until_up`; when the server does not come up, its whole process group (started
    with start_new_session) is killed and reaped before the error goes on."""
    try:
        wait_until_up(port, proc, **wait)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        raise
