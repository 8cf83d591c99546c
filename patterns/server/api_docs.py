"""The API's docs page, ``/api/v1/docs``: Swagger UI over ``/api/v1/openapi.json``, served
entirely by this server, so it works without internet.

Swagger UI's files come from the ``fastapi-offline`` package (a dependency: it ships Swagger
UI 5, which renders the OpenAPI 3.1 documents FastAPI writes; ``swagger-ui-bundle`` on PyPI
still ships 4.x, which cannot). Only its static files are used, under
``/api/v1/docs/assets/``. The page has no inline script (it would break the Studio's
Content-Security-Policy, which it is served under): Swagger UI is started by a small script of
ours, :data:`START`. Like every ``/api/v1`` path, the page needs the token (the login cookie,
``/login?token=...``).
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

DOCS_PATH = "/api/v1/docs"
ASSETS = f"{DOCS_PATH}/assets"
#: The files served under :data:`ASSETS`, with their media types.
SWAGGER_FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
                 "favicon.png": "image/png"}

PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Patterns API</title>
<link rel="icon" type="image/png" href="{ASSETS}/favicon.png">
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head><body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="{ASSETS}/start.js"></script>
</body></html>
"""

#: Starts Swagger UI (no validator badge: that would call validator.swagger.io).
START = """window.ui = SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""


def mount_api_docs(api: FastAPI) -> None:
    """Add the docs page and its assets (the app must be made with ``docs_url=None``)."""
    from fastapi import HTTPException
    from fastapi.responses import HTMLResponse, Response

    from patterns.server.studio import ASSET_HEADERS, PAGE_HEADERS

    static = files("fastapi_offline") / "static"

    @api.get(DOCS_PATH, include_in_schema=False)
    def docs_page() -> Response:
        return HTMLResponse(PAGE, headers=PAGE_HEADERS)

    @api.get(f"{ASSETS}/{{name}}", include_in_schema=False)
    def docs_asset(name: str) -> Response:
        headers = {**ASSET_HEADERS, "Cache-Control": "public, max-age=86400"}
        if name == "start.js":
            return Response(START, media_type="text/javascript", headers=headers)
        if name not in SWAGGER_FILES:
            raise HTTPException(404, f"no API docs asset {ASSETS}/{name}")
        return Response((static / name).read_bytes(), media_type=SWAGGER_FILES[name],
                        headers=headers)
