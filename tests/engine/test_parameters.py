"""Parameters of every type reach node code: defaults, graph.yml values, --param, secrets,
connections — in real node processes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from patterns.engine.secrets import SecretStore

NODE = """
import datetime as dt, json
from patterns import Connection, Parameter, Table
values = {
    "s": Parameter("s", type=str, default="hi"),
    "i": Parameter("i", type=int, default=1),
    "f": Parameter("f", type=float, default=0.5),
    "b": Parameter("b", type=bool, default=False),
    "when": Parameter("when", type=dt.datetime, default="2000-01-01"),
    "day": Parameter("day", type=dt.date, default="2000-01-02"),
    "items": Parameter("items", type=list, default=["a"]),
    "token": Parameter("token", type=str, default="none"),
    "api": Parameter("api", type=Connection("stripe"), default={"key": "default"}),
    "computed": Parameter("computed", type=int, default=len("four")),
}
types = {k: type(v).__name__ for k, v in values.items()}
Table("out", "w").append({"values": json.dumps(values, default=str), "types": json.dumps(types)})
"""


def run_with(app_runner: Any, parameter_values: dict[str, Any] | None = None,
             overrides: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any], dict[str, str]]:
    functions = [{"node_file": "p.py", "id": "params01",
                  "parameter_values": parameter_values or {}}]
    app = app_runner({"p.py": NODE}, ["out"], functions=functions)
    record, _ = app.engine.run_node(app.app.node("params01"), "manual", overrides)
    rows = app.rows("out")
    if not rows:
        return record, {}, {}
    return record, json.loads(rows[0]["values"]), json.loads(rows[0]["types"])


def test_defaults_are_converted_to_their_types(app_runner: Any) -> None:
    record, values, types = run_with(app_runner)
    assert record.status == "succeeded", record.error
    assert types == {"s": "str", "i": "int", "f": "float", "b": "bool", "when": "datetime",
                     "day": "date", "items": "list", "token": "str", "api": "dict",
                     "computed": "int"}
    assert values["when"] == str(dt.datetime(2000, 1, 1)) and values["computed"] == 4


def test_graph_values_and_overrides(app_runner: Any) -> None:
    record, values, _ = run_with(
        app_runner,
        {"s": "from graph", "i": "42", "b": "yes", "items": "x,y", "when": "2024-03-01T10:00:00"},
        {"i": "7", "f": "2.25"})
    assert record.status == "succeeded", record.error
    assert values["s"] == "from graph" and values["i"] == 7 and values["f"] == 2.25
    assert values["b"] is True and values["items"] == ["x", "y"]
    assert values["when"] == "2024-03-01 10:00:00"


def test_secret_and_connection_references(app_runner: Any, patterns_home: Any) -> None:
    secrets = SecretStore()
    secrets.set("stripe_token", "tok-very-secret")
    secrets.set("connection.stripe", json.dumps({"key": "sk_live_1"}))
    record, values, _ = run_with(app_runner, {"token": "${{ stripe_token }}",
                                              "api": "${{ connection.stripe }}"})
    assert record.status == "succeeded", record.error
    assert values["token"] == "tok-very-secret" and values["api"] == {"key": "sk_live_1"}
    assert record.parameters["token"] == "****" and record.parameters["api"] == "****"


def test_missing_secret_stops_the_run_with_the_fix(app_runner: Any) -> None:
    record, values, _ = run_with(app_runner, {"token": "${{ nope }}"})
    assert record.status == "failed" and values == {}
    assert "'nope'" in record.error and "patterns create secret nope" in record.error


def test_secret_store_is_encrypted_and_lists_names_only(patterns_home: Any) -> None:
    secrets = SecretStore()
    secrets.set("api_key", "plain-text-value")
    raw = (patterns_home / "secrets.enc").read_bytes()
    assert b"plain-text-value" not in raw
    assert secrets.names() == ["api_key"] and secrets.get("api_key") == "plain-text-value"
    assert oct((patterns_home / "secret.key").stat().st_mode)[-3:] == "600"
