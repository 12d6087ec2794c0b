"""The d1 engine's transport rules without wrangler: httpx's MockTransport plays the Worker.

Which failures are retried (a read: any transport error or 5xx; a write: only when it was
never sent), how the Worker's answers become engine errors, that the token never shows, the
reader's bookmark from cookie to batch and back, and the d1 settings. The same engine against
the real Worker is tests/test_d1_engine.py (marker d1).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner
from litestar import Litestar, get, post
from litestar.testing import TestClient

from app.cli import main
from app.config import ConfigError, Settings
from app.db.d1_engine import Bookmarks, D1Engine, D1Error, D1Row, current_bookmarks, encode_batch
from app.db.engine import (
    ConstraintFailed,
    EngineAuthFailed,
    EngineUnavailable,
    GuardFailed,
    Read,
    Stmt,
    Work,
    Write,
)
from app.db.engines import open_engine
from app.http.bookmarks import bookmark_middleware_factory
from app.http.problems import exception_handlers
from tests.servers import free_port

TOKEN = "t0ken-" + "s" * 58
URL = "http://127.0.0.1:9"
ONE = [Stmt("SELECT 1 AS one")]


def ok(*results: dict[str, Any], bookmark: str | None = None) -> httpx.Response:
    return httpx.Response(200, json={"results": list(results) or [{"columns": ["one"], "rows": [[1]], "changes": 0}],
                                     "bookmark": bookmark})


def problem(status: int, code: str, detail: str, outcome: str = "rolled_back") -> httpx.Response:
    return httpx.Response(status, json={"type": "about:blank", "status": status, "detail": detail, "code": code,
                                        "outcome": outcome}, headers={"Content-Type": "application/problem+json"})


class FakeWorker:
    """Answers requests from a script (responses, or exceptions to raise), recording bodies."""

    def __init__(self, *script: httpx.Response | type[Exception] | Callable[[httpx.Request], Any]) -> None:
        self.script = list(script)
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        self.headers.append(request.headers)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, httpx.Response):
            return step
        if isinstance(step, type) and issubclass(step, Exception):
            raise step("scripted failure", request=request)  # type: ignore[call-arg]
        return await step(request)

    @property
    def calls(self) -> int:
        return len(self.bodies)


def engine_for(worker: FakeWorker, **kw: Any) -> D1Engine:
    return D1Engine(URL, TOKEN, transport=httpx.MockTransport(worker), **kw)


def run(worker: FakeWorker, statements: list[Stmt] = ONE, *, write: bool = False, **kw: Any) -> Any:
    async def go() -> Any:
        engine = engine_for(worker, **kw)
        try:
            return await engine.batch(statements, write=write)
        finally:
            await engine.close()

    return anyio.run(go)


# --- rows and parameters -----------------------------------------------------------------------


def test_rows_answer_by_name_any_case_and_by_position() -> None:
    (result,) = run(FakeWorker(ok({"columns": ["id", "Name", "n"], "rows": [[1, "ada", 2.5], [2, "bea", None]],
                                   "changes": 0})))
    first, second = result.rows
    assert isinstance(first, D1Row)
    assert first["id"] == first[0] == 1 and type(first["id"]) is int
    assert first["Name"] == first["name"] == first["NAME"] == first[1] == "ada"
    assert first[-1] == 2.5 and second["n"] is None
    assert first.keys() == ["id", "Name", "n"] and len(first) == 3 and list(first) == [1, "ada", 2.5]
    assert dict(second) == {"id": 2, "Name": "bea", "n": None}
    assert first[0:2] == (1, "ada")
    assert result.column() == [1, 2] and result.value() == 1
    with pytest.raises(IndexError):
        first["missing"]
    assert "ada" in repr(first)


@pytest.mark.parametrize(("value", "error"), [
    (b"bytes", TypeError), (object(), TypeError), (2**53, ValueError), (-(2**53), ValueError),
    (math.nan, ValueError), (math.inf, ValueError),
])
def test_parameters_d1_cannot_carry_are_refused_before_sending(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        encode_batch([Stmt("SELECT ?", (value,))], write=False, bookmark=None)


def test_parameters_d1_carries() -> None:
    body = json.loads(encode_batch([Stmt("SELECT ?, ?, ?, ?, ?", (None, True, 2**53 - 1, 1.5, "é"))], write=True,
                                   bookmark="b1"))
    assert body == {"mode": "write", "bookmark": "b1",
                    "statements": [{"sql": "SELECT ?, ?, ?, ?, ?", "params": [None, True, 2**53 - 1, 1.5, "é"]}]}


# --- retries ------------------------------------------------------------------------------------


def test_a_read_is_retried_on_transport_errors_and_5xx() -> None:
    for failure in (httpx.ConnectError, httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError,
                    problem(503, "d1_unavailable", "overloaded", "not_run"), problem(500, "worker_error", "x", "unknown")):
        worker = FakeWorker(failure, problem(503, "d1_unavailable", "overloaded", "not_run"), ok())
        (result,) = run(worker)
        assert result.value() == 1 and worker.calls == 3


def test_a_read_gives_up_after_three_attempts() -> None:
    worker = FakeWorker(problem(503, "d1_unavailable", "overloaded", "not_run"))
    with pytest.raises(EngineUnavailable, match="HTTP 503 d1_unavailable: overloaded .read batch, 3 attempts"):
        run(worker)
    assert worker.calls == 3


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_a_write_is_retried_when_it_was_never_sent(failure: type[Exception]) -> None:
    worker = FakeWorker(failure, ok())
    run(worker, [Stmt("INSERT INTO t VALUES (1)")], write=True)
    assert worker.calls == 2


@pytest.mark.parametrize("failure", [
    httpx.ReadError, httpx.ReadTimeout, httpx.WriteError, httpx.WriteTimeout, httpx.RemoteProtocolError,
    problem(503, "d1_unavailable", "Network connection lost.", "unknown"),
    problem(500, "worker_error", "The Worker failed", "unknown"),
    httpx.Response(502, text="Bad gateway"),
])
def test_a_write_that_may_have_been_sent_is_never_sent_again(failure: Any) -> None:
    worker = FakeWorker(failure, ok())
    with pytest.raises(EngineUnavailable, match="write batch, 1 attempt"):
        run(worker, [Stmt("INSERT INTO t VALUES (1)")], write=True)
    assert worker.calls == 1


@pytest.mark.parametrize("write", [False, True])
def test_a_worker_that_hangs_is_unavailable_within_the_timeout(write: bool) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(30)
        return ok()

    worker = FakeWorker(hang)
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match="no answer within 0.5 s"):
        run(worker, write=write, timeout=0.5)
    assert time.monotonic() - started < 1.0
    assert worker.calls == 1  # the whole timeout went to the first attempt


def test_an_unreachable_worker_is_unavailable_quickly_and_for_real() -> None:
    """The real transport on a closed port: connection refused, retried, then 503 material."""
    async def go() -> None:
        engine = D1Engine("http://127.0.0.1:9", TOKEN, timeout=2.0)
        try:
            with pytest.raises(EngineUnavailable, match="cannot connect .ConnectError.*3 attempts"):
                await engine.batch(ONE, write=False)
        finally:
            await engine.close()

    started = time.monotonic()
    anyio.run(go)
    assert time.monotonic() - started < 1.5


# --- the Worker's answers as engine errors ------------------------------------------------------


@pytest.mark.parametrize(("response", "error", "text"), [
    (problem(401, "unauthorized", "A valid 'Authorization: Bearer <token>' header is required.", "not_run"),
     EngineAuthFailed, "answered 401"),
    (problem(500, "token_not_configured", "DREAMTREE_D1_TOKEN is not set", "not_run"),
     EngineAuthFailed, "no usable DREAMTREE_D1_TOKEN"),
    (problem(422, "sql_error", "no such table: nope: SQLITE_ERROR"), D1Error, "no such table: nope"),
    (problem(400, "refused", "statement 0: D1 refuses PRAGMA journal_mode", "not_run"), D1Error, "refuses PRAGMA"),
    (problem(413, "too_large", "The request body is larger than 8388608 bytes.", "not_run"), D1Error, "too_large"),
    (httpx.Response(404, text="Not found"), EngineUnavailable, "is not the DreamTree D1 Worker"),
    (httpx.Response(200, text="<html>hello</html>"), EngineUnavailable, "not a batch result"),
])
def test_worker_answers_become_engine_errors(response: httpx.Response, error: type[Exception], text: str) -> None:
    worker = FakeWorker(response)
    with pytest.raises(error, match=text):
        run(worker, write=True)
    assert worker.calls == 1


def test_guards_and_constraints_read_as_on_the_sqlite_engine() -> None:
    with pytest.raises(GuardFailed) as guard_failed:
        run(FakeWorker(problem(409, "guard_failed", "bad JSON path: 'guard:session_ended': SQLITE_ERROR")), write=True)
    assert guard_failed.value.name == "session_ended"
    with pytest.raises(ConstraintFailed) as constraint:
        run(FakeWorker(problem(409, "constraint_failed",
                               "UNIQUE constraint failed: emails.email: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)")),
            write=True)
    assert constraint.value.message == "UNIQUE constraint failed: emails.email"
    assert constraint.value.unique and constraint.value.on("emails.email")


def test_the_token_is_sent_once_and_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    worker = FakeWorker(ok())
    run(worker)
    assert worker.headers[0]["authorization"] == f"Bearer {TOKEN}"
    failures = []
    for response in (problem(401, "unauthorized", "no", "not_run"), httpx.ConnectError,
                     problem(503, "d1_unavailable", "down", "unknown")):
        try:
            run(FakeWorker(response), write=True)
        except Exception as exc:
            failures.append(exc)
    engine = engine_for(FakeWorker(ok()))
    shown = [repr(engine), repr(engine._client.headers), *(str(e) for e in failures), *(repr(e) for e in failures),
             caplog.text, repr(Settings(d1_url=URL, d1_token=TOKEN))]
    anyio.run(engine.close)
    assert len(failures) == 3
    assert all(TOKEN not in text for text in shown)


# --- bookmarks ----------------------------------------------------------------------------------


B1, B2, B3 = ("00000000-00000001-00000000-" + "0" * 32, "00000000-00000002-00000000-" + "0" * 32,
              "00000000-00000003-00000000-" + "0" * 32)


def test_the_readers_bookmark_goes_out_with_every_batch_and_comes_back_newer() -> None:
    worker = FakeWorker(ok(bookmark=B2), ok(bookmark=B1), ok(bookmark="not a bookmark!"), ok(bookmark=B3))

    async def go() -> Bookmarks:
        engine = engine_for(worker)
        box = Bookmarks(B1)
        token = current_bookmarks.set(box)
        try:
            await engine.batch(ONE, write=False)
            assert (box.value, box.written) == (B2, False)  # reads move it, but write no cookie
            await engine.batch(ONE, write=False)  # an older bookmark never moves it back
            await engine.batch(ONE, write=False)  # nor does something that is not a bookmark
            assert box.value == B2
            await engine.batch(ONE, write=True)
            return box
        finally:
            current_bookmarks.reset(token)
            await engine.close()

    box = anyio.run(go)
    assert (box.value, box.written) == (B3, True)
    assert [body.get("bookmark") for body in worker.bodies] == [B1, B2, B2, B2]


def test_outside_a_request_the_engine_uses_the_newest_bookmark_it_has_seen() -> None:
    worker = FakeWorker(ok(bookmark=B2), ok(bookmark=B3), ok())

    async def go() -> None:
        engine = engine_for(worker)
        try:
            for write in (True, False, False):
                await engine.batch(ONE, write=write)
        finally:
            await engine.close()

    anyio.run(go)
    assert [body.get("bookmark") for body in worker.bodies] == [None, B2, B3]


def bookmark_app(worker: FakeWorker, *, secure: Callable[[str], bool]) -> Litestar:
    engine = engine_for(worker)

    def reads() -> Work[int]:
        (result,) = yield Read(Stmt("SELECT 1 AS one"))
        return int(result.value())

    def writes() -> Work[str]:
        yield Write(Stmt("INSERT INTO t VALUES (1)"))
        return "written"

    @get("/read")
    async def read_handler() -> dict[str, int]:
        return {"one": await engine.query(reads, None)}

    @post("/write")
    async def write_handler() -> dict[str, str]:
        return {"done": await engine.change(writes, None)}

    return Litestar([read_handler, write_handler], middleware=[bookmark_middleware_factory(secure=secure)],
                     on_shutdown=[engine.close])


def test_the_bookmark_cookie_follows_the_readers_writes() -> None:
    worker = FakeWorker(ok(bookmark=B1), ok(bookmark=B2), ok(bookmark=B3), ok(bookmark=B3), ok(bookmark=B3))
    with TestClient(bookmark_app(worker, secure=lambda scheme: False)) as client:
        first = client.get("/read")
        assert first.status_code == 200 and "set-cookie" not in first.headers  # a read sets no cookie
        written = client.post("/write")
        assert written.status_code == 201
        assert written.headers["set-cookie"] == f"dt_bookmark={B2}; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"
        again = client.get("/read")  # the browser sends it back; the batch carries it
        assert worker.bodies[-1]["bookmark"] == B2
        assert "set-cookie" not in again.headers
        client.post("/write")
        assert client.cookies.get("dt_bookmark") == B3
        client.post("/write")  # a write that does not move the bookmark sets no cookie again
        client.cookies.clear()
        client.cookies.set("dt_bookmark", "<script>")
        client.get("/read")
    assert "bookmark" not in worker.bodies[-1]  # a cookie that is not a bookmark is ignored
    assert [body.get("bookmark") for body in worker.bodies[:2]] == [None, None]  # no cookie yet: unconstrained


def test_the_bookmark_cookie_is_secure_when_cookies_are() -> None:
    """The same rule as the session and CSRF cookies: Settings.cookies_secure(scheme)."""
    secure = Settings().cookies_secure  # no explicit setting: Secure exactly over https
    with TestClient(bookmark_app(FakeWorker(ok(bookmark=B1)), secure=secure), base_url="https://testserver.local") as client:
        assert client.post("/write").headers["set-cookie"].endswith("; HttpOnly; SameSite=Lax; Secure")
    with TestClient(bookmark_app(FakeWorker(ok(bookmark=B1)), secure=secure), base_url="http://testserver.local") as client:
        assert client.post("/write").headers["set-cookie"].endswith("; HttpOnly; SameSite=Lax")


# --- the HTTP layer and configuration -------------------------------------------------------------


def test_an_unavailable_database_is_503_with_retry_after() -> None:
    @get("/down")
    async def down() -> None:
        raise EngineUnavailable("D1 Worker at http://127.0.0.1:9: cannot connect (ConnectError)")

    @get("/refused")
    async def refused() -> None:
        raise EngineAuthFailed("the D1 Worker answered 401 unauthorized")

    app = Litestar([down, refused], exception_handlers=exception_handlers)  # type: ignore[arg-type]
    with TestClient(app) as client:
        response = client.get("/down")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "2"
        assert response.json()["code"] == "database_unavailable"
        assert "127.0.0.1" not in response.text  # the Worker's address stays in the log
        refusal = client.get("/refused")
        assert refusal.status_code == 500 and refusal.json()["code"] == "internal_error"


def test_d1_settings_from_the_environment_and_back() -> None:
    settings = Settings.from_env({"DREAMTREE_ENGINE": "d1", "DREAMTREE_D1_URL": "https://d1.example.org",
                                  "DREAMTREE_D1_TOKEN": TOKEN, "DREAMTREE_D1_TIMEOUT": "2.5"})
    assert (settings.engine, settings.d1_url, settings.d1_token, settings.d1_timeout) == (
        "d1", "https://d1.example.org", TOKEN, 2.5)
    assert settings.d1_target() == ("https://d1.example.org", TOKEN)
    assert Settings.from_env(settings.to_env()) == replace(settings, db_path=settings.db_path.resolve())
    assert TOKEN not in repr(settings)
    assert Settings.from_env({}).engine == "sqlite"
    with pytest.raises(ConfigError, match="DREAMTREE_ENGINE must be one of sqlite, d1"):
        Settings.from_env({"DREAMTREE_ENGINE": "postgres"})
    with pytest.raises(ConfigError, match="DREAMTREE_D1_TIMEOUT"):
        Settings.from_env({"DREAMTREE_D1_TIMEOUT": "soon"})


@pytest.mark.parametrize(("url", "token", "says"), [
    (None, TOKEN, "needs DREAMTREE_D1_URL"),
    ("http://127.0.0.1:8787", None, "needs DREAMTREE_D1_TOKEN"),
    ("http://127.0.0.1:8787", "short", "at least 32"),
    ("http://127.0.0.1:8787", "x" * 31 + " " + "x", "without spaces"),
    ("http://d1.example.org", TOKEN, "must use https"),
    ("ftp://d1.example.org", TOKEN, "http\\(s\\) address"),
    ("https://user:pw@d1.example.org", TOKEN, "no query, fragment or credentials"),
])
def test_unusable_d1_settings_are_one_line_config_errors(url: str | None, token: str | None, says: str) -> None:
    settings = Settings(engine="d1", d1_url=url, d1_token=token)
    with pytest.raises(ConfigError, match=says) as failed:
        settings.d1_target()
    assert "\n" not in str(failed.value)
    with pytest.raises(ConfigError, match=says):
        anyio.run(open_engine, settings)


def test_the_cli_says_what_is_missing_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"DREAMTREE_ENGINE": "", "DREAMTREE_D1_URL": "", "DREAMTREE_D1_TOKEN": ""}
    for args, extra, says in [
        (["migrate", "--engine", "d1"], {}, "the d1 engine needs DREAMTREE_D1_URL"),
        (["migrate", "--engine", "d1", "--status"], {"DREAMTREE_D1_URL": URL}, "needs DREAMTREE_D1_TOKEN"),
        (["migrate"], {"DREAMTREE_ENGINE": "d1", "DREAMTREE_D1_URL": URL, "DREAMTREE_D1_TOKEN": TOKEN},
         "the D1 Worker at http://127.0.0.1:9 does not answer"),
        (["serve", "--engine", "d1", "--db", str(tmp_path / "x.db"), "--port", str(free_port())], {"DREAMTREE_D1_URL": URL, "DREAMTREE_D1_TOKEN": TOKEN},
         "does not answer"),
    ]:
        result = runner.invoke(main, args, env={**env, **extra})
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("dreamtree: error: ") and says in lines[0], result.output
        assert TOKEN not in result.output

