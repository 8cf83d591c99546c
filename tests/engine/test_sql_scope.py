"""Which tables node SQL reads: every table reference resolved by its real scope.

Three layers of evidence: a generated corpus of attacks (shadowing CTEs, nesting, lateral
joins, subqueries, set operations, recursive CTEs, quoting, qualified names, catalog views and
functions) that :func:`bind_tables` must refuse naming what it refused; a corpus of legitimate
queries that must keep their rows; and a property test that holds the check against DuckDB's
own name resolution, for random nestings of CTEs. The same attacks run for real through a
Python node's ``read_sql`` and ``execute_sql`` and through a ``.sql`` node in
tests/engine/test_sql_scope_runs.py.
"""

from __future__ import annotations

import itertools
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patterns.engine.sql_scope import bind_tables
from patterns.engine.sql_translate import Source, statements, store_sql
from patterns.errors import NodeError

#: Queries that read the undeclared table `private` (or reach outside the node's tables);
#: `{events}` is a declared table. Each is (query, what the refusal must name).
LEAKS: list[tuple[str, str]] = [
    # a CTE name shadows only inside its own scope
    ("with private as (select * from private) select * from private", "private"),
    ("(with private as (select n from {events}) select * from private) "
     "union all select * from (select n from private) x", "private"),
    ("select * from (with private as (select 1 as n) select * from private) s, private",
     "private"),
    ("select * from {events} where n in (with private as (select 1) select 1) "
     "and n in (select n from private)", "private"),
    ("with a as (select * from private), private as (select 1 as n) select * from a",
     "private"),
    ("with a as (with private as (select 1 as n) select * from private), "
     "b as (select * from private) select * from b", "private"),
    ("select * from (with private as (select 1 as n) select 1 as n) s "
     "where exists (select 1 from private)", "private"),
    ("select (with private as (select 1 as n) select n from private) as m, "
     "(select max(n) from private) as k", "private"),
    ("select * from {events} e, lateral (with private as (select 1 as n) select n from "
     "private) l union all select n, n from private", "private"),
    ("with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) "
     "select * from r, private", "private"),
    ("with recursive a(n) as (select n from private union all select n + 1 from a "
     "where n < 3) select * from a", "private"),
    ("with b as (select 1 as n) select * from private", "private"),
    # quoting and case: the store is `private` whatever the spelling
    ('select * from "private"', "private"),
    ('select * from "Private"', "Private"),
    ("select * from PRIVATE", "PRIVATE"),
    ('with "other" as (select 1) select * from "private"', "private"),
    ("select * from /* {events} */ private -- {events}\n", "private"),
    # qualified names never name a CTE, and other schemas are out of reach
    ("with private as (select 1 as n) select * from main.private", "private"),
    ("with private as (select 1 as n) select * from public.private", "private"),
    ("select * from memory.main.private", "memory.main.private"),
    ('select * from "patterns_meta".runs', "patterns_meta.runs"),
    ("select * from patterns_data.private__v1", "patterns_data.private__v1"),
    ("select * from temp.main.x", "temp.main.x"),
    ("select * from system.main.duckdb_tables", "system.main.duckdb_tables"),
    ("select * from information_schema.tables", "information_schema.tables"),
    ("select * from pg_catalog.pg_class", "pg_catalog.pg_class"),
    ("select * from duckdb_views", "duckdb_views"),
    ("select * from sqlite_master", "sqlite_master"),
    ("select * from 'private.parquet'", "private.parquet"),
    # functions that reach data, files, settings or the catalog, in any position
    ("select current_setting('threads') as s", "current_setting"),
    ("select pg_catalog.current_setting('threads') as s", "current_setting"),
    ("select getvariable('x') as v", "getvariable"),
    ("select getenv('HOME') as v", "getenv"),
    ("select * from query('select * from private')", "query"),
    ("select * from query_table('private')", "query_table"),
    ("select * from {events}, lateral duckdb_tables()", "duckdb_tables"),
    ("select * from main.duckdb_views()", "duckdb_views"),
    ("select * from {events} where n > (select count(*) from duckdb_columns())",
     "duckdb_columns"),
    ("select * from read_parquet('private.parquet')", "read_parquet"),
    ("select * from read_csv('/etc/passwd')", "read_csv"),
    ("select * from glob('*')", "glob"),
    ("select * from sql_auto_complete('select')", "sql_auto_complete"),
    ("select * from json_execute_serialized_sql(json_serialize_sql('select 1'))",
     "json_execute_serialized_sql"),
    ("select * from pragma_table_info('private')", "pragma_table_info"),
    ("select * from which_secret('s3://x', 's3')", "which_secret"),
    ('select "current_setting"(\'threads\') as s', "current_setting"),
    ("select nextval('seq') as n", "nextval"),
]

