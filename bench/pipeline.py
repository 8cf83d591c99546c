"""Benchmark 10: records through a 4-node pipeline, end to end, against its slowest stage.

The pipeline: a webhook (``events``) → a Python node streaming ``events`` into ``enriched``
(a field added) → a SQL node appending what is new in ``enriched`` to ``filtered`` (rows
past the highest ``patterns_id`` it copied) → a Python node streaming ``filtered`` into
``out``. N records are posted to a real ``patterns serve`` in bodies of 100 records from 8
clients; the figure is N divided by the seconds from the first post until ``out`` holds all
N rows, with every node running as the server triggers it.

Baseline, in the same run: each stage alone on the same N records, the slowest of them
(records/s): the webhook alone (a served app with only the webhook: posting until the last
request is acknowledged and its rows can be read), and each node alone through
``Engine.run_node`` on N rows already in its input table (trigger until committed). Target:
the pipeline moves records at least half as fast as its slowest stage.

Every measurement starts warm, so each does the same work per record: before the clock
starts, :data:`WARM` records go through whatever is measured (the served pipeline end to
end, the served webhook, each node alone over a first small fill). Without that, the
pipeline's figure carried what only it paid inside its clock: the server's warm worker
still importing when the posts began, and the first run of each stage.

``BENCH_PIPELINE_PROFILE=1`` also prints, to stderr, where the pipeline's time went (runs per
stage, their sizes, busy time, waits: bench/pipeline_profile.py).
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import PYTHON, Figure, run_node, temp_app

CLIENTS = 8
BODY = 100
#: Records sent through first, before the clock starts (one body).
WARM = BODY

ENRICH = """
from patterns import Table

out = Table("enriched", "w")
for r in Table("events").as_stream().consume_records():
    out.append({"n": r["n"], "tag": r["tag"], "score": r["n"] * 0.5})
"""

COPY_NEW = """
create table if not exists {{ Table("filtered", "w") }}
  (n bigint, tag text, score double precision, src_id text);
insert into {{ Table("filtered", "w") }}
select e.n, e.tag, e.score * 2, e.patterns_id
from {{ Table("enriched") }} e
where e.patterns_id > (select coalesce(max(src_id), '') from {{ Table("filtered", "w") }})
order by e.patterns_id
"""

FINAL = """
from patterns import Table

out = Table("out", "w")
for r in Table("filtered").as_stream().consume_records():
    out.append({"n": r["n"], "score": r["score"]})
"""

FILL = """
from patterns import Parameter, Table

n = Parameter("n", type=int, default=0)
Table("events", "w").append([{"n": i, "tag": f"t{i}", "source": "bench"} for i in range(n)])
"""

WEBHOOK_ONLY = """
title: Pipeline
slug: pipeline
functions:
  - webhook: events
    id: events01
stores:
  - table: events
"""

NODES = """
  - node_file: enrich.py
  - node_file: copy_new.sql
  - node_file: final.py
"""

STORES = """
  - table: enriched
  - table: filtered
  - table: out
"""


def _bodies(n: int, first: int = 0) -> list[bytes]:
    return [json.dumps([{"n": i, "tag": f"t{i}", "source": "bench"}
                        for i in range(at, min(first + n, at + BODY))]).encode()
            for at in range(first, first + n, BODY)]


def _post_all(url: str, bodies: list[bytes]) -> None:
    """Every body posted over ``CLIENTS`` keep-alive connections; each must get a 2xx."""
    host, _, rest = url.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    todo = list(reversed(bodies))
    lock = threading.Lock()
    failures: list[str] = []

    def client() -> None:
        con = http.client.HTTPConnection(name, int(port), timeout=60)
        while True:
            with lock:
                if not todo or failures:
                    break
                body = todo.pop()
            con.request("POST", "/" + rest, body, {"Content-Type": "application/json"})
            response = con.getresponse()
            text = response.read()
            if not 200 <= response.status < 300:
                failures.append(f"{response.status}: {text[:200]!r}")
        con.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"the webhook refused a request: {failures[0]}")


class Served:
    """A ``patterns serve`` of a throwaway app; its API and its webhook's URL."""

    def __init__(self, tmp: Path, graph: str, files: dict[str, str]) -> None:
        import requests

        from bench.webhooks import _wait_for_line

        root = tmp / "pipeline"
        root.mkdir()
        (root / "graph.yml").write_text(graph)
        for name, source in files.items():
            (root / name).write_text(source)
        env = {**os.environ, "PATTERNS_HOME": str(tmp / "home")}
        self.proc = subprocess.Popen([PYTHON, "-m", "patterns.cli.main", "serve", str(root),
                                      "--port", "0", "--no-sandbox"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)
        self.url = _wait_for_line(self.proc, r"on (http://\S+)")
        threading.Thread(target=self._drain, daemon=True).start()
        self.api = requests.Session()
        token = (tmp / "home" / "server-token").read_text().strip()
        self.api.headers["Authorization"] = f"Bearer {token}"
        (hook,) = self.api.get(f"{self.url}/api/v1/apps/pipeline/webhooks", timeout=30).json()
        self.hook = f"{self.url}{hook['path']}"

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    def warm(self, table: str) -> None:
        """:data:`WARM` records posted, and waited for until ``table`` holds them."""
        _post_all(self.hook, _bodies(WARM, first=-WARM))
        deadline = time.monotonic() + 120
        while self.count(table) < WARM:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the warm-up records did not reach {table} in 120 s")
            time.sleep(0.05)

    def count(self, table: str) -> int:
        response = self.api.get(f"{self.url}/api/v1/apps/pipeline/tables/{table}/rows",
                                params={"limit": 1}, timeout=60)
        return int(response.json()["total"]) if response.status_code == 200 else 0

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=120)


