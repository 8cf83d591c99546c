"""A node's value that does not fit its column fails the run at the user's line, changing
nothing, unless the table's contract (init() or graph.yml) keeps it aside."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

SEED = """
from patterns import Table
t = Table("items", "w")
t.append([{"n": 1, "amount": 10}, {"n": 2, "amount": 20}])
"""


def node(body: str) -> str:
    return "from patterns import Table\nt = Table(\"items\", \"w\")\n" + body


def seeded(app_runner: Any, body: str, **kwargs: Any) -> Any:
    app = app_runner({"seed.py": SEED, "bad.py": node(body)}, ["items"], **kwargs)
    assert app.run_node("seed").status == "succeeded"
    return app


def kinds(app: Any) -> dict[str, str]:
    return app.engine.store.table("items").kinds()  # type: ignore[no-any-return]


@pytest.mark.parametrize(("body", "line"), [
    # Refused when the buffer ships (flush), when it goes with the final checkpoint, and
    # when the run's own staged writes (not yet committed) gave the column its type.
    ('t.append({"n": 3, "amount": 30})\nt.append({"n": 4, "amount": "lots"})\nt.flush()\n', 4),
    ('t.append({"n": 3, "amount": 30})\nt.append({"n": 4, "amount": "lots"})\n', 4),
    ('t.append({"n": 3, "fresh": 1})\nt.flush()\nt.append({"n": 4, "fresh": "lots"})\n', 5),
    ('t.append([{"n": 3}, {"n": 4, "amount": {"a": 1}}])\n', 3),
    ('t.append({"n": 3, "amount": True})\n', 3),
])
def test_a_value_that_does_not_fit_fails_the_run_at_its_line(app_runner: Any, body: str,
                                                             line: int) -> None:
    app = seeded(app_runner, body)
    before = (kinds(app), app.rows("items"))
    record = app.run_node("bad")
    assert record.status == "failed"
    assert "table 'items'" in record.error and "does not fit" in record.error
    assert f"bad.py, line {line}" in record.error, record.error
    assert "Traceback" not in record.error
    assert (kinds(app), app.rows("items")) == before


def test_the_error_names_field_value_and_record(app_runner: Any) -> None:
    app = seeded(app_runner, 't.append([{"n": 3, "amount": 1}, {"n": 4, "amount": "lots"}])\n')
    record = app.run_node("bad")
    assert "record 1, field 'amount': 'lots'" in record.error
    assert "holds int values" in record.error and "contract" in record.error


def test_init_contract_variant_keeps_the_value_aside(app_runner: Any) -> None:
    app = seeded(app_runner, 't.init(contract="variant")\n'
                             't.append({"n": 3, "amount": "lots"})\n')
    assert app.run_node("bad").status == "succeeded"
    assert kinds(app)["amount"] == "int"
    last = app.rows("items")[-1]
    assert (last["amount"], last["amount__text"]) == (None, "lots")


def test_an_unknown_contract_is_a_clear_error(app_runner: Any) -> None:
    app = seeded(app_runner, 't.init(contract="lenient")\n')
    record = app.run_node("bad")
    assert record.status == "failed"
    assert "contract='lenient' is not a contract" in record.error
    assert "discard_value" in record.error


def test_graph_yml_contract_applies_to_a_node(app_runner: Any) -> None:
    app = seeded(app_runner, 't.append({"n": 3, "amount": "lots"})\n')
    graph = yaml.safe_load((app.root / "graph.yml").read_text())
    graph["stores"] = [{"table": "items", "contract": "discard_value"}]
    (app.root / "graph.yml").write_text(yaml.safe_dump(graph))
    assert app.run_node("bad").status == "succeeded"
    assert app.rows("items")[-1]["amount"] is None and kinds(app)["amount"] == "int"


@pytest.mark.parametrize("where", ["inline", "schemas", "file"])
def test_a_graph_yml_schema_is_enforced(app_runner: Any, where: str) -> None:
    app = app_runner({"bad.py": node('t.append({"n": 1, "amount": 2.5})\n')}, ["items"])
    fields = {"fields": [{"name": "n", "type": "Integer"}, {"name": "amount", "type": "Integer"}]}
    graph = yaml.safe_load((app.root / "graph.yml").read_text())
    schema: Any = fields
    if where == "schemas":
        graph["schemas"], schema = {"Items": fields}, "Items"
    elif where == "file":
        (app.root / "items.yml").write_text(yaml.safe_dump(fields))
        schema = "items.yml"
    graph["stores"] = [{"table": "items", "schema": schema}]
    (app.root / "graph.yml").write_text(yaml.safe_dump(graph))
    record = app.run_node("bad")
    assert record.status == "failed"
    assert "field 'amount': 2.5 does not fit" in record.error
    assert "bad.py, line 3" in record.error


def test_settings_max_columns_caps_a_table(app_runner: Any) -> None:
    app = seeded(app_runner, 't.append({"n": 3, "a": 1, "b": 2})\n',
                 settings={"max_columns": 3})
    record = app.run_node("bad")
    assert record.status == "failed"
    assert "4 columns is more than the 3" in record.error
    assert "settings.max_columns" in record.error and "bad.py, line 3" in record.error
    assert len(app.rows("items")) == 2


@pytest.mark.parametrize(("body", "fragment"), [
    ('t.append({"n": 3, "": 1})\n', "must be non-empty"),
    ('t.append({"n": 3, "a\\x00b": 1})\n', "no NUL character"),
    ('t.append([{"n": 3, "x": 1}, {"n": 4, "X": 2}])\n', "differ only by upper/lower case"),
    ('t.append({"n": 3, "Amount": 1})\n', "differ only by upper/lower case"),
])
def test_field_names_that_cannot_be_columns_fail_at_the_append(app_runner: Any, body: str,
                                                               fragment: str) -> None:
    app = seeded(app_runner, body)
    record = app.run_node("bad")
    assert record.status == "failed"
    assert fragment in record.error and "bad.py, line 3" in record.error
    assert len(app.rows("items")) == 2


def test_uuids_decimals_and_nat_are_stored(app_runner: Any) -> None:
    app = seeded(app_runner, """
import datetime as dt, decimal, uuid
import pandas as pd
u = uuid.UUID("12345678-1234-5678-1234-567812345678")
t.append([{"n": 3, "id": u, "price": decimal.Decimal("1.25"), "at": pd.NaT},
          {"n": 4, "id": None, "price": decimal.Decimal("2"), "at": dt.datetime(2024, 1, 1)}])
t.append({"n": 5, "when": pd.NaT})
""")
    record = app.run_node("bad")
    assert record.status == "succeeded", record.error
    got = app.rows("items")[2:]
    assert [r["id"] for r in got] == ["12345678-1234-5678-1234-567812345678", None, None]
    assert [r["price"] for r in got] == [1.25, 2.0, None]
    assert [r["at"] for r in got] == [None, __import__("datetime").datetime(2024, 1, 1), None]
    assert got[2]["when"] is None
