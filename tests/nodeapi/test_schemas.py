"""Item 7: named schemas (graph.yml ``schemas:`` with Common Model schema files)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from tests.conftest import AppRunner
from tests.engine.test_runs import logs

CUSTOMER = """
    name: Customer
    description: People who bought something
    unique_on: id
    field_roles:
      created_ordering: joined
      immutable: false
    fields:
      id: Integer
      name:
        type: Text
        description: Full name
      bio: LongText
      joined: Date
      seen_at: DateTime
      opens_at: Time
      balance: Decimal(12,2)
      score: Float
      vip: Boolean
      extra: Json
"""

GRAPH = """
    title: Customers
    functions:
      - node_file: load.py
        id: load0001
      - node_file: report.py
        id: report01
    stores:
      - table: customers
      - table: report
    schemas:
      - schema_file: schemas/customer.yml
"""


def printed(app: AppRunner, record: Any) -> list[str]:
    return [line[2] for line in logs(app, record) if line[1] == "stdout"]


def test_named_schema_types_converts_and_upserts_on_unique_on(
        original_app: Callable[[dict[str, str]], AppRunner]) -> None:
    app = original_app({"graph.yml": GRAPH, "schemas/customer.yml": CUSTOMER, "load.py": """
        from patterns import Table
        customers = Table("customers", "w", schema="Customer")
        customers.upsert([
            {"id": "5", "name": "Ada", "bio": "x" * 5000, "joined": "2024-01-02",
             "seen_at": "2024-01-02T03:04:05Z", "opens_at": "09:30:00", "balance": "12.50",
             "score": "1", "vip": "true", "extra": {"a": [1, 2]}},
            {"id": 6, "name": "Bob", "joined": "2024-02-03", "vip": False},
        ])
        customers.upsert({"id": "5", "name": "Ada L.", "joined": "2024-01-02"})
    """, "report.py": """
        from patterns import Table
        customers = Table("customers")
        schema = customers.schema
        print(schema.name, schema.unique_on)
        print(schema.field_names())
        print({f.name: f.field_type for f in schema.fields})
    """})
    record = app.run_node("load0001")
    assert record.status == "succeeded", record.error
    rows = {r["id"]: r for r in app.rows("customers", order="id")}
    assert sorted(rows) == [5, 6]  # "5" upserted twice on unique_on: one row
    ada = rows[5]
    assert ada["name"] == "Ada L." and ada["joined"] == dt.date(2024, 1, 2)
    assert rows[6]["vip"] is False and rows[6]["joined"] == dt.date(2024, 2, 3)
    types = {r["column_name"]: r["data_type"] for r in app.engine.store.arrow(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'customers' AND table_schema = 'main'").to_pylist()}
    assert types["id"] == "BIGINT" and types["joined"] == "DATE"
    assert types["vip"] == "BOOLEAN" and types["balance"] == "DOUBLE"
    assert types["seen_at"].startswith("TIMESTAMP") and types["opens_at"] == "TIME"
    record = app.run_node("report01")
    assert record.status == "succeeded", record.error
    out = printed(app, record)
    assert out[0] == "Customer ['id']"
    assert out[1].startswith("['id', 'name', 'bio', 'joined', 'seen_at', 'opens_at', 'balance'")
    assert "'balance': 'Decimal(12,2)'" in out[2] and "'bio': 'LongText'" in out[2]


def test_first_run_values_are_converted(original_app: Callable[[dict[str, str]], AppRunner]
                                        ) -> None:
    app = original_app({"graph.yml": GRAPH, "schemas/customer.yml": CUSTOMER, "load.py": """
        from patterns import Table
        t = Table("customers", "w")
        t.init(schema="Customer")
        t.append({"id": "5", "joined": "2024-01-02", "balance": "3", "vip": "false"})
    """, "report.py": "print('x')\n"})
    assert app.run_node("load0001").status == "succeeded"
    [row] = app.rows("customers")
    assert row["id"] == 5 and row["joined"] == dt.date(2024, 1, 2)
    assert row["balance"] == 3.0 and row["vip"] is False


def test_a_value_that_does_not_convert_names_field_record_and_line(
        original_app: Callable[[dict[str, str]], AppRunner]) -> None:
    app = original_app({"graph.yml": GRAPH, "schemas/customer.yml": CUSTOMER, "load.py": """
        from patterns import Table
        t = Table("customers", "w", schema="Customer")
        t.append({"id": "1", "joined": "2024-01-02"})
        t.append({"id": "2", "joined": "next tuesday"})
    """, "report.py": "print('x')\n"})
    record = app.run_node("load0001")
    assert record.status == "failed"
    assert "'joined'" in record.error and "'next tuesday'" in record.error
    assert "load.py" in record.error and "line 4" in record.error, record.error
    assert "Traceback" not in record.error
    assert app.rows("customers") == []  # nothing of the failed run is kept


def test_store_declared_with_a_named_schema_and_a_dict_schema(
        original_app: Callable[[dict[str, str]], AppRunner]) -> None:
    app = original_app({"graph.yml": """
        title: Stores with schemas
        functions:
          - node_file: load.py
        stores:
          - table: customers
            schema: Customer
          - table: events
        schemas:
          Customer:
            schema_file: schemas/customer.yml
    """, "schemas/customer.yml": CUSTOMER, "load.py": """
        from patterns import Table
        Table("customers", "w").upsert([{"id": "7", "score": "2.5"}, {"id": 7, "score": 3}])
        events = Table("events", "w")
        events.init(schema={"at": "DateTime", "n": "Integer"}, unique_on="n")
        events.upsert({"at": "2024-05-01T10:00:00", "n": "1"})
    """})
    record = app.run_node("load")
    assert record.status == "succeeded", record.error
    assert [(r["id"], r["score"]) for r in app.rows("customers")] == [(7, 3.0)]
    [event] = app.rows("events")
    assert event["n"] == 1 and event["at"].year == 2024


def test_an_unknown_schema_or_bad_schema_file_is_a_clear_error(
        original_app: Callable[[dict[str, str]], AppRunner]) -> None:
    app = original_app({"graph.yml": GRAPH, "schemas/customer.yml": CUSTOMER, "load.py": """
        from patterns import Table
        Table("customers", "w", schema="Custmer").append({"id": 1})
    """, "report.py": "print('x')\n"})
    record = app.run_node("load0001")
    assert record.status == "failed"
    assert "schema 'Custmer' is not declared" in record.error and "Customer" in record.error
    (app.root / "schemas/customer.yml").write_text("name: Customer\nfields:\n  id: Integger\n")
    (app.root / "load.py").write_text(
        'from patterns import Table\nTable("customers", "w", schema="Customer")\n')
    record = app.run_node("load0001")
    assert record.status == "failed"
    assert "schemas/customer.yml" in record.error and "Integger" in record.error
