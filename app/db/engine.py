"""The engine seam: units of work that run unchanged on SQLite (one file) and on Cloudflare D1.

D1 has no interactive transactions: the unit of atomicity is one *batch* of statements, all
applied or none. So every piece of domain code that touches the database is written as a
*work*: a generator that yields at most a few batches and receives their results.

    def rename(user_id, name):
        (row,) = yield Read(Stmt(Q.user_row, (user_id,)))          # one round trip
        if row.one() is None:
            raise NotFound(...)                                    # decide in Python
        yield Write(Stmt(Q.rename, (name, user_id)), changed("user_gone"))  # one atomic batch
        return name

A `Read` is one batch of reads; a `Write` is one atomic batch whose statements guard
themselves: a conditional `INSERT … SELECT … WHERE`, an `UPDATE … WHERE updated_at = ?`, a
unique constraint, or a `guard(...)` / `changed(...)` statement that aborts the whole batch
when what the work decided on no longer holds. A guard that fails raises `GuardFailed` into
the work, and unless the work handles it the engine runs the whole work again (fresh reads,
fresh decision) a few times before answering 409 `changed_concurrently`. A constraint that
fails raises `ConstraintFailed` into the work (e.g. an email taken meanwhile).

How an engine runs a work (docs/engines.md has the whole model):
- `query(work)`: reads only. SQLite: one job on a read-only connection, in one snapshot.
  D1: one HTTP round trip per `Read`.
- `change(work)`: SQLite runs the whole work inside one `BEGIN IMMEDIATE … COMMIT` on the
  writer (one thread hand-off; the guards then hold trivially); D1 sends the reads, decides,
  then sends the write batch (two round trips). `change(work, split=True)` (imports) makes
  SQLite behave like D1: reads on a reader, the decision (sealing, hashing) on a worker
  thread, and the writer is held only for the write batch itself.
- A *gate* (the caller's session) joins the first `Read` of a work as one more statement, so
  checking the session costs no extra round trip, and guards the `Write` batch: a session
  revoked between the two can never write.

Domain code never knows which engine it runs on. It never sees a connection, never opens a
transaction, and never builds SQL from values: every statement is named SQL from app/sql
with `?` parameters.

Long on purpose: this is the whole contract between domain code and the engines, in the
order a reader needs it (the batch vocabulary, guards and their errors, gates, the driver that
runs a work against a batch executor, the `Engine` interface). Each engine module builds on
all of it, and splitting it would leave no single page that states the model.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, Union, cast

T = TypeVar("T")

ATTEMPTS = 3
"""How many times `change` runs a work whose guard failed before answering 409."""


class Row(Protocol):
    """A result row: by column name or by position (sqlite3.Row, and the D1 engine's rows)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...

    def keys(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Stmt:
    """One SQL statement and its `?` parameters."""

    sql: str
    params: tuple[Any, ...] = ()


class Result:
    """What one statement gave: its rows (SELECT, RETURNING) and the rows it changed."""

    __slots__ = ("changes", "rows")

    def __init__(self, rows: Sequence[Row], changes: int = 0) -> None:
        self.rows = rows
        self.changes = changes

    def one(self) -> Row | None:
        """The first row, or None."""
        return self.rows[0] if self.rows else None

    def value(self) -> Any:
        """The first column of the first row (None when there is no row)."""
        return self.rows[0][0] if self.rows else None

    def column(self) -> list[Any]:
        """The first column of every row."""
        return [row[0] for row in self.rows]

    def __repr__(self) -> str:
        return f"Result(rows={len(self.rows)}, changes={self.changes})"


@dataclass(frozen=True, slots=True, init=False)
class Read:
    """One batch of reads: one round trip, one snapshot."""

    statements: tuple[Stmt, ...]

    def __init__(self, *statements: Stmt) -> None:
        object.__setattr__(self, "statements", statements)


@dataclass(frozen=True, slots=True, init=False)
class Write:
    """One atomic batch: every statement applies, or none does."""

    statements: tuple[Stmt, ...]

    def __init__(self, *statements: Stmt | Iterable[Stmt]) -> None:
        flat: list[Stmt] = []
        for item in statements:
            if isinstance(item, Stmt):
                flat.append(item)
            else:
                flat.extend(item)
        object.__setattr__(self, "statements", tuple(flat))


Batch = Union[Read, Write]
Work = Generator[Batch, list[Result], T]
"""A unit of work: yields batches, receives their results, returns its answer."""


# --- guards ---------------------------------------------------------------------------------

_GUARD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_GUARD_IN_ERROR = re.compile(r"guard:([a-z][a-z0-9_]{0,40})")


class GuardFailed(Exception):
    """A guard statement found that what the work decided on has changed; nothing was written."""

    def __init__(self, name: str) -> None:
        super().__init__(f"guard {name} failed")
        self.name = name


class ConstraintFailed(Exception):
    """A constraint refused the write batch (UNIQUE, FOREIGN KEY, NOT NULL); nothing was written."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def unique(self) -> bool:
        return "UNIQUE constraint failed" in self.message

    def on(self, column: str) -> bool:
        """True when the failed constraint names `column` (e.g. "emails.email")."""
        return column in self.message


class ChangedConcurrently(Exception):
    """A work's guards kept failing: others changed the same rows on every attempt."""

    def __init__(self, name: str) -> None:
        super().__init__(f"guard {name} kept failing")
        self.name = name


class EngineUnavailable(Exception):
    """The database could not be reached in time (the D1 Worker is down, slow or failing).

    Nothing is known to be wrong with the request: the HTTP layer answers 503
    `database_unavailable` with Retry-After. A read batch was retried before this was raised;
    a write batch only when it was certainly never sent (docs/d1.md, "Retries")."""


class EngineAuthFailed(Exception):
    """The database refused our credentials (the D1 Worker answered 401, or has no token set).

    A configuration error, not an outage: retrying does not help. The message never holds
    the token."""


def guard(name: str, condition: str, params: tuple[Any, ...] = ()) -> Stmt:
    """A statement that aborts its write batch unless `condition` (SQL, `?` parameters) holds.

    SQLite has no ASSERT outside triggers; json_extract with an invalid path raises an error
    that carries the path's text, so the engine learns which guard stopped the batch. D1
    rolls a batch back when any statement in it fails, and so does the SQLite engine."""
    if not _GUARD_NAME.match(name):
        raise ValueError(f"bad guard name {name!r}")
    return Stmt(f"SELECT iif(({condition}), 1, json_extract('{{}}', 'guard:{name}'))", params)


def guard_query(name: str, query: str, params: tuple[Any, ...] = ()) -> Stmt:
    """`guard` whose condition is a named query of app/sql, `SELECT <condition>;`, read as a
    scalar subquery (so the condition stays readable SQL in its .sql file)."""
    return guard(name, query.rstrip().rstrip(";"), params)


def changed(name: str, count: int = 1) -> Stmt:
    """Aborts the batch unless the statement just before it changed exactly `count` rows."""
    return guard(name, "changes() = ?", (count,))


def guard_name(message: str) -> str | None:
    """The name of the guard behind an error message, or None when it is another error."""
    if "JSON path" not in message and "bad JSON path" not in message:
        return None
    found = _GUARD_IN_ERROR.search(message)
    return found.group(1) if found else None


# --- gates: the caller's session, checked inside the work's own batches ---------------------


class Refused(Exception):
    """A gate refused the caller: `error` is raised after `cleanup` (if any) is written."""

    def __init__(self, error: Exception, cleanup: Stmt | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.cleanup = cleanup


class Gate(Protocol):
    """Who may run a work: one statement read with the work's first batch, then verified."""

    def statement(self) -> Stmt:
        """Read together with the work's first `Read`."""

    def verify(self, result: Result) -> Stmt | None:
        """Raise `Refused` to stop the work; return a statement to write along (a touch), or None."""

    def holds(self) -> Stmt:
        """A guard added to the front of the work's `Write` batch."""


BatchObserver = Callable[[str, str, int], None]
observers: list[BatchObserver] = []
"""Called with ("read" | "write", the work's module, statement count) for every batch an
engine sends: the tests count round trips per request with it."""


def _origin(work: Work[Any]) -> str:
    frame = getattr(work, "gi_frame", None)
    return str(frame.f_globals.get("__name__", "?")) if frame is not None else "?"


class Driver:
    """Runs one attempt of a work, batch by batch, for either engine: it puts the gate's
    statement into the first read and its guard into the write, checks what the gate read,
    and keeps the rules (a gated work reads first; one write batch, and nothing after it)."""

    __slots__ = ("_prefix", "gate", "gated", "origin", "touch", "writes", "wrote")

    def __init__(self, gate: Gate | None, *, writes: bool) -> None:
        self.origin = "?"
        self.gate = gate
        self.writes = writes
        self.gated = gate is None
        self.wrote = False
        self.touch: Stmt | None = None
        self._prefix = 0

    def prepare(self, batch: Batch) -> tuple[Stmt, ...]:
        """The statements to send for this batch."""
        if self.wrote:
            raise RuntimeError("a work yields nothing after its write batch")
        extra: list[Stmt] = []
        if isinstance(batch, Write):
            if not self.writes:
                raise RuntimeError("query() runs reads only; use change() for a work that writes")
            if not self.gated:
                raise RuntimeError("a gated work reads before it writes (the gate is checked with the first read)")
            self.wrote = True
            if self.gate is not None:
                extra.append(self.gate.holds())
            if self.touch is not None:
                extra.append(self.touch)
                self.touch = None
        elif not self.gated:
            assert self.gate is not None
            extra.append(self.gate.statement())
        self._prefix = len(extra)
        statements = (*extra, *batch.statements) if extra else batch.statements
        for observe in observers:
            observe("write" if isinstance(batch, Write) else "read", self.origin, len(statements))
        return statements

    def absorb(self, results: list[Result]) -> list[Result]:
        """The work's own results, without the statements added in front (the gate's read is
        verified here: `Refused` stops the work)."""
        if not self.gated:
            assert self.gate is not None
            self.gated = True
            self.touch = self.gate.verify(results[0])
        return results[self._prefix:] if self._prefix else results

    def leftover(self) -> Stmt | None:
        """A touch the gate asked for that no write batch carried (a work that only read)."""
        touch, self.touch = self.touch, None
        return touch


class Done:
    """A work's answer (it returned instead of yielding another batch)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def advance(work: Work[Any], results: list[Result] | None = None,
            failure: BaseException | None = None) -> Batch | Done:
    """Resume a work: start it, send it results, or throw a failure in at its `yield`.
    (StopIteration is turned into `Done` here: it must never cross a thread or a future.)"""
    try:
        if failure is not None:
            return work.throw(failure)
        if results is None:
            return next(work)
        return work.send(results)
    except StopIteration as stop:
        return Done(stop.value)


Execute = Callable[[Batch, tuple[Stmt, ...]], list[Result]]


def drive(work: Work[T], driver: Driver, execute: Execute) -> T:
    """Run a work to its answer with a synchronous `execute` (the SQLite engine's threads).

    A failed guard or constraint is thrown into the work at its `yield`, so the work may turn
    it into its own answer (409 email_taken); the batch that failed has written nothing."""
    if observers:
        driver.origin = _origin(work)
    step = advance(work)
    while not isinstance(step, Done):
        statements = driver.prepare(step)
        try:
            results = driver.absorb(execute(step, statements))
        except (GuardFailed, ConstraintFailed) as failure:
            step = advance(work, failure=failure)
            continue
        step = advance(work, results)
    return cast(T, step.value)


AsyncExecute = Callable[[Batch, tuple[Stmt, ...]], Awaitable[list[Result]]]
Resume = Callable[[Work[Any], "list[Result] | None", "BaseException | None"], Awaitable["Batch | Done"]]


async def resume_inline(work: Work[Any], results: list[Result] | None, failure: BaseException | None) -> Batch | Done:
    return advance(work, results, failure)


async def drive_async(work: Work[T], driver: Driver, execute: AsyncExecute, resume: Resume = resume_inline) -> T:
    """`drive` with an awaitable `execute` (the D1 engine, SQLite's split mode). `resume`
    runs each stretch of the work's own code; split mode passes one that runs it off the
    event loop (sealing and hashing thousands of rows)."""
    if observers:
        driver.origin = _origin(work)
    step = await resume(work, None, None)
    while not isinstance(step, Done):
        statements = driver.prepare(step)
        try:
            results = driver.absorb(await execute(step, statements))
        except (GuardFailed, ConstraintFailed) as failure:
            step = await resume(work, None, failure)
            continue
        step = await resume(work, results, None)
    return cast(T, step.value)


WorkFactory = Callable[[], Work[T]]


class Engine(ABC):
    """One storage engine: `sqlite` (app/db/connection.py) or `d1` (app/db/d1_engine.py)."""

    name: str = "?"

    @abstractmethod
    async def query(self, work: WorkFactory[T], gate: Gate | None) -> T:
        """Run a work that only reads."""

    @abstractmethod
    async def change(self, work: WorkFactory[T], gate: Gate | None, *, split: bool = False) -> T:
        """Run a work that reads, decides and writes one atomic batch (retried when a guard fails)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


__all__ = [
    "ATTEMPTS",
    "Batch",
    "BatchObserver",
    "ChangedConcurrently",
    "ConstraintFailed",
    "Driver",
    "Engine",
    "EngineAuthFailed",
    "EngineUnavailable",
    "Gate",
    "GuardFailed",
    "Read",
    "Refused",
    "Result",
    "Row",
    "Stmt",
    "Work",
    "WorkFactory",
    "Write",
    "changed",
    "Done",
    "advance",
    "drive",
    "drive_async",
    "resume_inline",
    "guard",
    "guard_name",
    "guard_query",
    "observers",
]
