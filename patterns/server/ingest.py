"""Webhook requests over HTTP: ``POST /webhooks/{app}/{token}``, parsed and checked here,
then journaled by the app's :class:`~patterns.server.webhooks.WebhookIntake` before the
answer (see docs/server.md). :class:`WebhookFastPath` serves them ahead of the API's router,
and holds an API request about an app until the webhook records acknowledged before it are
committed (so a client reads what it was told is stored)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from patterns.graph.manifest import jsonable
from patterns.server.answers import BadRecords
from patterns.server.bodies import BadBody, BodyLimits, parse_records
from patterns.server.hub import Hub

DEFAULT_MAX_BODY = 1_000_000
DEFAULT_RESPONSE_TIMEOUT = 30.0


class WebhookFastPath:
    """ASGI middleware: ``POST /webhooks/{app}/{token}`` straight to :func:`ingest`, ahead
    of the router and its request validation (a webhook under load answers thousands of
    requests a second); everything else goes on to the API."""

    def __init__(self, app: Any, hub: Hub) -> None:
        self.app = app
        self.hub = hub

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            parts = scope["path"].split("/")
            if (scope["method"] == "POST" and len(parts) == 4 and parts[1] == "webhooks"
                    and parts[2] and parts[3]):
                request = Request(scope, receive)
                response = await ingest(self.hub, parts[2], parts[3], request)
                await response(scope, receive, send)
                return
            if len(parts) > 4 and parts[1:4] == ["api", "v1", "apps"]:
                await settle(self.hub, parts[4])
        await self.app(scope, receive, send)


async def settle(hub: Hub, app: str) -> None:
    """Wait until the app's acknowledged webhook records are committed (at once if so)."""
    svc = hub.apps.get(app)
    if svc is not None and not svc.webhooks.settled():
        await asyncio.to_thread(svc.webhooks.settle)


async def ingest(hub: Hub, app: str, token: str, request: Request) -> Response:
    """A webhook request: its records committed (or the reason they were not)."""
    svc = hub.apps.get(app)
    node = svc.webhook_by_token(token) if svc is not None else None
    if svc is None or node is None:
        return _error(404, "no webhook here: check the URL (`patterns list webhooks`)")
    limit = int(node.settings.extra.get("max_body_bytes") or DEFAULT_MAX_BODY)
    body = await read_body(request, limit)
    if body is None:
        return _error(413, f"the body is larger than this webhook's limit of {limit} bytes "
                           f"(settings.max_body_bytes)")
    try:
        records = parse_records(body, BodyLimits.of(node.settings.extra))
    except BadBody as exc:
        return _error(exc.status, exc.message)
    _capture(node, request, records)
    respond = bool(node.raw.get("respond"))
    loop = asyncio.get_running_loop()
    key, answer = (svc.responses.expect(loop) if respond else (None, None))
    if key is not None:
        for record in records:
            record["patterns_request_key"] = key
    try:
        count = await svc.webhooks.submit_async(node.id, str(node.webhook_table), records)
    except BadRecords as exc:
        if key is not None:
            svc.responses.forget(key)
        return _error(400, f"the records do not fit the table, nothing was written: {exc}")
    except Exception as exc:  # (Unavailable: the store or the journal fails)
        if key is not None:
            svc.responses.forget(key)
        return _error(503, f"the records could not be stored, nothing was written: {exc}")
    if answer is None or key is None:
        return JSONResponse({"ok": True, "records": count})
    timeout = float(node.settings.extra.get("response_timeout_seconds")
                    or DEFAULT_RESPONSE_TIMEOUT)
    try:
        payload = await asyncio.wait_for(answer, timeout)
    except TimeoutError:
        return _error(504, f"no node answered within {timeout:g} s "
                           f"(settings.response_timeout_seconds); the records were stored")
    finally:
        svc.responses.forget(key)
    return JSONResponse(jsonable(payload))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _capture(node: Any, request: Request, records: list[dict[str, Any]]) -> None:
    """Query-string values and chosen headers, as the webhook's settings ask."""
    extra = node.settings.extra
    if extra.get("webhook_query"):
        query = dict(request.query_params)
        for record in records:
            record["patterns_query"] = query
    wanted = extra.get("webhook_headers") or []
    if isinstance(wanted, str):
        wanted = [wanted]
    if wanted:
        headers = {str(h).lower(): request.headers.get(str(h)) for h in wanted}
        for record in records:
            record["patterns_headers"] = headers
