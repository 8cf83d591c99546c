"""The apps the campaign runs, written into a fresh folder per trial."""

from __future__ import annotations

import textwrap
from pathlib import Path

PIPELINE_GRAPH = """
title: Chaos pipeline
slug: chaos
functions:
  - node_file: source.py
    id: source01
  - node_file: double.py
    id: double01
  - node_file: tally.py
    id: tally001
stores:
  - table: src
  - table: mid
  - table: dst
settings:
  checkpoint_seconds: 0.05
"""

# One batch per run, the count written kept in state; a continuation run writes the next.
SOURCE = """
from patterns import Parameter, State, Table
src = Table("src", "w")
state = State()
total = Parameter("total", type=int, default=TOTAL)
batch = Parameter("batch", type=int, default=60)
done = state.get_value("written", 0)
if done < total:
    upto = min(done + batch, total)
    src.append([{"n": n, "pad": "x" * (n % 50)} for n in range(done, upto)])
    state.set_value("written", upto)
    if upto < total:
        state.request_new_run()
"""

# A stream over src into mid, with explicit checkpoints and a small pause per record so
# that kills land inside the loop.
DOUBLE = """
import time
from patterns import Parameter, Table
src = Table("src")
mid = Table("mid", "w")
pause = Parameter("pause", type=float, default=0.0005)
stream = src.as_stream(order_by="n")
for i, record in enumerate(stream.consume_records()):
    mid.append({"n": record["n"], "v": record["n"] * 2})
    if i % 7 == 6:
        stream.checkpoint()
    if pause:
        time.sleep(pause)
"""

# A stream over mid into dst, keeping a count and a sum in state: they must agree with dst.
TALLY = """
from patterns import State, Table
mid = Table("mid")
dst = Table("dst", "w")
state = State()
count = state.get_value("count", 0)
total = state.get_value("sum", 0)
with mid.as_stream().consume_with_rollback() as records:
    for record in records:
        count += 1
        total += record["v"]
        dst.append({"n": record["n"], "v": record["v"]})
        state.set_value("count", count)
        state.set_value("sum", total)
"""

WEBHOOK_GRAPH = """
title: Chaos webhooks
slug: chaoshooks
functions:
  - webhook: events
    id: hook0001
  - node_file: copy.py
    id: copy0001
stores:
  - table: events
  - table: copied
"""

COPY = """
from patterns import State, Table
events = Table("events")
copied = Table("copied", "w")
state = State()
count = state.get_value("count", 0)
stream = events.as_stream()
for i, record in enumerate(stream.consume_records()):
    copied.append({"k": record["k"]})
    count += 1
    state.set_value("count", count)
    if i % 5 == 4:
        stream.checkpoint()
"""


def write(root: Path, graph: str, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "graph.yml").write_text(textwrap.dedent(graph).lstrip())
    for name, source in files.items():
        (root / name).write_text(textwrap.dedent(source).lstrip())
    return root


def pipeline(root: Path, total: int) -> Path:
    source = SOURCE.replace("TOTAL", str(total))
    return write(root, PIPELINE_GRAPH, {"source.py": source, "double.py": DOUBLE,
                                        "tally.py": TALLY})


def webhooks(root: Path) -> Path:
    return write(root, WEBHOOK_GRAPH, {"copy.py": COPY})