#: Ways to wrap a query; each keeps it a query over the same tables.
WRAPPERS = [
    "{q}",
    "select * from ({q}) s",
    "select * from {events} where exists ({q})",
    "select n from {events} group by n having count(*) > (select count(*) from ({q}) c)",
    "select * from {events} e, lateral ({q}) l",
    "select n from {events} union all select count(*) from ({q}) u",
    "select n from {events} except select 1 from ({q}) x",
    "with w as ({q}) select * from w",
    "select * from (with private as (select 1 as n) select * from private) p, ({q}) s",
    "with recursive r(k) as (select 1 union all select k + 1 from r where k < 2) "
    "select * from r, ({q}) s",
]

TABLES = {"events": "events", "out": "out"}


def bind(sql: str, dialect: str = "duckdb", tables: dict[str, str] | None = None) -> str:
    source = Source(sql, dialect, "query.sql:{line}")
    (statement,) = statements(source)
    bind_tables(statement, source, TABLES if tables is None else tables, "query.sql")
    return store_sql(statement, source)


@pytest.mark.parametrize(("wrapper", "leak"), list(itertools.product(WRAPPERS, LEAKS)))
@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_every_way_to_reach_another_table_is_refused(wrapper: str, leak: tuple[str, str],
                                                     dialect: str) -> None:
    query, named = leak
    sql = wrapper.format(q=query.format(events="events"), events="events")
    try:
        source = Source(sql, dialect, "query.sql:{line}")
        (statement,) = statements(source)
    except NodeError:
        assert dialect == "postgres"  # DuckDB-only syntax: Postgres cannot even parse it
        return
    with pytest.raises(NodeError) as caught:
        bind_tables(statement, source, TABLES, "query.sql")
    message = str(caught.value)
    assert message.startswith("query.sql:1: ") and "node query.sql" in message
    assert named in message and "events, out" in message


#: Legitimate queries (DuckDB SQL over `events`, n = 0..4) and their rows.
LEGIT: list[tuple[str, list[tuple[Any, ...]]]] = [
    ("with a as (select n from events where n < 2) select * from a order by n", [(0,), (1,)]),
    ("with events as (select 10 as n) select * from events", [(10,)]),
    ("with events as (select n + 100 as n from events) select min(n) from events", [(100,)]),
    ("with a as (select 1 as n), b as (select n + 1 as n from a) select * from b", [(2,)]),
    ("with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) "
     "select * from r order by n", [(1,), (2,), (3,)]),
    ("with recursive events(n) as (select 1 union all select n + 1 from events where n < 2) "
     "select count(*) from events", [(2,)]),
    ('with "Big" as (select 7 as n) select * from big', [(7,)]),
    ("with x as (select n from events) select x.n, y.n from x join x as y on x.n = y.n + 3 "
     "order by 1", [(3, 0), (4, 1)]),
    ("select e.n, l.m from events e, lateral (select e.n * 2 as m) l where e.n < 2 order by 1",
     [(0, 0), (1, 2)]),
    ("with x as (select 2 as n) select * from events e where exists "
     "(select 1 from x where x.n = e.n)", [(2,)]),
    ("select * from events e where exists (with x as (select 3 as n) "
     "select 1 from x where x.n = e.n)", [(3,)]),
    ("select n from events where n < 1 union all select n from events where n > 3 "
     "intersect select 4 order by 1", [(0,), (4,)]),
    ("with a as (select 1 as n) select * from (with a as (select 2 as n) select * from a) s, a",
     [(2, 1)]),
    ("select (with q as (select max(n) as m from events) select m from q) as m", [(4,)]),
    ("select * from (values (1), (2)) v(n) order by n", [(1,), (2,)]),
    ("select * from range(2) r(n) order by n", [(0,), (1,)]),
    ("select * from generate_series(1, 2) g(n) order by n", [(1,), (2,)]),
    ("select unnest([3, 4]) as n order by n", [(3,), (4,)]),
    ("select count(*) from main.events, public.events", [(25,)]),
    ("select sum(n), string_agg(n::text, ',' order by n), max(sum(n)) over () from events",
     [(10, "0,1,2,3,4", 10)]),
]


