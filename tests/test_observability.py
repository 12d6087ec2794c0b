"""Request logs name the route template, never ids, bodies or answers; /metrics is loopback-only."""

from __future__ import annotations

import json
import logging

import pytest

from tests.helpers import Reader


def test_access_log_lines_hold_no_ids_or_answers(seeded, new_reader, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dreamtree.access")
    r: Reader = new_reader()
    me = r.start()
    r.put("/api/exercises/1.1.1.v1/response", {"response": {"text": "a private answer"}})
    r.get("/api/exercises/1.1.1.v1")
    lines = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "dreamtree.access"]
    assert {"method", "route", "status", "ms"} == set(lines[-1])
    assert {"method": "PUT", "route": "/api/exercises/{full_exercise_id}/response", "status": 200} in [
        {k: v for k, v in line.items() if k != "ms"} for line in lines]
    text = "\n".join(rec.getMessage() for rec in caplog.records if rec.name.startswith("dreamtree"))
    assert "a private answer" not in text and me["id"] not in text and "1.1.1.v1" not in text
    assert r.session_cookie not in text


def test_metrics_count_requests_by_route(seeded, new_reader, client) -> None:
    r: Reader = new_reader()
    r.start()
    r.get("/api/workbook")
    body = client.get("/metrics").text  # the test client counts as loopback
    assert 'dreamtree_requests_total{method="GET",route="/api/workbook",status="2xx"} 1' in body
    assert "dreamtree_request_duration_ms_bucket" in body
