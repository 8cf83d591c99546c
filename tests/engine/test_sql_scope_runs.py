"""Node SQL reads only declared tables, run for real: every attack family through a Python
node's ``read_sql``, its ``execute_sql`` (CTAS and INSERT) and a ``.sql`` node, in an app
whose undeclared table ``private`` holds a secret that must never come back; and legitimate
queries (CTEs shadowing nothing or a declared table, recursive CTEs, lateral joins, set
operations) through the same three doors, with their rows."""

from __future__ import annotations

from typing import Any

import pytest

from patterns import Table
from patterns.errors import NodeError

SECRET = 666
NODES = {
    "writer.py": 'from patterns import Table\nTable("events", "w")\nTable("private", "w")\n',
    "reader.py": 'from patterns import Table\nTable("events")\nTable("out", "w")\n',
    "query.sql": "select 1 as n",
}
FUNCTIONS = [{"node_file": "writer.py", "id": "writer"},
             {"node_file": "reader.py", "id": "reader"},
             {"node_file": "query.sql", "id": "query", "outputs": {"output_table": "sqlout"}}]

#: One attack per family: (family, query with {events} for the declared table, what the
#: refusal names).
ATTACKS = [
    ("a CTE reading the table it shadows",
     "with private as (select * from private) select n from private", "'private'"),
    ("a CTE in a sibling subquery",
     "select p.n from (with private as (select 1 as n) select n from private) s, private p",
     "'private'"),
    ("a forward reference to a later CTE",
     "with a as (select n from private), private as (select 1 as n) select n from a",
     "'private'"),
    ("a subquery in WHERE",
     "select n from {events} where n < (select max(n) from private)", "'private'"),
    ("a subquery in HAVING",
     "select count(*) as n from {events} having count(*) < (select max(n) from private)",
     "'private'"),
    ("a lateral join",
     "select l.n from {events} e, lateral (select n from private where n > e.n) l",
     "'private'"),
    ("a set operation past a CTE's scope",
     "(with private as (select n from {events}) select n from private) "
     "union all select n from private", "'private'"),
    ("a recursive CTE", "with recursive r(n) as (select n from private union all "
     "select n + 1 from r where n < 0) select n from r", "'private'"),
    ("quoting and case", 'select n from "Private"', "'Private'"),
    ("a qualified name past a CTE",
     "with private as (select 1 as n) select n from main.private", "'private'"),
    ("the platform's schema", "select n from patterns_data.private__v1",
     "patterns_data.private__v1"),
    ("a catalog view", "select 1 as n from information_schema.tables", "information_schema"),
    ("a catalog function", "select 1 as n from duckdb_tables()", "duckdb_tables()"),
    ("a settings function", "select current_setting('threads') as n", "current_setting()"),
    ("SQL given as text", "select n from query('select n from private')", "query()"),
    ("a file", "select n from read_parquet('private.parquet')", "read_parquet()"),
    ("a file by its name", "select n from 'private.parquet'", "'private.parquet'"),
]
IDS = [family for family, _, _ in ATTACKS]


@pytest.fixture
def app(app_runner: Any) -> Any:
    runner = app_runner(NODES, ["events", "private", "out", "sqlout"], functions=FUNCTIONS)
    with runner.sdk("writer"):
        Table("events", "w").append([{"n": i} for i in range(3)])
        Table("private", "w").append([{"n": SECRET}])
    return runner


def tables(app: Any) -> Any:
    """Every table's version and rows: what a refused statement must leave alone."""
    return {m.name: (m.version, app.rows(m.name)) for m in app.engine.store.tables()}


@pytest.mark.parametrize(("family", "attack", "named"), ATTACKS, ids=IDS)
def test_every_attack_is_refused_by_every_entry_point(app: Any, family: str, attack: str,
                                                      named: str) -> None:
    before = tables(app)
    with app.sdk("reader"):
        with pytest.raises(NodeError) as caught:
            Table("events").read_sql(attack.format(events="events"))
        message = str(caught.value)
        assert message.startswith("read_sql in reader.py, line 1 of the query: "), message
        assert named in message and "events, out" in message and str(SECRET) not in message
        out = Table("out", "w")
        for sql in (f"create table out as {attack}",
                    f"insert into out select n from ({attack}) q"):
            with pytest.raises(NodeError) as caught:
                out.execute_sql(sql.format(events="events"))
            message = str(caught.value)
            assert message.startswith("execute_sql in reader.py, line 1 of the SQL: ")
            assert named in message and "events, out" in message
    assert tables(app) == before
    (app.root / "query.sql").write_text(
        "-- dialect: duckdb\n" + attack.format(events='{{ Table("events") }}'))
    record = app.run_node("query")
    assert record.status == "failed"
    assert record.error.startswith("query.sql:2: "), record.error
    assert named in record.error and "node query.sql" in record.error
    assert tables(app) == before  # nothing written, and the secret nowhere


def test_statements_that_reach_outside_are_refused_by_every_entry_point(app: Any) -> None:
    before = tables(app)
    with app.sdk("reader"):
        with pytest.raises(NodeError, match=r"^read_sql in reader\.py runs read-only "
                                            r"queries, and this one is a PRAGMA"):
            Table("events").read_sql("pragma table_info('private')")
        out = Table("out", "w")
        for sql, word in (("attach 'other.duckdb' as other", "ATTACH"),
                          ("copy (select * from events) to 'events.csv'", "COPY"),
                          ("load httpfs", "LOAD")):
            with pytest.raises(NodeError, match=rf"line 2 of the SQL: {word} statements are "
                                                rf"not allowed; node reader\.py may read"):
                out.execute_sql(f"-- dialect: duckdb\n{sql}")
    (app.root / "query.sql").write_text(
        "select 1 as n;\nset search_path = 'patterns_data';\nselect n from private__v1")
    record = app.run_node("query")
    assert record.status == "failed"
    assert record.error.startswith("query.sql:2: SET statements are not allowed"), record.error
    assert tables(app) == before
    assert not (app.root / "events.csv").exists() and not (app.root / "other.duckdb").exists()


#: Legitimate queries and their rows (events holds n = 0, 1, 2).
LEGIT = [
    ("with a as (select n from {events} where n > 0) select n from a order by n", [1, 2]),
    ("with events as (select n + 10 as n from {events}) select n from events order by n",
     [10, 11, 12]),
    ("with private as (select n from {events}) select n from private where n = 2", [2]),
    ("with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) "
     "select n from r order by n", [1, 2, 3]),
    ("select e.n + l.m as n from {events} e, lateral (select e.n * 10 as m) l order by 1",
     [0, 11, 22]),
    ("(with a as (select 5 as n) select n from a) union all "
     "select n from {events} where n = 0 order by n", [0, 5]),
    ("select n from {events} e where exists (with x as (select 1 as n) "
     "select 1 from x where x.n = e.n)", [1]),
]


@pytest.mark.parametrize(("query", "expected"), LEGIT)
def test_legitimate_queries_work_through_every_entry_point(app: Any, query: str,
                                                          expected: list[int]) -> None:
    with app.sdk("reader"):
        rows = Table("events").read_sql(query.format(events="events"))
        assert [r["n"] for r in rows] == expected
        out = Table("out", "w")
        out.execute_sql(f"create table out as {query.format(events='events')}")
    assert [r["n"] for r in app.rows("out")] == expected
    (app.root / "query.sql").write_text(query.format(events='{{ Table("events") }}'))
    record = app.run_node("query")
    assert record.status == "succeeded", record.error
    assert [r["n"] for r in app.rows("sqlout")] == expected
