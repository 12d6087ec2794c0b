"""Round trips to D1 per request, for every operation of the API (marker d1).

Each batch to the D1 Worker is one HTTP round trip, the cost that dominates a request on d1. The
rule (docs/d1.md): a read endpoint is exactly one round trip (the session is checked inside
its read), a write at most two (its reads, then one write batch). A recording transport
counts the batches (`d1_round_trips`, tests/d1util.py); no timer is involved.

The walk below calls every operation of the OpenAPI document once, in an order that gives each
one what it needs (an answer, a tool entry, a claimed account, a second device), and the last
assertion fails when an operation is added to the API without being counted here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from litestar.testing import TestClient

from app.config import Settings
from app.db.d1_engine import D1Engine
from app.domain import seeding
from app.http.app import create_app
from tests import d1util
from tests.conftest import SMALL_SEED
from tests.d1util import RoundTrips, WorkerProcess
from tests.helpers import OTHER_PASSWORD, PASSWORD, Reader

pytestmark = pytest.mark.d1

METHODS = ("get", "put", "post", "patch", "delete")
THIRD_PASSWORD = "saffron ladder over tide"


@pytest.fixture
def small_seed_on_d1(d1_worker: WorkerProcess) -> None:
    """The session's Worker with every row deleted, then the small sample seed."""

    async def reset() -> None:
        assert d1_worker.token is not None
        engine = D1Engine(d1_worker.url, d1_worker.token)
        try:
            await d1util.wipe(engine)
            await seeding.seed_on(engine, directory=SMALL_SEED)
        finally:
            await engine.close()

    anyio.run(reset)


def test_every_api_operation_on_d1_is_one_round_trip_to_read_and_at_most_two_to_write(
    small_seed_on_d1: None, d1_settings: Settings, d1_round_trips: RoundTrips
) -> None:
    app = create_app(d1_settings)
    operations = {(method.upper(), path) for path, item in (app.openapi_schema.paths or {}).items()
                  for method in METHODS if getattr(item, method) is not None}
    counted: dict[tuple[str, str], list[str]] = {}

    with TestClient(app, base_url="https://testserver.local") as client:
        ann, bob, carol = Reader(client), Reader(client), Reader(client)

        def call(reader: Reader, method: str, template: str, status: int, path: str | None = None,
                 body: Any = None, **kw: Any) -> Any:
            d1_round_trips.clear()
            response = reader.request(method, path or template, json=body, **kw)
            assert response.status_code == status, (method, template, response.text)
            counted[(method, template)] = list(d1_round_trips.modes)
            return response.json() if response.content else None

        get: Callable[..., Any] = lambda r, t, path=None, **kw: call(r, "GET", t, 200, path, **kw)  # noqa: E731

        get(ann, "/healthz")
        call(ann, "POST", "/api/session", 201)
        get(ann, "/api/me")
        get(ann, "/api/settings")
        call(ann, "PATCH", "/api/settings", 200, body={"font": "serif"})

        # The outline's skeleton is kept per process until the content changes: the first
        # outline after a start or a re-seed reads it (a second round trip), the next ones do not.
        d1_round_trips.clear()
        assert ann.get("/api/workbook").status_code == 200
        assert d1_round_trips.modes in (["read"], ["read", "read"])
        get(ann, "/api/workbook")
        get(ann, "/api/workbook/next")
        exercise = "/api/exercises/{full_exercise_id}"
        get(ann, exercise, "/api/exercises/1.1.1.v1")
        call(ann, "PUT", f"{exercise}/response", 200, "/api/exercises/1.1.1.v1/response",
             {"response": {"text": "my answer"}})
        get(ann, "/api/modules")

        get(ann, "/api/tools")
        instances, entry = "/api/tools/{tool_type}/instances", "/api/tool-instances/{instance_id}"
        made = call(ann, "POST", instances, 201, "/api/tools/list-builder/instances", {"content": {"title": "Jobs"}})
        get(ann, instances, "/api/tools/list-builder/instances")
        get(ann, entry, f"/api/tool-instances/{made['id']}")
        call(ann, "PUT", entry, 200, f"/api/tool-instances/{made['id']}", {"content": {"title": "Jobs, edited"}})
        call(ann, "DELETE", entry, 204, f"/api/tool-instances/{made['id']}")

        get(ann, "/api/competencies/scores")
        call(ann, "PUT", "/api/competencies/scores", 200,
             body={"scores": [{"competency_id": "analytical-thinking", "score": 3}]})
        get(ann, "/api/competencies/summary")
        get(ann, "/api/daily-dos", params={"tz": "Europe/Berlin"})
        get(ann, "/api/skills", params={"q": "a"})
        call(ann, "POST", "/api/skills", 201, body={"name": "Beekeeping"})
        get(ann, "/api/personality-types")
        get(ann, "/api/competencies")
        get(ann, "/api/references")

        document = call(ann, "POST", "/api/export", 200)
        call(ann, "POST", "/api/import", 200, "/api/import?dry_run=false", {"document": document})

        claimed = call(ann, "POST", "/api/account/claim", 200, body={"email": "ann@example.com", "password": PASSWORD})
        bob.get("/healthz")
        call(bob, "POST", "/api/auth/login", 200, body={"email": "ann@example.com", "password": PASSWORD})
        devices = get(ann, "/api/account/sessions")
        (other,) = [device["id"] for device in devices if not device["current"]]
        call(ann, "DELETE", "/api/account/sessions/{session_id}", 204, f"/api/account/sessions/{other}")
        call(ann, "POST", "/api/account/password", 204,
             body={"current_password": PASSWORD, "new_password": OTHER_PASSWORD})
        carol.get("/healthz")
        call(carol, "POST", "/api/account/recover", 200,
             body={"email": "ann@example.com", "recovery_code": claimed["recovery_code"], "new_password": THIRD_PASSWORD})
        call(carol, "DELETE", "/api/session", 204)
        assert ann.get("/api/me").status_code == 401  # recovery ends every other session (docs/api.md)
        ann.get("/healthz")
        assert ann.login("ann@example.com", THIRD_PASSWORD).status_code == 200
        call(ann, "DELETE", "/api/account", 204, body={"password": THIRD_PASSWORD})

    assert set(counted) == operations, f"not counted: {operations - set(counted)}; unknown: {set(counted) - operations}"
    too_many = {f"{method} {template}": modes for (method, template), modes in counted.items()
                if (modes != ["read"] if method == "GET" else len(modes) > 2 or modes.count("write") > 1)}
    assert too_many == {}, "reads must be one round trip, writes at most two (a read, then a write)"
