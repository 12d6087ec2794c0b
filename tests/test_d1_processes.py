"""Several `dreamtree serve` processes on one D1 (markers d1 and slow).

One `wrangler dev` Worker over a fresh local D1, and two real `dreamtree serve --engine d1`
processes started at the same instant on the empty database (the Worker held until both have
sent their first batch, so that both find the ledger empty). Both must come up: migrations
applied once (the runner that loses the race finds the file in the ledger and goes on), the
sample workbook seeded once (the loser's guarded write fails, it reads again and finds nothing
to change). Then the readers' races, split across both processes: claims of one email, edits of
one answer, imports of one file. D1 serialises the batches; the guards and constraints in them
decide. Last, the Worker is stopped (SIGSTOP): the app answers 503 with Retry-After, and once
the Worker runs again (SIGCONT) the same processes answer as before.

The tests do not depend on their order (under xdist each worker would start its own set).
Rate limits stay on: each reader comes through a trusted proxy (X-Forwarded-For) with an
address of its own, as readers do (the limits are per process: docs/d1.md).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from app.db import migrations
from app.db.d1_engine import D1Engine
from app.db.engine import Stmt
from app.domain import seeding
from tests import d1util
from tests.d1util import WorkerProcess, stop_group
from tests.helpers import PASSWORD

pytestmark = [pytest.mark.d1, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
MIGRATION_NAMES = [m.name for m in migrations.list_migrations()]
SERVE_START_S = 60.0  # both come up in a few seconds; this only catches a hang
D1_TIMEOUT_S = 4.0  # DREAMTREE_D1_TIMEOUT of both servers: how long a stopped Worker takes to be a 503
SEEDED = "seeded the sample workbook"


@dataclass
class Server:
    """One `dreamtree serve --engine d1` in its own process group, its output in a file."""

    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str], db: Path) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--engine", "d1", "--db", str(db), "--port", str(self.port),
                 "--cpu", "none", "--log-level", "warning", "--trusted-proxies", "127.0.0.1"],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, deadline: float) -> None:
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve on port {self.port} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve on port {self.port} did not answer:\n{self.output()}")
            time.sleep(0.1)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc, timeout=15)


@dataclass
class Cluster:
    worker: WorkerProcess
    servers: list[Server]
    env: dict[str, str]
    db: Path
    held_for: int  # connections to the held Worker when it was let go: 2 when both raced
    addresses: Iterator[int] = field(default_factory=lambda: iter(range(1, 60_000)))

    def d1(self) -> D1Engine:
        assert self.worker.token is not None
        return D1Engine(self.worker.url, self.worker.token)

    def rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        async def read() -> list[tuple[Any, ...]]:
            engine = self.d1()
            try:
                (result,) = await engine.batch([Stmt(sql, params)], write=False)
                return [tuple(row) for row in result.rows]
            finally:
                await engine.close()

        return anyio.run(read)

    def reader(self) -> Reader:
        """A new browser with a client address of its own (as the trusted proxy reports it)."""
        n = next(self.addresses)
        return Reader([s.url for s in self.servers], f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}")

    def dreamtree(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app.cli", *args, "--engine", "d1", "--db", str(self.db)],
                              cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120)


class Reader:
    """One browser: one cookie jar, used against any of the servers (they share the secret)."""

    def __init__(self, urls: list[str], address: str) -> None:
        self.urls = urls
        self.cookies = httpx.Cookies()
        self.headers = {"X-Forwarded-For": address, "X-Forwarded-Proto": "http"}

    async def request(self, server: int, method: str, path: str, json: Any = None) -> httpx.Response:
        headers = dict(self.headers)
        if method != "GET":
            headers["x-csrftoken"] = self.cookies.get("csrftoken") or ""
        async with httpx.AsyncClient(base_url=self.urls[server % len(self.urls)], cookies=self.cookies,
                                     timeout=60) as client:
            response = await client.request(method, path, json=json, headers=headers)
            self.cookies.update(client.cookies)
            return response

    async def start(self, server: int = 0) -> str:
        """A new anonymous workbook; its user id."""
        assert (await self.request(server, "GET", "/healthz")).status_code == 200  # the csrftoken cookie
        started = await self.request(server, "POST", "/api/session")
        assert started.status_code == 201, started.text
        return str(started.json()["id"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    wrangler = d1util.require_wrangler()
    base = tmp_path_factory.mktemp("d1-processes")
    worker = WorkerProcess(wrangler, base / "state", secrets.token_hex(32)).start()
    assert worker.token is not None
    env = {**os.environ, "DREAMTREE_D1_URL": worker.url, "DREAMTREE_D1_TOKEN": worker.token,
           "DREAMTREE_SECRET": secrets.token_hex(32), "DREAMTREE_ARGON2": "fast",
           "DREAMTREE_D1_TIMEOUT": str(D1_TIMEOUT_S)}
    for name in ("DREAMTREE_ENGINE", "DREAMTREE_DB", "DREAMTREE_PORT", "DREAMTREE_RATE_LIMITS"):
        env.pop(name, None)
    servers = [Server(port, base / f"serve-{port}.log") for port in (d1util.free_port(), d1util.free_port())]
    assert worker.proc is not None
    group = worker.proc.pid
    try:
        # At the same instant, both on the empty D1. The Worker is held (SIGSTOP) until both have
        # sent their first batch, so that both read the empty ledger before either applies a file.
        os.killpg(group, signal.SIGSTOP)
        waiting = 0
        try:
            for server in servers:
                server.start(env, base / "dreamtree.db")
            hold_until = time.monotonic() + SERVE_START_S
            while (waiting := _connections_to(worker.port)) < len(servers) and time.monotonic() < hold_until:
                if waiting and hold_until - time.monotonic() > D1_TIMEOUT_S / 2:
                    hold_until = time.monotonic() + D1_TIMEOUT_S / 2  # well before the first one gives up
                if any(s.proc is not None and s.proc.poll() is not None for s in servers):
                    break
                time.sleep(0.02)
        finally:
            os.killpg(group, signal.SIGCONT)
        deadline = time.monotonic() + SERVE_START_S
        for server in servers:
            server.wait_ready(deadline)
        yield Cluster(worker, servers, env, base / "dreamtree.db", waiting)
    finally:
        for server in servers:
            server.stop()
        worker.stop()


def _connections_to(port: int) -> int:
    """Established IPv4 connections to 127.0.0.1:port, from the client's side (Linux)."""
    count = 0
    with open("/proc/net/tcp", encoding="ascii") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if int(fields[2].split(":")[1], 16) == port and fields[3] == "01":
                count += 1
    return count


