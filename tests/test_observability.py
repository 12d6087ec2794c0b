"""Request logs name the route template, never ids, bodies or answers; /metrics is loopback-only."""

from __future__ import annotations

import asyncio
import io
import json
import re

import pytest

from app.http.observability import AccessLine, AccessLog
from tests.helpers import Reader


def access_lines(client) -> list[dict]:
    log = client.app.state.access_log
    log.flush()
    return [json.loads(line) for line in log.stream.getvalue().splitlines()]


@pytest.fixture
def captured(client):
    client.app.state.access_log.stream = io.StringIO()
    return client


def test_access_log_lines_hold_no_ids_or_answers(seeded, new_reader, captured) -> None:
    r: Reader = new_reader()
    me = r.start()
    r.put("/api/exercises/1.1.1.v1/response", {"response": {"text": "a private answer"}})
    r.get("/api/exercises/1.1.1.v1")
    lines = access_lines(captured)
    assert {"time", "method", "route", "status", "ms"} == set(lines[-1])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", lines[-1]["time"])
    assert {"method": "PUT", "route": "/api/exercises/{full_exercise_id}/response", "status": 200} in [
        {k: v for k, v in line.items() if k not in ("ms", "time")} for line in lines]
    text = captured.app.state.access_log.stream.getvalue()
    assert "a private answer" not in text and me["id"] not in text and "1.1.1.v1" not in text
    assert r.session_cookie not in text


@pytest.mark.anyio
async def test_lines_are_written_in_batches_a_moment_later() -> None:
    log = AccessLog(io.StringIO())
    log.write(AccessLine("2026-12-06T22:37:24.001Z", "GET", "/healthz", 200, 0.5))
    log.write(AccessLine("2026-12-06T22:37:24.002Z", "GET", "/api/workbook", 200, 1.25))
    assert log.stream.getvalue() == ""  # nothing written per request
    await asyncio.sleep(AccessLog.FLUSH_SECONDS + 0.1)
    assert [json.loads(x)["route"] for x in log.stream.getvalue().splitlines()] == ["/healthz", "/api/workbook"]


def test_quiet_log_levels_turn_the_lines_off(settings) -> None:
    from litestar.testing import TestClient

    from app.http.app import create_app

    with TestClient(create_app(settings.with_(access_log=False)), base_url="https://testserver.local") as quiet:
        assert quiet.get("/healthz").status_code == 200
        assert quiet.app.state.access_log is None
        assert "dreamtree_requests_total" in quiet.get("/metrics").text  # the counters still count


def test_metrics_count_requests_by_route(seeded, new_reader, client) -> None:
    r: Reader = new_reader()
    r.start()
    r.get("/api/workbook")
    body = client.get("/metrics").text  # the test client counts as loopback
    assert 'dreamtree_requests_total{method="GET",route="/api/workbook",status="2xx"} 1' in body
    assert "dreamtree_request_duration_ms_bucket" in body


def test_a_batch_is_written_in_whole_lines_of_at_most_4_kib() -> None:
    class Writes(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.sizes: list[int] = []

        def write(self, text: str) -> int:
            assert text.endswith("\n")
            self.sizes.append(len(text.encode()))
            return super().write(text)

    stream = Writes()
    log = AccessLog(stream)
    routes = [f"/api/route-{n}/" + "x" * (n % 90) for n in range(300)] + ["/" + "y" * 5000]
    for route in routes:
        log._lines.append(AccessLine("2026-12-06T22:37:24.001Z", "GET", route, 200, 0.5))
    log.flush()
    assert [json.loads(x)["route"] for x in stream.getvalue().splitlines()] == routes
    assert len(stream.sizes) > 1 and all(size <= AccessLog.CHUNK_BYTES for size in stream.sizes[:-1])
    assert stream.sizes[-1] > AccessLog.CHUNK_BYTES  # a line longer than a chunk goes alone, whole
