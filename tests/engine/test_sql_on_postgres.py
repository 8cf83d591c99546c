"""SQL nodes and read_sql on a PostgreSQL store: Postgres SQL runs natively, a
``-- dialect: duckdb`` node is translated, parameters bind, and a node still names only its
own tables."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.test_sql_nodes import run_query, sql_app


@pytest.fixture
def pg_app(app_runner: Any, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PATTERNS_STORE", postgres_url)

    def make(sql: str, **kwargs: Any) -> Any:
        app = sql_app(app_runner, sql, **kwargs)
        assert app.engine.store.capabilities.dialect == "postgres"
        assert app.run_node("gen").status == "succeeded"
        return app
    return make


def rows(app: Any, table: str) -> list[dict[str, Any]]:
    store = app.engine.store
    with store.read() as view:
        sql = f"SELECT * FROM {store.view_name(table)} ORDER BY patterns_id"
        return [{k: v for k, v in r.items() if k != "patterns_id"}
                for r in view.query(sql).read_all().to_pylist()]


def test_postgres_sql_runs_natively_with_parameters(pg_app: Any) -> None:
    app = pg_app(
        "select kind, count(*), sum(n)::int as total, 7 / 2 as half, "
        "string_agg(name, ',' order by n) as names\n"
        "from {{ Table('events') }} where n >= {{ Parameter('low', 'int', 2) }}\n"
        "group by kind order by kind")
    record = run_query(app)
    assert record.status == "succeeded", record.error
    assert rows(app, "out") == [
        {"kind": "a", "count": 4, "total": 20, "half": 3, "names": "Alan,Ada,Alan,Ada"},
        {"kind": "b", "count": 3, "total": 15, "half": 3, "names": "carol,bob,carol"}]


def test_a_duckdb_node_is_translated_to_postgres(pg_app: Any) -> None:
    app = pg_app("-- dialect: duckdb\n"
                 "select name, strftime(at, '%Y-%m') as month, list_value(n, n + 1)[1] as first"
                 "\nfrom {{ Table('events') }} where n = 4")
    record = run_query(app)
    assert record.status == "succeeded", record.error
    assert rows(app, "out") == [{"name": "Ada", "month": "2024-01", "first": 4}]


def test_a_node_names_only_its_own_tables_on_postgres(pg_app: Any) -> None:
    app = pg_app("select * from patterns_meta.runs")
    record = run_query(app)
    assert record.status == "failed"
    assert "patterns_meta.runs, which is not one of node" in record.error
    record = run_query(app, "select * from pg_catalog.pg_user")
    assert record.status == "failed" and "out of reach" in record.error
