"""What the benchmarks share: the figure they print, timing, and throwaway apps."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from patterns.engine.engine import Engine
    from patterns.graph.model import Node


@dataclass
class Figure:
    """One measured figure against its baseline: ``ratio`` is value / baseline, and
    ``target`` says which way is good (``"<= 0.5"``: at most half the baseline; ``""``: a
    figure for reference, with no target)."""

    bench: str
    figure: str
    value: float
    baseline: float
    unit: str
    target: str
    size: int
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    @property
    def met(self) -> bool | None:
        if not self.target:
            return None
        op, _, bound = self.target.partition(" ")
        limit = float(bound)
        return self.ratio <= limit if op == "<=" else self.ratio >= limit

    def line(self) -> str:
        doc = asdict(self)
        doc["ratio"] = round(self.ratio, 3)
        doc["met"] = self.met
        doc["value"] = round(self.value, 3)
        doc["baseline"] = round(self.baseline, 3)
        return json.dumps(doc)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """The range of a figure's repetitions, in seconds: what to compare two runs' noise by."""
    return f"{min(values):.2f}-{max(values):.2f} s"


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@contextmanager
def temp_app(files: dict[str, str], graph: str) -> Iterator[Path]:
    """An app folder with ``graph`` as graph.yml and ``files`` as node files, and a private
    Patterns home, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="patterns-bench-") as tmp:
        root = Path(tmp) / "app"
        root.mkdir()
        (root / "graph.yml").write_text(textwrap.dedent(graph))
        for name, source in files.items():
            (root / name).write_text(textwrap.dedent(source))
        saved = os.environ.get("PATTERNS_HOME")
        os.environ["PATTERNS_HOME"] = str(Path(tmp) / "home")
        try:
            yield root
        finally:
            if saved is None:
                os.environ.pop("PATTERNS_HOME", None)
            else:
                os.environ["PATTERNS_HOME"] = saved


PYTHON = sys.executable

#: What a node prints to hand the benchmark a JSON document of its own measurements.
REPORT_MARK = "BENCH-REPORT "


def app_files(nodes: dict[str, str]) -> dict[str, str]:
    """Node files for :func:`temp_app`, each first importing ``benchprofile``
    (bench/node_profile.py), plus that and ``benchrecords`` (bench/records.py), which the
    nodes import to make the benchmark's records."""
    here = Path(__file__).parent
    first = "import benchprofile  # noqa: F401  (BENCH_NODE_PROFILE=DIR: cProfile the node)\n"
    files = {name: first + textwrap.dedent(source) for name, source in nodes.items()}
    files["benchprofile.py"] = (here / "node_profile.py").read_text(encoding="utf-8")
    files["benchrecords.py"] = (here / "records.py").read_text(encoding="utf-8")
    return files


@contextmanager
def bench_engine(nodes: dict[str, str], graph: str) -> Iterator[Engine]:
    """An engine (warm worker, data plane, store) on a throwaway app of ``nodes`` (see
    :func:`app_files`); the temp folder also holds :func:`baseline_db`."""
    from patterns.engine.engine import Engine
    from patterns.graph.loader import load_app

    with temp_app(app_files(nodes), graph) as root, Engine(load_app(root)) as engine:
        yield engine


def baseline_db(engine: Engine) -> Path:
    """A DuckDB file of the baselines' own, in the benchmark's temp folder."""
    return engine.app.root.parent / "baseline.duckdb"


def run_node(engine: Engine, node: Node,
             params: dict[str, Any] | None = None) -> tuple[float, str]:
    """Run ``node`` once through the engine, as ``patterns run`` does: the seconds from the
    trigger until the run is committed and recorded, and the run's id. A failed run stops
    the benchmark."""
    start = time.perf_counter()
    record, _ = engine.run_node(node, "manual", params)
    seconds = time.perf_counter() - start
    if record.status != "succeeded":
        with engine.store.read() as view:
            log = view.logs.get(record.id) or ""
        raise RuntimeError(f"{node.rel_file}: run {record.status}: {record.error}\n{log}")
    return seconds, record.id


def report(engine: Engine, run_id: str) -> dict[str, Any]:
    """What the node printed after :data:`REPORT_MARK` in run ``run_id``."""
    with engine.store.read() as view:
        log = view.logs.get(run_id) or ""
    for line in log.splitlines():
        _, _, text = json.loads(line)[:3]
        if text.startswith(REPORT_MARK):
            return dict(json.loads(text[len(REPORT_MARK):]))
    raise RuntimeError(f"the node did not print its {REPORT_MARK.strip()} line; log:\n{log}")


#: A node that appends records ``start`` .. ``start + n - 1`` to table ``src`` as Arrow
#: tables in big batches: the quick way to fill a table that a benchmark then reads.
FILL_NODE = """
from patterns import Parameter, Table

from benchrecords import arrow_table

src = Table("src", "w")
start = Parameter("start", type=int, default=0)
n = Parameter("n", type=int, default=0)
for at in range(start, start + n, 500_000):
    src.append(arrow_table(at, min(500_000, start + n - at)))
"""


def fill(engine: Engine, start: int, n: int) -> None:
    """Append records ``start`` .. ``start + n - 1`` to ``src`` with the app's ``fill.py``
    (:data:`FILL_NODE`), in one committed run."""
    run_node(engine, engine.app.node("fill.py"), {"start": start, "n": n})


#: A node that consumes the stream of table ``src`` and reports how many records it got.
CONSUMER_NODE = """
import json

from patterns import Table

stream = Table("src").as_stream()
n = 0
for record in stream.consume_records():
    n += 1
print("BENCH-REPORT " + json.dumps({"rows": n}))
"""


def time_appends(node_file: str, source: str, graph: str, n: int,
                 reps: int) -> tuple[list[float], list[float], list[float]]:
    """Benchmarks 1 and 2: each round, the baseline (``from_pylist`` and one committed insert
    of ``n`` records) and then a run of the node ``source`` (``__N__`` replaced by ``n``),
    which makes the same records, reports the seconds that took as ``made_s`` and appends
    them. Per round: the run's seconds less the making, the baseline's, the making's."""
    import duckdb

    from bench.baselines import insert_records
    from bench.records import record_list

    platform, base, made = [], [], []
    with bench_engine({node_file: source.replace("__N__", str(n))}, graph) as engine:
        node = engine.app.node(node_file)
        con = duckdb.connect(str(baseline_db(engine)))
        for _ in range(reps):
            rows = record_list(0, n)
            base.append(timed(lambda rows=rows: insert_records(con, "out", rows)))
            del rows
            seconds, run_id = run_node(engine, node)
            made.append(report(engine, run_id)["made_s"])
            platform.append(seconds - made[-1])
        con.close()
        from bench.stores import stored_rows

        assert stored_rows(engine.store, "out") == n * reps
    return platform, base, made


def filled_source(engine: Engine, n: int) -> Any:
    """Records 0 .. n - 1 in table ``src``: in the store (by the app's ``fill.py``) and in
    the baseline's own DuckDB file, whose connection is returned."""
    import duckdb

    from bench.baselines import insert_arrow
    from bench.records import arrow_table

    fill(engine, 0, n)
    con = duckdb.connect(str(baseline_db(engine)))
    insert_arrow(con, "src", arrow_table(0, n))
    return con
