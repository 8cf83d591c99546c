"""Webhook bodies and column types: a record that does not fit is a 400 naming the field
(nothing of that request stored, other requests unaffected); ISO-8601 text is a timestamp."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from tests.server.conftest import write_app

GRAPH = """
title: Types
functions:
  - webhook: payments
  - webhook: lenient
settings:
  max_columns: 20
stores:
  - table: payments
  - table: lenient
    contract: variant
"""


def urls(server: Any) -> dict[str, str]:
    return {h["table"]: f"{server.url}{h['path']}" for h in server.get("/apps/types/webhooks")}


def test_a_record_that_does_not_fit_is_a_400_naming_the_field(tmp_path: Path,
                                                               serve: Any) -> None:
    server = serve(write_app(tmp_path / "types", GRAPH, {}))
    url = urls(server)["payments"]
    ok = requests.post(url, json=[{"amount": 10, "at": "2024-05-01T10:00:00Z"},
                                  {"amount": 12, "at": "2024-05-01T11:30:00+02:00"}],
                       timeout=30)
    assert ok.status_code == 200, ok.text
    before = server.rows("types", "payments")
    bad = requests.post(url, json=[{"amount": 11}, {"amount": "lots"}], timeout=30)
    assert bad.status_code == 400
    message = bad.text
    assert "field 'amount'" in message and "'lots'" in message and "record 1" in message
    late = requests.post(url, json={"amount": 13, "at": "yesterday"}, timeout=30)
    assert late.status_code == 400 and "field 'at'" in late.text
    assert server.rows("types", "payments") == before  # nothing of those requests
    kinds = {c["name"]: c["type"] for c in
             server.get("/apps/types/tables/payments")["columns"]}
    assert kinds["amount"] == "int" and kinds["at"] == "timestamptz"
    assert dt.datetime.fromisoformat(before[1]["at"]) == dt.datetime(2024, 5, 1, 9, 30,
                                                                     tzinfo=dt.UTC)


def test_a_bad_request_fails_alone_among_concurrent_ones(tmp_path: Path, serve: Any) -> None:
    server = serve(write_app(tmp_path / "types", GRAPH, {}))
    url = urls(server)["payments"]
    assert requests.post(url, json={"amount": 0}, timeout=30).status_code == 200
    bodies = [{"amount": i} if i % 5 else {"amount": f"bad {i}"} for i in range(1, 41)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda b: requests.post(url, json=b, timeout=30).status_code,
                              bodies))
    assert codes == [200 if i % 5 else 400 for i in range(1, 41)]
    stored = sorted(r["amount"] for r in server.rows("types", "payments"))
    assert stored == [0, *[i for i in range(1, 41) if i % 5]]


def test_a_variant_contract_keeps_the_value_and_the_column_cap_holds(tmp_path: Path,
                                                                      serve: Any) -> None:
    server = serve(write_app(tmp_path / "types", GRAPH, {}))
    url = urls(server)["lenient"]
    assert requests.post(url, json={"amount": 1}, timeout=30).status_code == 200
    assert requests.post(url, json={"amount": "lots"}, timeout=30).status_code == 200
    got = server.rows("types", "lenient")
    assert [(r["amount"], r.get("amount__text")) for r in got] == [(1, None), (None, "lots")]
    wide = requests.post(url, json={f"f{i}": i for i in range(30)}, timeout=30)
    assert wide.status_code == 400
    assert "settings.max_columns" in wide.text
    assert len(server.rows("types", "lenient")) == 2
