"""`dreamtree serve` that counts, per request, what the storage engine did: for bench/engines.py.

    DREAMTREE_BENCH_PROBE=/tmp/x/probe .venv/bin/python bench/engines_serve.py serve --engine d1 …

Runs exactly `dreamtree serve` (app.cli) after adding, in this process and in granian's
worker (forked from it, or spawned: the additions are made on import), counters that every
batch and every database call passes through:

- batches: every batch a work sends, read or write (an observer in `app.db.engine.observers`,
  the hook the tests count round trips with);
- calls: on d1, every HTTP request to the D1 Worker (`D1Engine._send`, by mode: the session's
  touch included, each with its retries), and the time spent awaiting it; on sqlite, every job
  handed to a connection's thread (`Database._run`) and the time spent awaiting it;
- the first 100 batches' statements (`Driver.prepare`), so the bench can send an endpoint's
  own batch straight to the Worker and to plain sqlite3.

The counts are kept per request (a context variable set around each `/api` request, which
the engine's threads see too) and added up when the request has been answered, so a load's
totals hold only the requests it completed: a request still in flight when wrk stops counts
when it is answered. `requests.shapes` says how many requests sent which numbers of batches
and calls ("GET 1r0w calls 1r0w"), so a maximum is exact, not an average.

Each process writes its totals to `$DREAMTREE_BENCH_PROBE.<pid>.json` (and the batches it
captured to `….<pid>.captured.json`) at most every 0.1 s, from a thread of its own, when they
moved. The cost on the request path: a context variable, a lock and a few dictionary updates
per request and per batch, two clock reads per database call.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import app.http.app as http_app
from app.db import engine as engine_mod
from app.db.connection import Database

CAPTURE = 100
OUT = os.environ.get("DREAMTREE_BENCH_PROBE", "")
ENGINE = os.environ.get("DREAMTREE_ENGINE", "sqlite")

request_box: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar("bench_probe", default=None)


class Totals:
    def __init__(self) -> None:
        self.requests = 0
        self.sums: dict[str, float] = {}
        self.shapes: dict[str, int] = {}
        self.captured: list[dict[str, Any]] = []
        self.version = 0
        self.lock = threading.Lock()

    def snapshot(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        with self.lock:
            return ({"requests": self.requests, "sums": dict(self.sums), "shapes": dict(self.shapes)},
                    list(self.captured))


totals = Totals()
_writer: threading.Thread | None = None


def _write(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def _dump_forever() -> None:
    counts, batches = Path(f"{OUT}.{os.getpid()}.json"), Path(f"{OUT}.{os.getpid()}.captured.json")
    written, captured = -1, -1
    while True:
        if totals.version != written:
            written = totals.version
            numbers, sent = totals.snapshot()
            _write(counts, numbers)
            if len(sent) != captured:
                captured = len(sent)
                _write(batches, sent)
        time.sleep(0.1)


def _moved() -> None:
    """Called with the lock held."""
    global _writer
    totals.version += 1
    if _writer is None and OUT:
        _writer = threading.Thread(target=_dump_forever, name="bench-probe", daemon=True)
        _writer.start()


def _after_fork() -> None:
    """granian's worker is forked from `serve`: it counts its own requests from zero."""
    global totals, _writer
    totals, _writer = Totals(), None


os.register_at_fork(after_in_child=_after_fork)


def _add(box: dict[str, float] | None, key: str, amount: float = 1) -> None:
    if box is not None:
        box[key] = box.get(key, 0) + amount


def observe(mode: str, origin: str, statements: int) -> None:
    _add(request_box.get(), f"{mode} batches")


engine_mod.observers.append(observe)

_prepare = engine_mod.Driver.prepare


def prepare(self: engine_mod.Driver, batch: engine_mod.Batch) -> tuple[engine_mod.Stmt, ...]:
    statements = _prepare(self, batch)
    if len(totals.captured) < CAPTURE:
        with totals.lock:
            totals.captured.append({"mode": "write" if isinstance(batch, engine_mod.Write) else "read",
                                    "origin": self.origin,
                                    "statements": [[s.sql, list(s.params)] for s in statements]})
            _moved()
    return statements


engine_mod.Driver.prepare = prepare  # type: ignore[method-assign]

if ENGINE == "d1":
    from app.db.d1_engine import D1Engine

    _send = D1Engine._send

    async def send(self: D1Engine, statements: Sequence[engine_mod.Stmt], *, write: bool) -> list[engine_mod.Result]:
        box, started = request_box.get(), time.perf_counter()
        try:
            return await _send(self, statements, write=write)
        finally:
            _add(box, f"{'write' if write else 'read'} calls")
            _add(box, "awaiting s", time.perf_counter() - started)

    D1Engine._send = send  # type: ignore[method-assign]
else:
    _run = Database._run

    async def run(conn: Any, fn: Any, *args: Any) -> Any:
        box, started = request_box.get(), time.perf_counter()
        try:
            # The work runs on the connection's thread: in this request's context, so that the
            # observer there adds to this request's counts.
            return await _run(conn, functools.partial(contextvars.copy_context().run, fn), *args)
        finally:
            _add(box, "jobs")
            _add(box, "awaiting s", time.perf_counter() - started)

    Database._run = staticmethod(run)  # type: ignore[method-assign,assignment]


def _answered(method: str, box: dict[str, float]) -> None:
    n = {k: int(v) for k, v in box.items() if k != "awaiting s"}
    calls = (f"calls {n.get('read calls', 0)}r{n.get('write calls', 0)}w" if ENGINE == "d1"
             else f"jobs {n.get('jobs', 0)}")
    shape = f"{method} {n.get('read batches', 0)}r{n.get('write batches', 0)}w {calls}"
    with totals.lock:
        totals.requests += 1
        for key, value in box.items():
            totals.sums[key] = totals.sums.get(key, 0) + value
        totals.shapes[shape] = totals.shapes.get(shape, 0) + 1
        _moved()


_create_app = http_app.create_app


def create_app(*args: Any, **kwargs: Any) -> Any:
    """The app, inside an ASGI layer that gives each /api request its own counts."""
    inner = _create_app(*args, **kwargs)

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await inner(scope, receive, send)
            return
        box: dict[str, float] = {}
        token = request_box.set(box)
        try:
            await inner(scope, receive, send)
        finally:
            request_box.reset(token)
        _answered(scope["method"], box)  # not reached when the request failed or was cancelled

    return counted


http_app.create_app = create_app  # granian's worker loads "app.http.app:create_app"

from app.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
