"""A subgraph on the canvas: one card while collapsed; expanded, its nodes and the table only
they use inside a frame, with edges to the rest of the app (tests/apps/original_subgraph)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import Server
from tests.studio.conftest import OUTPUT

APPS = Path(__file__).resolve().parents[1] / "apps"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = Path(shutil.copytree(APPS / "original_subgraph",
                                tmp_path_factory.mktemp("apps") / "original_subgraph"))
    served = Server([root], env={"PATTERNS_HOME": str(tmp_path_factory.mktemp("home"))})
    try:
        yield served
    finally:
        if served.proc is not None and served.proc.poll() is None:
            served.kill()


def test_a_subgraph_expands_and_collapses(browser: Any, server: Server,
                                          request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    graph = server.get(f"/apps/{slug(server)}/graph")
    members = {n["id"] for n in graph["nodes"] if n["parent"] == "cleaning"}
    assert len(members) == 3
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{server.url}/login?token={server.token}&next=/apps/{slug(server)}")
        expect(page.get_by_test_id("node-cleaning")).to_be_visible()
        for member in members:
            expect(page.get_by_test_id(f"node-{member}")).to_have_count(0)
        expect(page.get_by_test_id("store-cleaning__deduped")).to_have_count(0)
        expect(page.get_by_test_id("store-counted")).to_be_visible()  # (the subgraph's output)
        page.get_by_role("button", name="Expand Cleaning").click()
        frame = page.get_by_test_id("group-cleaning")
        expect(frame).to_be_visible()
        expect(page.get_by_test_id("node-cleaning")).to_have_count(0)
        outer = frame.bounding_box()
        for member in [*(f"node-{m}" for m in members), "store-cleaning__deduped"]:
            card = page.get_by_test_id(member)
            expect(card).to_be_visible()
            box = card.bounding_box()
            assert outer["x"] <= box["x"] and box["x"] + box["width"] <= outer["x"] + outer["width"]
            assert outer["y"] <= box["y"] and box["y"] + box["height"] <= outer["y"] + outer["height"]
        edges = page.locator(".react-flow__edge")
        expect(edges).not_to_have_count(0)
        OUTPUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT / f"{request.node.name}-expanded.png"))
        page.get_by_role("button", name="Collapse Cleaning").click()
        expect(page.get_by_test_id("node-cleaning")).to_be_visible()
        expect(page.get_by_test_id("group-cleaning")).to_have_count(0)
    finally:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT / f"{request.node.name}.png"), full_page=True)
        context.close()


def slug(server: Server) -> str:
    return str(server.get("/apps")[0]["slug"])
