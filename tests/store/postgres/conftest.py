"""A PostgreSQL store on a fresh database of the test server, per test."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from patterns.store.model import Checkpoint, CommitResult, TableOp
from patterns.store.postgres import PostgresStore


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(postgres_url)
    yield store
    store.close()


def commit(store: PostgresStore, table: str, *ops: TableOp, run_id: str = "r",
           node_id: str = "n", **kwargs: object) -> CommitResult:
    cp = Checkpoint(run_id, node_id, **kwargs)  # type: ignore[arg-type]
    for op in ops:
        cp.add(table, op)
    return store.commit(cp)


def append(data: dict[str, list[object]] | pa.Table) -> TableOp:
    return TableOp("append", data if isinstance(data, pa.Table) else pa.table(data))


def rows(store: PostgresStore, table: str) -> list[dict[str, object]]:
    with store.read() as view:
        meta = view.tables.get(table)
        assert meta is not None
        return view.scan(meta).read_all().to_pylist()
