"""Small helpers for API tests: a reader with their own cookie jar, CSRF header included."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from litestar.testing import TestClient

from app.db.connection import Database, connect_sync

PASSWORD = "river lantern pocket moss"
OTHER_PASSWORD = "copper kettle under snow"


class Reader:
    """One browser: its own cookie jar on a shared test client, sending the CSRF header like
    the page does."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.jar = httpx.Cookies()

    def request(self, method: str, path: str, *, csrf: bool = True, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", None) or {})
        if csrf and method != "GET":
            headers.setdefault("x-csrftoken", self.jar.get("csrftoken") or "")
        self.client.cookies = self.jar
        try:
            return self.client.request(method, path, headers=headers, **kw)
        finally:
            self.jar = httpx.Cookies(self.client.cookies)
            self.client.cookies = httpx.Cookies()

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, json=json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("DELETE", path, json=json, **kw)

    @property
    def session_cookie(self) -> str | None:
        return self.jar.get("dt_session")

    def set_session_cookie(self, value: str) -> None:
        self.jar.set("dt_session", value, domain="testserver.local", path="/")

    def start(self) -> dict[str, Any]:
        self.get("/healthz")  # the page's first load: picks up the csrftoken cookie
        response = self.post("/api/session")
        assert response.status_code == 201, response.text
        return response.json()

    def claim(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = self.post("/api/account/claim", {"email": email, "password": password})
        assert response.status_code == 200, response.text
        return response.json()

    def login(self, email: str, password: str = PASSWORD, **extra: Any) -> Any:
        if not self.jar.get("csrftoken"):
            self.get("/healthz")
        return self.post("/api/auth/login", {"email": email, "password": password, **extra})


# The d1 engine's database by the `db_path` a test holds (conftest.py registers it for a d1
# test): the helpers below then go through the Worker instead of opening a file.
D1_DATABASES: dict[str, Any] = {}


def connect(db_path: Path, *, strict: bool = True) -> Any:
    """A connection to the test's database, past the API, on either engine: the file itself
    (sqlite), or `d1util.D1Connection` through the Worker (d1), which takes the same
    execute / executemany / fetchone / fetchall calls."""
    d1 = D1_DATABASES.get(str(db_path))
    if d1 is not None:
        from tests.d1util import D1Connection

        return D1Connection(d1)
    return connect_sync(db_path, strict=strict)


def seed_into(db_path: Path, directory: Path) -> Any:
    """Load a seed folder into the test's database on either engine (`seeding.seed` on the file,
    `seeding.seed_on` through the Worker); the result of the seed."""
    from app.domain import seeding

    d1 = D1_DATABASES.get(str(db_path))
    if d1 is not None:
        d1.forget_content()  # the next test gets its own content back
        return d1.run(seeding.seed_on, directory=directory)
    conn = connect_sync(db_path)
    try:
        return seeding.seed(conn, directory=directory)
    finally:
        conn.close()


async def open_engine_on(db_path: Path) -> Any:
    """The engine the app would open on the test's database: the sqlite Database on the file,
    or a D1Engine on the Worker (close it when done)."""
    d1 = D1_DATABASES.get(str(db_path))
    if d1 is not None:
        from app.db.d1_engine import D1Engine

        engine = D1Engine(d1.worker.url, d1.worker.token)
        await engine.open()
        return engine
    from app.db.connection import open_database

    return await open_database(db_path)


async def with_sqlite_database(path: Path, fn: Callable[[Database], Awaitable[Any]]) -> Any:
    """`fn` run on the sqlite engine's Database opened on `path`, closed after."""
    db = Database(path)
    await db.open()
    try:
        return await fn(db)
    finally:
        await db.close()


def cli_env(db_path: Path) -> dict[str, str]:
    """The environment a `dreamtree … --db db_path` command needs to reach the test's database
    on either engine (none on sqlite; DREAMTREE_ENGINE=d1 and the Worker on d1)."""
    d1 = D1_DATABASES.get(str(db_path))
    if d1 is None:
        return {}
    return {"DREAMTREE_ENGINE": "d1", "DREAMTREE_D1_URL": d1.worker.url, "DREAMTREE_D1_TOKEN": d1.worker.token}


def query(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """Rows straight from the database, past the API (on sqlite a plain connection, not D1-strict)."""
    conn = connect(db_path, strict=False)
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()
