"""`dreamtree serve --workers 2`: two processes share the port and the database file.

What one worker writes, the other reads at once (one SQLite file in WAL mode); each worker's
event loop keeps a core of its own; the serve lock still keeps a second server off the
address. The write load and SIGKILL with two workers are in tests/test_crash_safety.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_crash_safety import ROOT, Client, free_port, start_server, stop_server


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
