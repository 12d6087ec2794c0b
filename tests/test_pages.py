"""The web client as the server hands it out: the page, its assets, caching, the CSP, and
a client that only calls paths the API really has (no browser needed)."""

from __future__ import annotations

import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.http import pages
from app.http.headers import SECURITY_HEADERS

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "app" / "web"
SCRIPTS = sorted(WEB.rglob("*.js"))

# One concrete path per client route, as a Daily Do or a link would name it.
CLIENT_SAMPLES = ["/", "/workbook", "/workbook/1.1.1.v1", "/tools", "/tools/flow-tracker", "/competencies",
                  "/settings", "/account", "/data", "/credits"]


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data


def parse_page(client: TestClient) -> Tags:
    parser = Tags()
    parser.feed(client.get("/").text)
    return parser


@pytest.mark.parametrize("path", CLIENT_SAMPLES)
def test_the_page_answers_every_client_path(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert f'/assets/app.js?v={pages.VERSION}' in response.text


def test_the_page_needs_no_session_and_hands_out_the_csrf_cookie(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "csrftoken" in response.cookies


@pytest.mark.parametrize("path", ["/api/nothing-here", "/nothing-here", "/workbook/1.1.1.v1/more", "/assets/missing.js"])
def test_other_paths_keep_their_json_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.mark.parametrize("path", ["/nothing-here", "/workbok", "/workbook/1.1.1.v1/more", "/tools/a/b"])
def test_a_mistyped_address_in_a_browser_gets_the_pages_own_not_found_view(client: TestClient, path: str) -> None:
    response = client.get(path, headers=BROWSER)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert 'id="main"' in response.text and "no-cache" in response.headers["cache-control"]
    assert "content-security-policy" in response.headers


@pytest.mark.parametrize("path", ["/api/nothing-here", "/assets/missing.js"])
def test_the_api_and_assets_answer_a_browser_with_json_all_the_same(client: TestClient, path: str) -> None:
    response = client.get(path, headers=BROWSER)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("name", "content_type"), [
    ("app.js", "text/javascript; charset=utf-8"),
    ("views/workbook.js", "text/javascript; charset=utf-8"),
    ("app.css", "text/css; charset=utf-8"),
    ("icon.svg", "image/svg+xml"),
    ("fonts/OpenDyslexic-Regular.woff", "font/woff"),
])
def test_assets_are_served_with_their_content_types(client: TestClient, name: str, content_type: str) -> None:
    response = client.get(f"/assets/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == (WEB / name).read_bytes()


def test_index_html_is_only_served_as_the_page(client: TestClient) -> None:
    assert client.get("/assets/index.html").status_code == 404


def test_versioned_assets_are_cached_for_long_and_others_revalidated(client: TestClient) -> None:
    current = client.get(f"/assets/app.css?v={pages.VERSION}")
    assert current.headers["cache-control"] == "public, max-age=31536000, immutable"
    plain = client.get("/assets/app.css")
    assert plain.headers["cache-control"] == "no-cache"
    stale = client.get("/assets/app.css?v=an-older-version")
    assert stale.headers["cache-control"] == "no-cache"
    again = client.get("/assets/app.css", headers={"If-None-Match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    page = client.get("/")
    assert client.get("/", headers={"If-None-Match": page.headers["etag"]}).status_code == 304


def test_the_version_changes_with_any_asset() -> None:
    assets = dict(pages.ASSETS)
    before = pages.asset_version(assets)
    assets["app.css"] = pages.Asset(b"changed", "text/css", '"other"')
    assert pages.asset_version(assets) != before


def test_the_page_carries_the_csp_unchanged(client: TestClient) -> None:
    for path in ["/", "/workbook/1.1.1.v1", "/assets/app.js"]:
        headers = client.get(path).headers
        assert headers["content-security-policy"] == SECURITY_HEADERS["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"


def test_the_page_has_no_inline_script_style_or_handler(client: TestClient) -> None:
    page = parse_page(client)
    assert page.script_text.strip() == ""
    for tag, attrs in page.tags:
        assert tag != "style"
        assert "style" not in attrs, tag
        assert not [a for a in attrs if a.startswith("on")], tag
        if tag == "script":
            assert attrs.get("type") == "module" and (attrs.get("src") or "").startswith("/assets/")
        for link in (attrs.get("src"), attrs.get("href")):
            # Everything comes from this server: no CDN, no other origin.
            assert link is None or link.startswith(("/", "#")), link


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(WEB).as_posix())
def test_client_code_needs_nothing_the_csp_forbids(script: Path) -> None:
    code = script.read_text(encoding="utf-8")
    for forbidden in ["eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                      'setAttribute("style"', "cssText"]:
        assert forbidden not in code, f"{script.name} uses {forbidden}"
    # Code and data come from this server only: no module, fetch or font from another origin.
    assert not re.findall(r"""(?:(?:import|from|fetch\()\s*["'`]|url\(\s*["']?)(?:https?:)?//""", code)


def test_the_stylesheet_loads_nothing_from_elsewhere() -> None:
    css = (WEB / "app.css").read_text(encoding="utf-8")
    assert "@import" not in css
    for target in re.findall(r"url\(\s*['\"]?([^'\")]+)", css):
        assert target.startswith("/assets/") and (WEB / target.removeprefix("/assets/")).is_file(), target


def api_paths_in_client() -> set[str]:
    """Every '/api/…' path written in the client's code, `${…}` pieces as {param}, no query."""
    found: set[str] = set()
    for script in SCRIPTS:
        code = script.read_text(encoding="utf-8")
        for literal in re.findall(r"""["'`](/api/[^"'`]*)["'`]""", code):
            path = re.sub(r"\$\{[^}]*\}", "{param}", literal).split("?")[0]
            found.add(path)
    return found


def test_the_client_only_calls_paths_the_api_has(client: TestClient) -> None:
    documented = client.get("/schema/openapi.json").json()["paths"]
    patterns = [re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(p.rstrip("/") or "/")) + "$")
                for p in documented]
    called = api_paths_in_client()
    # The scanner finds the client's calls (a broken regex must not pass by finding nothing).
    assert {"/api/session", "/api/workbook", "/api/exercises/{param}/response", "/api/tools",
            "/api/daily-dos", "/api/import", "/api/export"} <= called
    concrete = {path: path.replace("{param}", "x") for path in called}
    missing = sorted(path for path, sample in concrete.items() if not any(p.match(sample) for p in patterns))
    assert missing == [], f"the client calls paths the API does not have: {missing}"


def test_page_routes_stay_out_of_the_api_document(client: TestClient) -> None:
    documented = client.get("/schema/openapi.json").json()["paths"]
    assert not [p for p in documented if not p.startswith(("/api", "/healthz", "/metrics"))]


def test_client_router_and_server_agree_on_the_paths() -> None:
    code = (WEB / "app.js").read_text(encoding="utf-8")
    routes = [re.compile(r.replace("\\/", "/")) for r in re.findall(r"\[/(\^.*?\$)/, \"", code)]
    assert len(routes) == len(pages.CLIENT_PATHS) == len(CLIENT_SAMPLES)
    for sample in CLIENT_SAMPLES:
        assert [r for r in routes if r.match(sample)], f"the client router has no view for {sample}"


def test_every_asset_is_packaged() -> None:
    """setuptools expands package-data with glob: the same expansion here."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]["app"]
    packaged = {path for pattern in patterns for path in (ROOT / "app").glob(pattern)}
    unpackaged = [p.relative_to(ROOT).as_posix() for p in WEB.rglob("*") if p.is_file() and p not in packaged]
    assert unpackaged == []
