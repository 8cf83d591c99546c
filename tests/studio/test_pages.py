"""The Studio's pages in chromium, as a user clicks through them (see conftest.py for the app).

`expect(...)` polls until its deadline, so every wait here is bounded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from playwright.sync_api import expect

from tests.server.conftest import Server
from tests.studio.conftest import ROWS

APP = "/apps/studio-test"


def open_card(page: Any, test_id: str, url: str) -> None:
    """Click a canvas card and wait for its page. (The canvas fits the view to the cards
    once they are measured, which can move them just after they first show: a click in that
    moment misses, so it is tried again, up to three times.)"""
    for attempt in range(3):
        page.get_by_test_id(test_id).click()
        try:
            expect(page).to_have_url(url, timeout=3_000)
            return
        except AssertionError:
            if attempt == 2:
                raise


def test_without_the_login_cookie_the_studio_asks_for_the_token(browser: Any,
                                                                  studio_app: Server) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(studio_app.url + "/")
        expect(page.get_by_role("heading", name="Log in to this server")).to_be_visible()
        page.get_by_label("Server token").fill(studio_app.token)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("link", name="Studio test app")).to_be_visible()
    finally:
        context.close()


def test_the_app_list_opens_the_graph(page: Any, studio_app: Server) -> None:
    expect(page).to_have_url(f"{studio_app.url}/")
    page.get_by_role("link", name="Studio test app").click()
    expect(page).to_have_url(f"{studio_app.url}{APP}")
    canvas = page.get_by_label("App graph")
    for title in ("Generate events", "Slow steps", "Editable node", "Events by group",
                  "Incoming hooks"):
        expect(canvas.get_by_text(title, exact=True)).to_be_visible()
    gen = page.get_by_test_id("node-gen00001")
    expect(gen.get_by_text("succeeded")).to_be_visible()
    expect(page.get_by_test_id("store-events").get_by_text(f"{ROWS} rows")).to_be_visible()
    expect(page.locator(".react-flow__edge")).to_have_count(6)  # gen, slow, edit, 2 charts, hook
    # the docs card is rendered markdown, and its script never ran
    expect(canvas.get_by_role("heading", name="Read me")).to_be_visible()
    assert page.evaluate("window.__pwned") is None


def test_edit_and_save_a_node(page: Any, studio_app: Server) -> None:
    root = studio_app.roots[0]
    page.goto(f"{studio_app.url}{APP}/nodes/edit0001")
    panel = page.get_by_label("Node panel")
    expect(panel.get_by_role("heading", name="Editable node")).to_be_visible()
    editor = panel.locator(".cm-content")
    expect(editor).to_contain_text('edited.append({"version": 1})')
    # a valid change is written to the file
    editor.get_by_text('edited.append({"version": 1})').click()
    page.keyboard.press("End")
    page.keyboard.type("\nprint('saved from the Studio')")
    panel.get_by_role("button", name="Save").click()
    expect(panel.get_by_role("status")).to_have_text("Saved.")
    assert "print('saved from the Studio')" in (root / "editable.py").read_text()
    # a syntax error is refused with its line, and the file keeps the valid version
    editor.get_by_text("print('saved from the Studio')").click()
    page.keyboard.press("End")
    page.keyboard.type("\ndef broken(:")
    panel.get_by_role("button", name="Save").click()
    expect(panel.get_by_role("status")).to_contain_text("Not saved")
    problems = panel.get_by_label("Problems")
    expect(problems).to_contain_text("line 7: syntax error")
    expect(panel.locator(".cm-lintRange-error")).to_have_count(1)
    assert "def broken" not in (root / "editable.py").read_text()


def test_run_a_node_from_its_form_and_watch_it_live(page: Any, studio_app: Server) -> None:
    page.goto(f"{studio_app.url}{APP}/nodes/slow0001")
    panel = page.get_by_label("Node panel")
    panel.get_by_label("label").fill("from-the-form")
    card = page.get_by_test_id("node-slow0001")
    panel.get_by_role("button", name="Run").click()
    # while it runs: the card says so, and the first line is in the log before the second
    expect(card.get_by_text("running")).to_be_visible()
    log = panel.get_by_label("Run log")
    expect(log).to_contain_text("step one for from-the-form")
    expect(log).not_to_contain_text("step two")
    expect(card.get_by_text("succeeded")).to_be_visible(timeout=30_000)
    expect(log).to_contain_text("step two done for from-the-form")
    expect(page.get_by_test_id("store-slow_out").get_by_text("1 row", exact=True)).to_be_visible()
    assert [r["label"] for r in studio_app.rows("studio-test", "slow_out")] == ["from-the-form"]


def test_run_from_a_form_card_on_the_canvas(page: Any, studio_app: Server) -> None:
    page.goto(f"{studio_app.url}{APP}")
    form = page.get_by_role("form", name="Run Slow steps")
    form.get_by_label("label").fill("from-the-card")
    expect(form.get_by_label("label")).to_have_value("from-the-card")
    form.get_by_role("button", name="Run").click()
    card = page.get_by_test_id("node-slow0001")
    expect(card.get_by_text("running")).to_be_visible()
    expect(card.get_by_text("succeeded")).to_be_visible(timeout=30_000)
    expect(page).to_have_url(f"{studio_app.url}{APP}")  # the card's form did not open it
    assert "from-the-card" in [r["label"] for r in studio_app.rows("studio-test", "slow_out")]


def test_keyboard_opens_a_card_and_the_panel_shows_state(page: Any, studio_app: Server
                                                         ) -> None:
    page.goto(f"{studio_app.url}{APP}")
    card = page.get_by_label("python node Generate events")
    for attempt in range(3):  # (as open_card: the canvas may re-render the card as it fits,
        try:                  # taking the focus away from the old one)
            card.focus()
            expect(card).to_be_focused()
            page.keyboard.press("Enter")
            expect(page).to_have_url(f"{studio_app.url}{APP}/nodes/gen00001", timeout=3_000)
            break
        except AssertionError:
            if attempt == 2:
                raise
    panel = page.get_by_label("Node panel")
    expect(panel.get_by_label("Node state")).to_contain_text(f'"generated": {ROWS}')
    page.on("dialog", lambda dialog: dialog.accept())
    panel.get_by_role("button", name="Reset state").click()
    expect(panel.get_by_text("No state kept.")).to_be_visible()
    assert studio_app.get("/apps/studio-test/nodes/gen00001/state") == {}


def test_page_sort_and_filter_a_table(page: Any, studio_app: Server) -> None:
    page.goto(f"{studio_app.url}{APP}")
    open_card(page, "store-events", f"{studio_app.url}{APP}/tables/events")
    expect(page.get_by_text(f"{ROWS} rows · version")).to_be_visible()
    expect(page.get_by_label("Writers and readers")).to_have_text(
        "written by Generate events · read by Events by group, Not a chart")
    rows = page.get_by_label("Rows of events").locator("tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first.locator("td").first).to_have_text("0")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Page 2")).to_be_visible()
    expect(rows.first.locator("td").first).to_have_text("50")
    for _ in range(3):
        page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Page 5")).to_be_visible()
    expect(rows.last.locator("td").first).to_have_text(str(ROWS - 1))
    expect(page.get_by_role("button", name="Next")).to_be_disabled()
    page.get_by_role("button", name="Previous").click()
    expect(rows.first.locator("td").first).to_have_text("150")
    # sorting starts over; twice sorts descending
    page.get_by_role("button", name="n", exact=True).click()
    page.get_by_role("button", name="n ▲").click()
    expect(page.get_by_text("Page 1")).to_be_visible()
    expect(rows.first.locator("td").first).to_have_text(str(ROWS - 1))
    # filtering
    page.get_by_label("Column").select_option("name")
    page.get_by_label("Test").select_option("contains")
    page.get_by_label("Value").fill("item 12")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(10)  # item 120 to item 129
    expect(rows.first.locator("td").first).to_have_text("129")
    page.get_by_text("Versions").click()
    expect(page.get_by_label("Versions").locator("tbody tr")).to_have_count(1)
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("n,name,grp") and len(lines) == ROWS + 1


def test_runs_list_and_a_failed_run(page: Any, studio_app: Server) -> None:
    response = studio_app.post("/apps/studio-test/nodes/brok0001/trigger", json={})
    assert response.status_code == 202, response.text
    studio_app.wait_for(lambda: any(r["status"] == "failed"
                                    for r in studio_app.runs("studio-test", "brok0001")),
                        what="the broken node to fail")
    page.goto(f"{studio_app.url}{APP}/runs")
    table = page.locator("table.grid tbody")
    expect(table).to_contain_text("Generate events")
    expect(table).to_contain_text("Broken node")
    page.get_by_label("Status").select_option("failed")
    expect(table.locator("tr")).to_have_count(1)
    failed = next(r for r in studio_app.runs("studio-test", "brok0001")
                  if r["status"] == "failed")
    # the run's short id, as the CLI shows it and `--run` takes it (not its time prefix)
    expect(table.get_by_role("link")).to_have_text(failed["short_id"])
    table.get_by_role("link").click()
    expect(page.get_by_role("heading", name=f"Run {failed['short_id']}")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("the API said no")
    expect(page.get_by_role("group").locator("pre")).to_contain_text(
        'RuntimeError: the API said no')
    expect(page.get_by_label("Run log")).to_contain_text("about to fail")
    expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
    before = len(studio_app.runs("studio-test", "brok0001"))
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_have_text("A new run is queued.")
    studio_app.wait_for(lambda: len(studio_app.runs("studio-test", "brok0001")) > before,
                        what="the retried run")
    # the generator's run page: rows written per table
    page.goto(f"{studio_app.url}{APP}/runs?node=gen00001")
    page.locator("table.grid tbody").get_by_role("link").first.click()
    expect(page.get_by_text(f"events: {ROWS}")).to_be_visible()


def test_chart_docs_and_dashboard(page: Any, studio_app: Server) -> None:
    page.goto(f"{studio_app.url}{APP}")
    open_card(page, "node-chart001", f"{studio_app.url}{APP}/charts/chart001")
    chart = page.get_by_test_id("chart-chart001")
    expect(chart.locator("svg .mark-rect path")).to_have_count(3)  # groups a, b, c
    page.goto(f"{studio_app.url}{APP}/charts/chart002")
    expect(page.get_by_role("alert")).to_contain_text("not valid Vega-Lite")
    page.goto(f"{studio_app.url}{APP}/docs/0")
    expect(page.locator("article").get_by_role("heading", name="Read me")).to_be_visible()
    expect(page.locator("article strong")).to_have_text("generated")
    assert page.evaluate("window.__pwned") is None
    page.get_by_role("link", name="Dashboards").click()
    page.get_by_role("link", name="Overview").click()
    board = page.locator(".dashboard")
    expect(board.locator("svg .mark-rect path")).to_have_count(3)
    expect(board.get_by_role("alert")).to_contain_text('names node "missing.json"')


def test_secrets_and_webhooks(page: Any, studio_app: Server) -> None:
    page.goto(f"{studio_app.url}/secrets")
    form = page.get_by_role("form", name="New secret")
    form.get_by_label("Name").fill("studio_secret")
    form.get_by_label("Value").fill("do-not-show-me")
    form.get_by_role("button", name="Create").click()
    expect(page.locator(".secrets")).to_contain_text("studio_secret")
    assert "do-not-show-me" not in page.content()
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete secret studio_secret").click()
    expect(page.locator(".secrets")).not_to_contain_text("studio_secret")
    # the webhook's URL takes records, and the canvas shows them arrive
    page.goto(f"{studio_app.url}{APP}/webhooks")
    url = page.get_by_test_id("webhook-url").inner_text()
    expect(page.get_by_text(f"curl -X POST {url}")).to_be_visible()
    page.get_by_role("link", name="Graph").click()
    expect(page.get_by_test_id("store-hooks").get_by_text("no rows yet")).to_be_visible()
    assert requests.post(url, json=[{"a": 1}, {"a": 2}], timeout=30).status_code == 200
    expect(page.get_by_test_id("store-hooks").get_by_text("2 rows")).to_be_visible()


def test_add_a_shared_file_and_refuse_a_broken_graph(page: Any, studio_app: Server) -> None:
    root = studio_app.roots[0]
    page.goto(f"{studio_app.url}{APP}")
    page.get_by_role("link", name="Files").click()
    files = page.locator("section ul")
    expect(files.get_by_role("link", name="graph.yml")).to_be_visible()
    expect(files.get_by_role("link", name="gen.py")).to_be_visible()
    form = page.get_by_role("form", name="New file")
    form.get_by_label("New file").fill("lib/shared.py")
    form.get_by_role("button", name="Create").click()
    expect(page.get_by_text("(new file)")).to_be_visible()
    page.locator(".cm-content").click()
    page.keyboard.type("GREETING = 'hello'")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    assert (root / "lib" / "shared.py").read_text() == "GREETING = 'hello'"
    # a graph.yml that no longer parses: refused, with where, and the file as it was
    graph = (root / "graph.yml").read_text()
    page.goto(f"{studio_app.url}{APP}/files/graph.yml")
    page.locator(".cm-content").get_by_text("stores:", exact=True).click()
    page.keyboard.press("Home")
    page.keyboard.type("  - node_file: nowhere.py\n")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Not saved: graph.yml")
    expect(page.get_by_role("status")).to_contain_text("YAML syntax error")
    assert (root / "graph.yml").read_text() == graph
