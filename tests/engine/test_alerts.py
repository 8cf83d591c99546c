"""Alerts (patterns/engine/alerts.py): `patterns run` as a user runs it, a real webhook
receiver on loopback and a real command, for failures, time-outs, recoveries, the rate
limit, masked secrets and deliveries that fail."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import failed as failed_cleanly
from tests.cli.conftest import ok, patterns


class Receiver:
    """A webhook receiver on loopback: keeps every JSON body posted to it; answers
    ``status`` after ``delay`` seconds."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                time.sleep(delay)
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True  # (a slow answer never holds the test up)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count:
            assert time.monotonic() < deadline, f"{len(self.bodies)} alert(s): {self.bodies}"
            time.sleep(0.05)
        return self.bodies

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


GRAPH = """
title: alerting app
settings:
  alerts:
    webhook: {url}
    command: echo "$PATTERNS_ALERT_EVENT $PATTERNS_ALERT_NODE_ID" >> events.txt; cat >> bodies.jsonl; echo >> bodies.jsonl
functions:
  - node_file: flaky.py
    id: flaky001
    parameter_values:
      key: ${{{{ api_key }}}}
  - node_file: quiet.py
    id: quiet001
    settings:
      alerts: false
stores:
  - table: out
"""

FLAKY = """
from pathlib import Path
from patterns import Parameter, Table

key = Parameter("key")
out = Table("out", "w")
if Path("fail.flag").exists():
    raise ValueError(f"the API refused key {key}")
out.append({"ok": 1})
"""

QUIET = """
raise RuntimeError("nobody hears this one")
"""

SECRET = "sk-live-0123456789abcdef"


def alerting_app(root: Path, url: str) -> Path:
    root.mkdir(parents=True)
    (root / "graph.yml").write_text(textwrap.dedent(GRAPH).lstrip().format(url=url))
    (root / "flaky.py").write_text(textwrap.dedent(FLAKY))
    (root / "quiet.py").write_text(textwrap.dedent(QUIET))
    ok(patterns("create", "secret", "api_key", SECRET))
    return root


def events(root: Path) -> list[str]:
    path = root / "events.txt"
    return path.read_text().split("\n")[:-1] if path.exists() else []


def test_a_failure_then_its_recovery_alert_by_webhook_and_command(
        tmp_path: Path, receiver: Receiver) -> None:
    root = alerting_app(tmp_path / "app", receiver.url)
    (root / "fail.flag").touch()
    assert patterns("run", root, "--quiet").returncode == 1
    failure = receiver.wait_for(1)[0]
    assert failure["event"] == "failed" and failure["node_id"] == "flaky001"
    # Slack shows `text`, Discord `content`: the node, the error line, where the logs are.
    for field in ("text", "content"):
        assert "flaky" in failure[field] and "the API refused key" in failure[field]
        assert f"patterns logs {root} --run {failure['run_id']}" in failure[field]
    assert SECRET not in json.dumps(failure)  # masked like the run's own output
    # The same message reached the command, on stdin and in its environment.
    assert events(root) == ["failed flaky001"]
    command_body = json.loads((root / "bodies.jsonl").read_text().splitlines()[0])
    assert command_body["run_id"] == failure["run_id"] and SECRET not in command_body["text"]
    # The node with `alerts: false` failed too, and alerted no one.
    assert all(b["node_id"] == "flaky001" for b in receiver.bodies)

    # Failing again inside the quiet period: held back, and counted.
    assert patterns("run", root, "--node", "flaky.py", "--quiet").returncode == 1
    (root / "fail.flag").unlink()
    ok(patterns("run", root, "--node", "flaky.py", "--quiet"))
    recovered = receiver.wait_for(2)[1]
    assert len(receiver.bodies) == 2, receiver.bodies  # (the second failure was held back)
    assert recovered["event"] == "recovered" and recovered["status"] == "succeeded"
    assert recovered["suppressed"] == 1 and "1 more alert" in recovered["text"]
    assert events(root) == ["failed flaky001", "recovered flaky001"]

    # A success after a success is no news.
    ok(patterns("run", root, "--node", "flaky.py", "--quiet"))
    time.sleep(0.5)  # (nothing to poll for: an alert that should not come)
    assert len(receiver.bodies) == 2


TIMEOUT_GRAPH = """
title: slow app
functions:
  - node_file: slow.py
    id: slow0001
    settings:
      time_limit_seconds: 1
      alerts:
        webhook: {url}
        command: [sh, -c, 'echo "$PATTERNS_ALERT_EVENT $PATTERNS_ALERT_RUN_ID" > alerted.txt']
        when: [timed_out]
        quiet_minutes: 0
stores:
  - table: out
"""


def test_a_time_out_alerts_and_a_failing_delivery_is_logged_not_fatal(tmp_path: Path) -> None:
    broken = Receiver(status=500)
    try:
        root = tmp_path / "app"
        root.mkdir()
        (root / "graph.yml").write_text(textwrap.dedent(TIMEOUT_GRAPH).format(url=broken.url))
        (root / "slow.py").write_text("import time\ntime.sleep(30)\n")
        result = patterns("run", root, "--quiet")
        assert result.returncode == 1  # (the run's own outcome, nothing of the alert's)
        body = broken.wait_for(1)[0]
        assert body["event"] == "timed_out" and "time limit" in body["text"]
        # (a command given as a list: the program and its arguments, no shell around them)
        assert (root / "alerted.txt").read_text().split() == ["timed_out", body["run_id"]]
        assert "not delivered" in result.stderr and "answered 500" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        broken.close()


def test_a_slow_receiver_never_holds_the_run_up(tmp_path: Path) -> None:
    slow = Receiver(delay=60)
    try:
        root = tmp_path / "app"
        root.mkdir()
        graph = textwrap.dedent(TIMEOUT_GRAPH).format(url=slow.url).replace(
            "[timed_out]", "[failed]").replace("time_limit_seconds: 1", "time_limit_seconds: 60")
        (root / "graph.yml").write_text(graph)
        (root / "slow.py").write_text("raise SystemExit(3)\n")
        started = time.monotonic()
        result = patterns("run", root, "--quiet", "--json")
        took = time.monotonic() - started
        run = json.loads(result.stdout)["runs"][0]
        assert run["status"] == "failed" and run["seconds"] < 10  # not waiting for the alert
        assert took < 45, took  # the alert's delivery gave up after its time limit
        assert "could not be reached" in result.stderr, result.stderr
    finally:
        slow.close()


@pytest.mark.parametrize(("alerts", "expected"), [
    ("webhook: ftp://example.com/x", "graph.yml:4: 'alerts.webhook' in settings: 'ftp://"),
    ("webhook: http://127.0.0.1:1/x\n    comand: echo", "graph.yml:5: unknown key 'alerts.comand'"),
    ("when: [failed]", "says neither where to send alerts nor what to run"),
    ("webhook: http://127.0.0.1:1/x\n    when: [exploded]",
     "graph.yml:5: 'alerts.when.0' in settings must be one of"),
])
def test_bad_alert_settings_are_problems_at_their_line(tmp_path: Path, alerts: str,
                                                       expected: str) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (root / "graph.yml").write_text(f"title: t\nsettings:\n  alerts:\n    {alerts}\n"
                                    f"functions:\n  - node_file: a.py\n")
    (root / "a.py").write_text("print(1)\n")
    failed_cleanly(patterns("validate", root), expected)
