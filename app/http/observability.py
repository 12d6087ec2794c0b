"""Request logs and counters an operator can read; never a secret, a body or an answer.

Every request ends in one JSON line on standard error:
`{"time", "method", "route", "status", "ms"}`, where `route` is the path template
(`/api/exercises/{full_exercise_id:str}`), so ids never reach the logs. The same numbers feed
in-process counters served at `GET /metrics` in Prometheus' text format, only to a loopback
peer that is not a trusted proxy (a scraper on the same host, or `curl` by the operator; a
request a local proxy relays is anyone's), or to a request carrying the metrics token
(`Authorization: Bearer $DREAMTREE_METRICS_TOKEN`). Anyone else gets the 404 of a page that
does not exist.

The lines do not go through `logging`: its record, formatter and Litestar's queue-listener
thread cost ~85 us of CPU per request under load, a fifth of a Daily Dos request
(bench/README.md). AccessLog keeps the lines and writes them in batches, encoded by msgspec in
one call per batch on the event loop, at most a quarter of a second late (a kill can lose that quarter second of lines,
never a request), in whole lines of at most 4 KiB per write, so several workers' lines never
interleave. `--log-level warning` or higher turns them off.
"""

from __future__ import annotations

import asyncio
import bisect
import hmac
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

import msgspec
from litestar import MediaType, get
from litestar.enums import ScopeType
from litestar.exceptions import NotFoundException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.http.proxy import TrustedProxies, parse_address, peer_of
from app.http.request import HttpRequest

BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
# Peers that are this machine besides loopback addresses: "testclient" is what Litestar's
# in-process test client calls itself (no socket ever reports it).
LOCAL_NAMES = {"localhost", "testclient"}


_STATUS_CLASS = tuple(f"{n}xx" for n in range(10))


@dataclass
class Series:
    count: int = 0
    total_ms: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))


class Metrics:
    def __init__(self) -> None:
        self.series: dict[tuple[str, str, str], Series] = defaultdict(Series)

    def observe(self, method: str, route: str, status: int, ms: float) -> None:
        s = self.series[(method, route, _STATUS_CLASS[status // 100])]
        s.count += 1
        s.total_ms += ms
        s.buckets[bisect.bisect_left(BUCKETS_MS, ms)] += 1

    def render(self) -> str:
        lines = [
            "# HELP dreamtree_requests_total Requests answered, by route template and status class.",
            "# TYPE dreamtree_requests_total counter",
        ]
        for (method, route, status), s in sorted(self.series.items()):
            lines.append(f'dreamtree_requests_total{{method="{method}",route="{route}",status="{status}"}} {s.count}')
        lines += ["# HELP dreamtree_request_duration_ms Time to answer, in milliseconds.",
                  "# TYPE dreamtree_request_duration_ms histogram"]
        for (method, route, status), s in sorted(self.series.items()):
            labels = f'method="{method}",route="{route}",status="{status}"'
            running = 0
            for bound, n in zip(BUCKETS_MS, s.buckets):
                running += n
                lines.append(f'dreamtree_request_duration_ms_bucket{{{labels},le="{bound}"}} {running}')
            lines.append(f'dreamtree_request_duration_ms_bucket{{{labels},le="+Inf"}} {s.count}')
            lines.append(f"dreamtree_request_duration_ms_sum{{{labels}}} {s.total_ms:.3f}")
            lines.append(f"dreamtree_request_duration_ms_count{{{labels}}} {s.count}")
        return "\n".join(lines) + "\n"


class AccessLine(msgspec.Struct):
    """One request's line: {"time", "method", "route", "status", "ms"}."""

    time: str
    method: str
    route: str
    status: int
    ms: float


_encode_lines = msgspec.json.Encoder().encode_lines


class AccessLog:
    """Access lines, kept as they come and written to a stream in batches, each batch encoded
    in one call (cheaper per line than one call per request)."""

    FLUSH_SECONDS = 0.25
    MAX_LINES = 512
    # Written at most this many bytes at a time, whole lines only: a pipe takes a write of up
    # to PIPE_BUF (4 KiB on Linux) in one piece, so the lines of several workers sharing
    # standard error never cut into each other.
    CHUNK_BYTES = 4096

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream  # None: whatever sys.stderr is when a batch is written
        self._lines: list[AccessLine] = []
        self._timer: asyncio.TimerHandle | None = None

    def write(self, entry: AccessLine) -> None:
        self._lines.append(entry)
        if len(self._lines) >= self.MAX_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        stream = self.stream or sys.stderr
        encoded = _encode_lines(self._lines)  # each line ends in b"\n"
        self._lines.clear()
        start = 0
        while start < len(encoded):
            # The last whole line within CHUNK_BYTES (or, for a longer line, that line alone).
            end = encoded.rfind(b"\n", start, start + self.CHUNK_BYTES) + 1 or encoded.index(b"\n", start) + 1
            stream.write(encoded[start:end].decode())
            stream.flush()
            start = end


_second = -1
_prefix = ""
_MILLIS = tuple(f"{n:03d}Z" for n in range(1000))


def _stamp() -> str:
    """Now, as app.timeutil.now_iso() writes it (UTC, milliseconds), with the date and time of
    day formatted once a second rather than once a request."""
    global _second, _prefix
    moment = time.time()
    second = int(moment)
    if second != _second:
        _second, _prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
    return _prefix + _MILLIS[int((moment - second) * 1000)]


def access_log(metrics: Metrics, lines: AccessLog | None) -> Callable[[ASGIApp], ASGIApp]:
    """Counts every request in `metrics` and, unless `lines` is None, logs it there."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def logged(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def watch(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, watch)
            finally:
                ms = (time.perf_counter() - started) * 1000
                route = scope.get("path_template") or "(unmatched)"
                method = scope["method"]
                metrics.observe(method, route, status, ms)
                if lines is not None:  # ms to two decimals by arithmetic (round() costs a request more)
                    lines.write(AccessLine(_stamp(), method, route, status, int(ms * 100 + 0.5) / 100))

        return logged

    return middleware


def is_loopback(host: str | None) -> bool:
    if host in LOCAL_NAMES:
        return True
    address = parse_address(host) if host else None
    return address is not None and address.is_loopback


def has_token(request: HttpRequest, token: str | None) -> bool:
    if not token:
        return False
    scheme, _, sent = (request.headers.get("authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode())


def may_read_metrics(request: HttpRequest, proxies: TrustedProxies, token: str | None) -> bool:
    peer = peer_of(request.scope)
    return (is_loopback(peer) and peer not in proxies) or has_token(request, token)


@get("/metrics", media_type=MediaType.TEXT, include_in_schema=False, cache=False)
async def metrics_endpoint(request: HttpRequest) -> str:
    """Counters and latency histograms, for local non-proxy peers or the metrics token."""
    state = request.app.state
    settings: Settings = state.settings
    if not may_read_metrics(request, state.proxies, settings.metrics_token):
        raise NotFoundException()
    metrics: Metrics = state.metrics
    return metrics.render()
