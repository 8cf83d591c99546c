"""The benchmarks stay runnable: `python -m bench --small` runs every one of them (no
assertion on timings; only that each prints well-formed figures with a ratio)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_benchmark_runs_small_and_prints_its_figures() -> None:
    from bench.__main__ import BENCHMARKS

    done = subprocess.run([sys.executable, "-m", "bench", "--small"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    figures = [json.loads(line) for line in done.stdout.splitlines()]
    assert {f["bench"] for f in figures} == set(BENCHMARKS)
    for figure in figures:
        assert figure["value"] > 0 and figure["baseline"] > 0, figure
        assert figure["ratio"] == pytest.approx(figure["value"] / figure["baseline"], rel=0.01)
        assert figure["unit"] and figure["figure"]


def test_records_made_column_wise_are_the_records_made_as_dicts() -> None:
    import pyarrow as pa

    from bench.records import arrow_table, record_list

    made = arrow_table(7, 1000)
    assert made.equals(pa.Table.from_pylist(record_list(7, 1000)))
    assert made.slice(3, 1).to_pylist() == record_list(10, 1)


@pytest.mark.slow
def test_the_store_benchmarks_run_on_postgresql(postgres_url: str) -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--small", "--store", postgres_url,
                           "consume"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (figure,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert figure["bench"] == "consume" and figure["store"] == "postgresql"
    assert figure["value"] > 0
    refused = subprocess.run([sys.executable, "-m", "bench", "--store", "oracle://x"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "unknown store 'oracle://x'" in refused.stderr
