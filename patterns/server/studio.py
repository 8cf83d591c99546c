"""Serving the Studio: the built front end (``studio/`` in the repository, built by Vite into
``patterns/server/studio_dist/``, shipped in the package) at ``/``.

- ``/assets/...``: the hashed bundles, cached for a year (their names change with them);
- any other page path: ``index.html`` (the Studio routes in the browser), never cached, with
  a Content-Security-Policy allowing only this server's own scripts, so neither a markdown
  card nor a chart spec can run script even if it got past the sanitiser;
- not built: a page saying how to build it (and where the API docs are), status 503.

Nothing is fetched from elsewhere at run time. The HTML needs no token; every API call it
makes does (the login cookie, see docs/server.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

DIST = Path(__file__).with_name("studio_dist")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
       "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
PAGE_HEADERS = {"Cache-Control": "no-cache", "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "X-Frame-Options": "DENY"}
ASSET_HEADERS = {"Cache-Control": "public, max-age=31536000, immutable",
                 "X-Content-Type-Options": "nosniff"}
NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Patterns Studio is not built</title></head><body style="font-family:sans-serif;
max-width:40em;margin:3em auto"><h1>The Studio is not built</h1>
<p>This copy of Patterns has no built Studio in <code>{dist}</code>. Build it from a checkout
with <code>cd studio &amp;&amp; npm ci &amp;&amp; npm run build</code> (<code>scripts/test</code>
and <code>scripts/example</code> do this), then restart <code>patterns serve</code>.</p>
<p>The REST API works without it: <a href="/api/v1/docs">/api/v1/docs</a>.</p></body></html>"""
RESERVED = ("api/", "webhooks/", "login")


def mount_studio(api: FastAPI, dist: Path = DIST) -> None:
    """Add the Studio's routes to the FastAPI app (after every other route)."""
    from fastapi import HTTPException
    from fastapi.responses import FileResponse, HTMLResponse, Response
    from starlette.convertors import Convertor, register_url_convertor

    class PagePath(Convertor[str]):
        """A path of the Studio's pages: anything (as ``{path:path}``) outside ``api/``
        and ``webhooks/``."""

        regex = r"(?!api/|webhooks/).*"

        def convert(self, value: str) -> str:
            return value

        def to_string(self, value: str) -> str:
            return value

    root = dist.resolve()

    def page() -> Response:
        index = root / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT.format(dist=root), status_code=503,
                                headers=PAGE_HEADERS)
        return FileResponse(index, media_type="text/html", headers=PAGE_HEADERS)

    @api.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def home() -> Response:
        return page()

    # The pages' paths: any but the API's and the webhooks' (a POST to an unknown /api/...
    # path is then a 404 of the router, not a 405 of this GET-only route).
    register_url_convertor("page", PagePath())

    @api.api_route("/{path:page}", methods=["GET", "HEAD"], include_in_schema=False)
    def studio_file(path: str) -> Response:
        if path.startswith(RESERVED):
            raise HTTPException(404, f"nothing at /{path}")
        if path.startswith("assets/"):
            asset = (root / path).resolve()
            if not asset.is_relative_to(root / "assets") or not asset.is_file():
                raise HTTPException(404, f"no Studio asset /{path}")
            return FileResponse(asset, headers=ASSET_HEADERS)
        top = (root / path).resolve()
        if "/" not in path and top.parent == root and top.is_file() and top.name != "index.html":
            return FileResponse(top, headers={**ASSET_HEADERS, "Cache-Control": "no-cache"})
        return page()

