"""The app factory: health, problem details, security headers, OpenAPI, the server secret."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from app.config import ConfigError, Settings, load_or_create_secret


def test_healthz_reports_the_schema_version(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "schema_version": 1}


def test_unknown_path_is_a_problem_document_with_a_code(client: TestClient) -> None:
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_found" and body["status"] == 404 and body["title"] and body["detail"]


def test_wrong_method_is_a_problem_document(client: TestClient) -> None:
    response = client.delete("/healthz")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize("body", [b'{"response": ', b'{"response": "\\ud800"}', b'{"response": 1} trailing', b"nul", b""])
def test_a_body_that_is_not_json_is_400_invalid_json(seeded, new_reader, body: bytes) -> None:
    reader = new_reader()
    reader.start()
    response = reader.put("/api/exercises/1.1.1.v1/response", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_json"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("path", "cached"), [("/api/workbook", "no-store"), ("/api/nothing-here", "no-store"),
                                             ("/api/session", "no-store"), ("/healthz", None), ("/", "no-cache")])
def test_every_api_answer_is_never_stored_and_the_page_keeps_its_own_caching(client: TestClient, path: str,
                                                                            cached: str | None) -> None:
    """Success, 401, 404 or 405 alike: nothing under /api/ may be kept by a browser or a proxy."""
    assert client.get(path).headers.get("cache-control") == cached


@pytest.mark.parametrize("path", ["/healthz", "/api/nothing-here"])
def test_security_headers_on_every_response(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_a_response_keeps_the_security_headers_it_sets_itself_and_gets_the_others_once() -> None:
    from app.http.headers import add_security_headers

    own: Any = {"type": "http.response.start", "status": 200,
           "headers": [(b"X-Frame-Options", b"SAMEORIGIN"), (b"cache-control", b"max-age=60")]}
    asyncio.run(add_security_headers(own, {"path": "/api/workbook"}))
    names = [name.lower() for name, _ in own["headers"]]
    assert sorted(names) == sorted(set(names)) and len(names) == 5
    assert dict(own["headers"])[b"X-Frame-Options"] == b"SAMEORIGIN"
    assert dict(own["headers"])[b"cache-control"] == b"max-age=60"
    plain: Any = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    asyncio.run(add_security_headers(plain, {"path": "/api/workbook"}))
    assert dict(plain["headers"])[b"cache-control"] == b"no-store" and len(plain["headers"]) == 6
    page: Any = {"type": "http.response.start", "status": 200}
    asyncio.run(add_security_headers(page, {"path": "/"}))
    assert b"cache-control" not in dict(page["headers"]) and len(page["headers"]) == 4


def test_openapi_document_is_served(client: TestClient) -> None:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert "/healthz" in response.json()["paths"]


def test_secret_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "dreamtree.db.key"
    first = load_or_create_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 32
    assert load_or_create_secret(path) == first


def test_processes_starting_at_once_on_a_new_key_file_all_get_the_one_secret(tmp_path: Path) -> None:
    """Never a key file read half written ("too short"), never two secrets."""
    from concurrent.futures import ThreadPoolExecutor

    for round_ in range(30):
        path = tmp_path / f"race-{round_}.key"
        with ThreadPoolExecutor(8) as pool:
            secrets = list(pool.map(load_or_create_secret, [path] * 8))
        assert len(set(secrets)) == 1
        assert bytes.fromhex(path.read_text(encoding="ascii")) == secrets[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"race-{i}.key" for i in range(30))  # no drafts left


def test_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dreamtree.db.key"
    load_or_create_secret(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_secret(path)


def test_secret_from_configuration(tmp_path: Path) -> None:
    settings = Settings(db_path=tmp_path / "x.db", secret_hex="ab" * 32)
    assert settings.server_secret() == bytes.fromhex("ab" * 32)
    assert not settings.secret_path.exists()
    with pytest.raises(ConfigError):
        Settings(db_path=tmp_path / "x.db", secret_hex="abcd").server_secret()


def test_settings_from_environment() -> None:
    settings = Settings.from_env(
        {"DREAMTREE_DB": "/data/dt.db", "DREAMTREE_PORT": "9000", "DREAMTREE_HOST": "0.0.0.0"}
    )
    assert settings.db_path == Path("/data/dt.db") and settings.port == 9000
    # Secure follows the scheme the reader used, not the address the server binds.
    assert settings.cookies_secure("https") and not settings.cookies_secure("http")
    assert Settings.from_env({"DREAMTREE_SECURE_COOKIES": "1"}).cookies_secure("http")
    assert not Settings.from_env({"DREAMTREE_SECURE_COOKIES": "0"}).cookies_secure("https")
    with pytest.raises(ConfigError):
        Settings.from_env({"DREAMTREE_PORT": "eighty"})


def test_the_event_loop_core_setting() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    assert Settings.from_env({}).cpu == "none" and Settings.from_env({}).server_cores() is None
    auto = Settings.from_env({"DREAMTREE_CPU": "auto"}).server_cores()
    assert auto == ({allowed[-1]} if len(allowed) > 1 else None)
    assert Settings.from_env({"DREAMTREE_CPU": str(allowed[0])}).server_cores() == {allowed[0]}
    with pytest.raises(ConfigError, match="auto, none or a core number"):
        Settings.from_env({"DREAMTREE_CPU": "fast"})
    with pytest.raises(ConfigError, match="not available"):
        Settings.from_env({"DREAMTREE_CPU": "4096"}).server_cores()


def test_argon2_work_keeps_off_the_pinned_loops_core() -> None:
    """The loop and its database threads share one core; password hashing runs elsewhere."""
    import anyio

    from app.domain import kdf

    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        pytest.skip("needs two cores")
    loop_core = {min(allowed)}

    async def scenario() -> set[int]:
        # A fresh worker thread is created from this (pinned) thread and inherits its core.
        limiter = anyio.CapacityLimiter(1)
        assert await anyio.to_thread.run_sync(lambda: os.sched_getaffinity(0), limiter=limiter) == loop_core
        return await kdf.run_kdf(lambda: os.sched_getaffinity(0))

    os.sched_setaffinity(0, loop_core)
    kdf.keep_off(loop_core)
    try:
        assert anyio.run(scenario) == allowed - loop_core
    finally:
        kdf.keep_off(set())
        os.sched_setaffinity(0, allowed)
