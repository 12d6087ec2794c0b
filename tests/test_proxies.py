"""Behind a reverse proxy: who the reader is, which scheme they used, and who may read /metrics.

Only from peers listed in DREAMTREE_TRUSTED_PROXIES are X-Forwarded-For and
X-Forwarded-Proto believed; the reader is the right-most forwarded address that is not
itself a trusted proxy. Rate limits count that address, cookies are Secure when the reader
used https, and /metrics answers loopback peers that are not a proxy, or a request with the
metrics token; anyone else gets the same 404 as a page that does not exist.

The functions are checked on crafted ASGI scopes; the `hostile` tests start real servers and
reach them from two loopback addresses: 127.0.0.1 plays the trusted proxy, 127.0.0.2 a
process on the same host that is not one.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from app.config import ConfigError, Settings
from app.http.app import create_app
from tests.servers import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "metrics-token-for-the-scraper-0123456789"


def scope(peer: str | None, *headers: tuple[str, str], scheme: str = "http") -> dict[str, Any]:
    return {"type": "http", "scheme": scheme, "client": None if peer is None else (peer, 50000),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers]}


def resolved(proxies: str, peer: str | None, *headers: tuple[str, str]) -> tuple[str | None, str]:
    from app.http.proxy import TrustedProxies, resolve

    s = scope(peer, *headers)
    resolve(s, TrustedProxies.parse(proxies))
    return (s["client"][0] if s["client"] else None), s["scheme"]


# --- the forwarded headers ----------------------------------------------------------------------


def test_forwarded_headers_from_an_untrusted_peer_are_ignored() -> None:
    assert resolved("", "198.51.100.7", ("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")) == (
        "198.51.100.7", "http")
    assert resolved("10.0.0.0/8", "198.51.100.7", ("X-Forwarded-For", "203.0.113.9")) == ("198.51.100.7", "http")


def test_the_right_most_address_that_is_not_a_proxy_is_the_reader() -> None:
    trusted = "10.0.0.1, 10.1.0.0/16"
    # The reader forged the first entry; the two proxies appended the rest.
    chain = ("X-Forwarded-For", "1.2.3.4, 203.0.113.9, 10.1.2.3")
    assert resolved(trusted, "10.0.0.1", chain) == ("203.0.113.9", "http")
    # Several headers are one list, in order.
    assert resolved(trusted, "10.0.0.1", ("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-For", "203.0.113.9")) == (
        "203.0.113.9", "http")
    # Only proxies in the chain: the left-most one is as far as anyone can tell.
    assert resolved(trusted, "10.0.0.1", ("X-Forwarded-For", "10.1.0.5, 10.1.0.6")) == ("10.1.0.5", "http")
    # No header: the proxy itself.
    assert resolved(trusted, "10.0.0.1") == ("10.0.0.1", "http")
    # Not an address (a forged or garbled entry) ends the walk at the last hop believed.
    assert resolved(trusted, "10.0.0.1", ("X-Forwarded-For", "203.0.113.9, nonsense")) == ("10.0.0.1", "http")
    # Ports and IPv6 brackets, as some proxies write them.
    assert resolved(trusted, "10.0.0.1", ("X-Forwarded-For", "203.0.113.9:4711")) == ("203.0.113.9", "http")
    assert resolved("::1", "::1", ("X-Forwarded-For", "[2001:db8::7]:4711")) == ("2001:db8::7", "http")


def test_the_scheme_comes_from_a_trusted_proxy_only() -> None:
    assert resolved("127.0.0.1", "127.0.0.1", ("X-Forwarded-Proto", "https")) == ("127.0.0.1", "https")
    assert resolved("127.0.0.1", "127.0.0.1", ("X-Forwarded-Proto", "HTTPS")) == ("127.0.0.1", "https")
    assert resolved("127.0.0.1", "127.0.0.1", ("X-Forwarded-Proto", "https, http")) == ("127.0.0.1", "http")
    assert resolved("127.0.0.1", "127.0.0.1", ("X-Forwarded-Proto", "gopher")) == ("127.0.0.1", "http")
    assert resolved("127.0.0.1", "127.0.0.2", ("X-Forwarded-Proto", "https")) == ("127.0.0.2", "http")


def test_the_trusted_proxies_setting() -> None:
    assert Settings.from_env({}).trusted_proxies == ()
    settings = Settings.from_env({"DREAMTREE_TRUSTED_PROXIES": " 10.0.0.1 ,192.168.0.0/24,, ::1 "})
    assert settings.trusted_proxies == ("10.0.0.1/32", "192.168.0.0/24", "::1/128")
    assert Settings.from_env(settings.to_env()).trusted_proxies == settings.trusted_proxies
    with pytest.raises(ConfigError, match="DREAMTREE_TRUSTED_PROXIES"):
        Settings.from_env({"DREAMTREE_TRUSTED_PROXIES": "10.0.0.1, proxy.internal"})
    with pytest.raises(ConfigError, match="DREAMTREE_METRICS_TOKEN"):
        Settings.from_env({"DREAMTREE_METRICS_TOKEN": "short"})
    assert Settings.from_env({"DREAMTREE_METRICS_TOKEN": TOKEN}).metrics_token == TOKEN


def test_serve_tells_an_operator_on_a_public_bind_how_cookies_become_secure() -> None:
    from app.cli import secure_cookie_notice

    assert secure_cookie_notice(Settings(host="127.0.0.1")) is None
    assert "--trusted-proxies" in (secure_cookie_notice(Settings(host="0.0.0.0")) or "")
    assert secure_cookie_notice(Settings(host="0.0.0.0", trusted_proxies=("10.0.0.1/32",))) is None
    assert secure_cookie_notice(Settings(host="0.0.0.0", secure_cookies=True)) is None


# --- Secure cookies follow the scheme (in-process) ----------------------------------------------


def set_cookies(client: TestClient) -> dict[str, str]:
    client.get("/healthz")
    response = client.post("/api/session", json={}, headers={"x-csrftoken": client.cookies.get("csrftoken") or ""})
    assert response.status_code == 201, response.text
    first = client.get("/healthz", headers={"cookie": ""})  # a fresh csrftoken cookie
    lines = response.headers.get_list("set-cookie") + first.headers.get_list("set-cookie")
    return {line.split("=", 1)[0]: line for line in lines}


@pytest.mark.parametrize(
    ("override", "base", "secure"),
    [(None, "http://testserver.local", False), (None, "https://testserver.local", True),
     (True, "http://testserver.local", True), (False, "https://testserver.local", False)],
)
def test_cookies_are_secure_as_the_reader_connected_unless_overridden(
    seeded: Path, override: bool | None, base: str, secure: bool
) -> None:
    settings = Settings(db_path=seeded, secure_cookies=override, argon2="fast", host="0.0.0.0")
    with TestClient(create_app(settings), base_url=base) as client:
        cookies = set_cookies(client)
    assert set(cookies) == {"csrftoken", "dt_session"}
    assert {name: "; Secure" in line for name, line in cookies.items()} == {"csrftoken": secure, "dt_session": secure}


# --- real servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxied() -> Iterator[int]:
    """A server behind a 'proxy' at 127.0.0.1, rate limits on, with a metrics token."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="dreamtree-proxied-"))
    env = {**os.environ, "DREAMTREE_ARGON2": "fast", "DREAMTREE_TRUSTED_PROXIES": "127.0.0.1",
           "DREAMTREE_METRICS_TOKEN": TOKEN}
    env.pop("DREAMTREE_SECURE_COOKIES", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--db", str(folder / "proxied.db"), "--port", str(port),
         "--host", "0.0.0.0", "--log-level", "error"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_until_up(port, proc, answers=lambda p: call(p, "GET", "/healthz")[0] == 200)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def call(port: int, method: str, path: str, headers: dict[str, str] | None = None, *, source: str = "127.0.0.1",
         body: object = None) -> tuple[int, http.client.HTTPResponse, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers={"content-type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, response, response.read()
    except OSError:
        return 0, None, b""  # type: ignore[return-value]
    finally:
        connection.close()


def start_workbook(port: int, forwarded_for: str) -> int:
    status, _, _ = call(port, "POST", "/api/session", {"x-forwarded-for": forwarded_for}, body={})
    return status


@pytest.mark.hostile
def test_readers_behind_the_proxy_get_their_own_rate_limit_bucket(proxied: int) -> None:
    # 30 anonymous workbooks an hour per reader (throttle.LIMITS["session_start"]).
    assert [start_workbook(proxied, "1.2.3.4, 203.0.113.10") for _ in range(30)] == [201] * 30
    assert start_workbook(proxied, "203.0.113.10") == 429  # the same reader, however the chain began
    assert start_workbook(proxied, "203.0.113.11") == 201  # another reader behind the same proxy
    # A peer that is not a trusted proxy cannot pick its bucket: its own address counts.
    assert [start_workbook_from(proxied, "127.0.0.2", f"198.51.100.{i}") for i in range(31)][-1] == 429


def start_workbook_from(port: int, source: str, forwarded_for: str) -> int:
    return call(port, "POST", "/api/session", {"x-forwarded-for": forwarded_for}, source=source, body={})[0]


@pytest.mark.hostile
def test_cookies_are_secure_when_the_reader_used_https(proxied: int) -> None:
    readers = iter(range(100, 200))

    def cookies(headers: dict[str, str], source: str = "127.0.0.1") -> dict[str, bool]:
        forwarded = {"x-forwarded-for": f"203.0.113.{next(readers)}", **headers}
        status, response, _ = call(proxied, "POST", "/api/session", forwarded, source=source, body={})
        assert status == 201
        lines = response.headers.get_all("set-cookie") or []
        return {line.split("=", 1)[0]: "; Secure" in line for line in lines}

    assert cookies({"x-forwarded-proto": "https"}) == {"csrftoken": True, "dt_session": True}
    assert cookies({"x-forwarded-proto": "http"}) == {"csrftoken": False, "dt_session": False}
    assert cookies({}) == {"csrftoken": False, "dt_session": False}  # plain http, on a 0.0.0.0 bind
    assert cookies({"x-forwarded-proto": "https"}, source="127.0.0.3") == {"csrftoken": False, "dt_session": False}


@pytest.mark.hostile
def test_metrics_answer_local_non_proxy_peers_and_the_token_only(proxied: int) -> None:
    not_found = call(proxied, "GET", "/no-such-page")
    through_proxy = call(proxied, "GET", "/metrics", {"x-forwarded-for": "127.0.0.1"})
    assert through_proxy[0] == 404 and through_proxy[2] == not_found[2]  # nothing says it exists
    assert call(proxied, "GET", "/metrics", {"authorization": "Bearer not-the-token"})[0] == 404
    assert call(proxied, "GET", "/metrics", {"authorization": TOKEN})[0] == 404  # Bearer, or nothing
    status, _, body = call(proxied, "GET", "/metrics", {"authorization": f"Bearer {TOKEN}"})
    assert status == 200 and b"dreamtree_requests_total" in body
    status, _, body = call(proxied, "GET", "/metrics", source="127.0.0.2")  # a local scraper, not the proxy
    assert status == 200 and b"dreamtree_requests_total" in body
