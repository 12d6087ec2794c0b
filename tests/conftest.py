"""Shared fixtures: a fresh migrated database file per test, in D1-strict mode."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from litestar.testing import TestClient

from app.config import Settings
from app.db import migrations
from app.db.connection import connect_sync
from app.http.app import create_app

if TYPE_CHECKING:
    from app.db.d1_engine import D1Engine
    from tests.d1util import RoundTrips, WorkerProcess


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A migrated, empty database file."""
    path = tmp_path / "dreamtree.db"
    conn = connect_sync(path)
    try:
        migrations.apply(conn)
    finally:
        conn.close()
    return path


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A D1-strict connection to the migrated database."""
    connection = connect_sync(db_path)
    yield connection
    connection.close()


@pytest.fixture
def settings(db_path: Path) -> Settings:
    return Settings(db_path=db_path, secure_cookies=True, d1_strict=True, argon2="fast")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app in-process. Every response it gives is checked against its own OpenAPI
    document (tests/contract.py): status, body and problem code."""
    from tests.contract import ContractCheck

    app = create_app(settings)
    # https so that Secure cookies flow (httpx never sends them over http).
    with TestClient(app, base_url="https://testserver.local") as test_client:
        test_client.event_hooks["response"].append(ContractCheck(app))
        yield test_client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def new_reader(client: TestClient):
    """A factory of browsers (cookie jars) on one app and database."""
    from tests.helpers import Reader

    return lambda: Reader(client)


SMALL_SEED = Path(__file__).parent / "fixtures" / "seed_small"


@pytest.fixture
def full_seed(db_path: Path) -> Path:
    """The project's own seed/ folder (the sample workbook, every tool, competency and
    reference) loaded into the test database."""
    from app.domain import seeding

    connection = connect_sync(db_path)
    try:
        seeding.seed(connection)
    finally:
        connection.close()
    return db_path


@pytest.fixture
def seeded(db_path: Path) -> Path:
    """The small sample seed (tests/fixtures/seed_small) loaded into the test database."""
    from app.domain import seeding

    connection = connect_sync(db_path)
    try:
        seeding.seed(connection, directory=SMALL_SEED)
    finally:
        connection.close()
    return db_path


class Clock:
    """The service's one clock (`app.timeutil.now`), pinned: `clock.set(...)`, `clock.advance(...)`."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def set(self, moment: datetime | str) -> None:
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError("pin the clock with an aware datetime")
        self.moment = moment.astimezone(timezone.utc)

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Every domain module reads time through `timeutil.now()`, so one patch pins them all."""
    from app import timeutil

    pinned = Clock(datetime.now(timezone.utc))
    monkeypatch.setattr(timeutil, "now", lambda: pinned.moment)
    return pinned


@pytest.fixture
def pinned(clock: Clock) -> Clock:
    """The clock pinned to a Sunday morning in March, 2026-03-08T07:30Z: the day the United
    States change to summer time, and a day whose local date differs east and west of UTC."""
    clock.set("2026-03-08T07:30:00Z")
    return clock


@pytest.fixture
def publish_v2(db_path: Path, tmp_path: Path):
    """Re-seed the small workbook with exercise 1.1.1 published as version 2, as an editor
    would (a copy of tests/fixtures/seed_small with its version raised)."""
    import shutil

    from app.domain import seeding

    def publish() -> None:
        folder = tmp_path / "seed-v2"
        shutil.copytree(SMALL_SEED, folder, dirs_exist_ok=True)
        part = folder / "workbook" / "part-1.md"
        part.write_text(part.read_text().replace("version: 1\nrequired: true\nunlocks_tool: list-builder",
                                                 "version: 2\nrequired: true\nunlocks_tool: list-builder"))
        connection = connect_sync(db_path)
        try:
            seeding.seed(connection, directory=folder)
        finally:
            connection.close()

    return publish


