"""Streams: order, late rows, seek, rewind, rollback, checkpoint — through the real data plane."""

from __future__ import annotations

from typing import Any

import pytest

from patterns import Table
from patterns.errors import NodeError

NODES = {
    "writer.py": 'from patterns import Table\nt = Table("events", "w")\n',
    "reader.py": 'from patterns import Table\nt = Table("events")\nout = Table("out", "w")\n',
}


@pytest.fixture
def app(app_runner: Any) -> Any:
    return app_runner(NODES, ["events", "out"])


def write(app: Any, records: list[dict[str, Any]]) -> None:
    with app.sdk("writer"):
        Table("events", "w").append(records)


def consume(app: Any, order_by: str | None = None, **kw: Any) -> list[dict[str, Any]]:
    with app.sdk("reader"):
        return list(Table("events").as_stream(order_by=order_by, **kw).consume_records())


def test_plain_stream_delivers_in_commit_order_once(app: Any) -> None:
    write(app, [{"n": i} for i in range(5)])
    assert [r["n"] for r in consume(app)] == [0, 1, 2, 3, 4]
    assert consume(app) == []
    write(app, [{"n": 5}])
    assert [r["n"] for r in consume(app)] == [5]


def test_order_by_non_unique_field_breaks_ties_by_patterns_id(app: Any) -> None:
    write(app, [{"k": 2, "n": 0}, {"k": 1, "n": 1}, {"k": 2, "n": 2}, {"k": 1, "n": 3}])
    got = consume(app, order_by="k")
    assert [(r["k"], r["n"]) for r in got] == [(1, 1), (1, 3), (2, 0), (2, 2)]
    ids = [r["patterns_id"] for r in got]
    assert ids[0] < ids[1] and ids[2] < ids[3]


def test_late_row_with_smaller_order_value_comes_in_a_later_pass(app: Any) -> None:
    write(app, [{"ts": 10}, {"ts": 20}])
    assert [r["ts"] for r in consume(app, order_by="ts")] == [10, 20]
    write(app, [{"ts": 5}])  # committed late, value behind the stream
    assert [r["ts"] for r in consume(app, order_by="ts")] == [5]
    assert consume(app, order_by="ts") == []


def test_nulls_in_order_field_come_last(app: Any) -> None:
    write(app, [{"ts": None, "n": 0}, {"ts": 3, "n": 1}, {"ts": 1, "n": 2}])
    assert [r["n"] for r in consume(app, order_by="ts")] == [2, 1, 0]


def test_partial_pass_resumes_after_last_checkpointed_record(app: Any) -> None:
    write(app, [{"k": i % 3, "n": i} for i in range(9)])
    with app.sdk("reader"):
        stream = Table("events").as_stream(order_by="k")
        it = stream.consume_records()
        first = [next(it)["n"] for _ in range(4)]
        stream.checkpoint()
        next(it)  # delivered but never checkpointed...
        raise_in_run = False
        assert not raise_in_run
    # ...the run ended successfully, so the fifth record was consumed at the final commit.
    rest = [r["n"] for r in consume(app, order_by="k")]
    assert first == [0, 3, 6, 1]
    assert rest == [7, 2, 5, 8]


def test_seek_delivers_values_strictly_greater(app: Any) -> None:
    write(app, [{"v": i} for i in range(6)])
    with app.sdk("reader"):
        stream = Table("events").as_stream(order_by="v")
        stream.seek(3)
        assert [r["v"] for r in stream.consume_records()] == [4, 5]


def test_starting_value_is_inclusive(app: Any) -> None:
    write(app, [{"v": i} for i in range(6)])
    assert [r["v"] for r in consume(app, order_by="v", starting_value=4)] == [4, 5]


def test_rewind_consumes_everything_again(app: Any) -> None:
    write(app, [{"v": i} for i in range(3)])
    assert len(consume(app)) == 3
    with app.sdk("reader"):
        stream = Table("events").as_stream()
        stream.rewind()
        assert [r["v"] for r in stream.consume_records()] == [0, 1, 2]


def test_rollback_redelivers_and_drops_writes_since_checkpoint(app: Any) -> None:
    write(app, [{"v": i} for i in range(4)])
    with app.sdk("reader"):
        out = Table("out", "w")
        stream = Table("events").as_stream()
        it = stream.consume_records()
        out.append(next(it))
        stream.checkpoint()
        out.append(next(it))
        out.append(next(it))
        stream.rollback()
        again = [r["v"] for r in stream.consume_records()]
        for v in again:
            out.append({"v": v})
    assert again == [1, 2, 3]
    assert sorted(r["v"] for r in app.rows("out")) == [0, 1, 2, 3]


def test_consume_with_rollback_rolls_back_on_error(app: Any) -> None:
    write(app, [{"v": i} for i in range(3)])
    with app.sdk("reader"):
        stream = Table("events").as_stream()
        out = Table("out", "w")
        with pytest.raises(ValueError), stream.consume_with_rollback() as records:
            for r in records:
                out.append(r)
                if r["v"] == 1:
                    raise ValueError("boom")
        assert [r["v"] for r in stream.consume_records()] == [0, 1, 2]
    assert app.rows("out") == []


