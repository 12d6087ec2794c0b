"""Request logs and counters an operator can read; never a secret, a body or an answer.

Every request ends in one structured log line (logger `dreamtree.access`, JSON):
`{"method", "route", "status", "ms"}`, where `route` is the path template
(`/api/exercises/{full_exercise_id:str}`), so ids never reach the logs. The same numbers feed
in-process counters served at `GET /metrics` in Prometheus' text format, to loopback clients
only (a scraper on the same host, or `curl` by the operator).
"""

from __future__ import annotations

import bisect
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

from litestar import MediaType, Request, get
from litestar.exceptions import NotFoundException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("dreamtree.access")
BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}


@dataclass
class Series:
    count: int = 0
    total_ms: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))


class Metrics:
    def __init__(self) -> None:
        self.series: dict[tuple[str, str, str], Series] = defaultdict(Series)

    def observe(self, method: str, route: str, status: int, ms: float) -> None:
        s = self.series[(method, route, f"{status // 100}xx")]
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


def access_log(metrics: Metrics):  # noqa: ANN201 - an ASGI middleware factory
    def middleware(app: ASGIApp) -> ASGIApp:
        async def logged(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
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
                metrics.observe(scope["method"], route, status, ms)
                if log.isEnabledFor(logging.INFO):
                    log.info(json.dumps({"method": scope["method"], "route": route, "status": status, "ms": round(ms, 2)}))

        return logged

    return middleware


@get("/metrics", media_type=MediaType.TEXT, include_in_schema=False, cache=False)
async def metrics_endpoint(request: Request) -> str:  # type: ignore[type-arg]
    """Counters and latency histograms, for loopback clients only."""
    if (request.client.host if request.client else "") not in LOOPBACK:
        raise NotFoundException()
    return request.app.state.metrics.render()  # type: ignore[no-any-return]
