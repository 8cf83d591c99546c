"""Benchmark 6: peak memory of a node consuming a big stream is bounded by the batch.

A consumer node runs ``for r in stream.consume_records()`` over the whole of ``src`` (filled
untimed with ``benchrecords``) and prints its own peak RSS (``ru_maxrss``) at the end. The
same node over 10x fewer rows, in the same run, is the baseline: with memory bounded by the
batch and not the table, the two peaks are about the same. Each figure is the median of
:data:`REPS` nodes run one after the other over the same table: with one node each, two
quiet runs of the same commit gave 1.16 and 1.09 (bench/RESULTS.md).
"""

from __future__ import annotations

from bench.common import FILL_NODE, Figure, bench_engine, fill, median, report, run_node

#: Consuming nodes per size; the figure is their median.
REPS = 3
GRAPH = "title: Stream memory\nfunctions:\n  - node_file: fill.py\n" + "".join(
    f"  - node_file: consume_{k}.py\n" for k in range(REPS)) + "stores:\n  - table: src\n"
CONSUMER = """
import json
import resource

from patterns import Table

start_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
stream = Table("src").as_stream()
n = 0
for record in stream.consume_records():
    n += 1
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("BENCH-REPORT " + json.dumps({"rows": n, "peak_mb": peak_kb / 1024,
                                      "start_mb": start_kb / 1024}))
"""


def _peaks(rows: int) -> tuple[float, float]:
    """The nodes' median peak RSS at their end and at their start, in MB."""
    nodes = {"fill.py": FILL_NODE, **{f"consume_{k}.py": CONSUMER for k in range(REPS)}}
    peaks, starts = [], []
    with bench_engine(nodes, GRAPH) as engine:
        fill(engine, 0, rows)
        for k in range(REPS):
            _, run_id = run_node(engine, engine.app.node(f"consume_{k}.py"))
            done = report(engine, run_id)
            assert done["rows"] == rows, (done, rows)
            peaks.append(float(done["peak_mb"]))
            starts.append(float(done["start_mb"]))
    return median(peaks), median(starts)


def run(small: bool) -> list[Figure]:
    rows = 100_000 if small else 5_000_000
    (big, start), (baseline, _) = _peaks(rows), _peaks(rows // 10)
    return [Figure(
        "stream_memory", "peak RSS of a node consuming a stream", big, baseline, "MB",
        "<= 1.1", rows,
        f"median of {REPS} nodes each; baseline: the same node over {rows // 10:,} rows; "
        f"ru_maxrss of the node process, "
        f"which is forked from the warm worker and so includes its imports on both sides "
        f"({start:.0f} MB when the node code starts)")]
