"""SQL nodes: a Jinja template run by the engine on the real DuckDB store — outputs as new
versions, writes in place, bound parameters, Postgres translated to DuckDB, and every bad
input as a clear error that leaves the store unchanged."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from patterns import Table
from patterns.errors import GraphError

GEN = """
import datetime as dt
from patterns import Table

events = Table("events", "w")
events.append([
    {"n": i, "name": ["Ada", "bob", "Alan", "carol"][i % 4], "kind": ["a", "b"][i % 2],
     "amount": i * 1.5, "at": dt.datetime(2024, 1, 1 + i // 3, i, tzinfo=dt.UTC),
     "payload": {"user": f"u{i % 3}", "meta": {"score": i * 10}, "tags": ["x"] * (i % 3)}}
    for i in range(9)
])
"""


def sql_app(app_runner: Any, sql: str, *, stores: tuple[str, ...] = ("events", "out"),
            outputs: dict[str, str] | None = None, settings: dict[str, Any] | None = None,
            extra: dict[str, str] | None = None, params: dict[str, Any] | None = None) -> Any:
    """An app with the Python node gen.py (writing `events`) and the SQL node query.sql."""
    functions: list[dict[str, Any]] = [{"node_file": "gen.py", "id": "gen"}]
    query: dict[str, Any] = {"node_file": "query.sql", "id": "query",
                             "outputs": outputs if outputs is not None else
                             {"output_table": "out"}}
    if params:
        query["parameter_values"] = params
    functions.append(query)
    for name in extra or {}:
        functions.append({"node_file": name, "id": name.split(".")[0].replace("_", "")})
    return app_runner({"gen.py": GEN, "query.sql": sql, **(extra or {})}, list(stores),
                      functions=functions, settings=settings)


def run_query(app: Any, sql: str | None = None) -> Any:
    if sql is not None:
        (app.root / "query.sql").write_text(sql)
    return app.run_node("query")


def versions(app: Any, table: str) -> list[tuple[int, str, bool]]:
    return [(v["version"], v["reason"], v["available"])
            for v in app.engine.store.versions(table)]


def fingerprint(app: Any) -> Any:
    """Everything a failed run must leave alone: every table's version and rows."""
    store = app.engine.store
    return {m.name: (m.version, app.rows(m.name)) for m in store.tables()}


# ---------------------------------------------------------------------- outputs
def test_select_makes_a_new_version_of_the_output_table_and_wakes_readers(
        app_runner: Any) -> None:
    sql = """
    select kind, count(*) as n, sum(amount) as total
    from {{ Table("events") }}
    group by kind
    order by kind
    """
    reader = 'from patterns import Table\nout = Table("out")\ncopy = Table("copy", "w")\n' \
             'copy.append(list(out.as_stream().consume_records()))\n'
    app = sql_app(app_runner, sql, stores=("events", "out", "copy"),
                  extra={"reader.py": reader})
    result = app.run()
    assert result.ok, [r.error for r in result.runs]
    assert [r.node_id for r in result.runs] == ["gen", "query", "reader"]
    query_run = result.runs[1]
    assert (query_run.status, query_run.rows_written) == ("succeeded", {"out": 2})
    assert query_run.rows_read == {"events": 9}  # (every row the SELECT scanned)
    rows = app.rows("out")
    assert [(r["kind"], r["n"], r["total"]) for r in rows] == [("a", 5, 30.0), ("b", 4, 24.0)]
    assert all(len(r["patterns_id"]) == 26 for r in rows)
    assert [r["kind"] for r in app.rows("copy")] == ["a", "b"]
    with app.engine.store.read() as view:
        assert "out: 2 row(s) written" in (view.logs.get(query_run.id) or "")

    run_query(app)  # each run is a new version; the old one stays readable
    assert versions(app, "out") == [(1, "created", True), (2, "sql", True), (3, "sql", True)]
    assert app.run_node("reader").status == "succeeded"
    assert [r["kind"] for r in app.rows("copy")] == ["a", "b", "a", "b"]  # started over


def test_rows_keep_the_order_of_order_by(app_runner: Any) -> None:
    app = sql_app(app_runner, 'select n from {{ Table("events") }} order by n desc')
    app.run()
    assert [r["n"] for r in app.rows("out")] == list(range(8, -1, -1))  # patterns_id order


def test_a_query_returning_no_rows_is_an_empty_new_version(app_runner: Any) -> None:
    app = sql_app(app_runner, 'select n, name from {{ Table("events") }} where n > 100')
    assert app.run().ok
    assert app.rows("out") == []
    meta = app.engine.store.table("out")
    assert meta is not None and [c.name for c in meta.columns] == ["n", "name"]
    assert meta.version == 2


POSTGRES = [
    ("date_trunc and :: casts",
     "select date_trunc('day', at)::date as day, count(*)::int as n, sum(amount)::numeric "
     "as total from {{ Table('events') }} group by 1 order by 1",
     [{"day": dt.date(2024, 1, 1), "n": 3, "total": 4.5},
      {"day": dt.date(2024, 1, 2), "n": 3, "total": 18.0},
      {"day": dt.date(2024, 1, 3), "n": 3, "total": 31.5}]),
    ("jsonb ->> and -> access",
     "select payload->>'user' as who, (payload->'meta'->>'score')::int as score, "
     "json_array_length(payload->'tags') as tags from {{ Table('events') }} where n < 3 "
     "order by n",
     [{"who": "u0", "score": 0, "tags": 0}, {"who": "u1", "score": 10, "tags": 1},
      {"who": "u2", "score": 20, "tags": 2}]),
    ("generate_series",
     "select g as day, count(e.n) as events from generate_series(1, 4) as g "
     "left join {{ Table('events') }} e on extract(day from e.at) = g group by g order by g",
     [{"day": 1, "events": 3}, {"day": 2, "events": 3}, {"day": 3, "events": 3},
      {"day": 4, "events": 0}]),
    ("window functions",
     "select n, kind, row_number() over (partition by kind order by n desc) as rank, "
     "sum(n) over (partition by kind) as kind_total from {{ Table('events') }} "
     "where n >= 5 order by n",
     [{"n": 5, "kind": "b", "rank": 2, "kind_total": 12},
      {"n": 6, "kind": "a", "rank": 2, "kind_total": 14},
      {"n": 7, "kind": "b", "rank": 1, "kind_total": 12},
      {"n": 8, "kind": "a", "rank": 1, "kind_total": 14}]),
    ("ILIKE",
     "select distinct name from {{ Table('events') }} where name ilike 'a%' order by name",
     [{"name": "Ada"}, {"name": "Alan"}]),
    ("DISTINCT ON",
     "select distinct on (kind) kind, n from {{ Table('events') }} order by kind, n desc",
     [{"kind": "a", "n": 8}, {"kind": "b", "n": 7}]),
    ("CTEs",
     "with per_kind as (select kind, max(n) as top from {{ Table('events') }} group by kind), "
     "best as (select * from per_kind where top > 7) select kind, top from best",
     [{"kind": "a", "top": 8}]),
    ("Postgres names and integer division",
     "select count(*), max(n), n / 2, 7 / 2 as half, coalesce(null, n) "
     "from {{ Table('events') }} where n = 5 group by n",
     [{"count": 1, "max": 5, "?column?": 2, "half": 3, "coalesce": 5}]),
    ("string_agg and timestamps",
     "select kind, string_agg(name, ',' order by n) as names, "
     "min(at) + interval '1 hour' as first from {{ Table('events') }} group by kind "
     "order by kind",
     [{"kind": "a", "names": "Ada,Alan,Ada,Alan,Ada",
       "first": dt.datetime(2024, 1, 1, 1, tzinfo=dt.UTC)},
      {"kind": "b", "names": "bob,carol,bob,carol",
       "first": dt.datetime(2024, 1, 1, 2, tzinfo=dt.UTC)}]),
]


@pytest.mark.parametrize(("sql", "expected"), [p[1:] for p in POSTGRES],
                         ids=[p[0] for p in POSTGRES])
def test_postgres_queries_give_the_right_rows_on_duckdb(app_runner: Any, sql: str,
                                                         expected: list[dict[str, Any]]) -> None:
    app = sql_app(app_runner, sql)
    result = app.run()
    assert result.ok, [r.error for r in result.runs]
    rows = [{k: v for k, v in r.items() if k != "patterns_id"} for r in app.rows("out")]
    assert rows == expected


def test_duckdb_dialect_by_first_line_or_setting(app_runner: Any) -> None:
    duck = "select 7 / 2 as half, [1, 2][1] as first, list_value(1, 2) as l"
    app = sql_app(app_runner, f"-- dialect: duckdb\n{duck}")
    assert app.run().ok
    (row,) = app.rows("out")
    assert (row["half"], row["first"], row["l"]) == (3.5, 1, "[1,2]")  # a list is JSON

    other = sql_app(app_runner, duck, settings={"sql_dialect": "duckdb"})
    assert other.run().ok
    assert other.rows("out")[0]["half"] == 3.5
    assert run_query(other, "-- dialect: postgres\nselect 7 / 2 as half").status == "succeeded"
    assert other.rows("out")[0]["half"] == 3


# ---------------------------------------------------------------------- parameters
def test_parameters_are_bound_never_pasted(app_runner: Any) -> None:
    sql = """
    select n, name from {{ Table("events") }}
    where name = {{ Parameter("who", type=str, default="Ada") }}
       or n > {{ Parameter("above", type=int, default=100) }}
    order by n
    """
    app = sql_app(app_runner, sql)
    assert app.run().ok
    assert [r["n"] for r in app.rows("out")] == [0, 4, 8]
    before = app.rows("events")
    evil = "'; drop table events; --"
    record, _ = app.engine.run_node(app.app.node("query"), "manual",
                                    {"who": evil, "above": 7})
    assert record.status == "succeeded", record.error
    assert [r["n"] for r in app.rows("out")] == [8]      # the value was just a string
    assert app.rows("events") == before
    assert record.parameters == {"who": evil, "above": 7}


def test_parameter_types_lists_datetimes_and_tests(app_runner: Any) -> None:
    sql = """
    {% set full = Parameter("full", type=bool, default=false) %}
    select n from {{ Table("events") }}
    where name = any({{ Parameter("names", type=list, default=["Ada", "carol"]) }})
      and at >= {{ Parameter("since", type="datetime", default="2024-01-02") }}
    {% if not full %}  and n < {{ Parameter("limit", type=int, default=8) }}{% endif %}
    order by n
    """
    app = sql_app(app_runner, sql)
    assert app.run().ok, app.rows("out")
    assert [r["n"] for r in app.rows("out")] == [3, 4, 7]
    record, _ = app.engine.run_node(app.app.node("query"), "manual", {"full": True})
    assert record.status == "succeeded", record.error
    assert [r["n"] for r in app.rows("out")] == [3, 4, 7, 8]


def test_a_parameter_inside_quotes_is_refused(app_runner: Any) -> None:
    sql = "select n from {{ Table('events') }}\nwhere name like '{{ Parameter('q') }}%'\n"
    app = sql_app(app_runner, sql, params={"q": "A"})
    app.run_node("gen")
    record = run_query(app)
    assert record.status == "failed"
    assert record.error.startswith("query.sql:2: a Parameter is inside quotes")
    assert app.engine.store.table("out") is None


# ---------------------------------------------------------------------- writes
WRITER = """
insert into {{ Table("totals", "w") }}
select kind, count(*) as n from {{ Table("events") }} group by kind order by kind;
insert into {{ Table("totals", "w") }} (kind, n) values ('c', 1);
update {{ Table("totals", "w") }} set n = n * 10 where kind = 'b';
delete from {{ Table("totals", "w") }} where kind = 'zzz';
"""


def test_statements_write_tables_in_place_in_one_transaction(app_runner: Any) -> None:
    app = sql_app(app_runner, WRITER, stores=("events", "totals"), outputs={})
    result = app.run()
    assert result.ok, [r.error for r in result.runs]
    rows = app.rows("totals")
    assert [(r["kind"], r["n"]) for r in rows] == [("a", 5), ("c", 1), ("b", 40)]
    assert result.runs[-1].rows_written == {"totals": 4}  # 3 inserted, 1 updated
    assert versions(app, "totals") == [(1, "created", True)]  # changed in place

    ids = {r["kind"]: r["patterns_id"] for r in rows}
    assert ids["b"] > ids["c"] > ids["a"]  # the updated row got a new, later id
    before = fingerprint(app)
    broken = WRITER + "update {{ Table('totals', 'w') }} set n = n + 'x';\n"
    record = run_query(app, broken)
    assert record.status == "failed"
    assert record.error.startswith("query.sql:7: ")
    assert fingerprint(app) == before  # the earlier statements were rolled back too


def test_updated_rows_reach_streams_again(app_runner: Any) -> None:
    reader = 'from patterns import Table\ntotals = Table("totals")\n'
    app = sql_app(app_runner, WRITER, stores=("events", "totals"), outputs={},
                  extra={"reader.py": reader})
    assert app.run().ok

    def consume() -> list[str]:
        with app.sdk("reader"):
            return [r["kind"] for r in Table("totals").as_stream().consume_records()]

    assert consume() == ["a", "c", "b"]
    run_query(app, "update {{ Table('totals', 'w') }} set n = n + 1 where kind = 'a'")
    assert consume() == ["a"]


def test_create_table_as_alter_and_truncate(app_runner: Any) -> None:
    sql = """
    create table {{ Table("t", "w") }} as select n, name from {{ Table("events") }} where n < 2;
    alter table {{ Table("t", "w") }} add column note text;
    update {{ Table("t", "w") }} set note = 'hi' where n = 1
    """
    app = sql_app(app_runner, sql, stores=("events", "t"), outputs={})
    assert app.run().ok
    assert [(r["n"], r["name"], r["note"]) for r in app.rows("t")] == [(0, "Ada", None),
                                                                        (1, "bob", "hi")]
    assert versions(app, "t")[-1][1] == "sql"
    record = run_query(app, "truncate {{ Table('t', 'w') }}")
    assert record.status == "succeeded", record.error
    assert app.rows("t") == []
    record = run_query(app, "create table if not exists {{ Table('t', 'w') }} (x int)")
    assert record.status == "succeeded"
    meta = app.engine.store.table("t")
    assert meta is not None and [c.name for c in meta.columns] == ["n", "name", "note"]


# ---------------------------------------------------------------------- versions
def test_keep_versions_prunes_old_versions(app_runner: Any) -> None:
    app = sql_app(app_runner, 'select count(*) as n from {{ Table("events") }}',
                  settings={"keep_versions": 2})
    assert app.run().ok
    for _ in range(3):
        assert run_query(app).status == "succeeded"
    assert versions(app, "out") == [(1, "created", False), (2, "sql", False),
                                    (3, "sql", False), (4, "sql", True), (5, "sql", True)]
    store = app.engine.store
    kept = {v["physical"] for v in store.versions("out") if v["available"]}
    assert kept == {"out__v4", "out__v5"}


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("sql", "line", "fragment"), [
    ("select n,\nfrom {{ Table('events') }}\nwhere", 3, "SQL syntax error"),
    ("select n\nfrom {{ Table('events') }}\nwher n > 1 and", 3, "SQL syntax error"),
    ("select n\nfrom {{ Table('events') }}\nwhere nope = 1", 3, 'column "nope" not found'),
    ("select n from {{ Table('events') }}\nfor update", 1, "cannot be translated to DuckDB"),
    ("select\n  jsonb_path_exists(payload, '$.a')\nfrom {{ Table('events') }}", 2,
     "jsonb_path_exists does not exist"),
    ("select * from\n  other_table", 2, "which node query.sql did not declare"),
    ("select * from read_csv('/etc/passwd')", 1, "reads outside the app's tables"),
    ("select * from patterns_meta.runs", 1, "platform's own schemas"),
    ("select 1 as a;\nselect 2 as a", 2, "a second SELECT"),
    ("drop table {{ Table('events') }}", 1, "DROP statements are not allowed"),
    ("insert into {{ Table('events') }} select 1", 1, "may change only tables the node"),
    ("select count(*), count(n) as count from {{ Table('events') }}", 1,
     "two columns named 'count'"),
    ("-- only a comment", 1, "renders no SQL statement"),
])
def test_bad_sql_fails_the_run_with_file_and_line_and_changes_nothing(
        app_runner: Any, sql: str, line: int, fragment: str) -> None:
    app = sql_app(app_runner, "select 1 as n")
    assert app.run().ok
    before = fingerprint(app)
    record = run_query(app, sql)
    assert record.status == "failed"
    assert record.error.startswith(f"query.sql:{line}: ") or (
        fragment == "renders no SQL statement"), record.error
    assert fragment in record.error, record.error
    assert "Traceback" not in record.error and record.traceback is None
    assert fingerprint(app) == before


