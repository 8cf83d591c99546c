"""Alerts under `patterns serve` (patterns/engine/alerts.py): a served node that fails
alerts a real webhook receiver on loopback, and its recovery does too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.engine.test_alerts import Receiver
from tests.server.conftest import Server, write_app

GRAPH = """
title: served alerts
slug: alerts
settings:
  alerts:
    webhook: {url}
functions:
  - node_file: flaky.py
    id: flaky001
    trigger: manual
stores:
  - table: out
"""

FLAKY = """
from patterns import Parameter, Table

fail = Parameter("fail", type=bool, default=False)
out = Table("out", "w")
if fail:
    raise ValueError("upstream API is down")
out.append({"ok": 1})
"""


def test_a_served_failure_and_recovery_alert(tmp_path: Path,
                                             serve: Callable[..., Server]) -> None:
    receiver = Receiver()
    try:
        root = write_app(tmp_path / "app", GRAPH.format(url=receiver.url), {"flaky.py": FLAKY})
        server = serve(root)
        response = server.post("/apps/alerts/nodes/flaky.py/trigger",
                               json={"parameters": {"fail": True}})
        assert response.status_code == 202, response.text
        failure = receiver.wait_for(1)[0]
        assert failure["event"] == "failed" and "upstream API is down" in failure["text"]
        assert f"patterns logs {root} --run {failure['run_id']}" in failure["content"]
        assert server.post("/apps/alerts/nodes/flaky.py/trigger").status_code == 202
        recovered = receiver.wait_for(2)[1]
        assert recovered["event"] == "recovered" and recovered["node_id"] == "flaky001"
    finally:
        receiver.close()
