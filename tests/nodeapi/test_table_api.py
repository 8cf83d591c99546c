"""Items 8, 9 and 11: ``init(add_monotonic_id=None)``, unconnected ports, the original's
``Parameter`` order, table versions, ``read_sql`` templating, ``exists`` after ``reset()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from patterns.graph.loader import load_app
from tests.conftest import AppRunner
from tests.engine.test_runs import logs


def printed(app: AppRunner, record: Any) -> list[str]:
    return [line[2] for line in logs(app, record) if line[1] == "stdout"]


def warnings_of(app: AppRunner, record: Any) -> list[str]:
    return [line[2] for line in logs(app, record)
            if line[1] == "log" and line[-1] == "WARNING"]


def test_init_without_monotonic_id_writes_and_streams(
        original_app: Callable[[dict[str, str]], AppRunner]) -> None:
    app = original_app({"graph.yml": """
        title: No ids
        functions:
          - node_file: write.py
          - node_file: copy.py
        stores:
          - table: plain
          - table: created
          - table: own_id
          - table: copied
    """, "write.py": """
        from patterns import Table
        plain = Table("plain", "w")
        plain.init(add_monotonic_id=None)
        plain.append([{"n": 1}, {"n": 2}])
        created = Table("created", "w")
        created.init(add_monotonic_id=None, add_created="created_at")
        created.append({"n": 3})
        own = Table("own_id", "w")
        own.init(add_monotonic_id="row_id")
        own.append({"n": 4})
    """, "copy.py": """
        from patterns import Table
        out = Table("copied", "w")
        tables = {"plain": Table("plain"), "created": Table("created"), "own_id": Table("own_id")}
        for name, table in tables.items():
            stream = table.as_stream()
            print(name, stream.order_by_field)
            for record in stream.consume_records():
                out.append({"source": name, "keys": ",".join(sorted(record))})
    """})
    record = app.run_node("write")
    assert record.status == "succeeded", record.error
    assert app.engine.store.arrow('SELECT * FROM main."plain"').to_pylist() == [
        {"n": 1}, {"n": 2}]
    record = app.run_node("copy")
    assert record.status == "succeeded", record.error
    assert printed(app, record) == ["plain None", "created created_at", "own_id row_id"]
    copied = [(r["source"], r["keys"]) for r in app.rows("copied")]
    assert copied == [("plain", "n"), ("plain", "n"), ("created", "created_at,n"),
                      ("own_id", "n,row_id")]
    # a second run sees nothing new: the streams' positions held without patterns_id
    assert app.run_node("copy").status == "succeeded"
    assert len(app.rows("copied")) == 4


def test_port_bound_to_no_store_ignores_writes_with_one_warning(
        original_app: Callable[[dict[str, str]], AppRunner]) -> None:
    app = original_app({"graph.yml": """
        title: Optional output
        functions:
          - node_file: node.py
        stores:
          - table: kept
    """, "node.py": """
        from patterns import Table
        kept = Table("kept", "w")
        audit = Table("audit", "w", required=False)
        print(kept.is_connected, audit.is_connected)
        audit.init(unique_on="id")
        for i in range(3):
            audit.append({"id": i})
            audit.upsert({"id": i})
        audit.reset()
        kept.append({"ok": True})
        print(audit.exists, audit.read(), list(audit.as_stream()))
    """})
    record = app.run_node("node")
    assert record.status == "succeeded", record.error
    assert printed(app, record) == ["True False", "False [] []"]
    [warning] = warnings_of(app, record)
    assert "'audit' is not connected" in warning
    assert app.engine.store.table("audit") is None  # no table outside the graph
    assert app.rows("kept")[0]["ok"] is True


def test_parameter_in_the_original_positional_order(
        original_app: Callable[[dict[str, str]], AppRunner]) -> None:
    app = original_app({"graph.yml": """
        title: Parameters
        functions:
          - node_file: node.py
            parameter_values:
              limit: "7"
        stores:
          - table: out
    """, "node.py": """
        from patterns import Parameter, Table
        limit = Parameter("limit", "How many rows", int, 3)
        label = Parameter("label", "A label", str, "all")
        old_style = Parameter("ratio", float, 0.5)
        Table("out", "w").append({"limit": limit, "label": label, "ratio": old_style})
    """})
    decls = {p.name: p for p in load_app(app.root).node("node").interface.parameters}
    assert decls["limit"].type == "int" and decls["limit"].default == 3
    assert decls["limit"].description == "How many rows"
    assert decls["ratio"].type == "float" and decls["ratio"].default == 0.5
    record = app.run_node("node")
    assert record.status == "succeeded", record.error
    [row] = app.rows("out")
    assert (row["limit"], row["label"], row["ratio"]) == (7, "all", 0.5)


def test_table_versions_read_sql_templates_and_exists_after_reset(
        original_app: Callable[[dict[str, str]], AppRunner]) -> None:
    app = original_app({"graph.yml": """
        title: Versions
        functions:
          - node_file: node.py
          - node_file: again.py
        stores:
          - table: items
    """, "node.py": """
        from patterns import Table
        t = Table("items", "w")
        print(t.exists, t.has_active_version(), t.get_active_version())
        t.append([{"n": 1}, {"n": 2}])
        v = t.get_active_version()
        print(t.exists, t.has_active_version(), v.version, v.record_count,
              v.schema.field_names())
        print(t.read_sql("select sum(n)::int as s from {{ t }}"))
        print(t.read_sql("select count(*) as c from {{ items }}"))
        print(t.read_sql(f"select max(n) as m from {t}"))
        print(t.read(with_metadata=True)[0].keys())
        t.reset()
        print(t.exists, t.get_active_version())
    """, "again.py": """
        from patterns import Table
        t = Table("items", "w")
        print(t.exists)
        t.append({"n": 5})
        print(t.exists, t.get_active_version().version)
    """})
    record = app.run_node("node")
    assert record.status == "succeeded", record.error
    out = printed(app, record)
    assert out[0] == "False False None"
    assert out[1] == "True True 1 2 ['n', 'patterns_id']"
    assert out[2:5] == ["[{'s': 3}]", "[{'c': 2}]", "[{'m': 2}]"]
    assert out[5] == "dict_keys(['n', 'patterns_id'])"
    assert out[6] == "False None"
    record = app.run_node("again")  # the reset committed: still no table until a write
    assert record.status == "succeeded", record.error
    assert printed(app, record) == ["False", "True 2"]


def test_read_sql_template_naming_no_table_is_a_clear_error(
        original_app: Callable[[dict[str, str]], AppRunner]) -> None:
    app = original_app({"graph.yml": """
        title: Bad template
        functions:
          - node_file: node.py
        stores:
          - table: items
    """, "node.py": """
        from patterns import Table
        t = Table("items")
        t.read_sql("select * from {{ itmes }}")
    """})
    record = app.run_node("node")
    assert record.status == "failed"
    assert "{{ itmes }} names no table" in record.error and "items" in record.error
    assert "node.py, line 3" in record.error
