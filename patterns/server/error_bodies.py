"""The API's one error shape, ``{"error": message}``, for the errors the router makes itself.

A path that nothing serves is a 404 naming it; a method a path does not take is a 405 naming
the ones it does (also in the ``Allow`` header). (The Studio's page route takes no
``/api/`` path, so a POST to an unknown one is a 404, not a 405 "GET only" of that route.)
"""

from __future__ import annotations

from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

#: Where the routes are listed, in messages about a path or method nothing serves.
ROUTES_HINT = "see /api/v1/docs (or /api/v1/openapi.json) for the API's routes"


def error_response(request: Request, exc: StarletteHTTPException) -> Response:
    """The JSON error for ``exc`` (raised by a route, or by the router: 404, 405)."""
    headers = dict(exc.headers or {})
    status, message = exc.status_code, str(exc.detail)
    path = request.url.path
    if status == 405 and message == "Method Not Allowed":  # (the router's own)
        allowed = headers.get("Allow", "")
        message = f"{request.method} is not allowed on {path}; it takes {allowed} ({ROUTES_HINT})"
    elif status == 404 and message == "Not Found":
        message = f"nothing at {path}: {ROUTES_HINT}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return JSONResponse({"error": message}, status_code=status, headers=headers)
