"""`patterns serve`: webhooks, reactive runs, the REST API, durability across kill -9."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from tests.server.conftest import write_app

GRAPH = """
title: Hooks
slug: hooks
functions:
  - webhook: events
    id: hook0001
    settings:
      max_body_bytes: 2000
      webhook_query: true
      webhook_headers: [X-Source]
  - node_file: count.py
    id: count001
  - node_file: slow.py
    id: slow0001
    trigger: manual
stores:
  - table: events
  - table: totals
  - table: slow_out
"""

COUNT = """
from patterns import Table
events = Table("events")
totals = Table("totals", "w")
n = 0
for record in events.as_stream().consume_records():
    n += 1
totals.append({"seen": n})
print("counted", n)
"""

SLOW = """
import os, time
from pathlib import Path
from patterns import Parameter, Table
gate = Parameter("gate", type=str, default="")
out = Table("slow_out", "w")
print("slow started")
out.append({"step": 1})
deadline = time.time() + 60
while gate and not Path(gate).exists() and time.time() < deadline:
    time.sleep(0.05)
print("slow done")
"""


def hooks_app(tmp_path: Path) -> Path:
    return write_app(tmp_path / "hooks", GRAPH, {"count.py": COUNT, "slow.py": SLOW})


def webhook_url(server: Any, app: str = "hooks") -> str:
    (hook,) = server.get(f"/apps/{app}/webhooks")
    return f"{server.url}{hook['path']}"


def test_webhook_records_are_committed_and_wake_the_readers(tmp_path: Path, serve: Any) -> None:
    server = serve(hooks_app(tmp_path))
    url = webhook_url(server)
    one = requests.post(f"{url}?campaign=spring", json={"n": 1},
                        headers={"X-Source": "test"}, timeout=30)
    assert one.status_code == 200 and one.json() == {"ok": True, "records": 1}
    many = requests.post(url, json=[{"n": 2}, {"n": 3}], timeout=30)
    assert many.json()["records"] == 2
    # A 2xx means committed: the rows are there at once.
    rows = server.rows("hooks", "events")
    assert [r["n"] for r in rows] == [1, 2, 3]
    assert rows[0]["patterns_query"] == {"campaign": "spring"}
    assert rows[0]["patterns_headers"] == {"x-source": "test"}
    # ...and the reader ran because of them, until it had seen all three.
    server.wait_for(lambda: sum(r["seen"] for r in server.rows("hooks", "totals")) == 3,
                    what="count.py to see the three records")
    triggers = {r["trigger"] for r in server.runs("hooks", "count.py")}
    assert "upstream" in triggers


def test_bad_webhook_requests_get_a_json_4xx_and_write_nothing(tmp_path: Path,
                                                              serve: Any) -> None:
    server = serve(hooks_app(tmp_path))
    url = webhook_url(server)
    cases = [
        (url, b"{not json", 400, "not valid JSON"),
        (url, b"NaN", 400, "not valid JSON"),
        (url, b"[1, 2]", 400, "JSON object"),
        (url, b"[]", 400, "JSON object"),
        (url, b'"text"', 400, "JSON object"),
        (url, json.dumps({"big": "x" * 3000}).encode(), 413, "max_body_bytes"),
        (url, b'{"a": 1, "A": 2}', 400, "upper/lower case"),
        (url, b'{"": 1}', 400, "non-empty"),
        (url[:-4] + "abcd", b"{}", 404, "no webhook here"),
        (f"{server.url}/webhooks/nope/token", b"{}", 404, "no webhook here"),
    ]
    for target, body, status, message in cases:
        response = requests.post(target, data=body, timeout=30,
                                 headers={"Content-Type": "application/json"})
        assert response.status_code == status, (body[:40], response.text)
        assert message in response.json()["error"], response.text
    assert server.rows("hooks", "events") == []


RESPOND_GRAPH = """
title: Answers
slug: answers
functions:
  - webhook: questions
    id: ask00001
    respond: true
    settings:
      response_timeout_seconds: 20
  - node_file: answer.py
    id: answer01
  - webhook: ignored
    id: ign00001
    respond: true
    settings:
      response_timeout_seconds: 0.5
stores:
  - table: questions
  - table: ignored
"""

ANSWER = """
from patterns import Table, respond_to_request
for record in Table("questions").as_stream().consume_records():
    respond_to_request(record["patterns_request_key"], {"answer": record["q"] * 2})