class JobLog:
    """The database round trips since the fixture began (or the last clear()): the kind
    ("read" or "write") and the module of the work (or job function) behind each. A unit of
    work's batches are recorded one by one; the job API that some modules still use records
    one entry per job."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def mine(self) -> list[tuple[str, str]]:
        """Without the separate session check of modules still on the job API."""
        return [job for job in self.seen if job[1] != "app.domain.sessions"]

    def of(self, module: str) -> list[str]:
        return [kind for kind, where in self.seen if where == module]

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.seen]

    def clear(self) -> None:
        self.seen.clear()


@pytest.fixture
def db_jobs(monkeypatch: pytest.MonkeyPatch) -> Iterator[JobLog]:
    """Records every batch an engine sends and every Database.read/write job, to prove how
    many round trips a request costs."""
    from app.db import engine
    from app.db.connection import Database

    log = JobLog()
    real_read, real_write = Database.read, Database.write

    async def read(self: Database, fn: Any) -> Any:
        log.seen.append(("read", fn.__module__))
        return await real_read(self, fn)

    async def write(self: Database, fn: Any) -> Any:
        log.seen.append(("write", fn.__module__))
        return await real_write(self, fn)

    def observe(kind: str, origin: str, _count: int) -> None:
        log.seen.append((kind, origin))

    monkeypatch.setattr(Database, "read", read)
    monkeypatch.setattr(Database, "write", write)
    engine.observers.append(observe)
    yield log
    engine.observers.remove(observe)


# --- the d1 engine against wrangler dev (marker d1; tests/d1util.py) ------------------------------


@pytest.fixture(scope="session")
def d1_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """The D1 Worker under `wrangler dev`, started once per session (per xdist worker) with a
    random token and a fresh `--persist-to`, migrated through the Worker, stopped at the end.
    Skips without `npm ci` in wrangler-compat/ (fails under CI, like every d1 test)."""
    import anyio

    from app.db import migrations
    from app.db.d1_engine import D1Engine
    from tests import d1util

    wrangler = d1util.require_wrangler()
    worker = d1util.WorkerProcess(wrangler, tmp_path_factory.mktemp("d1-worker") / "state", secrets.token_hex(32))
    worker.start()

    async def migrate() -> None:
        assert worker.token is not None
        engine = D1Engine(worker.url, worker.token)
        try:
            await migrations.apply_on(engine)
        finally:
            await engine.close()

    try:
        anyio.run(migrate)
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def d1_round_trips(monkeypatch: pytest.MonkeyPatch) -> RoundTrips:
    """Counts the batches every D1Engine created from now on sends: `trips.modes`, e.g.
    `["read", "write"]`; `trips.assert_read_endpoint()` (exactly one round trip) and
    `trips.assert_write_endpoint()` (at most two). Works for engines the app opens too."""
    from app.db.d1_engine import D1Engine
    from tests.d1util import RecordingTransport, RoundTrips

    trips = RoundTrips()
    real = D1Engine.make_transport
    monkeypatch.setattr(D1Engine, "make_transport", staticmethod(lambda: RecordingTransport(real(), trips)))
    return trips


@pytest.fixture
def d1_settings(d1_worker: WorkerProcess, tmp_path: Path) -> Settings:
    """Settings for create_app on the session's Worker (engine d1); the server secret's key
    file goes to tmp_path. Rows are not wiped here: ask for `d1_engine` too for that."""
    return Settings(db_path=tmp_path / "dreamtree.db", secure_cookies=True, d1_strict=True, argon2="fast",
                    engine="d1", d1_url=d1_worker.url, d1_token=d1_worker.token)


@pytest.fixture
async def d1_engine(d1_worker: WorkerProcess, d1_round_trips: RoundTrips, anyio_backend: str) -> AsyncIterator[D1Engine]:
    """A D1Engine on the session's Worker, every table emptied first (the ledger kept);
    `d1_round_trips` starts counting after the wipe. For `@pytest.mark.anyio` tests."""
    from app.db.d1_engine import D1Engine
    from tests import d1util

    assert d1_worker.token is not None
    engine = D1Engine(d1_worker.url, d1_worker.token, timeout=10.0)
    try:
        await d1util.wipe(engine)
        d1_round_trips.clear()
        yield engine
    finally:
        await engine.close()
