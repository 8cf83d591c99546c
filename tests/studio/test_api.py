"""The Studio's side of the server over HTTP: its pages and assets, the endpoints it added
(keyset table pages, downloads, source saves) and the rules it lives under (docs/server.md)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import requests
from fastapi import FastAPI

from patterns.server.studio import mount_studio
from tests.server.conftest import Server
from tests.studio.conftest import ROWS

EVENTS = "/apps/studio-test/tables/events"


def test_pages_are_the_app_with_a_strict_policy_and_assets_are_cached(studio_app: Server
                                                                     ) -> None:
    page = requests.get(f"{studio_app.url}/apps/studio-test/runs", timeout=30)
    assert page.status_code == 200 and '<div id="root">' in page.text
    assert page.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-eval" not in page.headers["content-security-policy"]
    asset = next(src.split('"')[0] for src in page.text.split('src="')[1:]
                 if src.startswith("/assets/"))
    bundle = requests.get(f"{studio_app.url}{asset}", timeout=30)
    assert bundle.status_code == 200 and "immutable" in bundle.headers["cache-control"]
    for path in ("/assets/nothing.js", "/assets/%2e%2e/%2e%2e/api.py", "/api/v1/nothing"):
        answer = studio_app.http.get(f"{studio_app.url}{path}", timeout=30)
        assert answer.status_code == 404 and "error" in answer.json(), path


def test_a_copy_without_the_built_studio_says_how_to_build_it(tmp_path: Path) -> None:
    api = FastAPI()
    mount_studio(api, tmp_path / "studio_dist")
    status, body = asyncio.run(_get(api, "/apps/x"))
    assert status == 503
    assert "npm ci &amp;&amp; npm run build" in body and "/api/v1/docs" in body


async def _get(app: Any, path: str) -> tuple[int, str]:
    """One GET straight through the ASGI app (no server needed for a page of static text)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(b"host", b"127.0.0.1")], "scheme": "http",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "root_path": "",
             "http_version": "1.1", "asgi": {"version": "3.0"}}
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return next(m["status"] for m in sent if m["type"] == "http.response.start"), body.decode()


def test_keyset_pages_cover_every_row_once_in_order(studio_app: Server) -> None:
    seen: list[dict[str, object]] = []
    after = None
    while True:
        query = "?sort=grp&desc=true&limit=7" + (f"&after={after}" if after else "")
        page = studio_app.get(f"{EVENTS}/page{query}")
        assert page["total"] == ROWS
        seen.extend(page["rows"])
        after = page["next"]
        if after is None:
            break
    assert len({r["patterns_id"] for r in seen}) == ROWS == len(seen)
    groups = [r["grp"] for r in seen]
    assert groups == sorted(groups, reverse=True) and groups[0] == "c" and groups[-1] == "a"
    within_c = [r["patterns_id"] for r in seen if r["grp"] == "c"]
    assert within_c == sorted(within_c)  # ties broken by id, so no row is skipped


def test_filters_compare_in_the_columns_type_and_bad_asks_are_clear(studio_app: Server
                                                                    ) -> None:
    page = studio_app.get(f"{EVENTS}/page?where=n&op=gt&value=240")
    assert [r["n"] for r in page["rows"]] == list(range(241, ROWS))
    for query, words in (("where=n&op=gt&value=many", "cannot filter table 'events' on 'n'"),
                         ("sort=nope", "no column 'nope'"),
                         ("after=%%%", "page cursor"),
                         ("where=n&op=like&value=1", "unknown filter operator")):
        answer = studio_app.http.get(studio_app.api(f"{EVENTS}/page?{query}"), timeout=30)
        assert answer.status_code == 400 and words in answer.json()["error"], answer.text


