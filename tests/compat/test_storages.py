"""External storages: tables of a real PostgreSQL database, SQLite file and DuckDB file,
read by Python and SQL nodes, never written."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import duckdb
import psycopg
import pytest

from patterns.engine.secrets import SecretStore
from patterns.graph.loader import load_app
from tests.cli.conftest import patterns

from .conftest import CompatApp, copy_app


def fill_outside(root: Path, postgres_url: str) -> Path:
    """The three outside databases: customers in PostgreSQL (schema crm), products in a
    SQLite file in the app, visits in a DuckDB file elsewhere; their connections given."""
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("CREATE SCHEMA crm")
        con.execute("CREATE TABLE crm.customers (id int PRIMARY KEY, name text, "
                    "since date, credit numeric(10, 2))")
        con.execute("INSERT INTO crm.customers VALUES (1, 'Ada', '2020-01-02', 10.5), "
                    "(2, 'Grace', '2021-03-04', 0), (3, 'Linus', NULL, NULL)")
    with sqlite3.connect(root / "shop.sqlite") as con:
        con.execute("CREATE TABLE products (sku TEXT, price REAL)")
        con.executemany("INSERT INTO products VALUES (?, ?)",
                        [("a-1", 3.0), ("b-2", 7.5), ("c-3", 12.0)])
    analytics = root.parent / "analytics.duckdb"
    with duckdb.connect(str(analytics)) as con:
        con.execute("CREATE TABLE visits AS SELECT * FROM (VALUES (1, 1), (2, 1), (3, 2)) "
                    "v(id, customer_id)")
    secrets = SecretStore()
    secrets.set("connection.warehouse", json.dumps({"url": postgres_url}))
    secrets.set("analytics_db", str(analytics))
    return analytics


def test_nodes_read_outside_tables(compat_app: Callable[[str], CompatApp],
                                   postgres_url: str) -> None:
    app = compat_app("storages")
    analytics = fill_outside(app.root, postgres_url)
    app.engine.app = app.engine.app  # the connections are given now: check again
    result = app.run()
    assert {r.node_title: r.status for r in result.runs} == {
        "report": "succeeded", "follow": "succeeded", "summary": "succeeded"}, \
        [r.error for r in result.runs]
    assert app.rows("report", order="sku") == [
        {"sku": "b-2", "price": 7.5, "customers": 3, "first": "Ada"},
        {"sku": "c-3", "price": 12.0, "customers": 3, "first": "Ada"}]
    assert app.rows("summary", order="name") == [
        {"name": "Ada", "visits": 2}, {"name": "Grace", "visits": 1}, {"name": "Linus", "visits": 0}]
    assert app.rows("new_visits") == [{"visit": 1, "customer": 1}, {"visit": 2, "customer": 1},
                                      {"visit": 3, "customer": 2}]
    # a stream ordered by a column reads only the rows past the last one it consumed
    with duckdb.connect(str(analytics)) as con:
        con.execute("INSERT INTO visits VALUES (4, 3)")
    record, _ = app.engine.run_node(app.engine.app.node("follow.py"), "manual")
    assert record.status == "succeeded", record.error
    assert [r["visit"] for r in app.rows("new_visits")] == [1, 2, 3, 4]
    assert record.rows_read == {"visits": 1}
    # nothing was written outside
    with psycopg.connect(postgres_url) as con:
        assert con.execute("SELECT count(*) FROM crm.customers").fetchone() == (3,)


def test_a_write_to_an_outside_table_is_refused(compat_app: Callable[[str], CompatApp],
                                                postgres_url: str) -> None:
    app = compat_app("storages")
    fill_outside(app.root, postgres_url)
    app.engine.app = app.engine.app
    record, _ = app.engine.run_node(app.engine.app.node("vandal.py"), "manual")
    assert record.status == "failed"
    assert ("node vandal.py cannot write table 'customers': it is table 'crm.customers' of "
            "storage 'warehouse'") in record.error
    with psycopg.connect(postgres_url) as con:
        assert con.execute("SELECT count(*) FROM crm.customers").fetchone() == (3,)


def test_a_sql_node_cannot_write_an_outside_table(compat_app: Callable[[str], CompatApp],
                                                  postgres_url: str) -> None:
    app = compat_app("storages")
    fill_outside(app.root, postgres_url)
    (app.root / "summary.sql").write_text(
        'insert into {{ Table("visits", "w") }} values (9, 9)\n')
    app.engine.app = load_app(app.root)
    record, _ = app.engine.run_node(app.engine.app.node("summary.sql"), "manual")
    assert record.status == "failed"
    assert "cannot write table 'visits'" in record.error and "'analytics'" in record.error


def test_without_connections_the_readers_need_configuration(tmp_path: Path) -> None:
    root = copy_app("storages", tmp_path)
    result = patterns("validate", root, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    needs = {(p["node"], p["line"]) for p in report["needs_configuration"]}
    # each at the line of its storage: warehouse (3) needs connection.warehouse, shop (5)
    # its file shop.sqlite, which is not there, analytics (7) the secret analytics_db
    assert needs == {("report.py", 3), ("report.py", 5), ("follow.py", 7),
                     ("summary.sql", 3), ("summary.sql", 7)}
    fixes = " ".join(p["fix"] for p in report["needs_configuration"])
    assert "patterns create secret connection.warehouse" in fixes
    assert "shop.sqlite, which does not exist" in fixes
    run = patterns("run", root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "skipped report.py: needs configuration" in run.stdout


@pytest.mark.parametrize("given", ["duckdb", "sqlite"])
def test_file_storages_by_url(tmp_path: Path, given: str) -> None:
    from patterns.engine.storages import resolve
    from patterns.graph.model import StorageDecl
    from patterns.store.outside import read_outside

    if given == "duckdb":
        with duckdb.connect(str(tmp_path / "x.db")) as con:
            con.execute("CREATE TABLE t AS SELECT 1 AS a")
        url = f"duckdb:///{tmp_path / 'x.db'}"
    else:
        with sqlite3.connect(tmp_path / "x.data") as con:
            con.execute("CREATE TABLE t (a INTEGER)")
            con.execute("INSERT INTO t VALUES (1)")
        url = f"sqlite:///{tmp_path / 'x.data'}"
    outside = resolve(StorageDecl("s", 1, url), SecretStore(), tmp_path)
    assert outside.kind == given
    rows = read_outside(outside.kind, outside.target, "t", store="t", storage="s")
    assert rows.to_pylist() == [{"a": 1}]


def test_a_webhook_into_an_outside_table_is_a_problem(tmp_path: Path) -> None:
    root = copy_app("storages", tmp_path)
    graph = root / "graph.yml"
    graph.write_text(graph.read_text() + "  - webhook: customers\n")
    result = patterns("validate", root)
    assert result.returncode == 1
    assert "webhook customers writes table 'customers', which lives in storage " \
           "'warehouse'" in result.stderr


def test_the_manifest_shows_storages_without_their_connections(tmp_path: Path) -> None:
    manifest = load_app(copy_app("storages", tmp_path)).to_manifest()
    assert manifest["storages"] == [{"name": "warehouse", "line": 3},
                                    {"name": "shop", "line": 5},
                                    {"name": "analytics", "line": 7}]
    stores = {s["name"]: (s["storage"], s["storage_table"]) for s in manifest["stores"]}
    assert stores["customers"] == ("warehouse", "crm.customers")
    assert stores["report"] == (None, None)


def test_an_unreachable_database_fails_the_run_clearly(
        compat_app: Callable[[str], CompatApp], postgres_url: str) -> None:
    app = compat_app("storages")
    fill_outside(app.root, postgres_url)
    SecretStore().set("connection.warehouse", '{"url": "postgresql://nobody:pw@127.0.0.1:1/x"}')
    app.engine.app = load_app(app.root)
    record, _ = app.engine.run_node(app.engine.app.node("report.py"), "manual")
    assert record.status == "failed"
    assert "table 'customers' cannot be read from storage 'warehouse' (postgres table " \
           "'crm.customers')" in record.error
    assert "pw" not in record.error.replace("report.py", "")
    assert app.rows("report") == []
