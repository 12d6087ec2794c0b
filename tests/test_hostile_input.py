"""Hostile input: Schemathesis against the app's own OpenAPI document (marker `hostile`).

A real server on loopback, a real reader's session (cookie and CSRF header on every call),
a bounded number of generated requests per operation. Every answer must be below 500 and
every error a problem-details document with a `code`. Plus hand-made nasties: oversized
bodies, deep JSON, invalid UTF-8, huge numbers, unknown fields.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.servers import free_port, up_or_killed

pytestmark = [pytest.mark.hostile, pytest.mark.both_engines]
ROOT = Path(__file__).resolve().parents[1]


def _start(port: int, *, rate_limits: bool = False, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A server on its own free port: with pytest-xdist each worker may start this module's
    server, and `serve` refuses a port that is already in use."""
    folder = Path(tempfile.mkdtemp(prefix="dreamtree-hostile-"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--db", str(folder / "hostile.db"), "--port", str(port),
         "--log-level", "error", *([] if rate_limits else ["--no-rate-limits"])],
        cwd=ROOT, env={**os.environ, "DREAMTREE_ARGON2": "fast", **(env or {})}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )
    up_or_killed(port, proc)
    return proc


@pytest.fixture(scope="module")
def server(engine_kind: str, request: pytest.FixtureRequest):
    """The server on the sqlite file, or (d1) on the session's Worker with the full seed loaded."""
    env = None
    if engine_kind == "d1":
        from app.domain.seeding.shapes import SEED_DIR

        database = request.getfixturevalue("d1_database")
        database.reset("full", {"full": SEED_DIR})
        env = {"DREAMTREE_ENGINE": "d1", "DREAMTREE_D1_URL": database.worker.url,
               "DREAMTREE_D1_TOKEN": database.worker.token}
    port = free_port()
    proc = _start(port, env=env)
    yield f"http://127.0.0.1:{port}"
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def reader(server: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{server}/healthz")
    session.headers["x-csrftoken"] = session.cookies["csrftoken"]
    assert session.post(f"{server}/api/session", json={}).status_code == 201
    session.put(f"{server}/api/exercises/1.1.1.v1/response", json={"response": {"text": "hello"}})
    return session


def check_answer(response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400 and response.status_code != 405:
        content_type = response.headers.get("content-type") or response.headers.get("Content-Type")
        if isinstance(content_type, list):  # schemathesis' responses keep every value
            content_type = content_type[0]
        assert content_type.startswith("application/problem+json"), (response.status_code, response.headers)
        body = response.json()
        assert body["code"] and body["status"] == response.status_code


CONFORMANCE = [checks.status_code_conformance, checks.content_type_conformance, checks.response_schema_conformance]

# Calls that would end the shared reader's session, devices or account.
SKIPPED = {("DELETE", "/api/session"), ("DELETE", "/api/account"), ("DELETE", "/api/account/sessions/{session_id}")}


def test_generated_requests_never_fail_on_our_side(server: str, reader: requests.Session) -> None:
    """Schemathesis' strategies for every operation of /schema/openapi.json, run with hypothesis."""
    api = schemathesis.openapi.from_url(f"{server}/schema/openapi.json")
    tried = 0
    for result in api.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:
            response = case.call(session=reader)
            check_answer(response)
            # What came back is what the document promises: a declared status, its content
            # type, and a body that validates against that status' schema.
            case.validate_response(response, checks=CONFORMANCE)

        run()
        tried += 1
    assert tried >= 10


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/api/exercises/1.1.1.v1/response", b'{"response": ' + b"[" * 5000 + b"]" * 5000 + b"}", {}),
        ("/api/exercises/1.1.1.v1/response", b'{"response": {"text": "\xff\xfe invalid utf-8"}}', {}),
        ("/api/exercises/1.1.1.v1/response", b'{"response": {"n": 1e999999}}', {}),
        ("/api/exercises/1.1.1.v1/response", b'{"response": {"n": 123456789012345678901234567890123456789}}', {}),
        ("/api/exercises/1.1.1.v1/response", b'{"response": {}, "user_id": "someone-else"}', {}),
        ("/api/account/claim", b'{"email": "a@example.com", "password": "' + b"p" * 5000 + b'"}', {}),
        ("/api/import", b'{"document": "' + b"x" * (18 * 1024 * 1024) + b'"}', {}),
    ],
)
def test_nasty_bodies_get_clear_4xx(reader: requests.Session, server: str, path: str, body: bytes, headers: dict) -> None:
    method = "PUT" if path.endswith("/response") else "POST"
    response = reader.request(method, server + path, data=body, headers={"content-type": "application/json", **headers})
    assert 400 <= response.status_code < 500 or (response.status_code == 200 and b"12345678901234567890" in body), response.text[:200]
    check_answer(response)


