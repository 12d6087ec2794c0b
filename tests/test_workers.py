"""`dreamtree serve --workers 2`: two processes share the port and the database file.

What one worker writes, the other reads at once (one SQLite file in WAL mode); each worker's
event loop keeps a core of its own; the serve lock still keeps a second server off the
address. The write load and SIGKILL with two workers are in tests/test_crash_safety.py.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.servers import free_port, up_or_killed
from tests.test_crash_safety import ROOT, Client, start_server, stop_server


def children(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/task/{current}/children") as f:
                kids = [int(c) for c in f.read().split()]
        except FileNotFoundError:
            continue
        found += kids
        todo += kids
    return found


@pytest.fixture
def two_workers(tmp_path: Path):
    port = free_port()
    proc = start_server(tmp_path / "workers.db", port, workers=2)
    try:
        yield proc, port
    finally:
        stop_server(proc)


def test_both_workers_answer_and_share_the_file(two_workers) -> None:
    proc, port = two_workers
    assert len(children(proc.pid)) >= 2, "serve --workers 2 started fewer than two processes"
    writer = Client(port)
    writer.begin()
    for n in range(1, 21):
        status, _ = writer.call("PUT", "/api/exercises/1.1.1.v1/response", {"response": {"n": n}})
        assert status == 200
        # A new connection each time (urllib does not keep them alive): the kernel spreads them
        # over both workers, and whichever answers reads what the other may just have written.
        status, body = writer.call("GET", "/api/exercises/1.1.1.v1")
        assert status == 200
        assert body["response"]["response"] == {"n": n}


def test_each_worker_on_a_core_of_its_own(two_workers) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core: nothing to spread over")
    proc, _ = two_workers
    deadline = time.monotonic() + 20
    while True:  # the second worker may still be starting when the first answers
        cores = [frozenset(os.sched_getaffinity(pid)) for pid in children(proc.pid)]
        pinned = {c for c in cores if len(c) == 1}
        if len(pinned) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(pinned) == 2, cores


def test_a_second_server_on_the_address_is_refused(two_workers, tmp_path: Path) -> None:
    _, port = two_workers
    second = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--db", str(tmp_path / "other.db"), "--port", str(port),
         "--workers", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert second.returncode != 0
    assert "address already in use" in second.stderr


def serve_logging(db: Path, port: int, *, python: str = "from app.cli import main; main()") -> subprocess.Popen[str]:
    """`serve --workers 2` at log level info (granian names each worker as it starts it), run
    by `python`; stderr and stdout together, line by line."""
    return subprocess.Popen(
        [sys.executable, "-c", python, "serve", "--db", str(db), "--port", str(port), "--workers", "2"],
        cwd=ROOT, env={**os.environ, "DREAMTREE_ARGON2": "fast"}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True)


def serve_then_stop(tmp_path: Path, python: str, seconds: float) -> tuple[subprocess.Popen[str], bool, str]:
    """`serve --workers 2` run by `python`, SIGTERM once it answers, and whether it ended within
    `seconds` (`stopped_within`)."""
    port = free_port()
    proc = serve_logging(tmp_path / "serve.db", port, python=python)
    up_or_killed(port, proc)
    proc.terminate()
    return proc, *stopped_within(proc, seconds)


def stopped_within(proc: subprocess.Popen[str], seconds: float) -> tuple[bool, str]:
    """Whether `serve` ended within `seconds`, and everything it wrote (it is killed if not)."""
    try:
        out, _ = proc.communicate(timeout=seconds)
        return True, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        return False, out


def test_sigterm_while_the_workers_start_stops_them(tmp_path: Path) -> None:
    """SIGTERM as soon as both workers are forked, while each still builds its app: before
    granian in the worker puts its own handler in place, a SIGTERM once went to the handler the
    worker inherited from `serve`, which stops nothing in a worker; the workers went on to
    serve and `serve` waited for them for good. A loaded machine widens that moment enough for
    a SIGTERM just after /healthz answers (from the first worker) to land in the second."""
    proc = serve_logging(tmp_path / "start.db", free_port())
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True).start()
    seen: list[str] = []
    while not any("Spawning worker-2" in line for line in seen):
        try:
            seen.append(lines.get(timeout=60))
        except queue.Empty:
            stop_server(proc)
            pytest.fail("serve never said it spawned its second worker:\n" + "".join(seen))
    proc.terminate()
    stopped, out = stopped_within(proc, 30)
    assert stopped, "".join(seen) + out
    assert proc.returncode == 0, "".join(seen) + out


HANGING_CLOSE = """
import asyncio

import app.cli
import app.http.app

opened = app.http.app.open_engine


async def open_engine(settings):
    db = await opened(settings)

    async def close():
        await asyncio.sleep(3600)

    db.close = close
    return db


app.http.app.open_engine = open_engine
app.cli.WORKER_STOP_GRACE = 2
app.cli.main()
"""


def test_a_worker_that_does_not_stop_is_killed_after_the_grace_time(tmp_path: Path) -> None:
    """A worker whose shutdown never ends (here the lifespan's database never closes) is killed once
    WORKER_STOP_GRACE has passed since the SIGTERM, granian says so, and `serve` ends."""
    proc, stopped, out = serve_then_stop(tmp_path, HANGING_CLOSE, 30)
    assert stopped, out
    assert "Killing worker-" in out and "refused to gracefully stop" in out, out
    assert proc.returncode == 0, out


LOSES_THE_FIRST_SIGTERM = """
import asyncio
import signal

import app.cli
import app.http.app

opened = app.http.app.open_engine


async def open_engine(settings):
    # For its first 3 seconds the worker ignores SIGTERM: a signal sent then is lost, as one
    # that reaches a worker in the instant after its fork is.
    db = await opened(settings)
    kept = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    asyncio.get_running_loop().call_later(3, signal.signal, signal.SIGTERM, kept)
    return db


app.http.app.open_engine = open_engine
app.cli.WORKER_STOP_GRACE = 20
app.cli.main()
"""


def test_a_worker_that_lost_its_sigterm_gets_another_and_stops_gracefully(tmp_path: Path) -> None:
    """`serve` sends SIGTERM again every WORKER_STOP_RESEND seconds to a worker still alive: one
    that missed the first stops gracefully within seconds, not by the kill after the grace time."""
    proc, stopped, out = serve_then_stop(tmp_path, LOSES_THE_FIRST_SIGTERM, 12)
    assert stopped, out
    assert "Killing worker-" not in out, out
    assert proc.returncode == 0, out
