"""Hostile webhook bodies and app files against a real server on loopback: each is refused
quickly with a message naming the limit, nothing is written, and the server keeps serving."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.server.conftest import write_app

GRAPH = """
title: Hooks
slug: hooks
functions:
  - webhook: events
    id: hook0001
  - webhook: narrow
    id: hook0002
    settings:
      max_records_per_request: 3
      max_fields_per_record: 5
stores:
  - table: events
  - table: narrow
"""

#: 271 bytes of YAML aliases that expand to 9^6 values (the "billion laughs").
ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in [("", "a"), ("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"), ("e", "f")]
)


def post(url: str, body: bytes) -> requests.Response:
    return requests.post(url, data=body, timeout=30, headers={"Content-Type": "application/json"})


@pytest.mark.timeout(120)
def test_hostile_bodies_are_refused_with_the_limit_named_and_write_nothing(
        tmp_path: Path, serve: Any) -> None:
    server = serve(write_app(tmp_path / "hooks", GRAPH, {}))
    hooks = {h["table"]: f"{server.url}{h['path']}" for h in server.get("/apps/hooks/webhooks")}
    url, narrow = hooks["events"], hooks["narrow"]
    cases: list[tuple[str, bytes, int, str]] = [
        (url, b"[" * 10_000 + b"]" * 10_000, 400, "nested too deeply"),
        (url, b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", 400, "nested too deeply"),
        (url, b'{"a": "\\ud800"}', 400, "lone UTF-16 surrogate"),
        (url, b'{"\\udfff": 1}', 400, "lone UTF-16 surrogate"),
        (url, b'{"a": 1e400}', 400, "too large for a float"),
        (url, b'{"a": -1e400}', 400, "too large for a float"),
        (url, b'{"a": Infinity}', 400, "Infinity is not JSON"),
        (url, b"{}", 400, "a record needs at least one field"),
        (url, b'[{"a": 1}, {}]', 400, "record 2 of 2 is {}"),
        (url, json.dumps({f"f{i}": i for i in range(10_000)}).encode(), 413,
         "settings.max_fields_per_record"),
        (narrow, json.dumps([{"a": i} for i in range(4)]).encode(), 413,
         "settings.max_records_per_request"),
        (narrow, json.dumps({"a": {"b": 1, "c": 2, "d": 3, "e": 4, "f": 5}}).encode(), 413,
         "limit of 5 fields"),
    ]
    for target, body, status, message in cases:
        started = time.monotonic()
        response = post(target, body)
        assert response.status_code == status, (body[:60], response.text)
        assert message in response.json()["error"], (body[:60], response.text)
        assert time.monotonic() - started < 10, f"{body[:60]!r} took too long to refuse"
    assert server.rows("hooks", "events") == [] and server.rows("hooks", "narrow") == []
    # Within the limits, records still go in, nested and astral characters included.
    ok = post(url, json.dumps({"a": 1.5, "emoji": "\U0001F600", "n": {"x": [1, 2]}}).encode())
    assert ok.status_code == 200, ok.text
    assert post(narrow, json.dumps([{"a": i} for i in range(3)]).encode()).status_code == 200
    (row,) = server.rows("hooks", "events")
    assert row["emoji"] == "\U0001F600" and row["a"] == 1.5


@pytest.mark.timeout(120)
def test_an_alias_bomb_is_refused_quickly_by_upload_and_by_reload(
        tmp_path: Path, serve: Any) -> None:
    root = write_app(tmp_path / "hooks", GRAPH, {})
    server = serve(root, args=("--reload",))
    assert len(ALIAS_BOMB) < 300
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("graph.yml", ALIAS_BOMB)
    started = time.monotonic()
    response = server.post("/apps/hooks/upload", data=buffer.getvalue(), timeout=60)
    assert response.status_code == 400, response.text
    assert "expands to more than 100,000 values" in response.json()["error"]
    assert time.monotonic() - started < 10
    # The same file saved in place: the reload refuses it and the old app keeps serving.
    (root / "graph.yml").write_text(ALIAS_BOMB)
    server.wait_for(lambda: "expands to more than" in "".join(server.output),
                    what="the reload's refusal")
    (hook,) = [h for h in server.get("/apps/hooks/webhooks") if h["table"] == "events"]
    assert post(f"{server.url}{hook['path']}", b'{"a": 1}').status_code == 200


@pytest.mark.timeout(300)
def test_fuzzed_bodies_never_fail_the_server_and_acked_records_are_stored(
        tmp_path: Path, serve: Any) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.server.test_bodies import JSON, TOKENS

    server = serve(write_app(tmp_path / "hooks", GRAPH, {}))
    hooks = {h["table"]: f"{server.url}{h['path']}" for h in server.get("/apps/hooks/webhooks")}
    acked: list[int] = []
    statuses: list[int] = []
    records = st.dictionaries(st.text(max_size=8), JSON, min_size=1, max_size=6)
    bodies = (st.builds(lambda r: json.dumps(r).encode(), records | st.lists(records, max_size=4))
              | st.lists(st.sampled_from(TOKENS) | st.binary(max_size=8), max_size=20)
              .map(b"".join))

    @given(bodies)
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    def send(body: bytes) -> None:
        response = post(hooks["events"], body)
        statuses.append(response.status_code)
        assert response.status_code in (200, 400, 413), (body[:80], response.text)
        assert response.json().get("error") or response.json().get("ok"), response.text
        if response.status_code == 200:
            acked.append(response.json()["records"])

    send()
    assert len(statuses) >= 40, "the fuzzer hardly sent anything"
    assert len(server.rows("hooks", "events")) == sum(acked)
    assert post(hooks["events"], b'{"still": "serving"}').status_code == 200
