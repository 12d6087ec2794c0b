"""Crash safety and write concurrency against the real server process (marker `load`).

64 clients answer at once: none gets a 5xx ("database is locked" included). Then the server is
killed with SIGKILL in the middle of that write load and started again: every answer the
server acknowledged is there (or a newer one from the same client), and `dreamtree check`
passes. Each test runs with one server process and with two (`serve --workers 2`: two
writers on one file, taking its write lock in turn).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from tests.servers import free_port, up_or_killed

pytestmark = pytest.mark.load
ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 64


WORKERS = pytest.mark.parametrize("workers", [1, 2])


def start_server(db: Path, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DREAMTREE_ARGON2": "fast"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--db", str(db), "--port", str(port), "--no-rate-limits",
         "--log-level", "error", "--workers", str(workers)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    up_or_killed(port, proc)
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to `serve`, which stops its workers and kills any still running after its grace
    time (docs/operations.md): a server that has not ended a minute later is a defect."""
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        raise AssertionError("serve did not stop within 60 s of SIGTERM") from None


class Client:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.jar = http.cookiejar.CookieJar()
        self.http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def csrf(self) -> str:
        return next((c.value for c in self.jar if c.name == "csrftoken"), "")

    def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"content-type": "application/json", "x-csrftoken": self.csrf()})
        try:
            with self.http.open(request, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, None

    def begin(self) -> None:
        self.call("GET", "/healthz")
        status, _ = self.call("POST", "/api/session", {})
        assert status == 201


def write_load(port: int, seconds: float, results: list, stop: threading.Event | None = None,
               writing: threading.Timer | None = None) -> list[Client]:
    """`writing` is started once every client has its session, as the writes begin."""
    clients = [Client(port) for _ in range(CLIENTS)]
    for c in clients:
        c.begin()
    if writing is not None:
        writing.start()

    def run(index: int, client: Client) -> None:
        n = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (stop and stop.is_set()):
            n += 1
            try:
                status, _ = client.call("PUT", "/api/exercises/1.1.1.v1/response", {"response": {"n": n}})
            except OSError:
                return  # the server went away (the crash test)
            results.append((index, n, status))

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return clients


@WORKERS
def test_64_concurrent_writers_never_get_a_5xx(tmp_path: Path, workers: int) -> None:
    port = free_port()
    proc = start_server(tmp_path / "load.db", port, workers)
    try:
        results: list = []
        write_load(port, 3.0, results)
    finally:
        stop_server(proc)
    statuses = {s for _, _, s in results}
    assert len(results) > CLIENTS * 3
    assert statuses == {200}, statuses


@WORKERS
def test_acknowledged_writes_survive_sigkill(tmp_path: Path, workers: int) -> None:
    db = tmp_path / "crash.db"
    port = free_port()
    proc = start_server(db, port, workers)
    results: list = []
    # 1.5 s into the writes (the 64 sessions are started first, however long a busy machine takes).
    killer = threading.Timer(1.5, lambda: os.killpg(proc.pid, signal.SIGKILL))
    clients = write_load(port, 10.0, results, writing=killer)
    killer.join()
    proc.wait(timeout=30)
    acknowledged: dict[int, int] = {}
    for index, n, status in results:
        if status == 200:
            acknowledged[index] = max(acknowledged.get(index, 0), n)
    assert acknowledged, "no write was acknowledged before the kill"

    port = free_port()
    restarted = start_server(db, port, workers)
    try:
        for index, last in acknowledged.items():
            client = clients[index]
            client.base = f"http://127.0.0.1:{port}"
            status, body = client.call("GET", "/api/exercises/1.1.1.v1")
            assert status == 200
            assert body["response"]["response"]["n"] >= last, (index, last, body["response"])
    finally:
        stop_server(restarted)
    result = CliRunner().invoke(main, ["check", "--db", str(db)])
    assert result.exit_code == 0, result.output


BATCH = 40


def batch_document(client_index: int, batch: int) -> dict:
    """An export holding BATCH tool entries that only this client and batch could have made."""
    stamp = "2026-06-01T10:00:00.000Z"
    return {"version": "1.1", "exported_at": stamp, "encrypted": False, "settings": None, "competency_scores": [],
            "modules": {}, "custom_skills": [],
            "tool_instances": [{"id": f"c{client_index}-b{batch}-{i}", "tool_type": "list-builder", "origin": "standalone",
                                "content_json": {"title": f"c{client_index} batch {batch}", "items": [str(i)]},
                                "created_at": stamp, "updated_at": stamp, "skills": []} for i in range(BATCH)]}


@WORKERS
def test_no_partial_import_or_claim_survives_sigkill(tmp_path: Path, workers: int) -> None:
    """Imports (one transaction of BATCH entries each) and claims (user, email, auth rows and a
    new session) run while the server is killed: afterwards each is there whole or not at all,
    and every one the server acknowledged is there."""
    from app.db.connection import connect_sync

    db = tmp_path / "crash-imports.db"
    port = free_port()
    proc = start_server(db, port, workers)
    importers, claimers = [Client(port) for _ in range(8)], [Client(port) for _ in range(8)]
    for c in importers:
        c.begin()
    acknowledged_imports: list[tuple[int, int]] = []
    claims: list[tuple[str, str, int]] = []  # (user id, email, status)

    def import_loop(index: int, client: Client) -> None:
        for batch in range(10_000):
            try:
                status, _ = client.call("POST", "/api/import?dry_run=false", {"document": batch_document(index, batch)})
            except OSError:
                return
            if status == 200:
                acknowledged_imports.append((index, batch))

    def claim_loop(index: int, client: Client) -> None:
        for n in range(10_000):
            try:
                client.jar.clear()
                client.call("GET", "/healthz")
                status, me = client.call("POST", "/api/session", {})
                email = f"c{index}-{n}@example.com"
                status, _ = client.call("POST", "/api/account/claim", {"email": email, "password": "river lantern pocket moss"})
            except OSError:
                return
            claims.append((me["id"], email, status))  # type: ignore[index]

    threads = [threading.Thread(target=import_loop, args=(i, c)) for i, c in enumerate(importers)]
    threads += [threading.Thread(target=claim_loop, args=(i, c)) for i, c in enumerate(claimers)]
    killer = threading.Timer(2.0, lambda: os.killpg(proc.pid, signal.SIGKILL))
    killer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    proc.wait(timeout=30)
    assert acknowledged_imports and any(status == 200 for _, _, status in claims), "nothing finished before the kill"

    conn = connect_sync(db, strict=False)  # opening it recovers the WAL, as a restart would
    try:
        batches: dict[tuple[str, str], int] = {}
        for user_id, entry_id in conn.execute("SELECT user_id, id FROM tool_instances"):
            key = (user_id, entry_id.rsplit("-", 1)[0] + "-")  # the ids kept from the file: c<index>-b<batch>-<i>
            batches[key] = batches.get(key, 0) + 1
        assert batches and set(batches.values()) == {BATCH}, "an import is visible in part"
        for index, batch in acknowledged_imports:
            assert any(prefix == f"c{index}-b{batch}-" for _, prefix in batches), (index, batch)
        for user_id, email, status in claims:
            is_anonymous, auth_rows, email_rows = conn.execute(
                "SELECT u.is_anonymous, (SELECT count(*) FROM auth a WHERE a.user_id = u.id),"
                "       (SELECT count(*) FROM emails e WHERE e.user_id = u.id AND e.email = ?)"
                " FROM users u WHERE u.id = ?", (email, user_id)).fetchone() or (None, 0, 0)
            claimed = (is_anonymous, auth_rows, email_rows) == (0, 1, 1)
            untouched = is_anonymous == 1 and auth_rows == 0 and email_rows == 0
            assert claimed or untouched, (user_id, email, is_anonymous, auth_rows, email_rows)
            if status == 200:
                assert claimed, (user_id, email)
    finally:
        conn.close()
    result = CliRunner().invoke(main, ["check", "--db", str(db)])
    assert result.exit_code == 0, result.output