def test_a_type_conflict_with_the_output_table_is_refused(app_runner: Any) -> None:
    app = sql_app(app_runner, "select date '2024-01-01' as day, 1 as n")
    assert app.run().ok
    before = fingerprint(app)
    record = run_query(app, "select 1 as n,\n  true as day")
    assert record.status == "failed"
    assert record.error.startswith("query.sql:2: the query's column 'day' is bool, but "
                                   "table 'out' holds date values"), record.error
    assert "patterns table reset" in record.error
    assert fingerprint(app) == before
    record = run_query(app, "select 2.5 as n, timestamp '2024-01-01 10:00' as day")
    assert record.status == "succeeded", record.error  # widening is fine


def test_inserting_the_wrong_type_is_refused(app_runner: Any) -> None:
    app = sql_app(app_runner, "insert into {{ Table('t', 'w') }} select 1 as n",
                  stores=("events", "t"), outputs={})
    assert app.run().ok
    before = fingerprint(app)
    record = run_query(app, "insert into {{ Table('t', 'w') }}\nselect 'text' as n")
    assert record.status == "failed"
    # Text for a typed column is cast like a webhook's text is parsed: 'text' is no number.
    assert "query.sql:2: table 't': a value does not fit" in record.error
    assert "'text'" in record.error
    assert fingerprint(app) == before
    record = run_query(app, "insert into {{ Table('t', 'w') }}\nselect true as n")
    assert record.status == "failed"
    assert "inserted column 'n' is bool, but table 't' holds int" in record.error
    assert fingerprint(app) == before