def run(*coroutines: Any) -> list[Any]:
    async def together() -> list[Any]:
        return list(await asyncio.gather(*coroutines))

    return asyncio.run(together())


# --- start-up -------------------------------------------------------------------------------------


def test_two_servers_started_at_once_on_an_empty_d1_migrate_once_and_seed_once(cluster: Cluster) -> None:
    assert cluster.held_for >= 2  # both had sent their first batch before either could apply a file
    outputs = [server.output() for server in cluster.servers]
    for output in outputs:
        assert "DreamTree store on http://127.0.0.1:" in output and "(database D1 via " in output, output
        assert "error" not in output.lower(), output
        assert cluster.worker.token is not None and cluster.worker.token not in output
        assert "HTTP Request:" not in output, output  # httpx's line per D1 batch is not a warning
    applied = [line.split(" ", 1)[1] for output in outputs for line in output.splitlines()
               if line.startswith("applied ")]
    assert sorted(applied) == sorted(MIGRATION_NAMES), outputs  # each file applied by one of them
    assert cluster.rows("SELECT id, name FROM d1_migrations ORDER BY id") == list(enumerate(MIGRATION_NAMES, start=1))
    assert sum(output.count(SEEDED) for output in outputs) == 1, outputs

    async def plan_changes() -> int:
        engine = cluster.d1()
        try:
            return (await seeding.seed_on(engine, dry_run=True)).plan.changes
        finally:
            await engine.close()

    assert anyio.run(plan_changes) == 0  # the content is the seed's, exactly
    data = seeding.read_seed()
    assert cluster.rows("SELECT count(*) FROM tool_types") == [(len(data.tool_types),)]
    assert cluster.rows("SELECT count(*) FROM personality_types") == [(len(data.personality_types),)]


# --- readers racing across both servers -----------------------------------------------------------


def test_32_claims_of_one_email_across_both_servers_make_one_account(cluster: Cluster) -> None:
    readers = [cluster.reader() for _ in range(32)]
    run(*(reader.start(i) for i, reader in enumerate(readers)))
    email = "race@example.com"
    claims = run(*(reader.request(i, "POST", "/api/account/claim", {"email": email, "password": PASSWORD})
                   for i, reader in enumerate(readers)))
    statuses = sorted(response.status_code for response in claims)
    assert statuses == [200] + [409] * 31, [(r.status_code, r.text[:200]) for r in claims]
    assert {r.json()["code"] for r in claims if r.status_code == 409} == {"email_taken"}
    assert cluster.rows("SELECT count(*) FROM emails WHERE email = ?", email) == [(1,)]
    (winner,) = [reader for reader, response in zip(readers, claims, strict=True) if response.status_code == 200]
    me = run(winner.request(1, "GET", "/api/me"), winner.request(0, "GET", "/api/me"))
    assert [m.json()["email"] for m in me] == [email, email]  # the account, seen through either server