def test_downloads_hold_every_row(studio_app: Server) -> None:
    def download(fmt: str) -> bytes:
        answer = studio_app.http.get(studio_app.api(f"{EVENTS}/download?format={fmt}"),
                                     timeout=30)
        assert answer.status_code == 200, answer.text
        assert f'filename="events.{fmt}"' in answer.headers["content-disposition"]
        return answer.content

    lines = download("jsonl").decode().splitlines()
    assert len(lines) == ROWS and json.loads(lines[3])["n"] == 3
    table = pq.read_table(io.BytesIO(download("parquet")))
    assert table.num_rows == ROWS and table.column("name")[0].as_py() == "item 000"


def test_a_cookie_save_without_the_studio_header_is_refused(studio_app: Server) -> None:
    login = requests.get(f"{studio_app.url}/login?token={studio_app.token}",
                         allow_redirects=False, timeout=30)
    cookies = login.cookies
    path = studio_app.api("/apps/studio-test/nodes/edit0001/source")
    before = (studio_app.roots[0] / "editable.py").read_text()
    forged = requests.put(path, data='{"text": "x = 1"}', cookies=cookies, timeout=30,
                          headers={"Content-Type": "text/plain"})
    assert forged.status_code == 403
    assert (studio_app.roots[0] / "editable.py").read_text() == before
    studio = requests.get(path, cookies=cookies, timeout=30)
    assert studio.status_code == 200 and studio.json()["text"] == before
    webhook = requests.put(studio_app.api("/apps/studio-test/nodes/hook0001/source"),
                           json={"text": "x"}, cookies=cookies, timeout=30)
    assert webhook.status_code == 404 and "no file of its own" in webhook.json()["error"]


def test_the_graph_flags_a_node_whose_file_went_bad(studio_app: Server) -> None:
    broken = studio_app.roots[0] / "broken.py"
    good = broken.read_text()
    try:
        broken.write_text("def oops(:\n")
        graph = studio_app.get("/apps/studio-test/graph")
        flagged = {n["id"]: n["problems"] for n in graph["nodes"]}
        assert flagged["brok0001"] and flagged["brok0001"][0]["line"] == 1
        assert not flagged["gen00001"]
    finally:
        broken.write_text(good)
    assert studio_app.get("/apps/studio-test/graph")["problems"] == []


def test_live_status_is_a_stream_for_a_browser_and_json_otherwise(studio_app: Server) -> None:
    now = studio_app.get("/apps/studio-test/events")
    assert now["nodes"]["gen00001"] == "succeeded" and now["stores"]["events"] == ROWS
    with studio_app.http.get(studio_app.api("/apps/studio-test/events"), stream=True,
                             headers={"Accept": "text/event-stream"}, timeout=30) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines(decode_unicode=True)
        assert next(lines) == "event: status"
        assert json.loads(next(lines).removeprefix("data: "))["stores"]["events"] == ROWS



def test_a_huge_cell_is_cut_in_a_page(app_runner: Any) -> None:
    from patterns.server.table_pages import MAX_CELL, PageQuery, read_page

    runner = app_runner({"big.py": """
        from patterns import Table
        Table("cells", "w").append({"n": 1, "text": "x" * 5_000_000})
    """}, ["cells"])
    assert runner.run_node("big.py").status == "succeeded"
    with runner.engine.store.read() as view:
        rows, following = read_page(view, view.tables.get("cells"), PageQuery())
    assert rows[0]["n"] == 1 and following is None
    assert len(rows[0]["text"]) < MAX_CELL + 200
    assert "5,000,000 characters in all" in rows[0]["text"]


def test_file_paths_stay_inside_the_app(studio_app: Server) -> None:
    for path, words in (("%2E%2E/outside.py", "not a path inside"),
                        (".patterns/x.py", "never are"),
                        ("data.bin", "not a text file")):
        answer = studio_app.http.put(studio_app.api(f"/apps/studio-test/files/{path}"),
                                     json={"text": "x = 1"}, timeout=30)
        assert answer.status_code == 400 and words in answer.json()["error"], (path,
                                                                               answer.text)
    assert not (studio_app.roots[0].parent / "outside.py").exists()
    assert "graph.yml" in studio_app.get("/apps/studio-test/files")