def test_a_query_running_past_the_time_limit_is_stopped(app_runner: Any) -> None:
    sql = "select sum(a.range * b.range) as s from range(200000) a, range(200000) b"
    app = sql_app(app_runner, sql, settings={"time_limit_seconds": 1})
    record = app.run_node("query")
    assert record.status == "timed_out"
    assert record.seconds < 10
    assert app.engine.store.table("out") is None


@pytest.mark.parametrize(("sql", "line", "fragment"), [
    ("select *\nfrom {{ Table('events') }\n", 2, "template syntax error"),
    ("{% set t = 'events' %}\nselect * from {{ Table(t) }}", 2,
     "Table name must be a literal string"),
    ("select {{ lower('A') }}\nfrom {{ Table('events') }}", 1,
     "lower() cannot be called in a SQL template"),
    ("select 1\n{{ undefined_thing }}", 2, "'undefined_thing' is undefined"),
    ("-- dialect: oracle\nselect 1", 1, "not a dialect"),
])
def test_template_errors_are_problems_when_the_app_loads(app_runner: Any, sql: str, line: int,
                                                         fragment: str) -> None:
    with pytest.raises(GraphError) as caught:
        sql_app(app_runner, sql)
    problem = next(p for p in caught.value.problems if p.file == "query.sql")
    assert (problem.line, fragment in problem.message) == (line, True), problem