def test_4x8_edits_of_one_answer_across_both_servers_leave_one_row(cluster: Cluster) -> None:
    reader = cluster.reader()
    user = run(reader.start())[0]
    place = "1.1.1.v1"
    for wave in range(4):
        saved = run(*(reader.request(i, "PUT", f"/api/exercises/{place}/response",
                                     {"response": {"text": f"wave {wave} edit {i}"}}) for i in range(8)))
        assert all(r.status_code == 200 for r in saved), [(r.status_code, r.text[:200]) for r in saved]
        rows = cluster.rows("SELECT id FROM exercise_responses WHERE user_id = ? AND full_exercise_id = ?", user, place)
        assert len(rows) == 1, rows
    shown = run(reader.request(0, "GET", f"/api/exercises/{place}"), reader.request(1, "GET", f"/api/exercises/{place}"))
    texts = {r.json()["response"]["response"]["text"] for r in shown}
    assert len(texts) == 1 and texts.pop().startswith("wave 3 edit "), [r.text[:200] for r in shown]
    assert cluster.rows("SELECT count(*) FROM user_modules WHERE user_id = ?", user) == [(0,)]


def _tool(entry_id: str) -> dict[str, Any]:
    return {"id": entry_id, "tool_type": "list-builder", "origin": "standalone", "content_json": {"title": entry_id},
            "created_at": "2026-01-02T10:00:00.000Z", "updated_at": "2026-01-02T10:00:00.000Z", "skills": []}


OWN_ROWS = {
    "answers": "SELECT count(*) FROM exercise_responses WHERE user_id = ?",
    "modules": "SELECT count(*) FROM user_modules WHERE user_id = ?",
    "tools": "SELECT count(*) FROM tool_instances WHERE user_id = ?",
    "skills": "SELECT count(*) FROM skills WHERE created_by = ?",
}


def test_8_imports_of_one_file_across_both_servers_merge_it_once(cluster: Cluster) -> None:
    source = cluster.reader()
    author = run(source.start())[0]
    completed = False
    for _ in range(30):  # answer in order until the first module is complete
        following = run(source.request(0, "GET", "/api/workbook/next"))[0].json()
        saved = run(source.request(1, "PUT", f"/api/exercises/{following['full_exercise_id']}/response",
                                   {"response": {"text": "mine"}}))[0]
        assert saved.status_code == 200, saved.text
        if saved.json()["module_completed"]:
            completed = True
            break
    assert completed
    exported = run(source.request(0, "POST", "/api/export"))[0]
    assert exported.status_code == 200, exported.text
    document = exported.json()
    document["tool_instances"] = [_tool(f"t{i}") for i in range(20)]
    document["custom_skills"] = [{"id": "bees", "name": "Beekeeping"}]
    before = {what: cluster.rows(sql, author) for what, sql in OWN_ROWS.items()}

    target = cluster.reader()
    user = run(target.start())[0]
    imports = run(*(target.request(i, "POST", "/api/import?dry_run=false", {"document": document}) for i in range(8)))
    assert all(r.status_code == 200 for r in imports), [(r.status_code, r.text[:300]) for r in imports]
    inserted = sorted(r.json()["counts"]["tool_instances"]["inserted"] for r in imports)
    assert inserted == [0] * 7 + [20], inserted  # merged once: the others found it there

    after = {what: cluster.rows(sql, user) for what, sql in OWN_ROWS.items()}
    assert after == {**before, "tools": [(20,)], "skills": [(1,)]}, (before, after)
    assert after["modules"] == [(1,)]
    assert {what: cluster.rows(sql, author) for what, sql in OWN_ROWS.items()} == before  # the author's untouched
    check = cluster.dreamtree("check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "foreign keys: ok" in check.stdout and "schema:       ok" in check.stdout


# --- the Worker stopped, then running again -------------------------------------------------------


def test_a_stopped_worker_is_503_with_retry_after_and_the_same_processes_recover(cluster: Cluster) -> None:
    reader = cluster.reader()
    run(reader.start())
    assert cluster.worker.proc is not None
    group = cluster.worker.proc.pid  # wrangler and workerd (start_new_session)
    os.killpg(group, signal.SIGSTOP)
    try:
        started = time.monotonic()
        down = run(reader.request(0, "GET", "/api/me"), reader.request(1, "GET", "/api/me"),
                   reader.request(0, "PATCH", "/api/settings", {"font": "serif"}))
        waited = time.monotonic() - started
    finally:
        os.killpg(group, signal.SIGCONT)
    for response in down:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "2" and response.json()["code"] == "database_unavailable"
    assert waited < D1_TIMEOUT_S + 5  # DREAMTREE_D1_TIMEOUT bounds it, never a hang
    back = run(reader.request(0, "GET", "/api/me"), reader.request(1, "GET", "/api/me"),
               reader.request(1, "PATCH", "/api/settings", {"font": "sans"}))
    assert [r.status_code for r in back] == [200, 200, 200], [r.text[:200] for r in back]
    assert all(server.proc is not None and server.proc.poll() is None for server in cluster.servers)
