"""Webhook requests over HTTP: ``POST /webhooks/{app}/{token}``, parsed and checked here,
then journaled by the app's :class:`~patterns.server.webhooks.WebhookIntake` before the
answer (see docs/server.md).

:class:`WebhookFront` wraps the whole API app and serves webhook requests in plain ASGI,
ahead of FastAPI, Starlette and their middleware (a webhook under load answers thousands of
requests a second, and that stack costs more per request than everything else a webhook
does). It makes the one check the API's :class:`~patterns.server.security.WebSafety` makes
of a webhook request — the Host allowlist, with the same answer; the token in the URL is the
key, and no Origin or server token is asked for — and answers every error with the same
``{"error": "..."}`` as the API. :class:`WebhookFastPath` holds an API request about an app
until the webhook records acknowledged before it are committed (so a client reads what it
was told is stored).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from patterns.graph.manifest import jsonable
from patterns.server.answers import BadRecords
from patterns.server.bodies import BadBody, BodyLimits, parse_records
from patterns.server.hub import Hub
from patterns.server.security import Access, Receive, Scope, Send, host_refusal

log = logging.getLogger("patterns.server")

DEFAULT_MAX_BODY = 1_000_000
DEFAULT_RESPONSE_TIMEOUT = 30.0
_JSON_HEADER = (b"content-type", b"application/json")


class WebhookFront:
    """ASGI, outermost: ``POST /webhooks/{app}/{token}`` straight to :func:`serve_webhook`
    after the Host check; every other request (and the lifespan) goes on to ``api``."""

    def __init__(self, api: Any, hub: Hub, access: Access) -> None:
        self.api = api
        self.hub = hub
        # (parsing an address costs microseconds; a webhook under load repeats one Host)
        self._host_ok = functools.lru_cache(maxsize=256)(access.host_allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith("/webhooks/"):
                parts = path.split("/")
                if len(parts) == 4 and parts[2] and parts[3]:
                    refused = host_refusal(_host_header(scope), self._host_ok)
                    if refused is not None:
                        await send_json(send, refused[0], {"error": refused[1]})
                        return
                    await serve_webhook(self.hub, parts[2], parts[3], scope, receive, send)
                    return
        await self.api(scope, receive, send)


class WebhookFastPath:
    """ASGI middleware (inside the API's :class:`WebSafety`): an API request about an app
    waits until the app's acknowledged webhook records are committed."""

    def __init__(self, app: Any, hub: Hub) -> None:
        self.app = app
        self.hub = hub

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            parts = scope["path"].split("/")
            if len(parts) > 4 and parts[1:4] == ["api", "v1", "apps"]:
                await settle(self.hub, parts[4])
        await self.app(scope, receive, send)


class WebhookResponse(Response):
    """What the API's documented webhook route returns: the request served by
    :func:`serve_webhook` (the route is reached only when :class:`WebhookFront` is not in
    front, e.g. an app built by ``create_app`` alone)."""

    def __init__(self, hub: Hub, app: str, token: str) -> None:
        super().__init__()
        self.target = (hub, app, token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub, app, token = self.target
        await serve_webhook(hub, app, token, scope, receive, send)


async def settle(hub: Hub, app: str) -> None:
    """Wait until the app's acknowledged webhook records are committed (at once if so)."""
    svc = hub.apps.get(app)
    if svc is not None and not svc.webhooks.settled():
        await asyncio.to_thread(svc.webhooks.settle)


async def serve_webhook(hub: Hub, app: str, token: str, scope: Scope, receive: Receive,
                        send: Send) -> None:
    """A webhook request answered: its records durable (or the reason they are not)."""
    try:
        status, doc = await _ingest(hub, app, token, scope, receive)
    except _Gone:
        return  # the client went away before its body arrived: nothing stored, nobody to tell
    except Exception as exc:  # (a bug: the same answer as the API's for a failure)
        log.exception("POST %s failed", scope.get("path"))
        status, doc = 500, {"error": f"the server failed: {type(exc).__name__}: {exc}"}
    await send_json(send, status, doc)


async def _ingest(hub: Hub, app: str, token: str, scope: Scope,
                  receive: Receive) -> tuple[int, Any]:
    """(200, the answer) or (status, {"error": why}); the answer of a plain webhook is made
    here, already encoded."""
    svc = hub.apps.get(app)
    node = svc.webhook_by_token(token) if svc is not None else None
    if svc is None or node is None:
        return _error(404, "no webhook here: check the URL (`patterns list webhooks`)")
    extra = node.settings.extra
    limit = int(extra.get("max_body_bytes") or DEFAULT_MAX_BODY)
    body = await _read_body(scope, receive, limit)
    if body is None:
        return _error(413, f"the body is larger than this webhook's limit of {limit} bytes "
                           f"(settings.max_body_bytes)")
    try:
        records = parse_records(body, BodyLimits.of(extra))
    except BadBody as exc:
        return _error(exc.status, exc.message)
    if extra.get("webhook_query") or extra.get("webhook_headers"):
        _capture(extra, Request(scope), records)
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
        return 200, b'{"ok":true,"records":%d}' % count
    timeout = float(extra.get("response_timeout_seconds") or DEFAULT_RESPONSE_TIMEOUT)
    try:
        payload = await asyncio.wait_for(answer, timeout)
    except TimeoutError:
        return _error(504, f"no node answered within {timeout:g} s "
                           f"(settings.response_timeout_seconds); the records were stored")
    finally:
        svc.responses.forget(key)
    return 200, jsonable(payload)


def _error(status: int, message: str) -> tuple[int, dict[str, str]]:
    return status, {"error": message}


class _Gone(Exception):
    """The client disconnected while its body was being read."""


def _host_header(scope: Scope) -> str:
    """The request's Host header, lower-cased; "" when it has none or several."""
    found = ""
    seen = 0
    for name, value in scope["headers"]:
        if name == b"host":  # (ASGI servers give header names lower-cased)
            found = value.decode("latin-1").strip().lower()
            seen += 1
    return found if seen == 1 else ""


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The body, or None past ``limit`` bytes (a larger Content-Length: before reading)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Gone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_json(send: Send, status: int, doc: Any) -> None:
    """An answer of ``doc`` as JSON (encoded as the API's JSONResponse encodes it; bytes:
    encoded already)."""
    body = doc if isinstance(doc, bytes) else _encode(doc)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", b"%d" % len(body)), _JSON_HEADER]})
    await send({"type": "http.response.body", "body": body})


def error_body(message: str) -> bytes:
    """``{"error": message}`` encoded as :func:`send_json` encodes it."""
    return _encode({"error": message})


def _encode(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode("utf-8")


async def read_body(request: Request, limit: int) -> bytes | None:
    """A Starlette request's body, or None past ``limit`` bytes (API uploads)."""
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


def _capture(extra: Mapping[str, Any], request: Request, records: list[dict[str, Any]]) -> None:
    """Query-string values and chosen headers, as the webhook's settings ask."""
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
