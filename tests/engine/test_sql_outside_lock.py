"""A SQL node's query runs before its commit takes the store's commit lock (on a snapshot),
so other commits go on meanwhile; and when one of them changes a table the query reads, the
commit works the query out again, so the node's rows are those of its inputs as committed
(patterns/store/duckdb_prepared.py)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pyarrow as pa
import pytest

from patterns.store.migrations import META
from patterns.store.model import Checkpoint, TableOp
from tests.engine.test_sql_nodes import sql_app

#: A scalar that takes DuckDB a second or more to work out, whatever rows it is added to.
SLOW = "(select sum(hash(i::varchar)) % 2 from range(20000000) t(i))"


def _commit_meanwhile(app: Any, table: str, rows: list[dict[str, Any]]) -> tuple[Any, int]:
    """Run the SQL node in a thread; once its query is under way, commit ``rows`` to
    ``table`` from here. The run's record and the number of that commit."""
    store = app.engine.store
    done: list[Any] = []
    runner = threading.Thread(target=lambda: done.append(app.run_node("query")))
    runner.start()
    time.sleep(0.5)  # (the run renders, plans and starts its query well within this)
    result = store.commit(Checkpoint(run_id="outside", node_id="outside", ops={
        table: [TableOp("append", data=pa.Table.from_pylist(rows))]}))
    runner.join(timeout=120)
    assert done, "the SQL node's run did not end"
    return done[0], result.seq


def _commit_of(app: Any, run_id: str) -> int:
    found = app.engine.store.arrow(
        f"SELECT max(seq) AS seq FROM {META}.commits WHERE run_id = ?", [run_id])
    return int(found.column("seq")[0].as_py())


def test_other_commits_land_while_a_sql_query_runs(app_runner: Any) -> None:
    sql = f"""
    insert into {{{{ Table("copy", "w") }}}}
    select n, {SLOW} as s from {{{{ Table("events") }}}}
    """
    app = sql_app(app_runner, sql, stores=("events", "copy", "other"),
                  outputs={})
    app.run_node("gen")
    assert app.run_node("query").status == "succeeded"  # (the first run also imports)
    record, seq = _commit_meanwhile(app, "other", [{"x": 1}])
    assert record.status == "succeeded", record.error
    # The other table's commit did not wait for the query: it was numbered before the SQL
    # node's commit, which came when the query was done.
    assert seq < _commit_of(app, record.id)
    assert len(app.rows("copy")) == 18
    assert [r["x"] for r in app.rows("other")] == [1]


@pytest.mark.parametrize("tries", [1, 2], ids=["then-under-the-lock", "on-a-new-snapshot"])
def test_a_commit_to_an_input_during_the_query_is_not_missed(app_runner: Any,
                                                              tries: int) -> None:
    sql = f"""
    create table if not exists {{{{ Table("copy", "w") }}}} (n bigint, s bigint);
    insert into {{{{ Table("copy", "w") }}}}
    select n, {SLOW} from {{{{ Table("events") }}}}
    where n > (select coalesce(max(n), -1) from {{{{ Table("copy", "w") }}}})
    order by n
    """
    app = sql_app(app_runner, sql, stores=("events", "copy"), outputs={})
    # (the commit works the query out again on a new snapshot, or at last under the lock)
    app.engine.store.PREPARE_TRIES = tries
    app.run_node("gen")
    first = app.run_node("query")  # (creates `copy`: a run's CREATE is done under the lock)
    assert first.status == "succeeded", first.error
    app.run_node("gen")  # 9 more events, n 0-8 again: not past what `copy` holds
    record, seq = _commit_meanwhile(app, "events", [{"n": 100 + i} for i in range(5)])
    assert record.status == "succeeded", record.error
    # The new events were committed before the SQL node's rows: its one transaction read
    # them, though its query had first been worked out without them.
    assert seq < _commit_of(app, record.id)
    assert [r["n"] for r in app.rows("copy")] == [*range(9), *range(100, 105)]
    # ...and a second run finds nothing new: every event is copied exactly once.
    again = app.run_node("query")
    assert again.status == "succeeded", again.error
    assert [r["n"] for r in app.rows("copy")] == [*range(9), *range(100, 105)]


def test_a_statement_reading_a_table_changed_before_it_in_the_same_run(
        app_runner: Any) -> None:
    sql = """
    create table if not exists {{ Table("copy", "w") }} (n bigint);
    insert into {{ Table("copy", "w") }} select n from {{ Table("events") }} where n < 3;
    insert into {{ Table("copy", "w") }}
    select n + 100 from {{ Table("copy", "w") }} order by n;
    """
    app = sql_app(app_runner, sql, stores=("events", "copy"), outputs={})
    app.run_node("gen")
    for _ in range(2):
        record = app.run_node("query")
        assert record.status == "succeeded", record.error
    # Each run's last statement saw the rows its first INSERT had just added (not the
    # table as it was before the run, when its query could have been worked out).
    first = [0, 1, 2, 100, 101, 102]
    assert [r["n"] for r in app.rows("copy")] == [
        *first, 0, 1, 2, *(n + 100 for n in sorted([*first, 0, 1, 2]))]
