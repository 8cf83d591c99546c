"""Bad input shown in place (a table of 500 columns, a cell of 5 MB of text), and the Studio
readable on a 1366x768 laptop screen and a 2560x1440 wide one: no page of it scrolls
sideways as a whole (a wide table scrolls in its own box). Screenshots of every page at both
sizes go to the test output folder."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from tests.server.conftest import Server, write_app
from tests.studio.conftest import OUTPUT

GRAPH = """
title: Bad input app
slug: bad
functions:
  - node_file: wide.py
    id: wide0001
    title: Write a wide table
  - node_file: bigcell.py
    id: cell0001
    title: Write a huge cell
  - node_file: edit.py
    id: edit0001
    title: Edited twice
    trigger: manual
  - node_file: by_n.json
    id: chart001
    title: Wide by first column
    chart_input: wide
stores:
  - table: wide
  - table: cells
dashboards:
  - title: Board
    items:
      - {node: by_n.json, x: 0, y: 0, w: 6}
      - {table: wide, x: 6, y: 0, w: 6}
"""

FILES = {
    "wide.py": """
        from patterns import Table
        Table("wide", "w").append([{f"c{i:03d}": i * row for i in range(500)}
                                   for row in range(3)])
    """,
    "bigcell.py": """
        from patterns import Table
        Table("cells", "w").append({"n": 1, "text": "x" * 5_000_000})
    """,
    "edit.py": """
        print("first")
    """,
    "by_n.json": """
        {"mark": "bar", "encoding": {"x": {"field": "c001", "type": "ordinal"},
                                     "y": {"field": "c002", "type": "quantitative"}}}
    """,
}

SCREENS = {"laptop": (1366, 768), "wide": (2560, 1440)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("patterns-home")
    root = write_app(tmp_path_factory.mktemp("apps") / "bad", GRAPH,
                     {k: textwrap.dedent(v) for k, v in FILES.items()})
    served = Server([root], env={"PATTERNS_HOME": str(home)})
    try:
        served.wait_for(lambda: len(served.rows("bad", "wide")) == 3 and
                        served.rows("bad", "cells"), timeout=90, what="both tables written")
        yield served
    finally:
        if served.proc is not None and served.proc.poll() is None:
            served.kill()


@pytest.fixture
def open_page(browser: Any, server: Server, request: pytest.FixtureRequest
              ) -> Iterator[Any]:
    """``open_page(width, height)``: a logged-in page of that size; each page made gets a
    screenshot when the test ends."""
    made: list[tuple[Any, Any, str]] = []
    errors: list[str] = []

    def make(width: int = 1366, height: int = 768, label: str = "") -> Any:
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{server.url}/login?token={server.token}")
        made.append((context, page, label or f"{width}x{height}"))
        return page

    yield make
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for context, page, label in made:
        page.screenshot(path=str(OUTPUT / f"{request.node.name}-{label}.png"), full_page=True)
        context.close()
    assert not errors, f"the page threw: {errors}"


def overflow(page: Any) -> int:
    """How many pixels the page as a whole is wider than the window (0: none)."""
    return int(page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def test_a_table_of_500_columns(open_page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    page = open_page()
    page.goto(f"{server.url}/apps/bad/tables/wide")
    rows = page.get_by_label("Rows of wide")
    expect(rows.locator("tbody tr")).to_have_count(3)
    expect(rows.locator("thead th")).to_have_count(501)  # and the id
    expect(page.get_by_role("note")).to_contain_text("500 columns")
    expect(rows.locator("tbody tr").nth(2).locator("td").nth(499)).to_have_text(str(2 * 499))
    assert overflow(page) == 0
    box = page.locator(".table-scroll")
    assert box.evaluate("e => e.scrollWidth > e.clientWidth")  # it scrolls in its own box
    page.get_by_role("button", name="c499").click()  # sorting on the last column works
    expect(rows.locator("tbody tr").first.locator("td").first).to_have_text("0")


def test_a_cell_of_5_mb_of_text(open_page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    page = open_page()
    page.goto(f"{server.url}/apps/bad/tables/cells")
    cell = page.get_by_label("Rows of cells").locator("tbody tr").first.locator("td").nth(1)
    expect(cell).to_contain_text("5,000,000 characters")
    expect(cell).to_contain_text("download")
    assert len(cell.inner_text()) < 1_000
    assert overflow(page) == 0


def test_a_save_over_a_file_changed_on_disk_is_refused(open_page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    source = server.get("/apps/bad/nodes/edit0001/source")
    path = server.roots[0] / "edit.py"
    # over HTTP: the version the edit began from no longer matches
    path.write_text('print("changed on disk")\n')
    refused = server.http.put(server.api("/apps/bad/nodes/edit0001/source"), timeout=30,
                              json={"text": 'print("mine")\n', "base": source["version"]})
    assert refused.status_code == 409 and "edit.py changed on disk" in refused.json()["error"]
    assert path.read_text() == 'print("changed on disk")\n'  # nothing lost
    # in the Studio: open, change on disk, save -> the message, then reload shows the disk's
    page = open_page()
    page.goto(f"{server.url}/apps/bad/nodes/edit0001")
    expect(page.locator(".cm-content")).to_contain_text("changed on disk")
    path.write_text('print("changed again")\n')
    page.locator(".cm-content").click()
    page.keyboard.press("End")
    page.keyboard.type("  # mine")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("edit.py changed on disk since you opened it")
    assert path.read_text() == 'print("changed again")\n'
    page.get_by_role("button", name="Reload from disk").click()
    expect(page.locator(".cm-content")).to_contain_text("changed again")
    expect(page.get_by_role("alert")).to_have_count(0)
    # an edit of the reloaded file saves, and a second one after it too (its new version)
    for word in ("one", "two"):
        page.locator(".cm-content").click()
        page.keyboard.press("Control+End")
        page.keyboard.type(f"# {word}\n")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
        server.wait_for(lambda word=word: f"# {word}" in path.read_text(), what="the save")


@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_page_is_readable_on_a_laptop_and_a_wide_screen(open_page: Any, server: Server,
                                                              screen: str) -> None:
    from playwright.sync_api import expect

    width, height = SCREENS[screen]
    pages = {"graph": ("/apps/bad", ".react-flow__node"),
             "node": ("/apps/bad/nodes/wide0001", ".cm-content"),
             "tables": ("/apps/bad/tables", "table.grid"),
             "wide-table": ("/apps/bad/tables/wide", "table.rows tbody tr"),
             "runs": ("/apps/bad/runs", "table.grid tbody tr"),
             "chart": ("/apps/bad/charts/chart001", "svg"),
             "dashboard": ("/apps/bad/dashboards/0", ".dashboard svg"),
             "files": ("/apps/bad/files", "section ul a"),
             "secrets": ("/secrets", "form")}
    for name, (path, shown) in pages.items():
        page = open_page(width, height, f"{screen}-{name}")
        page.goto(f"{server.url}{path}")
        expect(page.locator(shown).first).to_be_visible()
        assert overflow(page) == 0, f"{name} at {width}x{height} scrolls sideways"
        expect(page.get_by_role("link", name="Patterns Studio")).to_be_in_viewport()
