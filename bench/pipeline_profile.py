"""Where a pipeline's time went, read from its store after the server stopped
(``BENCH_PIPELINE_PROFILE=1 python -m bench pipeline`` prints it to stderr).

Per stage: how many runs (webhook: store commits) it made, how busy it was (the sum of its
runs' start-to-end times) within the span from its first start to its last end, the rows each
run read and wrote, and how long its runs waited to start: after the first upstream commit
they had not seen (``after commit``) and after the later of that commit and the stage's own
previous run's end (``after free``: what the scheduler adds; the rest is the stage being busy).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import statistics
from pathlib import Path
from typing import Any

#: node file -> the table it reads (the pipeline's stages in order)
READS = {"enrich.py": "events", "copy_new.sql": "enriched", "final.py": "filtered"}


def _ms(delta: dt.timedelta) -> float:
    return delta.total_seconds() * 1000


def _spread(values: list[float], unit: str = "") -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return (f"median {statistics.median(ordered):,.0f}{unit} p90 {p90:,.0f}{unit} "
            f"max {ordered[-1]:,.0f}{unit}")


def profile(store_file: Path, start: dt.datetime) -> str:
    """The report for the pipeline whose store is ``store_file`` (closed), posting from
    ``start`` (UTC; what was committed or run before it, the warm-up, is left out)."""
    import duckdb

    con = duckdb.connect(str(store_file), read_only=True)
    try:
        commits = con.execute(
            "SELECT c.seq, c.table_name, c.rows_added, c.committed_at, coalesce(r.node_id, "
            "c.node_id) FROM patterns_meta.commits c LEFT JOIN patterns_meta.runs r "
            "ON r.id = c.run_id ORDER BY c.seq").fetchall()
        runs = con.execute(
            "SELECT node_id, started_at, ended_at, seen_commit, rows_read, rows_written, "
            "status FROM patterns_meta.runs ORDER BY started_at").fetchall()
        files = dict(con.execute(
            "SELECT node_id, any_value(node_title) FROM patterns_meta.runs "
            "GROUP BY node_id").fetchall())
    finally:
        con.close()
    commits = [c for c in commits if c[3] >= start]
    runs = [r for r in runs if r[1] >= start]
    lines = []
    hook = [c for c in commits if c[1] == "events"]
    if hook:
        rows = [float(c[2]) for c in hook]
        gaps = [_ms(b[3] - a[3]) for a, b in itertools.pairwise(hook)]
        lines.append(f"webhook: {len(hook)} commits from +{_ms(hook[0][3] - start):,.0f} to "
                     f"+{_ms(hook[-1][3] - start):,.0f} ms; rows {_spread(rows)}; "
                     f"between commits {_spread(gaps, ' ms')}")
    for node_id, title in sorted(files.items(), key=lambda kv: str(kv[1])):
        name = next((f for f in READS if f.split(".")[0] in str(title).lower()), str(title))
        table = READS.get(name)
        mine = [r for r in runs if r[0] == node_id]
        if not mine:
            continue
        busy = sum(_ms(r[2] - r[1]) for r in mine if r[2] is not None)
        span = _ms(mine[-1][2] - mine[0][1]) if mine[-1][2] is not None else 0.0
        read = [float(sum(_loads(r[4]).values())) for r in mine if r[4]]
        # (runs that read no row: woken by rows a run of theirs had read already)
        found_nothing = sum(1 for r in mine if not sum(_loads(r[4]).values()))
        wrote = [float(sum(_loads(r[5]).values())) for r in mine if r[5]]
        after_commit, after_free = [], []
        previous: tuple[Any, ...] | None = None
        for run in mine:  # (the first commit of its input past what the run before saw)
            seen = previous[3] if previous is not None else 0
            first = next((c for c in commits if c[0] > seen and c[1] == table), None)
            if first is not None and first[0] <= run[3]:
                after_commit.append(_ms(run[1] - first[3]))
                free = max(first[3], previous[2]) if previous is not None else first[3]
                after_free.append(_ms(run[1] - free))
            previous = run
        lines.append(
            f"{name}: {len(mine)} runs ({found_nothing} read nothing) from +{_ms(mine[0][1] - start):,.0f} to "
            f"+{_ms(mine[-1][2] - start) if mine[-1][2] else 0:,.0f} ms, busy {busy:,.0f} of "
            f"{span:,.0f} ms; run {_spread([_ms(r[2] - r[1]) for r in mine if r[2]], ' ms')}; "
            f"rows read {_spread(read)}; written {_spread(wrote)}; waited after commit "
            f"{_spread(after_commit, ' ms')}; after free {_spread(after_free, ' ms')}; "
            f"statuses {sorted({r[6] for r in mine})}")
    return "\n".join(lines)


def _loads(value: Any) -> dict[str, int]:
    doc = json.loads(value) if isinstance(value, str) else value
    return {str(k): int(v) for k, v in (doc or {}).items()}

