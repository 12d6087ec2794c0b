"""The API documentation at /schema: Swagger UI from an installed package, served by the app
itself under the page's own Content-Security-Policy; nothing from another origin.

(tests/test_browser.py opens it in chromium and checks every request it makes.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.http.headers import SECURITY_HEADERS
from app.http.schema_viewer import VIEWER_ASSETS, swagger_ui_dir

ROOT = Path(__file__).resolve().parents[1]
CSP = SECURITY_HEADERS["content-security-policy"]
ATTRIBUTE_URL = re.compile(r'\b(?:src|href)\s*=\s*"([^"]*)"', re.I)
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]*)", re.I)


def same_origin_path(url: str) -> bool:
    return url.startswith("/") and not url.startswith("//")


def fetch(client: TestClient, path: str, media_type: str):
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    assert response.headers["content-type"].startswith(media_type), (path, response.headers["content-type"])
    assert response.headers["content-security-policy"] == CSP, path
    return response


def test_the_openapi_document_is_at_schema_openapi_json(client: TestClient) -> None:
    document = fetch(client, "/schema/openapi.json", "application/").json()
    assert document["openapi"].startswith("3.") and "/api/session" in document["paths"]


@pytest.mark.parametrize("path", ["/schema", "/schema/swagger"])
def test_the_viewer_and_everything_it_loads_come_from_this_origin_under_the_page_csp(
    client: TestClient, path: str
) -> None:
    page = fetch(client, path, "text/html").text
    assert "<style" not in page and " style=" not in page  # no inline style
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="' in attributes and body.strip() == "" for attributes, body in scripts)  # none inline
    urls = ATTRIBUTE_URL.findall(page)
    assert urls and all(same_origin_path(url) for url in urls), urls
    assert "://" not in page
    loaded = {url: fetch(client, url, "") for url in urls}
    stylesheets = [r.text for r in loaded.values() if r.headers["content-type"].startswith("text/css")]
    assert stylesheets
    for css in stylesheets:
        images = CSS_URL.findall(css)
        assert images and all(same_origin_path(url) for url in images), [u for u in images if not same_origin_path(u)]
        for url in images:
            fetch(client, url, "image/")
    own_script = next(r.text for url, r in loaded.items() if url.endswith("/viewer.js"))
    assert "validatorUrl: null" in own_script and "://" not in own_script


def test_swagger_ui_is_the_pinned_package_s_own_file() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'"swagger-ui-py==[0-9.]+"', pyproject)
    assert VIEWER_ASSETS["swagger-ui-bundle.js"].body == (swagger_ui_dir() / "swagger-ui-bundle.js").read_bytes()


def test_an_unknown_viewer_asset_is_a_404(client: TestClient) -> None:
    assert client.get("/schema/assets/swagger-editor-bundle.js").status_code == 404
    assert client.get("/schema/assets/..%2F..%2Fpyproject.toml").status_code == 404
