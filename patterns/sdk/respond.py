"""``respond_to_request``: answer a response webhook from a node."""

from __future__ import annotations

from typing import Any

from patterns.sdk._context import node_run


def respond_to_request(request_key: str, payload: Any) -> None:
    """Send ``payload`` (JSON) as the HTTP reply to the webhook request ``request_key``
    (the ``patterns_request_key`` field of the record the webhook wrote)."""
    node_run().client.respond(request_key, payload)