def test_a_malformed_cookie_pair_does_not_skip_the_csrf_check(reader: requests.Session, server: str) -> None:
    """`x="y; dt_session=…`: the header still signs the reader in, so a write without the
    x-csrftoken header is refused (tests/test_csrf_cookies.py has the variants)."""
    header = f'x="y; dt_session={reader.cookies["dt_session"]}'
    assert requests.get(f"{server}/api/me", headers={"cookie": header}, timeout=10).status_code == 200
    forged = requests.put(f"{server}/api/exercises/1.1.1.v1/response", json={"response": {"text": "forged"}},
                          headers={"cookie": header}, timeout=10)
    assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed", forged.text
    assert reader.get(f"{server}/api/exercises/1.1.1.v1").json()["response"]["response"] != {"text": "forged"}


def test_reader_survived(reader: requests.Session, server: str) -> None:
    answer = reader.get(f"{server}/api/exercises/1.1.1.v1").json()["response"]
    assert answer is not None and json.dumps(answer)


# --- imports whose key slot sets its own Argon2 cost --------------------------------------------

EMAIL, PASSWORD = "hostile-owner@example.com", "river lantern pocket moss"


def browser(server: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{server}/healthz", timeout=10)
    session.headers["x-csrftoken"] = session.cookies["csrftoken"]
    return session


def sign_in(server: str) -> tuple[int, float]:
    session = browser(server)
    started = time.perf_counter()
    answer = session.post(f"{server}/api/auth/login", json={"email": EMAIL, "password": PASSWORD}, timeout=60)
    return answer.status_code, time.perf_counter() - started


def test_costly_import_key_slots_are_refused_and_never_hold_up_sign_in(server: str) -> None:
    """A file's key slot names its own Argon2 cost. One at m=1 GiB, t=10, p=8 is refused at
    once (422) without hashing; files at the cost this service writes are hashed in their own
    slot, so two hostile imports and two honest ones in flight leave a correct sign-in its
    normal time (it used to wait behind them for 10 s and get 503)."""
    owner = browser(server)
    assert owner.post(f"{server}/api/session", json={}, timeout=10).status_code == 201
    assert owner.post(f"{server}/api/account/claim", json={"email": EMAIL, "password": PASSWORD},
                      timeout=30).status_code == 200
    document = owner.post(f"{server}/api/export", json={"password": PASSWORD}, timeout=30).json()
    hostile = copy.deepcopy(document)
    hostile["key"]["kdf"].update(m=1024 * 1024, t=10, p=8)
    normal = min(sign_in(server)[1] for _ in range(3))

    results: dict[str, tuple[int, str, float]] = {}

    def send(name: str, doc: dict) -> None:
        session = browser(server)
        session.post(f"{server}/api/session", json={}, timeout=10)
        started = time.perf_counter()
        answer = session.post(f"{server}/api/import", json={"document": doc, "password": "a wrong guess"}, timeout=120)
        results[name] = (answer.status_code, answer.json().get("code", ""), time.perf_counter() - started)

    threads = [threading.Thread(target=send, args=(f"hostile-{i}", hostile)) for i in range(2)]
    threads += [threading.Thread(target=send, args=(f"honest-{i}", document)) for i in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # the imports are in flight
    status, took = sign_in(server)
    for thread in threads:
        thread.join(timeout=180)
    assert status == 200
    assert took < max(1.0, 10 * normal), (took, normal)
    for i in range(2):
        code, problem, seconds = results[f"hostile-{i}"]
        assert (code, problem) == (422, "import_kdf_unsupported") and seconds < 5, results
        assert results[f"honest-{i}"][:2] == (401, "invalid_credentials"), results