"""


def test_response_webhooks_answer_with_the_nodes_payload_or_time_out(tmp_path: Path,
                                                                     serve: Any) -> None:
    root = write_app(tmp_path / "answers", RESPOND_GRAPH, {"answer.py": ANSWER})
    server = serve(root)
    hooks = {h["table"]: f"{server.url}{h['path']}" for h in server.get("/apps/answers/webhooks")}
    answered = requests.post(hooks["questions"], json={"q": 21}, timeout=60)
    assert answered.status_code == 200, answered.text
    assert answered.json() == {"answer": 42}
    # Two records share their request's key: the first answer wins, the second is dropped
    # (not an error: the node must not get stuck on that record)...
    pair = requests.post(hooks["questions"], json=[{"q": 1}, {"q": 2}], timeout=60)
    assert pair.status_code == 200 and pair.json() == {"answer": 2}
    # ...so the node goes on answering.
    later = requests.post(hooks["questions"], json={"q": 5}, timeout=60)
    assert later.status_code == 200 and later.json() == {"answer": 10}
    unanswered = requests.post(hooks["ignored"], json={"q": 1}, timeout=60)
    assert unanswered.status_code == 504
    assert "response_timeout_seconds" in unanswered.json()["error"]
    assert len(server.rows("answers", "ignored")) == 1  # stored all the same


def test_trigger_runs_logs_live_stream_and_cancel_through_the_api(tmp_path: Path,
                                                                  serve: Any) -> None:
    server = serve(hooks_app(tmp_path))
    gate = tmp_path / "gate"
    queued = server.post("/apps/hooks/nodes/slow.py/trigger",
                         json={"parameters": {"gate": str(gate)}})
    assert queued.status_code == 202, queued.text
    run = server.wait_for(lambda: next(iter(server.runs("hooks", "slow.py")), None),
                          what="the slow run to start")
    assert run["status"] == "running" and run["trigger"] == "manual"
    # Live logs over server-sent events: what was printed so far, then the rest, then the end.
    with server.http.get(server.api(f"/apps/hooks/runs/{run['id']}/logs/stream"),
                         stream=True, timeout=60) as events:
        lines = events.iter_lines(decode_unicode=True)
        seen = []
        for line in lines:
            if line.startswith("data:"):
                seen.append(json.loads(line[5:]))
                if any(e.get("text") == "slow started" for e in seen):
                    gate.touch()
                if "status" in seen[-1]:
                    break
    texts = [e.get("text") for e in seen]
    assert texts.index("slow started") < texts.index("slow done")
    assert seen[-1]["status"] == "succeeded"
    detail = server.get(f"/apps/hooks/runs/{run['id']}")
    assert detail["status"] == "succeeded" and detail["rows_written"] == {"slow_out": 1}
    logs = server.get(f"/apps/hooks/runs/{run['id']}/logs")
    assert [line["text"] for line in logs["lines"]] == ["slow started", "slow done"]

    # Cancel: the run stops, rolled back, and says so.
    server.post("/apps/hooks/nodes/slow.py/trigger", json={"parameters": {"gate": "/nonexistent"}})
    second = server.wait_for(lambda: next((r for r in server.runs("hooks", "slow.py")
                                           if r["status"] == "running"), None))
    cancelled = server.post(f"/apps/hooks/runs/{second['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    final = server.wait_for(lambda: (r := server.get(f"/apps/hooks/runs/{second['id']}"))
                            ["status"] != "running" and r)
    assert final["status"] == "cancelled"
    assert len(server.rows("hooks", "slow_out")) == 1  # the cancelled run wrote nothing
    again = server.post(f"/apps/hooks/runs/{second['id']}/cancel")
    assert again.status_code == 409


def test_api_errors_are_json_and_name_what_is_missing(tmp_path: Path, serve: Any) -> None:
    server = serve(hooks_app(tmp_path))
    for path, fragment in [("/apps/nope/nodes", "no app 'nope'"),
                           ("/apps/hooks/nodes/nope.py", "nope.py"),
                           ("/apps/hooks/runs/ZZZZ", "no run 'ZZZZ'"),
                           ("/apps/hooks/tables/nope", "no table 'nope'")]:
        response = server.http.get(server.api(path), timeout=30)
        assert response.status_code == 404, path
        assert fragment in response.json()["error"]
    bad = server.post("/apps/hooks/nodes/slow.py/trigger", data=b"{", timeout=30,
                      headers={"Content-Type": "application/json"})
    assert bad.status_code == 422 and "error" in bad.json()
    spec = server.http.get(server.api("/openapi.json"), timeout=30).json()
    assert "/api/v1/apps/{app}/runs" in spec["paths"]


def test_serving_beyond_loopback_uses_the_token_and_an_explicit_one_replaces_it(
        tmp_path: Path, serve: Any) -> None:
    server = serve(hooks_app(tmp_path), args=("--host", "0.0.0.0", "--auth-token", "s3cret"))
    assert server.token == "s3cret"  # the login URL it printed carries the given token
    assert requests.get(server.api("/apps"), timeout=30).status_code == 401
    wrong = requests.get(server.api("/apps"), headers={"Authorization": "Bearer s3cre"},
                         timeout=30)
    assert wrong.status_code == 401 and "--auth-token" in wrong.json()["error"]
    ok = requests.get(server.api("/apps"), headers={"Authorization": "Bearer s3cret"},
                      timeout=30)
    assert ok.status_code == 200 and ok.json()[0]["slug"] == "hooks"
    assert "plain HTTP" in "".join(server.output)  # the warning about the open network


def test_acknowledged_webhook_records_survive_kill_9_exactly_once(tmp_path: Path,
                                                                  serve: Any) -> None:
    server = serve(hooks_app(tmp_path))
    url = webhook_url(server)
    acked: list[int] = []
    stop = time.time() + 3.0

    def client(k: int) -> None:
        n = 0
        session = requests.Session()
        while time.time() < stop:
            value = k * 1_000_000 + n
            n += 1
            try:
                response = session.post(url, json={"n": value}, timeout=10)
            except requests.RequestException:
                return  # the server died under us
            if response.status_code == 200:
                acked.append(value)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(client, k) for k in range(8)]
        time.sleep(1.5)
        server.kill()  # kill -9 in the middle of the load
        for f in futures:
            f.result()
    assert acked, "no request was acknowledged before the kill; the test proves nothing"
    server.start()
    stored = [r["n"] for r in server.rows("hooks", "events")]
    assert len(stored) == len(set(stored)), "a record was stored twice"
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged records were lost"


CONTINUE_GRAPH = """
title: Later
slug: later
functions:
  - node_file: later.py
    id: later001