def test_consume_with_rollback_checkpoints_on_success(app: Any) -> None:
    write(app, [{"v": i} for i in range(3)])
    with app.sdk("reader"), Table("events").as_stream().consume_with_rollback() as records:
        assert len(list(records)) == 3
    assert consume(app) == []


def test_stream_on_table_that_does_not_exist_is_empty(app: Any) -> None:
    assert consume(app) == []


def test_order_by_unknown_field_is_a_clear_error(app: Any) -> None:
    write(app, [{"v": 1}])
    with pytest.raises(NodeError, match="no field 'nope'"), app.sdk("reader"):
        consume(app, order_by="nope")


def test_replace_starts_streams_over(app: Any) -> None:
    write(app, [{"v": 1}, {"v": 2}])
    assert len(consume(app)) == 2
    with app.sdk("writer"):
        Table("events", "w").replace([{"v": 9}])
    assert [r["v"] for r in consume(app)] == [9]


def test_upsert_redelivers_changed_rows(app: Any) -> None:
    with app.sdk("writer"):
        t = Table("events", "w")
        t.init(unique_on="key")
        t.upsert([{"key": "a", "v": 1}, {"key": "b", "v": 1}])
    assert len(consume(app)) == 2
    with app.sdk("writer"):
        Table("events", "w").upsert({"key": "a", "v": 2})
    assert [(r["key"], r["v"]) for r in consume(app)] == [("a", 2)]
    assert sorted((r["key"], r["v"]) for r in app.rows("events")) == [("a", 2), ("b", 1)]


def test_second_stream_on_a_port_continues_from_the_first(app: Any) -> None:
    write(app, [{"n": i} for i in range(10)])
    with app.sdk("reader"):
        first = Table("events").as_stream().consume_records()
        got = [next(first)["n"] for _ in range(5)]
        second = Table("events").as_stream().consume_records()
        got += [next(second)["n"] for _ in range(2)]
    got += [r["n"] for r in consume(app)]
    assert got == list(range(10))


def test_a_loop_carries_on_after_rollback_without_losing_rows(app: Any) -> None:
    write(app, [{"n": i} for i in range(6)])
    with app.sdk("reader"):
        out = Table("out", "w")
        stream = Table("events").as_stream()
        seen, rolled = [], False
        for r in stream.consume_records():
            seen.append(r["n"])
            out.append({"n": r["n"]})
            if r["n"] == 1:
                stream.checkpoint()
            if r["n"] == 3 and not rolled:
                rolled = True
                stream.rollback()
    assert seen == [0, 1, 2, 3, 2, 3, 4, 5]
    assert sorted(r["n"] for r in app.rows("out")) == list(range(6))
    assert consume(app) == []


def test_changing_order_by_mid_pass_finishes_the_pass_first(app: Any) -> None:
    write(app, [{"k": 5 - i, "n": i} for i in range(6)])
    with app.sdk("reader"):
        it = Table("events").as_stream(order_by="k").consume_records()
        got = [next(it)["n"] for _ in range(2)]
    got += [r["n"] for r in consume(app)]  # no order now: the old pass completes first
    assert sorted(got) == list(range(6)) and len(got) == 6


def test_order_column_widening_mid_pass_loses_nothing(app: Any) -> None:
    write(app, [{"k": k} for k in (1, 2, 9, 10, 11)])
    with app.sdk("reader"):
        it = Table("events").as_stream(order_by="k").consume_records()
        got = [next(it)["k"] for _ in range(2)]
    write(app, [{"k": 2.5}])  # widens the column to float
    got += [r["k"] for r in consume(app, order_by="k")]
    assert [float(k) for k in got] == [1, 2, 9, 10, 11, 2.5]


def test_init_survives_a_rollback(app: Any) -> None:
    with app.sdk("writer"):
        t = Table("events", "w")
        t.init(unique_on=["id"])
        t._run.rollback()
        t.upsert([{"id": 1, "v": "a"}, {"id": 1, "v": "b"}])
    assert [(r["id"], r["v"]) for r in app.rows("events")] == [(1, "b")]


def test_json_then_text_appends_in_one_checkpoint(app: Any) -> None:
    with app.sdk("writer"):
        t = Table("events", "w")
        t.append([{"x": {"a": 1}}, {"x": {"b": 2}}])
        t.flush()
        t.append({"x": "hello"})
    import json

    assert [json.loads(r["x"]) for r in app.rows("events")] == [{"a": 1}, {"b": 2}, "hello"]


def test_replace_with_nothing_is_an_empty_version(app: Any) -> None:
    write(app, [{"n": 1}])
    with app.sdk("writer"):
        Table("events", "w").replace([])
    assert app.rows("events") == []


def test_read_sql_cannot_reach_platform_metadata(app: Any) -> None:
    write(app, [{"n": 1}])
    with pytest.raises(NodeError, match="platform"), app.sdk("reader"):
        Table("events").read_sql("select * from patterns_meta.node_state")
