"""The engine runs on the store it is given (or the one ``$PATTERNS_STORE`` names, a path or
a URL): it never builds a backend itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from patterns.engine.engine import Engine
from patterns.errors import StoreError
from patterns.graph.loader import load_app
from patterns.store import open_store
from tests.conftest import write_app

NODE = {"make.py": """
    from patterns import Table
    Table("out", "w").append([{"n": 1}, {"n": 2}])
"""}


def test_the_engine_runs_on_the_store_it_is_given(tmp_path: Path) -> None:
    app = load_app(write_app(tmp_path / "app", NODE, ["out"]))
    elsewhere = tmp_path / "elsewhere" / "mine.duckdb"
    with Engine(app, store=open_store(elsewhere)) as engine:
        record, _ = engine.run_node(app.node("make.py"), "manual")
        assert record.status == "succeeded"
        assert (elsewhere.parent / "engine.json").exists()  # announced beside its store
    assert not (app.root / ".patterns" / "store.duckdb").exists()
    store = open_store(elsewhere, read_only=True)
    try:
        with store.read() as view:
            meta = view.tables.get("out")
            assert meta is not None
            assert [r["n"] for r in view.scan(meta).read_all().to_pylist()] == [1, 2]
            assert view.runs.get(record.id) is not None
    finally:
        store.close()


def test_patterns_store_may_be_a_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = load_app(write_app(tmp_path / "app", NODE, ["out"]))
    monkeypatch.setenv("PATTERNS_STORE", f"duckdb://{tmp_path / 'by-url.duckdb'}")
    with Engine(app) as engine:
        assert engine.store.path == tmp_path / "by-url.duckdb"
    monkeypatch.setenv("PATTERNS_STORE", "nosuch://somewhere")
    with pytest.raises(StoreError, match="unknown store 'nosuch://somewhere'"):
        Engine(app)