def _webhook_alone(n: int) -> float:
    with tempfile.TemporaryDirectory(prefix="patterns-bench-") as tmp:
        served = Served(Path(tmp), WEBHOOK_ONLY, {})
        try:
            served.warm("events")
            bodies = _bodies(n)
            start = time.perf_counter()
            _post_all(served.hook, bodies)
            stored = served.count("events")  # (waits for what was acknowledged)
            seconds = time.perf_counter() - start
            assert stored == WARM + n, (stored, n)
            return n / seconds
        finally:
            served.close()


def _nodes_alone(n: int) -> dict[str, float]:
    graph = f"title: Stages\nfunctions:\n  - node_file: fill.py\n{NODES}stores:\n" \
            f"  - table: events\n{STORES}"
    files = {"fill.py": FILL, "enrich.py": ENRICH, "copy_new.sql": COPY_NEW,
             "final.py": FINAL}
    from patterns.engine.engine import Engine
    from patterns.graph.loader import load_app

    rates: dict[str, float] = {}
    stages = ("enrich.py", "copy_new.sql", "final.py")
    with temp_app(files, graph) as root, Engine(load_app(root)) as engine:
        run_node(engine, engine.app.node("fill.py"), {"n": WARM})  # (warm: see the top)
        for name in stages:
            run_node(engine, engine.app.node(name))
        run_node(engine, engine.app.node("fill.py"), {"n": n})
        for name in stages:
            seconds, _ = run_node(engine, engine.app.node(name))
            rates[name] = n / seconds
        out = engine.store.table("out")
        assert out is not None and engine.store.count(out) == WARM + n
    return rates


def _pipeline(n: int) -> float:
    graph = WEBHOOK_ONLY.replace("functions:\n", "functions:" + NODES).replace(
        "stores:\n", "stores:" + STORES)
    files = {"enrich.py": ENRICH, "copy_new.sql": COPY_NEW, "final.py": FINAL}
    with tempfile.TemporaryDirectory(prefix="patterns-bench-") as tmp:
        served = Served(Path(tmp), graph, files)
        try:
            served.warm("out")
            bodies = _bodies(n)
            started = datetime.datetime.now(datetime.UTC)
            start = time.perf_counter()
            _post_all(served.hook, bodies)
            deadline = time.monotonic() + 600
            while served.count("out") < WARM + n:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the pipeline did not deliver {n} records in 600 s")
                time.sleep(0.05)
            seconds = time.perf_counter() - start
            assert served.count("out") == WARM + n
        finally:
            served.close()
        if os.environ.get("BENCH_PIPELINE_PROFILE"):
            from bench.pipeline_profile import profile

            store = Path(tmp) / "pipeline" / ".patterns" / "store.duckdb"
            print(profile(store, started), file=sys.stderr)
        return n / seconds


def run(small: bool) -> list[Figure]:
    n = 2_000 if small else 100_000
    stages: dict[str, Any] = {"webhook": _webhook_alone(n), **_nodes_alone(n)}
    slowest = min(stages, key=stages.__getitem__)
    through = _pipeline(n)
    detail = ", ".join(f"{k} {v:,.0f}/s" for k, v in stages.items())
    return [Figure("pipeline", "records through webhook -> Python -> SQL -> Python stream",
                   through, stages[slowest], "records/s", ">= 0.5", n,
                   f"{CLIENTS} clients posting {BODY} records a request; baseline: the "
                   f"slowest stage alone ({slowest}); stages alone: {detail}")]


if __name__ == "__main__":
    for figure in run("--small" in sys.argv):
        print(figure.line())
