"""The Studio shows which nodes need configuration, and what they need."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.compat.conftest import copy_app
from tests.server.conftest import Server, serve  # noqa: F401  (a real `patterns serve`)


def test_the_canvas_and_the_node_panel_say_what_a_node_needs(
        browser: Any, serve: Callable[..., Server], tmp_path: Path) -> None:  # noqa: F811
    server = serve(copy_app("needs_config", tmp_path))
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{server.url}/login?token={server.token}")
        page.goto(f"{server.url}/apps/partly-configured")
        card = page.get_by_test_id("node-par0c3d4")
        expect(card.get_by_label("needs configuration")).to_be_visible()
        expect(page.get_by_test_id("node-src0a1b2").get_by_label("needs configuration")) \
            .to_have_count(0)
        page.goto(f"{server.url}/apps/partly-configured/nodes/par0c3d4")
        needs = page.get_by_role("list", name="Needs configuration")
        expect(needs).to_contain_text("graph.yml:5")
        expect(needs).to_contain_text("needs a value for parameter 'api_base'")
        expect(needs).to_contain_text("--param api_base=VALUE")
    finally:
        context.close()