stores:
  - table: steps
"""

LATER = """
from patterns import State, Table
state = State()
step = state.get_value("step", 0) + 1
state.set_value("step", step)
Table("steps", "w").append({"step": step})
if step < 2:
    state.request_new_run(wait_atleast_seconds=3)
"""


def test_a_delayed_continuation_survives_kill_9(tmp_path: Path, serve: Any) -> None:
    root = write_app(tmp_path / "later", CONTINUE_GRAPH, {"later.py": LATER})
    server = serve(root)
    server.wait_for(lambda: [r for r in server.runs("later") if r["status"] == "succeeded"],
                    what="the first run")
    queued = server.get("/apps/later/queue")
    assert [q["trigger"] for q in queued] == ["continuation"]
    server.kill()
    server.start()
    server.wait_for(lambda: len(server.rows("later", "steps")) == 2, timeout=30,
                    what="the continuation after the restart")
    triggers = [r["trigger"] for r in server.runs("later")]
    assert sorted(triggers) == ["continuation", "first run"]


def test_sigterm_drains_and_the_interrupted_run_runs_again(tmp_path: Path, serve: Any) -> None:
    server = serve(hooks_app(tmp_path), args=("--drain-seconds", "1"))
    server.post("/apps/hooks/nodes/slow.py/trigger", json={"parameters": {"gate": "/nope"}})
    server.wait_for(lambda: any(r["status"] == "running" for r in server.runs("hooks")))
    assert server.stop(signal.SIGTERM) == 0
    text = "".join(server.output)
    assert "stopping" in text and "stopped" in text
    server.start()
    runs = server.runs("hooks", "slow.py")
    assert runs[-1]["status"] == "cancelled" and "runs again" in runs[-1]["error"]
    server.wait_for(lambda: len(server.runs("hooks", "slow.py")) == 2,
                    what="the interrupted run to start again")


def test_reload_picks_up_code_and_graph_changes_and_keeps_a_broken_edit_out(
        tmp_path: Path, serve: Any) -> None:
    root = hooks_app(tmp_path)
    server = serve(root, args=("--reload",))

    def slow_output() -> list[str]:
        runs = [r for r in server.runs("hooks", "slow.py") if r["status"] == "succeeded"]
        if not runs:
            return []
        return [line["text"] for line in
                server.get(f"/apps/hooks/runs/{runs[0]['id']}/logs")["lines"]]

    (root / "slow.py").write_text("print('new code')\n")
    time.sleep(1.0)  # the watcher's debounce
    server.post("/apps/hooks/nodes/slow.py/trigger")
    assert server.wait_for(lambda: "new code" in slow_output() and slow_output())
    # A broken graph.yml is reported and the old app keeps serving.
    (root / "graph.yml").write_text(GRAPH.replace("trigger: manual", "trigger: sometimes"))
    server.wait_for(lambda: "not reloaded" in "".join(server.output), what="the reload warning")
    assert server.post("/apps/hooks/nodes/slow.py/trigger").status_code == 202
    # Fixed: a new node appears.
    (root / "extra.py").write_text("print('extra')\n")
    (root / "graph.yml").write_text(GRAPH.replace(
        "stores:", "  - node_file: extra.py\n    id: extra001\n    trigger: manual\nstores:"))
    server.wait_for(lambda: any(n["id"] == "extra001" for n in server.get("/apps/hooks/nodes")),
                    what="the new node after the reload")


def test_one_server_serves_several_apps_each_with_its_own_store(tmp_path: Path,
                                                                serve: Any) -> None:
    first = hooks_app(tmp_path)
    second = write_app(tmp_path / "later", CONTINUE_GRAPH, {"later.py": LATER})
    server = serve(first, second)
    assert sorted(a["slug"] for a in server.get("/apps")) == ["hooks", "later"]
    assert requests.post(webhook_url(server), json={"n": 1}, timeout=30).status_code == 200
    server.wait_for(lambda: len(server.rows("later", "steps")) == 2, what="the second app")
    assert [r["n"] for r in server.rows("hooks", "events")] == [1]
    assert (first / ".patterns" / "store.duckdb").exists()
    assert (second / ".patterns" / "store.duckdb").exists()
    assert server.get("/apps/later/tables")[0]["name"] == "steps"
    assert all(t["name"] != "steps" for t in server.get("/apps/hooks/tables"))


LONG_SQL_GRAPH = """
title: Long SQL
slug: longsql
functions:
  - node_file: heavy.sql
    id: heavy001
    trigger: manual
    outputs:
      output_table: heavy_out
