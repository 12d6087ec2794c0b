"""Shared fixtures: a fresh migrated database file per test, in D1-strict mode.

Both engines: a module with `pytestmark = pytest.mark.both_engines` runs each of its tests
that touches the database (through `db_path`, `settings`, `client`, …) twice: on the sqlite
file, and on the d1 engine against the session's `wrangler dev` (id `[d1]`, marker `d1`).
`@pytest.mark.sqlite_only("why")` keeps one test on sqlite. On d1 the fixtures follow the
engine: `db_path` names the Worker's database for `tests.helpers.query` / `connect` (and for
`connect_sync` / `run_batch` as the test module imported them), `settings` point the app at
the Worker, `seeded` / `full_seed` make sure the content is loaded. docs/d1.md has the rest."""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from litestar.testing import TestClient

from app.config import Settings
from app.db import migrations
from app.db.connection import connect_sync
from app.http.app import create_app

if TYPE_CHECKING:
    from app.db.d1_engine import D1Engine
    from tests.d1util import D1Database, RoundTrips, WorkerProcess


# --- both engines ------------------------------------------------------------------------------

SMALL_SEED = Path(__file__).parent / "fixtures" / "seed_small"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A `both_engines` test that uses the database runs on sqlite and on d1 (marker `d1`)."""
    if metafunc.definition.get_closest_marker("both_engines") is None or "engine_kind" not in metafunc.fixturenames:
        return
    only = metafunc.definition.get_closest_marker("sqlite_only")
    if only is not None:
        if not only.args or not str(only.args[0]).strip():
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: sqlite_only needs the reason it cannot run on d1")
        return
    metafunc.parametrize("engine_kind", [pytest.param("sqlite", id="sqlite"),
                                         pytest.param("d1", id="d1", marks=pytest.mark.d1)],
                         indirect=True, scope="module")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Within a module's d1 tests, those that want the same content run one after another, so
    the Worker's database is seeded again as rarely as possible (a stable sort)."""
    rank = {"empty": 0, "small": 1, "full": 2}

    def key(pair: tuple[int, pytest.Item]) -> tuple[int, int, int]:
        index, item = pair
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("engine_kind") != "d1":
            return (index, 0, 0)
        return (first_of[(item.module, "d1")] if hasattr(item, "module") else index, 1, rank[wanted_content(item)])

    first_of: dict[Any, int] = {}
    for index, item in enumerate(items):
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("engine_kind") == "d1":
            first_of.setdefault((getattr(item, "module", None), "d1"), index)
    items[:] = [item for _, item in sorted(enumerate(items), key=key)]


def wanted_content(item: Any) -> str:
    names = getattr(item, "fixturenames", ())
    if "full_seed" in names:
        return "full"
    if "seeded" in names or "publish_v2" in names:
        return "small"
    return "empty"


@pytest.fixture(scope="module")
def engine_kind(request: pytest.FixtureRequest) -> str:
    """The engine a test runs on: "sqlite", or "d1" for the d1 half of a `both_engines` module."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def d1_database(d1_worker: WorkerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[D1Database]:
    """The session Worker's database as the API tests see it (tests/d1util.py D1Database)."""
    from tests.d1util import D1Database

    # The `db_path` of every d1 test: never created, only the server secret's key file goes
    # there, so the one app the d1 tests share (`client`) keeps one secret.
    database = D1Database(d1_worker, tmp_path_factory.mktemp("d1-app") / "dreamtree.db")
    try:
        yield database
    finally:
        database.close()


def _d1_path(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The d1 half of `db_path`: readers' rows deleted, the content the test wants in place,
    and the path registered so that the helpers and the module's `connect_sync` / `run_batch`
    reach the Worker instead of a file."""
    from app.db import connection
    from app.domain.seeding.shapes import SEED_DIR
    from tests import helpers
    from tests.d1util import D1Connection

    database: D1Database = request.getfixturevalue("d1_database")
    database.reset(wanted_content(request.node), {"small": SMALL_SEED, "full": SEED_DIR})
    path = database.path
    real_connect, real_batch = connection.connect_sync, connection.run_batch

    def connect_sync(where: Any, *args: Any, **kw: Any) -> Any:
        return D1Connection(database) if str(where) == str(path) else real_connect(where, *args, **kw)

    def run_batch(conn: Any, statements: Any, write: bool) -> Any:
        if isinstance(conn, D1Connection):
            return conn.db.batch(statements, write=write)
        return real_batch(conn, statements, write)

    import sys

    # The app's module, and every test module that imported them (helpers shared between test
    # modules, e.g. tests/test_engine.py drive_with_interference, run there).
    modules = [connection, *(m for name, m in list(sys.modules.items()) if name.startswith("tests.") and m is not None)]
    for module in modules:
        if getattr(module, "connect_sync", None) is real_connect:
            monkeypatch.setattr(module, "connect_sync", connect_sync)
        if getattr(module, "run_batch", None) is real_batch:
            monkeypatch.setattr(module, "run_batch", run_batch)
    helpers.D1_DATABASES[str(path)] = database
    try:
        yield path
    finally:
        del helpers.D1_DATABASES[str(path)]


@pytest.fixture
def db_path(engine_kind: str, request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A migrated, empty database file (sqlite), or the session Worker's database with no
    reader's rows in it (d1)."""
    if engine_kind == "d1":
        yield from _d1_path(request, tmp_path, monkeypatch)
        return
    path = tmp_path / "dreamtree.db"
    conn = connect_sync(path)
    try:
        migrations.apply(conn)
    finally:
        conn.close()
    yield path


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A D1-strict connection to the migrated database (on d1: tests.d1util.D1Connection)."""
    from tests.helpers import connect

    connection = connect(db_path)
    yield connection
    connection.close()


def app_settings(db_path: Path, worker: WorkerProcess | None = None) -> Settings:
    """Settings of the apps the tests build: Secure cookies, D1-strict SQL, fast Argon2, and on
    the session's Worker when one is given (the server secret's key file beside `db_path`)."""
    on_d1: dict[str, Any] = {} if worker is None else {"engine": "d1", "d1_url": worker.url, "d1_token": worker.token}
    return Settings(db_path=db_path, secure_cookies=True, d1_strict=True, argon2="fast", **on_d1)


@pytest.fixture
def settings(db_path: Path, engine_kind: str, request: pytest.FixtureRequest) -> Settings:
    return app_settings(db_path, request.getfixturevalue("d1_worker") if engine_kind == "d1" else None)


@pytest.fixture(scope="session")
def d1_client(d1_database: D1Database, d1_worker: WorkerProcess) -> Iterator[TestClient]:
    """The app on the d1 engine, built and started once per session: building a Litestar app
    and opening its engine cost more than most tests. `client` hands it to each d1 test as
    good as new (cookies, hooks, throttle, counters); readers' rows are gone by then."""
    app = create_app(app_settings(d1_database.path, d1_worker))
    # A test that reads access lines gives the log a stream of its own; the rest would reach
    # the terminal whenever a batch flushes between two tests' output capture.
    with open(os.devnull, "w") as sink, TestClient(app, base_url="https://testserver.local") as test_client:
        if app.state.access_log is not None:
            app.state.access_log.stream = sink
        yield test_client


