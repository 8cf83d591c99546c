"""A stream's lag (rows behind) and the rows of an older table version, over HTTP and in the
Studio: a served app whose reader streams a table its writer appends to and then replaces."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from tests.server.conftest import Server, write_app
from tests.studio.conftest import OUTPUT

GRAPH = """
title: Streams app
slug: streams
functions:
  - node_file: gen.py
    id: gen00001
    title: Append events
    trigger: manual
  - node_file: redo.py
    id: redo0001
    title: Replace events
    trigger: manual
  - node_file: reader.py
    id: read0001
    title: Read events
    trigger: manual
stores:
  - table: events
  - table: seen
"""

FILES = {
    "gen.py": """
        from patterns import Table
        Table("events", "w").append([{"n": n} for n in range(30)])
    """,
    "redo.py": """
        from patterns import Table
        Table("events", "w").replace([{"n": 100 + n} for n in range(5)])
    """,
    "reader.py": """
        from patterns import Table
        seen = Table("seen", "w")
        for record in Table("events").as_stream().consume_records():
            seen.append({"n": record["n"]})
    """,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("patterns-home")
    root = write_app(tmp_path_factory.mktemp("apps") / "streams", GRAPH,
                     {k: textwrap.dedent(v) for k, v in FILES.items()})
    served = Server([root], env={"PATTERNS_HOME": str(home)})
    try:
        yield served
    finally:
        if served.proc is not None and served.proc.poll() is None:
            served.kill()


def run(server: Server, node: str) -> None:
    before = len([r for r in server.runs("streams", node) if r["status"] == "succeeded"])
    response = server.post(f"/apps/streams/nodes/{node}/trigger", json={})
    assert response.status_code == 202, response.text
    server.wait_for(lambda: len([r for r in server.runs("streams", node)
                                 if r["status"] == "succeeded"]) > before,
                    timeout=60, what=f"a run of {node} to succeed")


def lag(server: Server, **ask: str) -> list[dict[str, Any]]:
    return list(server.get("/apps/streams/streams", params=ask))


def ask(server: Server, path: str, **params: Any) -> Any:
    """A GET that may fail (the response, whatever its status)."""
    return server.http.get(server.api(path), params=params, timeout=30)


def test_a_streams_lag_in_rows_and_its_reset(server: Server) -> None:
    run(server, "gen00001")
    [stream] = lag(server, node="read0001")
    assert (stream["table"], stream["behind"], stream["rows"], stream["started"]) == \
        ("events", 30, 30, False)
    run(server, "read0001")
    assert lag(server, node="read0001")[0]["behind"] == 0
    run(server, "gen00001")
    [stream] = lag(server, table="events")
    assert (stream["node"], stream["behind"], stream["rows"]) == ("read0001", 30, 60)
    reset = server.post("/apps/streams/nodes/read0001/streams/events/reset", json={})
    assert reset.status_code == 200, reset.text
    assert lag(server, table="events")[0]["behind"] == 60
    run(server, "read0001")
    assert lag(server, table="events")[0]["behind"] == 0
    assert lag(server, table="seen") == []  # nobody streams it
    missing = ask(server, "/apps/streams/streams", node="nobody")
    assert missing.status_code == 404 and "nobody" in missing.text


def test_rows_of_an_older_version(server: Server) -> None:
    if not server.rows("streams", "events"):
        run(server, "gen00001")
    old = server.get("/apps/streams/tables/events")["version"]
    old_rows = server.get("/apps/streams/tables/events/page")["total"]
    run(server, "redo0001")
    current = server.get("/apps/streams/tables/events/page")
    assert current["version"] > old and [r["n"] for r in current["rows"]] == \
        [100, 101, 102, 103, 104]
    before = server.get("/apps/streams/tables/events/page",
                        params={"version": old, "limit": 10})
    assert before["version"] == old and before["total"] == old_rows
    assert [r["n"] for r in before["rows"]] == list(range(10))
    gone = ask(server, "/apps/streams/tables/events/page", version=999)
    assert gone.status_code == 404 and "version 999 of table 'events' does not exist" in \
        gone.text
    # a reader on the version before has every row of the new one ahead of it
    assert lag(server, table="events")[0]["behind"] == 5


def test_the_studio_shows_lag_and_old_versions(browser: Any, server: Server,
                                                request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    if len(server.get("/apps/streams/tables/events/versions")) < 2:
        run(server, "gen00001")
        run(server, "redo0001")
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{server.url}/login?token={server.token}")
        page.goto(f"{server.url}/apps/streams/nodes/read0001")
        streams = page.get_by_label("Streams", exact=True)
        expect(streams).to_contain_text("events")
        expect(streams).to_contain_text("5 rows behind")
        page.goto(f"{server.url}/apps/streams/tables/events")
        consumers = page.get_by_label("Streams consuming this table")
        expect(consumers).to_contain_text("Read events")
        expect(consumers).to_contain_text("5 rows behind")
        page.get_by_text("Versions", exact=True).click()
        versions = page.get_by_label("Versions", exact=True)
        versions.get_by_role("button", name="Show rows").first.click()
        expect(page.get_by_role("status").filter(has_text="Showing version")).to_be_visible()
        rows = page.get_by_label("Rows of events").locator("tbody tr")
        expect(rows.first.locator("td").first).to_have_text("0")
        page.get_by_role("button", name="Back to the current version").click()
        expect(rows.first.locator("td").first).to_have_text("100")
    finally:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT / f"{request.node.name}.png"), full_page=True)
        context.close()


