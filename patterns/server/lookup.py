"""Finding what a request names (an app, a node), or a 404 that says what there is."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import HTTPException

from patterns.errors import ConfigError

if TYPE_CHECKING:
    from patterns.server.hub import AppService, Hub


def app_service(hub: Hub, app: str) -> AppService:
    try:
        return hub.get(app)
    except KeyError:
        raise HTTPException(404, f"no app '{app}' on this server; "
                                 f"GET /api/v1/apps lists them") from None


def app_node(svc: AppService, key: str) -> Any:
    try:
        return svc.node(key)
    except ConfigError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError:  # not even a possible file name (a NUL byte...)
        raise HTTPException(404, f"no node {key!r} in app '{svc.slug}'") from None
