"""The `d1` engine: works run on Cloudflare D1 through the DreamTree D1 Worker.

The Worker (wrangler-compat/src/worker.js) has one endpoint, `POST /batch`, that runs a list of
statements with D1's atomic `batch()`. This engine drives a work (app/db/engine.py) over it:
each `Read` is one round trip, a `change` sends its reads, decides in Python, then sends its
one write batch. Guards and constraints come back as D1's own messages and become
`GuardFailed` / `ConstraintFailed`, exactly as on the sqlite engine.

Failures (docs/d1.md, "The D1 transport"):
- A read batch is retried on any transport error or 5xx, within one overall timeout.
- A write batch is retried only when the connection was never established (connect error,
  connect or pool timeout): once it may have been sent, it may have been applied, so it is
  never sent twice. The caller gets `EngineUnavailable` (HTTP 503 with Retry-After).
- 401 from the Worker (or a Worker without a token) is `EngineAuthFailed`: configuration,
  not an outage. The token is sent in one header and never appears in a message or a repr.

Bookmarks: D1's Sessions API lets reads go to a replica that has caught up with a bookmark.
The engine sends, with every batch, the newest bookmark of the reader it runs for, kept in a
`ContextVar` (`current_bookmarks`) that the HTTP layer fills from the `dt_bookmark` cookie and
writes back after the reader wrote (app/http/bookmarks.py). So a reader sees their own
writes on every replica, across any number of app processes. Outside a request (CLI, tests)
the engine uses the newest bookmark this process has seen.

Long on purpose: one transport. Its rows, its wire format, its retries and its bookmarks depend
on one another and on the Worker's protocol (docs/d1.md), and are read together.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, NoReturn, TypeVar

import anyio
import httpx
import msgspec

from app.db.connection import resume_in_thread
from app.db.engine import (
    ATTEMPTS,
    Batch,
    ChangedConcurrently,
    ConstraintFailed,
    Driver,
    Engine,
    EngineAuthFailed,
    EngineUnavailable,
    Gate,
    GuardFailed,
    Refused,
    Result,
    Stmt,
    WorkFactory,
    Write,
    drive_async,
    guard_name,
    resume_inline,
)

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
"""Seconds one batch may take, retries included (DREAMTREE_D1_TIMEOUT)."""
CONNECT_TIMEOUT = 3.0
READ_ATTEMPTS = 3
BACKOFF = (0.05, 0.2)
MAX_CONNECTIONS = 32
MAX_SAFE_INTEGER = 2**53 - 1  # D1's binding carries numbers as JavaScript doubles

PROBE = "SELECT 1 AS ok"
"""open()'s trivial read: it answers on an empty D1 too (before any migration)."""

BOOKMARK_COOKIE = "dt_bookmark"
_BOOKMARK = re.compile(r"^[0-9A-Za-z._:-]{1,128}$")
# D1 appends SQLite's result code to its messages ("…: SQLITE_CONSTRAINT (extended: …)");
# without it a constraint message reads as it does on the sqlite engine.
_SQLITE_SUFFIX = re.compile(r"(?:: SQLITE_[A-Z_]+(?: \(extended: SQLITE_[A-Z_]+\))?)+$")


class D1Error(Exception):
    """The Worker refused or could not run a batch for a reason in the batch itself: a
    statement D1 refuses (400), SQL that fails (422), a batch too large (413). A bug here,
    not an outage; nothing was applied."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"D1 Worker answered {status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


# --- bookmarks ---------------------------------------------------------------------------------


class Bookmarks:
    """One reader's D1 bookmark for the length of a request (a box, so that tasks spawned while
    handling the request update the same value)."""

    __slots__ = ("value", "written")

    def __init__(self, value: str | None = None) -> None:
        self.value = value if value is not None and valid_bookmark(value) else None
        self.written = False

    def see(self, bookmark: str, *, wrote: bool) -> None:
        if self.value is None or bookmark > self.value:
            self.value = bookmark
        if wrote:
            self.written = True

    def __repr__(self) -> str:
        return f"Bookmarks({self.value!r}, written={self.written})"


current_bookmarks: ContextVar[Bookmarks | None] = ContextVar("dreamtree_d1_bookmarks", default=None)
"""The bookmark of the reader the current request runs for (set by the HTTP layer)."""


def valid_bookmark(value: str) -> bool:
    """A bookmark as D1 hands them out (hex words and dashes); a cookie may hold anything."""
    return bool(_BOOKMARK.match(value))


# --- rows --------------------------------------------------------------------------------------


class D1Row:
    """A row by column name (case-insensitive, like sqlite3.Row) or by position.

    Column order is the statement's, as D1's `batch()` reports it: D1 turns rows into objects,
    so of two columns with the same name only one survives, and an integer-like column name
    (an unaliased `SELECT 1`) moves to the front. Alias such columns (docs/d1.md)."""

    __slots__ = ("_columns", "_index", "_values")

    def __init__(self, columns: list[str], index: dict[str, int], values: tuple[Any, ...]) -> None:
        self._columns = columns
        self._index = index
        self._values = values

    def __getitem__(self, key: int | str | slice, /) -> Any:
        if isinstance(key, str):
            position = self._index.get(key)
            if position is None:
                position = self._index.get(key.lower())
                if position is None:
                    raise IndexError(f"No item with that key: {key!r}")
            return self._values[position]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._columns)

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, D1Row):
            return NotImplemented
        return self._columns == other._columns and self._values == other._values

    def __hash__(self) -> int:
        return hash((tuple(self._columns), self._values))

    def __repr__(self) -> str:
        return f"D1Row({dict(zip(self._columns, self._values))!r})"


def _index(columns: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for position, name in enumerate(columns):
        index.setdefault(name, position)
    for position, name in enumerate(columns):
        index.setdefault(name.lower(), position)
    return index


# --- the wire format (wrangler-compat/src/worker.js) ---------------------------------------


class _StatementAnswer(msgspec.Struct):
    columns: list[str] = []
    rows: list[list[Any]] = []
    changes: int = 0


class _Answer(msgspec.Struct):
    results: list[_StatementAnswer]
    bookmark: str | None = None


class _Problem(msgspec.Struct):
    status: int = 0
    code: str = ""
    detail: str = ""
    outcome: str = ""


_decode_answer = msgspec.json.Decoder(_Answer).decode
_decode_problem = msgspec.json.Decoder(_Problem).decode


def _param(value: object) -> str | int | float | None:
    """A parameter as D1 can bind it, or an error before anything is sent."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value
        raise ValueError("D1 carries numbers as doubles: an integer parameter must stay within ±(2**53 - 1)")
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise ValueError("D1 cannot bind NaN or an infinity")
    raise TypeError(f"D1 binds null, numbers, text and booleans; not {type(value).__name__}")


