"""The API's documentation at /schema: Swagger UI, served from this app's own origin only.

- `/schema/openapi.json` is the OpenAPI document (Litestar's JSON plugin; always there).
- `/schema` (and `/schema/swagger`) is Swagger UI. Its files come from the `swagger-ui-py`
  package, pinned in pyproject.toml and installed like any other dependency; only
  swagger-ui-bundle.js, swagger-ui.css and the icon of its static/ folder are served, from
  memory, at /schema/assets/. Nothing is loaded from another origin, and the page has no
  inline script or style, so the strict Content-Security-Policy of app/http/headers.py
  applies to it unchanged. Swagger UI's validator badge is off (it would load an image from
  validator.swagger.io).
- swagger-ui.css draws a few icons (the select arrow, the copy button, …) from `data:` URLs,
  which that CSP refuses (`img-src` falls back to `'self'`). Rather than widen the CSP, the
  stylesheet is rewritten once at start: each `data:` image becomes a file of its own at
  /schema/assets/css-image-N.svg|png|jpg.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from litestar import Response, Router, get
from litestar.enums import MediaType
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.params import FromPath

from app.domain.errors import NotFound
from app.http.pages import REVALIDATE, Asset, _answer
from app.http.request import HttpRequest

SCHEMA_PATH = "/schema"
ASSET_PATH = f"{SCHEMA_PATH}/assets"
VENDOR_FILES = {  # served name -> (file in swagger_ui/static, media type)
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": ("swagger-ui.css", "text/css"),
    "favicon-32x32.png": ("favicon-32x32.png", "image/png"),
}

VIEWER_JS = f"""// Starts Swagger UI on this page (a file, not an inline script: the page's CSP allows no inline code).
"use strict";
window.ui = SwaggerUIBundle({{
  url: "{SCHEMA_PATH}/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  validatorUrl: null,
}});
""".encode()

PAGE_HTML = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>DreamTree store API</title>
<link rel="icon" type="image/png" href="{ASSET_PATH}/favicon-32x32.png">
<link rel="stylesheet" href="{ASSET_PATH}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSET_PATH}/swagger-ui-bundle.js"></script>
<script src="{ASSET_PATH}/viewer.js"></script>
</body>
</html>
""".encode()


def swagger_ui_dir() -> Path:
    """swagger-ui-py's static/ folder, found without importing the package (its __init__
    pulls in its web-framework glue, which this app does not use)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed (it is a dependency: pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def _asset(body: bytes, media_type: str) -> Asset:
    return Asset(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:20]}"')


# url(data:…) in a stylesheet, bare or in double quotes (where \" is an escaped quote).
_CSS_DATA_URL = re.compile(r'url\((?:"(data:(?:[^"\\]|\\.)*)"|(data:[^)"\'\s]*))\)')
_IMAGE_TYPES = {"image/svg+xml": "svg", "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}


def _decode_data_url(url: str) -> tuple[str, bytes]:
    header, _, payload = url[len("data:"):].partition(",")
    media_type, *params = header.split(";")
    if "base64" in params:
        return media_type, base64.b64decode(payload)
    return media_type, unquote_to_bytes(payload)


def externalise_css_images(css: str) -> tuple[str, dict[str, tuple[bytes, str]]]:
    """The stylesheet with each data: image replaced by a same-origin file, and those files
    (name -> (body, media type))."""
    images: dict[str, tuple[bytes, str]] = {}

    def replace(match: re.Match[str]) -> str:
        quoted, bare = match.groups()
        url = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare  # CSS string escapes
        media_type, body = _decode_data_url(url)
        extension = _IMAGE_TYPES.get(media_type)
        if extension is None:
            raise ValueError(f"swagger-ui.css: unexpected data: URL of type {media_type!r}")
        name = f"css-image-{len(images) + 1}.{extension}"
        images[name] = (body, media_type)
        return f'url("{ASSET_PATH}/{name}")'

    return _CSS_DATA_URL.sub(replace, css), images


def load_viewer_assets() -> dict[str, Asset]:
    folder = swagger_ui_dir()
    assets = {name: _asset((folder / file).read_bytes(), media_type) for name, (file, media_type) in VENDOR_FILES.items()}
    css, images = externalise_css_images(assets["swagger-ui.css"].body.decode("utf-8"))
    assets["swagger-ui.css"] = _asset(css.encode("utf-8"), "text/css")
    assets.update({name: _asset(body, media_type) for name, (body, media_type) in images.items()})
    assets["viewer.js"] = _asset(VIEWER_JS, "text/javascript")
    return assets


VIEWER_ASSETS = load_viewer_assets()
PAGE = _asset(PAGE_HTML, "text/html")


@get("/assets/{name:str}", include_in_schema=False, sync_to_thread=False)
def viewer_asset(request: HttpRequest, name: FromPath[str]) -> Response[bytes]:
    found = VIEWER_ASSETS.get(name)
    if found is None:
        raise NotFound(f"No asset {name}.")
    return _answer(request, found, REVALIDATE)


class SchemaViewer(OpenAPIRenderPlugin):
    """Swagger UI at /schema and /schema/swagger, its files at /schema/assets/."""

    def __init__(self) -> None:
        super().__init__(path=["/", "/swagger"], media_type=MediaType.HTML)

    def render(self, request: HttpRequest, openapi_schema: dict[str, Any]) -> bytes:
        return PAGE.body

    def receive_router(self, router: Router) -> None:
        router.register(viewer_asset)