@pytest.mark.parametrize(("sql", "rows"), LEGIT)
def test_legitimate_queries_keep_their_rows(sql: str, rows: list[tuple[Any, ...]]) -> None:
    with duckdb.connect(":memory:") as con:
        con.execute("create table events as select range as n from range(5)")
        con.execute("create table private as select 666 as n")
        assert con.execute(bind(sql)).fetchall() == rows


@pytest.mark.parametrize(("sql", "word"), [
    ("attach 'other.duckdb' as other", "ATTACH"),
    ("detach other", "DETACH"),
    ("copy events to '/tmp/events.csv'", "COPY"),
    ("copy (select * from events) to '/tmp/events.csv'", "COPY"),
    ("pragma table_info('private')", "PRAGMA"),
    ("set search_path = 'patterns_data'", "SET"),
    ("reset search_path", "RESET"),
    ("install httpfs", "INSTALL"),
    ("load httpfs", "LOAD"),
    ("use patterns_data", "USE"),
    ("call duckdb_tables()", "CALL"),
    ("prepare p as select * from private", "PREPARE"),
    ("execute p", "EXECUTE"),
])
def test_statements_that_reach_outside_the_tables_are_refused(sql: str, word: str) -> None:
    with pytest.raises(NodeError, match=rf"^query\.sql:1: {word} statements are not allowed; "
                                        rf"node query\.sql may read only the tables it "
                                        rf"declares \(events, out\)"):
        bind(sql)


@pytest.mark.parametrize("sql", [
    "select max(columns(*)) as m from events", "select struct_pack(a := 1) as x",
    "select list_transform([1], x -> x + 1) as y", "select pg_typeof(1) as t",
    "select regexp_extract_all('aa', 'a') as r", "select if(true, 1, 2) as i",
])
def test_duckdbs_own_functions_and_syntax_are_allowed(sql: str) -> None:
    bind(sql)


def test_a_function_duckdb_does_not_have_is_refused_with_the_fix() -> None:
    with pytest.raises(NodeError, match=r"^query\.sql:2: function jsonb_path_exists does not exist "
                                        r"among DuckDB's built-in functions.*-- dialect: duckdb"):
        bind("select\n  jsonb_path_exists('{}'::jsonb, '$.a')", dialect="postgres")


@pytest.mark.parametrize("sql", [
    "select set_config('role', 'none', true) as r",
    "select set_config('session_authorization', 'postgres', true) as r",
    "select query_to_xml('select * from patterns_meta.runs', true, true, '') as x",
    "select * from query_to_xml('select 1', true, true, '') as t",
    "select table_to_xml('patterns_meta.runs', true, true, '') as x",
    "select n from events where n > (select count(*) from xpath('/a', "
    "query_to_xml('select 1', true, true, '')))",
])
def test_postgres_ways_back_to_the_stores_user_are_refused(sql: str) -> None:
    # A role taken for the statement (SET LOCAL ROLE) would not stop these: the statement
    # returns to the session's user itself, then runs SQL given as text (docs/sql.md).
    with pytest.raises(NodeError, match=r"^query\.sql:\d+: "):
        bind(sql, dialect="postgres")