def _fresh_d1_client(request: pytest.FixtureRequest, settings: Settings) -> Iterator[TestClient]:
    from app.domain import skills
    from app.domain.throttle import Throttle

    test_client: TestClient = request.getfixturevalue("d1_client")
    app = test_client.app
    if app.state.settings != settings:
        raise pytest.UsageError("a d1 test's settings differ from the shared d1 app's; build its own app")
    headers = httpx.Headers(test_client.headers)
    app.state.throttle = Throttle(enabled=settings.rate_limits, key=app.state.server_keys.throttle)
    app.state.metrics.series.clear()
    skills.index_of(app.state.db).index = None  # as a new process would have it: built on first search
    lines = app.state.access_log
    stream = lines.stream if lines is not None else None
    test_client.cookies = httpx.Cookies()
    test_client.event_hooks = {"request": [], "response": [contract_check(app)]}
    try:
        yield test_client
    finally:
        test_client.headers = headers
        test_client.cookies = httpx.Cookies()
        if lines is not None:
            lines.stream = stream


@pytest.fixture
def client(settings: Settings, engine_kind: str, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """The app in-process. Every response it gives is checked against its own OpenAPI
    document (tests/contract.py): status, body and problem code. On d1 the session's one app
    (`d1_client`), made as good as new."""
    if engine_kind == "d1":
        yield from _fresh_d1_client(request, settings)
        return
    app = create_app(settings)
    # https so that Secure cookies flow (httpx never sends them over http).
    with TestClient(app, base_url="https://testserver.local") as test_client:
        test_client.event_hooks["response"].append(contract_check(app))
        yield test_client


_CONTRACT: list[Any] = []


def contract_check(app: Any) -> Any:
    """One ContractCheck per process: every app the tests build has the same routes, so the
    OpenAPI document (and the validators compiled from it) is built once, not per test."""
    from tests.contract import ContractCheck

    if not _CONTRACT:
        _CONTRACT.append(ContractCheck(app))
    return _CONTRACT[0]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def new_reader(client: TestClient):
    """A factory of browsers (cookie jars) on one app and database."""
    from tests.helpers import Reader

    return lambda: Reader(client)


@pytest.fixture
def full_seed(db_path: Path, engine_kind: str) -> Path:
    """The project's own seed/ folder (the sample workbook, every tool, competency and
    reference) loaded into the test database (on d1 `db_path` has loaded it already)."""
    from app.domain import seeding

    if engine_kind == "d1":
        return db_path
    connection = connect_sync(db_path)
    try:
        seeding.seed(connection)
    finally:
        connection.close()
    return db_path


@pytest.fixture
def seeded(db_path: Path, engine_kind: str) -> Path:
    """The small sample seed (tests/fixtures/seed_small) loaded into the test database (on d1
    `db_path` has loaded it already)."""
    from app.domain import seeding

    if engine_kind == "d1":
        return db_path
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
def publish_v2(db_path: Path, tmp_path: Path, engine_kind: str, request: pytest.FixtureRequest):
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
        if engine_kind == "d1":
            database: D1Database = request.getfixturevalue("d1_database")
            database.forget_content()  # the next test seeds version 1 again
            database.run(seeding.seed_on, directory=folder)
            return
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
    return app_settings(tmp_path / "dreamtree.db", d1_worker)


@pytest.fixture
async def d1_engine(d1_worker: WorkerProcess, d1_database: D1Database, d1_round_trips: RoundTrips,
                    anyio_backend: str) -> AsyncIterator[D1Engine]:
    """A D1Engine on the session's Worker, every table emptied first (the ledger kept);
    `d1_round_trips` starts counting after the wipe. For `@pytest.mark.anyio` tests."""
    from app.db.d1_engine import D1Engine
    from tests import d1util

    assert d1_worker.token is not None
    engine = D1Engine(d1_worker.url, d1_worker.token, timeout=10.0)
    try:
        await d1util.wipe(engine)
        d1_database.forget_content()
        d1_round_trips.clear()
        yield engine
    finally:
        await engine.close()
