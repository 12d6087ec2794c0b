"""The reader's web client: index.html for every client path, and its static assets.

Everything under app/web/ is read once at import time into memory (it is small), each file
with its content type and a strong ETag, so a request does no disk work and no hashing:

- the page (index.html) is answered for each client path the browser router knows, so a
  Daily Do's `action.href` such as `/workbook/1.1.1.v1` or `/tools/flow-tracker` opens the
  right view when followed or reloaded; a browser asking for any other path (a mistyped
  address) gets the page with status 404, whose router shows its own "not found" view, and
  everything else keeps the JSON 404 problem;
- the page is `no-cache` (always revalidated), and it names its stylesheet and entry script
  with `?v=<version>`, the hash of every asset; an asset asked for with the current version
  may be cached for a year, any other asset request is revalidated with its ETag;
- the CSP of app/http/headers.py applies unchanged: the page has no inline script or style.
None of these routes appear in the OpenAPI document: they are not part of the API.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from litestar import Response, get
from litestar.params import FromPath

from app.domain.errors import NotFound
from app.http.request import HttpRequest

WEB_DIR = Path(__file__).resolve().parents[1] / "web"

# Content types are explicit: the platform's mimetypes table varies between machines, and
# with `nosniff` a wrong type for a module script or a font stops it from loading. (Litestar
# adds `; charset=utf-8` to the text types.)
MEDIA_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".txt": "text/plain",
}

# The client paths of app/web/app.js's router (keep the two lists together).
CLIENT_PATHS = [
    "/",
    "/workbook",
    "/workbook/{exercise:str}",
    "/tools",
    "/tools/{tool:str}",
    "/competencies",
    "/settings",
    "/account",
    "/data",
    "/credits",
]

VERSION_MARK = "__ASSET_VERSION__"
REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets(folder: Path) -> dict[str, Asset]:
    """Every servable file under `folder`, keyed by its path relative to it."""
    assets: dict[str, Asset] = {}
    for path in sorted(folder.rglob("*")):
        media_type = MEDIA_TYPES.get(path.suffix)
        if not path.is_file() or media_type is None:
            continue
        body = path.read_bytes()
        assets[path.relative_to(folder).as_posix()] = Asset(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:20]}"')
    return assets


def asset_version(assets: dict[str, Asset]) -> str:
    digest = hashlib.sha256()
    for name, asset in sorted(assets.items()):
        digest.update(name.encode() + b"\0" + asset.etag.encode())
    return digest.hexdigest()[:12]


ASSETS = load_assets(WEB_DIR)
VERSION = asset_version(ASSETS)
_page = ASSETS.pop("index.html")
PAGE = Asset(_page.body.replace(VERSION_MARK.encode(), VERSION.encode()), _page.media_type, f'"{VERSION}"')


def _answer(request: HttpRequest, asset: Asset, cache_control: str) -> Response[bytes]:
    headers = {"ETag": asset.etag, "Cache-Control": cache_control}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(b"", status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@get(CLIENT_PATHS, include_in_schema=False, sync_to_thread=False)
def page(request: HttpRequest) -> Response[bytes]:
    """The web client; its router picks the view from the path."""
    return _answer(request, PAGE, REVALIDATE)


@get("/assets/{name:path}", include_in_schema=False, sync_to_thread=False)
def asset(request: HttpRequest, name: FromPath[str]) -> Response[bytes]:
    found = ASSETS.get(name.lstrip("/"))
    if found is None:
        raise NotFound(f"No asset {name.lstrip('/')}.")
    current = request.query_params.get("v") == VERSION
    return _answer(request, found, IMMUTABLE if current else REVALIDATE)


# Paths that are never the page's: the API, its document, the assets and operations.
NOT_PAGES = ("/api/", "/api", "/assets/", "/schema", "/healthz", "/metrics")


def wants_page(request: HttpRequest) -> bool:
    """A browser following a link to a path the page does not know (a mistyped address)."""
    path = request.url.path
    return (request.method == "GET" and not path.startswith(NOT_PAGES)
            and "text/html" in request.headers.get("accept", ""))


def page_not_found() -> Response[bytes]:
    """The page itself, with status 404: its router shows its own "not found" view."""
    return Response(PAGE.body, status_code=404, media_type=PAGE.media_type, headers={"Cache-Control": REVALIDATE})


PAGE_HANDLERS = [page, asset]
