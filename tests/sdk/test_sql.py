"""read_sql and execute_sql from Python nodes, and DataFrames both ways — through the real
data plane and engine."""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from patterns import Table
from patterns.errors import NodeError

NODES = {
    "writer.py": 'from patterns import Table\nt = Table("events", "w")\n',
    "reader.py": 'from patterns import Table\nt = Table("events")\nout = Table("out", "w")\n',
}


@pytest.fixture
def app(app_runner: Any) -> Any:
    runner = app_runner(NODES, ["events", "out", "secret"])
    with runner.sdk("writer"):
        Table("events", "w").append([
            {"n": i, "name": ["Ada", "bob"][i % 2], "meta": {"score": i}} for i in range(6)])
    return runner


def test_read_sql_translates_postgres_and_names_columns_as_postgres(app: Any) -> None:
    with app.sdk("reader"):
        events = Table("events")
        rows = events.read_sql(f"select name, count(*), sum(n) / count(*) as avg, "
                               f"max((meta->>'score')::int) from {events} "
                               f"where name ilike 'a%' group by name")
        assert rows == [{"name": "Ada", "count": 3, "avg": 2, "max": 4}]
        frame = events.read_sql("select n from events where n > ? order by n",
                                as_format="dataframe", params=[3])
        assert isinstance(frame, pd.DataFrame) and list(frame["n"]) == [4, 5]
        duck = events.read_sql("-- dialect: duckdb\nselect 7 / 2 as x")
        assert duck == [{"x": 3.5}]


def test_read_sql_reads_only_declared_tables(app: Any) -> None:
    with app.sdk("writer"):
        Table("events", "w").read_sql("select * from events")  # its own table: fine
    with app.sdk("reader"):
        t = Table("events")
        with pytest.raises(NodeError, match=r"reads table 'secret', which node reader\.py did "
                                            r"not declare"):
            t.read_sql("select * from secret")
        with pytest.raises(NodeError, match="reads outside the app's tables"):
            t.read_sql("select * from read_parquet('/tmp/x.parquet')")
        with pytest.raises(NodeError, match="platform"):
            t.read_sql("select * from patterns_data.events__v1")
        with pytest.raises(NodeError, match="getenv"):
            t.read_sql("select getenv('HOME')")


@pytest.mark.parametrize("sql", [
    "insert into events values (1)",
    "delete from events",
    "update events set n = 1",
    "create table events2 as select 1",
    "drop table events",
    "with gone as (delete from events returning *) select * from gone",
    "select 1; delete from events",
])
def test_read_sql_refuses_to_write(app: Any, sql: str) -> None:
    before = app.rows("events")
    with app.sdk("reader"), pytest.raises(NodeError, match="read_sql"):
        Table("events").read_sql(sql)
    assert app.rows("events") == before


def test_read_sql_syntax_error_names_the_line(app: Any) -> None:
    with app.sdk("reader"), pytest.raises(NodeError) as caught:
        Table("events").read_sql("select n\nfrom events\nwher n > 1")
    assert str(caught.value).startswith("read_sql in reader.py, line 3 of the query: SQL "
                                        "syntax error")


def test_read_sql_chunks_without_loading_everything(app: Any) -> None:
    with app.sdk("reader"):
        chunks = Table("events").read_sql("select range as i from range(100000000)",
                                          as_format="arrow", chunksize=1000)
        first = list(itertools.islice(chunks, 3))  # would take minutes and GBs if loaded
        assert [c.num_rows for c in first] == [1000, 1000, 1000]
        assert first[2].column("i")[0].as_py() == 2000
        chunks.close()


def test_execute_sql_changes_the_nodes_own_table_at_its_checkpoint(app: Any) -> None:
    with app.sdk("reader"):
        out = Table("out", "w")
        out.append([{"n": i} for i in range(5)])
        out.execute_sql(f"delete from {out} where n < 2; update {out} set n = n * 100 "
                        f"where n = 4; insert into {out} select 99")
        assert sorted(r["n"] for r in out.read()) == [2, 3, 99, 400]  # reads its own writes
        assert out.read_sql(f"select count(*) as c from {out}") == [{"c": 4}]
        assert app.rows("out") == []  # nothing committed before the checkpoint
    assert [r["n"] for r in app.rows("out")] == [2, 3, 400, 99]


def test_execute_sql_refuses_other_tables_queries_and_bad_sql(app: Any) -> None:
    with app.sdk("reader"):
        out = Table("out", "w")
        with pytest.raises(NodeError, match="may change only this table"):
            out.execute_sql("delete from events")
        with pytest.raises(NodeError, match="run queries with read_sql"):
            out.execute_sql("select 1")
        with pytest.raises(NodeError, match=r"line 2 of the SQL: .*column nope not found"):
            out.append({"n": 1})
            out.execute_sql(f"update {out}\nset nope = 1")
        with pytest.raises(NodeError, match="which it declared read-only"):
            Table("events").execute_sql("delete from events")
    assert [r["n"] for r in app.rows("out")] == [1]  # the refused SQL staged nothing


def test_execute_sql_is_rolled_back_with_the_run(app: Any) -> None:
    with app.sdk("reader"):
        Table("out", "w").append({"n": 1})
    with pytest.raises(RuntimeError), app.sdk("reader"):
        Table("out", "w").execute_sql("delete from out")
        raise RuntimeError("the node fails")
    assert [r["n"] for r in app.rows("out")] == [1]


def test_dataframes_both_ways(app: Any) -> None:
    polars = pytest.importorskip("polars")
    with app.sdk("reader"):
        out = Table("out", "w")
        out.append(polars.DataFrame({"n": [1, 2], "s": ["a", "b"]}))
        out.append(pd.DataFrame({"n": [3], "s": ["c"]}))
        out.append(pa.table({"n": [4], "s": ["d"]}))
        frame = out.read(as_format="polars")
        assert isinstance(frame, polars.DataFrame)
        assert frame["n"].to_list() == [1, 2, 3, 4]
        assert list(out.read_dataframe()["s"]) == ["a", "b", "c", "d"]
        out.replace(polars.DataFrame({"n": [7]}))
        chunks = list(out.read(as_format="polars", chunksize=1))
        assert [c["n"].to_list() for c in chunks] == [[7]]
    assert [r["n"] for r in app.rows("out")] == [7]
    assert app.engine.store.table("out").version == 2  # type: ignore[union-attr]


def test_replace_and_reset_keep_only_keep_versions_versions(app_runner: Any) -> None:
    app = app_runner(NODES, ["events", "out"], settings={"keep_versions": 2})
    for n in range(3):
        with app.sdk("writer"):
            Table("events", "w").replace([{"n": n}])
    with app.sdk("writer"):
        Table("events", "w").reset()
    kept = [(v["version"], v["reason"], v["available"])
            for v in app.engine.store.versions("events")]
    assert kept == [(1, "created", False), (2, "replace", False), (3, "replace", False),
                    (4, "replace", True), (5, "reset", True)]
    old = app.engine.store.arrow('select n from patterns_data."events__v4"').to_pylist()
    assert old == [{"n": 2}]  # the previous version is still readable
