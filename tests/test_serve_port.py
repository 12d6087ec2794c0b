"""`dreamtree serve` on a port another server already listens on (marker `load`: real servers).

granian listens with SO_REUSEPORT, so without a check of our own a second server on the same
port starts and silently shares the connections with the first (each answers half the
requests, from a different database). It must stop at once instead, before touching its
database, saying so.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, wait_until_up

pytestmark = pytest.mark.load
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "DREAMTREE_ARGON2": "fast"}


def serve(db: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--db", str(db), "--port", str(port), "--log-level", "error"],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)


def test_a_second_server_on_a_busy_port_stops_at_once(tmp_path: Path) -> None:
    port = free_port()
    first = serve(tmp_path / "first.db", port)
    try:
        wait_until_up(port, first)
        second = serve(tmp_path / "second.db", port)
        try:
            _, err = second.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            stop(second)
            pytest.fail("the second server kept running on a port that was already in use")
        assert second.returncode != 0
        assert "address already in use" in err.lower(), err
        assert not (tmp_path / "second.db").exists()  # stopped before creating its database
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            assert answer.status == 200  # the first one still serves
    finally:
        stop(first)


def test_a_free_port_after_a_server_stopped_can_be_used_again(tmp_path: Path) -> None:
    """The check refuses a port someone listens on, not one a stopped server left in TIME_WAIT."""
    port = free_port()
    first = serve(tmp_path / "dt.db", port)
    try:
        wait_until_up(port, first)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
            pass
    finally:
        stop(first)
    again = serve(tmp_path / "dt.db", port)
    try:
        wait_until_up(port, again)
    finally:
        stop(again)


def test_of_servers_started_in_the_same_instant_exactly_one_serves(tmp_path: Path) -> None:
    """No window between the check and granian's own bind: three servers started together on
    one free port, three times over; each time one serves and the others stop, saying why."""
    for round_ in range(3):
        port = free_port()
        racers = [serve(tmp_path / f"r{round_}-{i}.db", port) for i in range(3)]
        try:
            stopped = []
            for proc in racers:
                try:
                    _, err = proc.communicate(timeout=10)
                    stopped.append((proc, err))
                except subprocess.TimeoutExpired:
                    pass
            assert len(stopped) == 2, f"round {round_}: {3 - len(stopped)} servers kept running on one port"
            for proc, err in stopped:
                assert proc.returncode != 0 and "address already in use" in err.lower(), err
            (winner,) = [proc for proc in racers if proc.poll() is None]
            wait_until_up(port, winner)
        finally:
            for proc in racers:
                stop(proc)



@pytest.fixture
def lock_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Serve locks taken in this process go to tmp_path and are released when the test ends."""
    from app import cli

    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(cli, "_port_lock", None)
    yield tmp_path
    if cli._port_lock is not None:
        os.close(cli._port_lock)


def test_a_host_name_and_its_address_share_one_serve_lock(lock_dir: Path) -> None:
    from app.cli import UserError, check_port_free

    address = socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][4][0]
    port = free_port()
    check_port_free("localhost", port)  # this process now holds the lock of localhost:port
    with pytest.raises(UserError, match="address already in use"):
        check_port_free(address, port)


def test_a_serve_lock_that_cannot_be_opened_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, lock_dir: Path) -> None:
    from app.cli import UserError, check_port_free

    monkeypatch.setattr("tempfile.gettempdir", lambda: str(lock_dir / "missing"))
    with pytest.raises(UserError, match="cannot open the serve lock"):
        check_port_free("127.0.0.1", free_port())
