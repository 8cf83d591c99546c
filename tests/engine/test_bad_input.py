"""Bad input gets a clear error naming node, file, line and value, and loses nothing."""

from __future__ import annotations

from typing import Any

import pytest

from patterns.errors import GraphError

SEED = """
from patterns import Table
t = Table("items", "w")
t.append([{"n": 1, "name": "one"}, {"n": 2, "name": "two"}])
"""


def failing_node(body: str) -> str:
    return "from patterns import Table\nt = Table(\"items\", \"w\")\n" + body


def seeded(app_runner: Any, body: str, stores: list[str] | None = None) -> Any:
    app = app_runner({"seed.py": SEED, "bad.py": failing_node(body)}, stores or ["items"])
    assert app.run_node("seed").status == "succeeded"
    return app


def assert_failed_cleanly(app: Any, *fragments: str) -> Any:
    before = app.rows("items")
    record = app.run_node("bad")
    assert record.status == "failed"
    text = f"{record.error}\n{record.traceback}"
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    assert app.rows("items") == before
    return record


@pytest.mark.parametrize(("body", "fragments"), [
    ('t.append({"tags": {"a", "b"}})\n', ["field 'tags'", "set", "bad.py, line 4"]),
    ('t.append({"obj": object()})\n', ["field 'obj'", "object", "bad.py, line 4"]),
    ('t.append({"m": {1: "x"}})\n', ["field 'm'", "key 1", "bad.py, line 4"]),
    ('t.append({1: "x"})\n', ["field name 1", "bad.py, line 4"]),
    # Arrow would take b"n" for "n" (and lose one of the two values): refused instead.
    ('t.append([{"n": 4}, {"n": 5, b"n": 6}])\n', ["field name b'n'", "bytes", "bad.py, line 4"]),
    ('t.append({"n": float("nan")})\nt.flush()\n', ["NaN", "'n'", "integers", "bad.py, line 4"]),
    # The last records go with the final checkpoint: refused there, still named by line.
    ('t.append({"n": float("nan")})\n', ["NaN", "'n'", "integers", "bad.py, line 4"]),
    # Records are converted 10,000 at a time and shipped 50,000 at a time: a bad one far
    # into the buffer is still named by the line that appended it.
    ('for i in range(25_000):\n    t.append({"n": i})\nt.append({"n": 0, "tags": {1}})\n'
     'for i in range(5):\n    t.append({"n": i})\n', ["field 'tags'", "set", "bad.py, line 6"]),
    ('for i in range(15_000):\n    t.append({"n": i})\nt.append({"n": float("nan")})\n'
     't.flush()\n', ["NaN", "integers", "appended at bad.py, line 6"]),
    # A batch shipped while the node goes on appending (every 50,000 records): its bad
    # record fails the run at the node's next request, named by the line that appended it.
    ('for i in range(30_000):\n    t.append({"n": i})\nt.append({"n": float("nan")})\n'
     'for i in range(60_000):\n    t.append({"n": i})\n',
     ["NaN", "integers", "appended at bad.py, line 6"]),
    # A long list appended at once (converted as the node made it): its bad record named.
    ('rows = [{"n": i} for i in range(12_000)]\nrows[11_000] = {"n": 0, "tags": {1}}\n'
     't.append(rows)\n', ["field 'tags'", "set", "bad.py, line 6"]),
    ('t.append({"n": 1})\nt.append([{"n": 2}, None])\n', ["not a dict", "NoneType",
                                                         "bad.py, line 5"]),
])
def test_unstorable_values_fail_the_run_and_change_nothing(app_runner: Any, body: str,
                                                          fragments: list[str]) -> None:
    app = seeded(app_runner, 't.append({"n": 3, "name": "three"})\n' + body)
    assert_failed_cleanly(app, *fragments)


def test_ten_megabyte_string_round_trips(app_runner: Any) -> None:
    app = seeded(app_runner, 't.append({"n": 3, "name": "x" * 10_000_000})\n')
    assert app.run_node("bad").status == "succeeded"
    big = [r for r in app.rows("items") if r["n"] == 3]
    assert len(big[0]["name"]) == 10_000_000


def test_reading_a_table_that_does_not_exist_yet_is_empty(app_runner: Any) -> None:
    app = app_runner({"reader.py": """
        from patterns import Table
        t = Table("later")
        out = Table("out", "w")
        out.append({"rows": len(t.read()), "count": t.record_count, "exists": t.exists,
                    "frame": len(t.read_dataframe()), "stream": len(list(t.as_stream()))})
    """}, ["later", "out"])
    assert app.run_node("reader").status == "succeeded"
    row = app.rows("out")[0]
    assert (row["rows"], row["count"], row["exists"], row["frame"], row["stream"]) == \
        (0, 0, False, 0, 0)


