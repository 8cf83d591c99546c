"""Benchmark 8: load N records from a Python generator into a table, against dlt.

The node appends the records of ``benchrecords.records`` (a generator) one by one, through
``Engine.run_node``: trigger → appended → committed → recorded. Baseline, in the same run on
the same generator: dlt loading it into a DuckDB file of its own
(``dlt.pipeline(destination="duckdb")``, ``loader_file_format="parquet"``), in a process of
its own (so dlt's settings and imports stay out of this one), timed around
``pipeline.run`` only: extract, normalize and load until the load package is committed.
The figure is the median of 3 repetitions, alternating the two sides; the note gives each
side's range, so a run shows which side moved.

dlt is a benchmark-only extra (``pip install -e '.[bench]'``) and runs offline here: no
telemetry, its data and pipeline folders in the benchmark's temp folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

from bench.common import PYTHON, Figure, bench_engine, median, run_node, spread

GRAPH = """
title: Load from a generator
functions:
  - node_file: load.py
stores:
  - table: out
"""
NODE = """
from patterns import Table

from benchrecords import records

out = Table("out", "w")
for record in records(0, __N__):
    out.append(record)
"""
DLT_LOAD = """
import json
import sys
import time

import dlt

from bench.records import records

n, folder, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
pipeline = dlt.pipeline(pipeline_name=name, pipelines_dir=folder + "/pipelines",
                        destination=dlt.destinations.duckdb(folder + "/dlt.duckdb"),
                        dataset_name="bench")
start = time.perf_counter()
info = pipeline.run(records(0, n), table_name="out", loader_file_format="parquet")
seconds = time.perf_counter() - start
info.raise_on_failed_jobs()
with pipeline.sql_client() as client:
    rows = client.execute_sql("SELECT count(*) FROM out")[0][0]
print(json.dumps({"seconds": seconds, "rows": rows}))
"""
ROOT = Path(__file__).resolve().parents[1]


def dlt_load(n: int, folder: Path, name: str) -> float:
    """Seconds dlt takes to load records 0 .. n - 1 (in a fresh process, fully offline)."""
    if importlib.util.find_spec("dlt") is None:
        raise RuntimeError("benchmark load_vs_dlt needs dlt, a benchmark-only extra: "
                           "pip install -e '.[bench]' (scripts/test installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNTIME__DLTHUB_TELEMETRY": "false",
           "DLT_DATA_DIR": str(folder / "data"), "DLT_PROJECT_DIR": str(folder)}
    done = subprocess.run([PYTHON, "-c", DLT_LOAD, str(n), str(folder), name], cwd=folder,
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the dlt load failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rows"] == n, result
    return float(result["seconds"])


def run(small: bool) -> list[Figure]:
    n, reps = (20_000, 1) if small else (1_000_000, 3)
    platform, base = [], []
    with bench_engine({"load.py": NODE.replace("__N__", str(n))}, GRAPH) as engine:
        folder = engine.app.root.parent / "dlt"
        for k in range(reps):
            base.append(dlt_load(n, folder / f"run_{k}", f"bench_{k}"))  # (a file each)
            platform.append(run_node(engine, engine.app.node("load.py"))[0])
        out = engine.store.table("out")
        assert out is not None and engine.store.count(out) == n * reps
    return [Figure(
        "load_vs_dlt", "load a generator until committed", n / median(platform),
        n / median(base), "records/s", ">= 12", n,
        f"median of {reps} (platform {spread(platform)}, baseline {spread(base)}); node: "
        f"append(record) per generated record, the run trigger to recorded; baseline: dlt "
        f"pipeline.run into DuckDB, loader_file_format=parquet")]