def test_sql_nodes_run_in_parallel_in_a_fresh_engine(tmp_path: Any) -> None:
    """The first SQL runs of an engine import the translator from several threads at once."""
    import subprocess
    import sys

    from tests.conftest import write_app

    nodes = {f"q{i}.sql": f"select {i} as n, count(*)::int as c from generate_series(1, 3)"
             for i in range(4)}
    functions = [{"node_file": name, "id": name[:2], "outputs": {"output_table": name[:2]}}
                 for name in nodes]
    root = write_app(tmp_path / "app", nodes, [f"q{i}" for i in range(4)],
                     functions=functions)
    done = subprocess.run([sys.executable, "-m", "patterns.cli.main", "run", str(root), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_statement_sees_the_ones_before_it(app_runner: Any) -> None:
    """Statements apply in order, even across tables (zz is written before aa reads it)."""
    sql = ("insert into {{ Table('zz', 'w') }} select n from {{ Table('events') }} where n < 3;"
           "\ninsert into {{ Table('aa', 'w') }} select n * 10 as n from {{ Table('zz', 'w') }}")
    app = sql_app(app_runner, sql, stores=("events", "zz", "aa"), outputs={})
    assert app.run().ok
    assert sorted(r["n"] for r in app.rows("aa")) == [0, 10, 20]
