"""Unit-testing nodes: run one node against given input rows, with a throwaway store.

```python
from patterns.testing import run_node

def test_enrich():
    result = run_node("examples/chat_enrich", "enrich.py",
                      inputs={"messages": [{"id": 1, "text": "hello world", ...}]},
                      params={"preview_chars": 5})
    assert result.ok, result.error
    assert result.outputs["messages_enriched"][0]["preview"] == "hello"
```

The node runs for real — its own process, the data plane, a DuckDB store in a temporary
folder — so what passes here passes in ``patterns run``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patterns.store.model import RunRecord


@dataclass(frozen=True)
class NodeResult:
    """What one run of a node did."""

    run: RunRecord
    outputs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.run.status == "succeeded"

    @property
    def error(self) -> str | None:
        return self.run.error

    @property
    def traceback(self) -> str | None:
        return self.run.traceback


def run_node(app_dir: str | Path, node: str,
             inputs: Mapping[str, list[dict[str, Any]]] | None = None,
             params: Mapping[str, Any] | None = None,
             state: Mapping[str, Any] | None = None) -> NodeResult:
    """Run ``node`` (a file or id of the app at ``app_dir``) once.

    ``inputs`` seeds tables (store name → rows) before the run; ``params`` override
    parameter values; ``state`` is the node's state before the run. Returns the rows the
    run wrote to each table it declares writing, its state after the run and its output
    lines.
    """
    from patterns.engine.engine import Engine
    from patterns.graph.loader import load_app
    from patterns.sdk._convert import records_to_arrow
    from patterns.sdk.table import records_of
    from patterns.store.model import Checkpoint, TableOp

    app = load_app(app_dir)
    target = app.node(node)
    with tempfile.TemporaryDirectory(prefix="patterns-test-") as tmp, \
            Engine(app, store_path=Path(tmp) / "store.duckdb") as engine:
        seed = Checkpoint(run_id="seed", node_id="seed", ops={
            table: [TableOp("append", records_to_arrow(rows, table))]
            for table, rows in (inputs or {}).items() if rows})
        engine.store.commit(seed)
        if state:
            with engine.store.transaction() as tx:
                tx.memory.set_state(target.id, dict(state))
        record, _ = engine.run_node(target, "test", dict(params or {}))
        outputs = {}
        with engine.store.read() as view:
            for table in target.writes():
                info = view.tables.get(table)
                rows = view.scan(info).read_all().to_pylist() if info else []
                outputs[table] = records_of(rows, info.json_columns()) if info else []
            new_state = view.memory.state(target.id)
            log = view.logs.get(record.id) or ""
    lines = [_text(json.loads(line)) for line in log.splitlines()]
    return NodeResult(run=record, outputs=outputs, state=new_state, logs=lines)


def _text(line: list[str]) -> str:
    """A log line's text; a ``logging`` record's after its level (``WARNING careful``)."""
    _, stream, text, *level = line
    return f"{level[0]} {text}" if stream == "log" and level else text
