"""The store contract: every backend passes these tests, through the one fixture
``store_factory`` (parametrized over the backends). A backend is defined by them.

``store_factory()`` opens the test's store (the same one each time it is called, so a test
can close and open it again); stores it opened are closed at the end.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from patterns.sdk._convert import records_to_arrow
from patterns.store import open_store
from patterns.store.interface import Store
from patterns.store.model import Checkpoint, CommitResult, TableMeta, TableOp

StoreFactory = Callable[..., Store]


def _have_postgres() -> bool:
    return importlib.util.find_spec("patterns.store.postgres") is not None


BACKENDS = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.skipif(
        not _have_postgres(), reason="no PostgreSQL backend (patterns.store.postgres) yet")),
]


@pytest.fixture(params=BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    where: str | Path = (tmp_path / "store.duckdb" if request.param == "duckdb" else
                         request.getfixturevalue("postgres_url"))
    opened: list[Store] = []

    def make(*, read_only: bool = False) -> Store:
        store = open_store(where, read_only=read_only)
        opened.append(store)
        return store

    yield make
    for store in opened:
        with contextlib.suppress(Exception):  # (closed by the test already)
            store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    return store_factory()


# ---------------------------------------------------------------------- helpers
def append(store: Store, table: str, records: list[dict[str, Any]], *,
           node: str = "writer", **checkpoint: Any) -> CommitResult:
    return store.commit(Checkpoint(run_id=f"run-{node}", node_id=node, ops={
        table: [TableOp("append", records_to_arrow(records, table))]}, **checkpoint))


def op(store: Store, table: str, *ops: TableOp, **checkpoint: Any) -> CommitResult:
    return store.commit(Checkpoint(run_id="run-op", node_id="op", ops={table: list(ops)},
                                   **checkpoint))


def meta_of(store: Store, table: str) -> TableMeta:
    with store.read() as view:
        found = view.tables.get(table)
    assert found is not None, f"no table {table}"
    return found


def rows(store: Store, table: str, *fields: str) -> list[Any]:
    """The table's rows in commit order (only ``fields``, as tuples, when given)."""
    with store.read() as view:
        meta = view.tables.get(table)
        found = view.scan(meta).read_all().to_pylist() if meta is not None else []
    if not fields:
        return found
    return [tuple(r[f] for f in fields) if len(fields) > 1 else r[fields[0]] for r in found]