def test_parameter_of_the_wrong_type_stops_the_run_before_it_starts(app_runner: Any) -> None:
    app = app_runner({"p.py": """
        from patterns import Parameter
        limit = Parameter("limit", type=int, default=3)
        print("ran")
    """}, [])
    record, _ = app.engine.run_node(app.app.node("p"), "manual", {"limit": "ten"})
    assert record.status == "failed"
    assert "limit" in record.error and "ten" in record.error and "p.py" in record.error
    assert record.started_at is not None and record.exit_code is None


def test_syntax_error_is_reported_with_file_and_line_and_nothing_runs(app_runner: Any) -> None:
    with pytest.raises(GraphError) as info:
        app_runner({"ok.py": SEED, "broken.py": "from patterns import Table\nx = (\n"}, ["items"])
    problem = info.value.problems[0]
    assert problem.file == "broken.py" and problem.line is not None


def test_failing_import_points_at_the_users_line(app_runner: Any) -> None:
    app = app_runner({"imp.py": "from patterns import Table\n\nfrom datetime.datetime import now\n"},
                     [])
    record = app.run_node("imp")
    assert record.status == "failed"
    assert "ModuleNotFoundError" in record.error and "imp.py, line 3" in record.error
    assert 'File "' in record.traceback and "patterns/sdk" not in record.traceback


def test_two_nodes_may_write_the_same_table(app_runner: Any) -> None:
    app = app_runner({
        "a.py": 'from patterns import Table\nTable("shared", "w").append({"by": "a"})\n',
        "b.py": 'from patterns import Table\nTable("shared", "w").append({"by": "b"})\n',
    }, ["shared"])
    result = app.run()
    assert result.ok
    assert sorted(r["by"] for r in app.rows("shared")) == ["a", "b"]


def test_cycle_converges_when_no_new_rows_appear(app_runner: Any) -> None:
    app = app_runner({
        "ping.py": """
            from patterns import Table, State
            pongs = Table("pongs")
            pings = Table("pings", "w")
            for r in pongs.as_stream().consume_records():
                if r["n"] < 3:
                    pings.append({"n": r["n"] + 1})
            if State().get_value("started") is None:
                State().set_value("started", True)
                pings.append({"n": 0})
        """,
        "pong.py": """
            from patterns import Table
            pings = Table("pings")
            pongs = Table("pongs", "w")
            for r in pings.as_stream().consume_records():
                pongs.append({"n": r["n"]})
        """,
    }, ["pings", "pongs"])
    result = app.run()
    assert result.ok and result.stopped is None
    assert [r["n"] for r in app.rows("pongs")] == [0, 1, 2, 3]
    assert app.run().runs == []  # converged: nothing left to do


def test_undeclared_table_is_refused(app_runner: Any) -> None:
    app = app_runner({"sneaky.py": """
        import patterns
        from patterns import Table
        Table("out", "w").append({"x": 1})
        hidden = getattr(patterns, "Ta" + "ble")  # out of sight of static discovery
        hidden("items", "w").append({"x": 1})
    """}, ["out", "items"])
    record = app.run_node("sneaky")
    assert record.status == "failed"
    assert "did not declare" in record.error and "'items'" in record.error
    assert app.rows("out") == []


def test_writing_a_read_only_table_is_refused(app_runner: Any) -> None:
    app = app_runner({"ro.py": 'from patterns import Table\nTable("items").append({"x": 1})\n'},
                     ["items"])
    record = app.run_node("ro")
    assert record.status == "failed" and "read-only" in record.error
    assert app.rows("items") == []


def test_nonzero_exit_rolls_back(app_runner: Any) -> None:
    app = seeded(app_runner, 't.append({"n": 9})\nt.flush()\nimport sys\nsys.exit(3)\n')
    record = assert_failed_cleanly(app)
    assert record.exit_code == 3


def test_engine_refuses_undeclared_tables_even_past_the_sdk(app_runner: Any) -> None:
    """The data plane enforces the run's grant itself, whatever the client sends."""
    import pyarrow as pa

    from patterns.errors import NodeError

    app = app_runner({"n.py": 'from patterns import Table\nTable("out", "w")\n'},
                     ["out", "secret"])
    with app.sdk("n") as run:
        with pytest.raises(NodeError, match="did not declare table 'secret'"):
            run.client.write("secret", "append", pa.table({"x": [1]}))
        with pytest.raises(NodeError, match="did not declare table 'secret'"):
            list(run.client.read("secret"))
        with pytest.raises(NodeError, match=r"read-only|did not declare"):
            run.client.write("out2", "append", pa.table({"x": [1]}))
    assert app.rows("secret") == []
