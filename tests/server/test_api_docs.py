"""The API docs page works offline (patterns/server/api_docs.py), and every error the API
gives has its one shape, ``{"error": message}`` (patterns/server/error_bodies.py).

The page is loaded in the real Chromium (driven by Playwright, as in tests/studio/) from a
real `patterns serve` on loopback, with every request to anywhere else refused.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.server.conftest import Server, write_app

GRAPH = """
title: Docs app
slug: docs
functions:
  - node_file: hello.py
    id: hello001
    trigger: manual
  - webhook: inbox
    id: inbox001
stores:
  - table: inbox
"""


@pytest.fixture
def server(tmp_path: Path, serve: Callable[..., Server]) -> Server:
    return serve(write_app(tmp_path / "docs", GRAPH, {"hello.py": "print('hello')\n"}))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (scripts/test installs it with apt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        found = pw.chromium.launch(executable_path=chromium,
                                   args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield found
        found.close()


def test_the_docs_page_renders_the_operations_with_no_network_beyond_loopback(
        server: Server, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    outside: list[str] = []
    problems: list[str] = []

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{server.url}/login?token={server.token}&next=/api/v1/docs")
        assert urlsplit(page.url).path == "/api/v1/docs"
        page.wait_for_selector(".opblock-summary-path")
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/api/v1/apps/{app}/runs" in p for p in paths), paths
        assert any("/api/v1/apps/{app}/nodes/{node}/trigger" in p for p in paths), paths
        assert page.locator(".info .title").inner_text().startswith("Patterns")
    finally:
        context.close()
    assert not outside, f"the docs page reached outside loopback: {outside}"
    assert not problems, f"the docs page had errors (a CSP violation?): {problems}"


def test_the_docs_page_is_served_under_the_content_security_policy(server: Server) -> None:
    page = server.http.get(f"{server.url}/api/v1/docs", timeout=30)
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "cdn." not in page.text and "<script>" not in page.text  # no CDN, nothing inline
    bundle = server.http.get(f"{server.url}/api/v1/docs/assets/swagger-ui-bundle.js", timeout=30)
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text
    assert bundle.headers["Content-Type"].startswith("text/javascript")


def error_of(response: requests.Response, status: int) -> str:
    """The message of an error answer, after checking its status and its shape."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str), body
    return str(body["error"])


def test_unknown_routes_wrong_methods_and_bad_bodies_have_the_one_error_shape(
        server: Server) -> None:
    http, api = server.http, server.api
    assert "nothing at /api/v1/nope" in error_of(http.get(api("/nope"), timeout=30), 404)
    # (a POST to an unknown path is a 404 too, not "405: GET only" from the Studio's pages)
    assert "nothing at /api/v1/nope" in error_of(http.post(api("/nope"), timeout=30), 404)
    assert "no app 'missing'" in error_of(http.get(api("/apps/missing/nodes"), timeout=30), 404)
    assert "no API docs asset" in error_of(
        http.get(api("/docs/assets/nothing.js"), timeout=30), 404)

    wrong = http.delete(api("/apps"), timeout=30)
    message = error_of(wrong, 405)
    assert "DELETE is not allowed on /api/v1/apps" in message and "GET" in message
    assert wrong.headers["Allow"] == "GET"
    put = http.put(api("/apps/docs/nodes/hello.py/trigger"), json={}, timeout=30)
    assert "it takes POST" in error_of(put, 405)

    trigger = api("/apps/docs/nodes/hello.py/trigger")
    bad = error_of(http.post(trigger, json={"parameters": [1, 2]}, timeout=30), 422)
    assert "parameters" in bad
    not_json = http.post(trigger, data=b"{not json", timeout=30,
                         headers={"Content-Type": "application/json"})
    error_of(not_json, 422)
    limit = error_of(http.get(api("/apps/docs/runs?limit=0"), timeout=30), 422)
    assert "limit" in limit
    status = error_of(http.get(api("/apps/docs/runs?status=exploded"), timeout=30), 422)
    assert "status" in status and "cancelled" in status  # (the statuses are an enum)

    # Without the token, and at a webhook that does not exist: the same shape.
    error_of(requests.get(api("/apps"), timeout=30), 401)
    error_of(requests.post(f"{server.url}/webhooks/docs/not-a-token", json={}, timeout=30), 404)