def test_a_cte_named_like_a_declared_table_reads_the_cte_not_the_table() -> None:
    sql = bind("with events as (select 1 as n) select * from events, main.events e")
    assert '"events#1" AS events' in sql and 'main."events" AS e' in sql


# ---------------------------------------------------------------------- against DuckDB
NAMES = ["private", "events", "a", "b"]


@st.composite
def queries(draw: st.DrawFn, depth: int = 3, scope: tuple[str, ...] = ()) -> str:
    """A random one-column query (column n) nesting CTEs, subqueries, lateral joins, set
    operations and recursive CTEs, whose table references are drawn from a few names: often
    a CTE name some enclosing WITH defines (``scope``), so both outcomes are frequent."""
    def ref() -> str:
        spellings = ['"private"', '"Private"', "PRIVATE", "main.private", "main.events"]
        return draw(st.sampled_from([*scope, *scope, *scope, "events", *NAMES, *spellings]))

    kinds = ["table", "with", "recursive", "sub", "union", "exists", "lateral", "scalar"]
    kind = draw(st.sampled_from(kinds if depth > 0 else ["table"]))
    if kind == "table":
        return f"select n from {ref()}"
    if kind == "with":
        names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
        ctes = ", ".join(f"{name} as ({draw(queries(depth - 1, (*scope, *names[:i])))})"
                         for i, name in enumerate(names))
        used = ", ".join(f"{name} as t{i}" for i, name in enumerate(names))
        body = draw(queries(depth - 1, (*scope, *names)))
        return f"with {ctes} select count(*)::int as n from {used}, ({body}) z"
    if kind == "recursive":
        name = draw(st.sampled_from(NAMES))
        inner = draw(queries(depth - 1, (*scope, name)))
        return (f"with recursive {name}(n) as (select 1 union all select n + 1 from {name} "
                f"where n < 3), k as ({inner}) select {name}.n from {name}, k")
    inner = queries(depth - 1, scope)
    if kind == "sub":
        return f"select n from ({draw(inner)}) s"
    if kind == "union":
        return f"({draw(inner)}) union all ({draw(inner)})"
    if kind == "exists":
        return f"select n from {ref()} where exists ({draw(inner)})"
    if kind == "lateral":
        return f"select t.n + l.n as n from {ref()} t, lateral ({draw(inner)}) l"
    return f"select (select count(*)::int from ({draw(inner)}) q) as n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries())
def test_the_check_agrees_with_duckdbs_own_name_resolution(sql: str) -> None:
    """DuckDB, with no table `private`, says whether the query reads it; the check must
    refuse every query that does, accept every one that runs, and the bound query (with
    `private` present and full of secrets) must give the same rows."""
    with duckdb.connect(":memory:") as plain, duckdb.connect(":memory:") as store:
        for con in (plain, store):
            con.execute("set python_enable_replacements = false")  # no Python variables
            con.execute("create table events as select range::int as n from range(3)")
        store.execute("create table private as select 666 as n")
        try:
            expected: Any = sorted(plain.execute(sql).fetchall())
        except duckdb.Error as exc:
            expected = exc
        try:
            bound = bind(sql)
        except NodeError as exc:
            refused_other = not isinstance(expected, list)
            assert refused_other, f"refused a query that runs: {exc}"
            return
        assert not _reads_private(expected), f"accepted a query that reads private: {bound}"
        try:
            got: Any = sorted(store.execute(bound).fetchall())
        except duckdb.Error as exc:
            assert not isinstance(expected, list), f"{bound} failed: {exc}"
            return
        assert got == expected, bound


def _reads_private(outcome: Any) -> bool:
    return isinstance(outcome, duckdb.CatalogException) and \
        "table with name private does not exist" in str(outcome).lower()