stores:
  - table: heavy_out
"""

HEAVY = """
-- dialect: duckdb
select sum(a.range * b.range) as n from range(1000000) a, range(1000000) b
"""  # 10^12 pairs: minutes of work, unless it is interrupted


def test_cancelling_a_running_sql_node_interrupts_its_statements(tmp_path: Path,
                                                                 serve: Any) -> None:
    root = write_app(tmp_path / "longsql", LONG_SQL_GRAPH, {"heavy.sql": HEAVY})
    server = serve(root)
    assert server.post("/apps/longsql/nodes/heavy.sql/trigger").status_code == 202
    run = server.wait_for(lambda: next((r for r in server.runs("longsql")
                                        if r["status"] == "running"), None))
    time.sleep(0.3)  # well into the query
    started = time.monotonic()
    assert server.post(f"/apps/longsql/runs/{run['id']}/cancel").status_code == 200
    final = server.wait_for(lambda: (r := server.get(f"/apps/longsql/runs/{run['id']}"))
                            ["status"] != "running" and r, timeout=20)
    assert final["status"] == "cancelled"
    assert time.monotonic() - started < 10
    assert server.rows("longsql", "heavy_out") == []


BUSY = """
title: Busy
functions:
  - node_file: hot.py
    id: hot00001
    trigger: manual
  - node_file: quiet.py
    id: quiet001
    trigger: manual
"""


def test_a_nodes_last_run_and_an_old_failure_show_behind_a_long_history(
        tmp_path: Path, serve: Any) -> None:
    """The node list shows each node's latest run and the run list finds runs of a status
    however many newer runs there are (both once looked only among the newest 1,000)."""
    import datetime as dt

    from patterns.engine.engine import Engine
    from patterns.graph.loader import load_app
    from patterns.store.model import RunRecord

    root = write_app(tmp_path / "busy", BUSY, {"hot.py": "print('hot')\n",
                                               "quiet.py": "print('quiet')\n"})
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def run(n: int, node: str, status: str) -> RunRecord:
        at = start + dt.timedelta(seconds=n)
        return RunRecord(id=f"R{n:08d}", node_id=node, node_title=f"{node}.py",
                         trigger="manual", status=status, queued_at=at, started_at=at,
                         ended_at=at)

    with Engine(load_app(root)) as engine, engine.store.transaction() as tx:  # (history)
        tx.runs.insert(run(0, "quiet001", "failed"))
        tx.runs.insert(run(1, "hot00001", "failed"))
        for n in range(2, 1_203):
            tx.runs.insert(run(n, "hot00001", "succeeded"))
    server = serve(root)
    nodes = {n["id"]: n for n in server.get("/apps/busy/nodes")}
    assert nodes["quiet001"]["last_run"]["id"] == "R00000000"
    assert nodes["quiet001"]["last_run"]["status"] == "failed"
    assert nodes["hot00001"]["last_run"]["id"] == "R00001202"
    failed = server.get("/apps/busy/runs?status=failed")
    assert [r["id"] for r in failed] == ["R00000001", "R00000000"]
    hot = server.get("/apps/busy/runs?status=failed&node=hot.py&limit=5")
    assert [r["id"] for r in hot] == ["R00000001"]
    # The Studio's live status: from the history first, then as runs start and end.
    assert server.get("/apps/busy/events")["nodes"] == {"quiet001": "failed",
                                                        "hot00001": "succeeded"}
    server.post("/apps/busy/nodes/quiet.py/trigger")
    server.wait_for(lambda: server.get("/apps/busy/events")["nodes"]["quiet001"] ==
                    "succeeded", what="quiet.py's new run in the live status")