def encode_batch(statements: Sequence[Stmt], *, write: bool, bookmark: str | None) -> bytes:
    """The request body of `POST /batch`."""
    payload: dict[str, object] = {
        "mode": "write" if write else "read",
        "statements": [{"sql": s.sql, "params": [_param(p) for p in s.params]} for s in statements],
    }
    if bookmark is not None:
        payload["bookmark"] = bookmark
    return msgspec.json.encode(payload)


def _results(answer: _Answer) -> list[Result]:
    results = []
    for statement in answer.results:
        columns = statement.columns
        index = _index(columns)
        rows = [D1Row(columns, index, tuple(values)) for values in statement.rows]
        results.append(Result(rows, statement.changes))
    return results


def _problem(response: httpx.Response) -> _Problem:
    try:
        return _decode_problem(response.content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _Problem(status=response.status_code, detail=response.text[:200])


class _Retry(Exception):  # a signal inside _send
    def __init__(self, reason: str, *, unsent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unsent = unsent


# --- the engine --------------------------------------------------------------------------------


class D1Engine(Engine):
    """The `d1` engine: one httpx connection pool to the DreamTree D1 Worker."""

    name = "d1"

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self._endpoint = f"{self.url}/batch"
        self._bookmark: str | None = None  # the newest this process has seen (outside requests)
        self._client = httpx.AsyncClient(
            # httpx shows an Authorization header as "[secure]" in reprs; it is never logged here.
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                     "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=self.connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                                keepalive_expiry=30.0),
            transport=transport if transport is not None else self.make_transport(),
            follow_redirects=False,  # a redirect would carry the token elsewhere
            trust_env=False,  # the Worker is reached directly, never through a proxy from the environment
        )

    @staticmethod
    def make_transport() -> httpx.AsyncBaseTransport:
        """The HTTP transport (tests wrap it to count round trips: tests/d1util.py)."""
        return httpx.AsyncHTTPTransport(retries=0, http2=False)

    def __repr__(self) -> str:
        return f"D1Engine(url={self.url!r}, timeout={self.timeout})"

    async def open(self) -> None:
        """Check once that the Worker answers and takes our token (serve fails at start if not)."""
        try:
            await self._send((Stmt(PROBE),), write=False)
        except EngineAuthFailed as exc:
            raise EngineAuthFailed(f"the D1 Worker at {self.url} refused the token ({exc}); "
                                   "DREAMTREE_D1_TOKEN must equal the Worker's") from None
        except EngineUnavailable as exc:
            raise EngineUnavailable(f"the D1 Worker at {self.url} does not answer: {exc}") from None

    async def close(self) -> None:
        await self._client.aclose()

    # --- works -------------------------------------------------------------------------------

    async def _execute(self, batch: Batch, statements: tuple[Stmt, ...]) -> list[Result]:
        return await self._send(statements, write=isinstance(batch, Write))

    async def _refused(self, refused: Refused) -> NoReturn:
        if refused.cleanup is not None:
            await self._send((refused.cleanup,), write=True)
        raise refused.error from None

    async def _touch_leftover(self, driver: Driver) -> None:
        """The session touch a work did not carry in a write of its own, sent on its own."""
        touch = driver.leftover()
        if touch is not None:
            await self._send((touch,), write=True)

    async def query(self, work: WorkFactory[T], gate: Gate | None) -> T:
        driver = Driver(gate, writes=False)
        try:
            answer = await drive_async(work(), driver, self._execute)
        except Refused as refused:
            await self._refused(refused)
        await self._touch_leftover(driver)
        return answer

    async def change(self, work: WorkFactory[T], gate: Gate | None, *, split: bool = False) -> T:
        resume = resume_in_thread if split else resume_inline
        last: GuardFailed | None = None
        for _attempt in range(ATTEMPTS):
            driver = Driver(gate, writes=True)
            try:
                answer = await drive_async(work(), driver, self._execute, resume)
            except GuardFailed as failed:
                last = failed
                continue
            except Refused as refused:
                await self._refused(refused)
            await self._touch_leftover(driver)
            return answer
        assert last is not None
        raise ChangedConcurrently(last.name)

    # --- the job API of the sqlite engine, which this engine does not have ----------------------

    async def read(self, fn: Callable[..., object]) -> NoReturn:
        raise NotImplementedError(f"the d1 engine runs works only; {fn.__module__} still uses the sqlite job API")

    async def write(self, fn: Callable[..., object]) -> NoReturn:
        raise NotImplementedError(f"the d1 engine runs works only; {fn.__module__} still uses the sqlite job API")

    # --- one batch, one round trip ----------------------------------------------------------------

    async def batch(self, statements: Sequence[Stmt], *, write: bool) -> list[Result]:
        """One batch outside a work (migrations, tests): one round trip, atomic when `write`."""
        return await self._send(tuple(statements), write=write)

    async def _send(self, statements: Sequence[Stmt], *, write: bool) -> list[Result]:
        if not statements:
            return []
        box = current_bookmarks.get()
        bookmark = box.value if box is not None else self._bookmark
        body = encode_batch(statements, write=write, bookmark=bookmark)
        deadline = time.monotonic() + self.timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._post(body, deadline)
                return self._answer(response, write=write, box=box)
            except _Retry as retry:
                left = deadline - time.monotonic()
                pause = BACKOFF[min(attempt, len(BACKOFF)) - 1]
                may_retry = not write or retry.unsent
                if not may_retry or attempt >= READ_ATTEMPTS or left <= pause:
                    what = "write" if write else "read"
                    raise EngineUnavailable(f"D1 Worker at {self.url}: {retry.reason} ({what} batch, "
                                            f"{attempt} attempt{'s' if attempt > 1 else ''})") from None
                await anyio.sleep(pause)

    async def _post(self, body: bytes, deadline: float) -> httpx.Response:
        left = max(deadline - time.monotonic(), 0.001)
        timeout = httpx.Timeout(left, connect=min(self.connect_timeout, left))
        try:
            with anyio.fail_after(left):
                response = await self._client.post(self._endpoint, content=body, timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # No connection was made: the batch was certainly not sent.
            raise _Retry(f"cannot connect ({type(exc).__name__})", unsent=True) from None
        except httpx.TransportError as exc:
            raise _Retry(f"connection failed ({type(exc).__name__})", unsent=False) from None
        except TimeoutError:
            raise _Retry(f"no answer within {self.timeout:g} s", unsent=False) from None
        if response.status_code >= 500:
            problem = _problem(response)
            if problem.code == "token_not_configured":
                raise EngineAuthFailed(f"the D1 Worker at {self.url} has no usable DREAMTREE_D1_TOKEN") from None
            raise _Retry(f"HTTP {response.status_code} {problem.code or 'error'}: {problem.detail[:200]}", unsent=False)
        return response

    def _answer(self, response: httpx.Response, *, write: bool, box: Bookmarks | None) -> list[Result]:
        status = response.status_code
        if status == 200:
            try:
                answer = _decode_answer(response.content)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise EngineUnavailable(f"D1 Worker at {self.url}: an answer that is not a batch result ({exc})") from None
            if answer.bookmark is not None and valid_bookmark(answer.bookmark):
                if self._bookmark is None or answer.bookmark > self._bookmark:
                    self._bookmark = answer.bookmark
                if box is not None:
                    box.see(answer.bookmark, wrote=write)
            return _results(answer)
        problem = _problem(response)
        if status == 401:
            raise EngineAuthFailed(f"the D1 Worker at {self.url} answered 401 unauthorized")
        if status == 409 and problem.code == "guard_failed":
            name = guard_name(problem.detail)
            if name is not None:
                raise GuardFailed(name)
        if status == 409 and problem.code == "constraint_failed":
            raise ConstraintFailed(_SQLITE_SUFFIX.sub("", problem.detail))
        if status in (404, 405):
            raise EngineUnavailable(f"{self.url} is not the DreamTree D1 Worker (HTTP {status} on POST /batch)")
        raise D1Error(status, problem.code or "error", problem.detail)


__all__ = [
    "BOOKMARK_COOKIE",
    "Bookmarks",
    "D1Engine",
    "D1Error",
    "D1Row",
    "current_bookmarks",
    "encode_batch",
    "valid_bookmark",
]
