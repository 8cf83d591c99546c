"""Components and subgraphs run: their inner nodes run as real node processes with the
node's parameter values, read and write the app's stores, and wake up across the boundary;
the starter components do what they say (an HTTP import against a real loopback server)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from patterns import Table
from tests.conftest import AppRunner

APPS = Path(__file__).parent.parent / "apps"


@pytest.fixture
def runner(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppRunner]:
    root = Path(shutil.copytree(APPS / request.param, tmp_path / request.param))
    app = AppRunner(root)
    yield app
    app.close()


def statuses(result: Any) -> dict[str, str]:
    return {run.node_title: run.status for run in result.runs}


@pytest.mark.parametrize("runner", ["original_subgraph"], indirect=True)
def test_subgraph_runs_and_wakes_across_the_boundary(runner: AppRunner) -> None:
    first = runner.run()
    assert first.ok, statuses(first)
    assert set(statuses(first)) == {"Make orders", "Cleaning / dedupe", "Cleaning / keep_large",
                                    "Cleaning / count", "report"}
    assert [r["order_id"] for r in runner.rows("clean_orders")] == [1, 3]
    assert [r["order_id"] for r in runner.rows("cleaning__deduped")] == [1, 2, 3]
    assert runner.rows("order_report")[0]["total"] == 17.5
    assert runner.rows("counted")[0]["n"] == 3  # a SQL node inside reads the private table
    with runner.sdk("mkorders"):  # a new order, as the upstream node would write it
        Table("orders", "w").append({"order_id": 4, "customer": "di", "amount": 20})
    second = runner.run()
    assert second.ok and sorted(statuses(second)) == ["Cleaning / count", "Cleaning / dedupe",
                                                      "Cleaning / keep_large", "Make orders",
                                                      "report"]
    assert [r["order_id"] for r in runner.rows("clean_orders")] == [1, 3, 4]
    assert runner.rows("order_report")[-1]["total"] == 37.5
    assert runner.rows("counted")[-1]["n"] == 4


@pytest.mark.parametrize("runner", ["original_components"], indirect=True)
def test_components_run_with_their_parameter_values(runner: AppRunner) -> None:
    result = runner.run()
    assert result.ok, [(r.node_title, r.error) for r in result.runs]
    assert not result.skipped
    calendar = runner.rows("calendar", order="date")
    assert len(calendar) == 10 and str(calendar[0]["date"]) == "2024-01-01"
    assert calendar[5]["day_name"] == "Saturday" and calendar[5]["is_weekend"] is True
    customers = {r["email"]: r["name"] for r in runner.rows("customers")}
    assert customers == {"ada@example.com": "Ada Lovelace", "bob@example.com": "Bob"}
    exported = json.loads((runner.root / "out" / "customers.json").read_text())
    assert sorted(r["email"] for r in exported) == ["ada@example.com", "bob@example.com"]
    greetings = sorted(r["text"] for r in runner.rows("greetings"))  # `from .base import`
    assert greetings == ["Hello, Ada Lovelace!", "Hello, Bob!"]
    assert runner.rows("output_table")[-1]["pro"] == 2


@pytest.mark.parametrize("runner", ["original_components"], indirect=True)
def test_triggering_a_component_runs_it_and_what_is_downstream(runner: AppRunner) -> None:
    assert runner.run().ok
    with (runner.root / "data" / "customers.csv").open("a") as csv:
        csv.write("cy@example.com,Cy,pro\nbob@example.com,Robert,free\n")
    result = runner.run("importer")
    assert result.ok
    assert "file-import / import_file" in statuses(result)
    assert "Calendar / make_dates" not in statuses(result)
    customers = {r["email"]: (r["name"], r["plan"]) for r in runner.rows("customers")}
    assert customers["bob@example.com"] == ("Robert", "free")
    assert customers["cy@example.com"] == ("Cy", "pro") and len(customers) == 3


class _Api(BaseHTTPRequestHandler):
    """Five items, two per page; the first request is rate limited, page 2 fails once."""

    calls: list[str] = []
    failed: set[str] = set()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        page = int(parse_qs(url.query).get("page", ["1"])[0])
        self.calls.append(self.path)
        if "rate" not in self.failed:
            self.failed.add("rate")
            self._send(429, {"error": "slow down"}, {"Retry-After": "0"})
            return
        if page == 2 and "server" not in self.failed:
            self.failed.add("server")
            self._send(503, {"error": "try later"})
            return
        items = [{"id": i, "name": f"item {i}"} for i in range(1, 6)][(page - 1) * 2:page * 2]
        self._send(200, {"data": {"items": items}, "page": page})

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    _Api.calls, _Api.failed = [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/items"
    server.shutdown()
    server.server_close()


def test_http_json_import_pages_and_retries(tmp_path: Path, api: str) -> None:
    root = tmp_path / "api_app"
    root.mkdir()
    graph = {"title": "API import", "functions": [{
        "uses": "patterns/http-json-import@v1", "id": "items",
        "parameter_values": {"url": api, "records_path": "data.items", "paging": "page",
                             "page_size": 2, "page_size_param": "per_page",
                             "backoff_seconds": 0.01},
        "outputs": {"records": "items"}}], "stores": [{"table": "items"}]}
    (root / "graph.yml").write_text(yaml.safe_dump(graph, sort_keys=False))
    app = AppRunner(root)
    try:
        result = app.run()
        assert result.ok, [r.error for r in result.runs]
        assert [r["id"] for r in app.rows("items")] == [1, 2, 3, 4, 5]
        pages = [parse_qs(urlsplit(c).query)["page"][0] for c in _Api.calls]
        assert pages == ["1", "1", "2", "2", "3"]  # 429 and 503 each tried again once
        assert all("per_page=2" in c for c in _Api.calls)
        with app.engine.store.read() as view:
            log = view.logs.get(result.runs[-1].id) or ""
        assert "imported 5 record(s) from 3 page(s)" in log
    finally:
        app.close()
