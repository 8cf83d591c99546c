"""A run's appended rows are inserted while the node goes on, before its checkpoint commits
(patterns/store/duckdb_early.py, docs/store.md): nothing shows before the commit, the rows
commit once, their ids in commit order, and a write from elsewhere in between sends them
the ordinary way."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from pathlib import Path
from typing import Any

import pytest

from patterns import Table
from patterns.errors import NodeError
from patterns.store.duckdb_early import PART_ROWS
from patterns.store.model import RunRecord
from patterns.store.tables import qualified
from tests.conftest import wait_for

SEED = """
from patterns import Table

Table("out", "w").append({"n": -1, "name": "seed"})
"""
OTHER = """
from patterns import Table

Table("other", "w").append({"n": 1})
Table("out", "w").append({"n": -2, "name": "other run"})
"""
#: The node the tests run in their own process (``app.sdk``): its file declares its table.
LOAD = """
from patterns import Table

Table("out", "w")
"""
#: More than two row groups: two parts go before the checkpoint, the rest with it.
ROWS = 2 * PART_ROWS + 5_000


def _inserted_early(app: Any) -> int:
    """Rows of the run's staged appends the store holds in its early transaction now."""
    early = app.session._early
    if early is None:
        return 0
    early.settle()  # (the inserts run on a thread of their own)
    return sum(n for n, _ in early.inserted.values())


def _rows(app: Any) -> list[int]:
    return [r["n"] for r in app.rows("out")]


def _ids_in_storage_order(app: Any) -> bool:
    """Each stored row's id greater than the one stored before it (what streams rely on)."""
    meta = app.engine.store.table("out")
    ids = app.engine.store.arrow(f'SELECT "{meta.physical_id}" AS id FROM '
                                 f'{qualified(meta.physical)} ORDER BY rowid'
                                 ).column("id").to_pylist()
    return len(ids) > 1 and all(a < b for a, b in itertools.pairwise(ids))


def _append_two_parts_and_more(app: Any) -> Table:
    """Append :data:`ROWS` records from the test's own node code; two whole row groups of
    them go in while it goes on (the rest waits for the commit)."""
    out = Table("out", "w")
    for i in range(ROWS):
        out.append({"n": i, "name": f"user{i}"})
    out.flush()
    assert _inserted_early(app) == 2 * PART_ROWS
    return out


def test_rows_inserted_before_the_checkpoint_commit_once_in_order_and_not_before(
        app_runner: Any) -> None:
    app = app_runner({"seed.py": SEED, "load.py": LOAD}, ["out"])
    assert app.run_node("seed").status == "succeeded"
    with app.sdk("load"):
        _append_two_parts_and_more(app)
        assert _rows(app) == [-1]  # (a reader sees none of them)
    assert _rows(app) == [-1, *range(ROWS)]
    assert _ids_in_storage_order(app)
    meta = app.engine.store.table("out")
    assert meta.last_id == app.rows("out")[-1]["patterns_id"]
    assert not app.engine.store._early  # (nothing left open)


@pytest.mark.parametrize("between", ["another run's commit", "a run's start record"])
def test_a_write_from_elsewhere_in_between_sends_the_rows_with_the_commit(
        app_runner: Any, between: str) -> None:
    app = app_runner({"seed.py": SEED, "load.py": LOAD, "other.py": OTHER}, ["out", "other"])
    assert app.run_node("seed").status == "succeeded"
    with app.sdk("load"):
        out = _append_two_parts_and_more(app)
        if between == "another run's commit":  # (its rows then come first, ids too)
            done: list[Any] = []
            thread = threading.Thread(target=lambda: done.append(app.run_node("other")))
            thread.start()
            thread.join(120)
            assert done and done[0].status == "succeeded"
        else:
            with app.engine.store.autocommit() as tx:
                tx.runs.insert(RunRecord(id="r-elsewhere", node_id="x", node_title="x",
                                         trigger="manual", status="running",
                                         queued_at=dt.datetime.now(dt.UTC)))
        for i in range(ROWS, ROWS + 10):
            out.append({"n": i, "name": f"user{i}"})
    first = [-1, -2] if between == "another run's commit" else [-1]
    assert _rows(app) == [*first, *range(ROWS + 10)]
    assert _ids_in_storage_order(app)
    # The node's next checkpoints insert at the commit for a while (a busy store).
    assert app.engine.store.early_writes(app.session._staging(), lambda: None) is None


def test_a_cancelled_run_leaves_none_of_its_early_rows(app_runner: Any, tmp_path: Path) -> None:
    marker = tmp_path / "appended"
    long_run = f"""
import pathlib, time
from patterns import Table

out = Table("out", "w")
for i in range({ROWS}):
    out.append({{"n": i, "name": "user%d" % i}})
out.flush()
pathlib.Path({str(marker)!r}).write_text("done")
time.sleep(120)
"""
    app = app_runner({"seed.py": SEED, "long.py": long_run}, ["out"])
    assert app.run_node("seed").status == "succeeded"
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(app.run_node("long")))
    thread.start()
    wait_for(marker.exists, "the node to append its rows", 120)
    store = app.engine.store
    wait_for(lambda: any(early.inserted for early in store._early), "rows to go early", 60)
    assert _rows(app) == [-1]
    (run_id,) = app.engine.running_runs()
    assert app.engine.cancel(run_id, "stopped by the test")
    thread.join(60)
    assert done and done[0].status == "cancelled"
    assert _rows(app) == [-1]
    assert not store._early
    assert app.run_node("seed").status == "succeeded"  # (the store takes commits as before)
    assert _rows(app) == [-1, -1]


def test_rows_that_went_early_are_stored_as_the_rest_of_their_append(
        app_runner: Any) -> None:
    """A later record that widens a nested field (a key the first ones lack) merges into
    the staged append, which then gives its earlier records that key too (null). Rows that
    had gone early were stored without it: the same node code stored its records one way
    or the other as the inserts happened to run, and one append two ways."""
    seed = """
from patterns import Table

Table("out", "w").append({"n": -1, "d": {"k": -1}})
"""
    app = app_runner({"seed.py": seed, "load.py": LOAD}, ["out"])
    assert app.run_node("seed").status == "succeeded"
    n = 2 * PART_ROWS + 10
    with app.sdk("load"):
        out = Table("out", "w")
        for i in range(n):
            out.append({"n": i, "d": {"k": i}})
        out.flush()
        assert _inserted_early(app) == 2 * PART_ROWS
        out.append({"n": n, "d": {"k": n, "j": 2}})
    rows = app.rows("out")
    assert [r["n"] for r in rows] == [-1, *range(n + 1)]
    # As when nothing goes early (the staged append's records all have the key now).
    assert rows[1]["d"] == '{"k":0,"j":null}'
    assert rows[n]["d"] == f'{{"k":{n - 1},"j":null}}'
    assert rows[-1]["d"] == f'{{"k":{n},"j":2}}'
    assert _ids_in_storage_order(app)


# ---------------------------------------------------------------- a long list, in parts
#: Three whole parts and a few more: the list's parts reach the engine as they are converted.
LIST_ROWS = 3 * PART_ROWS + 5


def _staged_rows(app: Any) -> int:
    """Rows staged for ``out`` (what the next checkpoint would commit)."""
    cp = app.session._staged
    ops = cp.ops.get("out", []) if cp is not None else []
    return sum(op.data.num_rows for op in ops if op.data is not None)


def _spy_writes(app: Any) -> list[int]:
    """The rows of each append the engine stages for the test's node from here on."""
    rows: list[int] = []
    stage = app.session.stage

    def staged(port: str, op: str, data: Any, *args: Any, **kwargs: Any) -> None:
        if op == "append" and data is not None:
            rows.append(data.num_rows)
        stage(port, op, data, *args, **kwargs)

    app.session.stage = staged
    return rows


def test_a_long_list_goes_to_the_engine_in_parts_and_is_stored_as_one(
        app_runner: Any) -> None:
    app = app_runner({"seed.py": SEED, "load.py": LOAD}, ["out"])
    assert app.run_node("seed").status == "succeeded"
    records = [{"n": i, "name": f"user{i}"} for i in range(LIST_ROWS)]
    with app.sdk("load"):
        writes = _spy_writes(app)
        Table("out", "w").append(records)
        assert writes == [PART_ROWS, PART_ROWS, PART_ROWS, 5]
        assert _inserted_early(app) == 3 * PART_ROWS
    rows = app.rows("out")
    assert [r["n"] for r in rows] == [-1, *range(LIST_ROWS)]
    assert rows[-1]["name"] == f"user{LIST_ROWS - 1}"
    assert _ids_in_storage_order(app)


@pytest.mark.parametrize("later", ["a float among ints", "text for a nested field"])
def test_a_list_whose_later_part_disagrees_is_stored_as_if_appended_at_once(
        app_runner: Any, later: str) -> None:
    """Parts already shipped are taken back and the list converted at once: the column
    gets the type the whole list decides (floats; JSON), as before."""
    app = app_runner({"seed.py": SEED, "load.py": LOAD}, ["out"])
    assert app.run_node("seed").status == "succeeded"
    records: list[dict[str, Any]] = [{"n": i, "v": i, "d": {"k": i}} for i in range(LIST_ROWS)]
    at = 2 * PART_ROWS + 20_000  # (in the third part: two are shipped by then)
    records[at] = {"n": at, "v": 0.5, "d": {"k": at}} if later == "a float among ints" \
        else {"n": at, "v": at, "d": "text"}
    with app.sdk("load"):
        writes = _spy_writes(app)
        out = Table("out", "w")
        out.append(records)
        out.flush()
        # Two parts shipped, taken back, then the list as a whole.
        assert writes == [PART_ROWS, PART_ROWS, LIST_ROWS]
        assert _staged_rows(app) == LIST_ROWS
    rows = app.rows("out")
    assert [r["n"] for r in rows] == [-1, *range(LIST_ROWS)]
    if later == "a float among ints":
        assert rows[1 + at]["v"] == 0.5 and rows[2]["v"] == 1.0
    else:
        # (the whole list's nested field is JSON: the text is a JSON string in it)
        assert rows[1 + at]["d"] == '"text"' and rows[2]["d"] == '{"k": 1}'


def test_a_list_with_a_bad_record_in_a_later_part_stages_nothing_of_it(
        app_runner: Any) -> None:
    app = app_runner({"seed.py": SEED, "load.py": LOAD}, ["out"])
    assert app.run_node("seed").status == "succeeded"
    records: list[Any] = [{"n": i, "name": f"user{i}"} for i in range(LIST_ROWS)]
    records[2 * PART_ROWS + 3] = {"n": 0, "tags": {1}}  # (a set: no column holds it)
    with app.sdk("load"):
        out = Table("out", "w")
        out.append({"n": -3, "name": "before"})
        out.flush()  # (a list appended with nothing buffered goes in parts)
        with pytest.raises(NodeError) as refused:
            out.append(records)
        assert "record 245763" in str(refused.value) and "set" in str(refused.value)
        assert "test_early_writes.py, line" in str(refused.value)
        assert _staged_rows(app) == 1  # (the record before the list, nothing of it)
        out.append({"n": -4, "name": "after"})
    assert [r["n"] for r in app.rows("out")] == [-1, -3, -4]


def test_a_list_the_engine_refuses_in_a_later_part_stages_nothing_of_it(
        app_runner: Any) -> None:
    app = app_runner({"seed.py": SEED, "load.py": LOAD}, ["out"])
    assert app.run_node("seed").status == "succeeded"  # (n: a column of integers)
    # Text all through (one type: the list goes in parts); the engine reads "12" into the
    # integer column, and refuses "x250000", in the third part.
    records = [{"n": str(i) if i < 250_000 else f"x{i}", "name": f"user{i}"}
               for i in range(LIST_ROWS)]
    with app.sdk("load"):
        writes = _spy_writes(app)
        out = Table("out", "w")
        with pytest.raises(NodeError) as refused:
            out.append(records)
        assert "x250000" in str(refused.value)
        assert "test_early_writes.py, line" in str(refused.value)
        assert writes[:2] == [PART_ROWS, PART_ROWS]  # (staged, then taken back)
        assert _staged_rows(app) == 0
        out.append({"n": 7, "name": "after"})
    assert [r["n"] for r in app.rows("out")] == [-1, 7]


def test_parts_of_a_list_a_contract_dropped_rows_of_are_taken_back_alone(
        app_runner: Any) -> None:
    """With ``contract: discard_row`` the engine stages fewer rows of a part than the node
    shipped: taking the parts back takes back what the engine staged of them, not rows
    appended before the list."""
    app = app_runner({"seed.py": SEED, "load.py": LOAD}, ["out"])
    assert app.run_node("seed").status == "succeeded"  # (n: a column of integers)
    # Text all through; "x" (one record in a thousand) does not fit n: its row is dropped.
    records: list[dict[str, Any]] = [{"n": str(i) if i % 1000 else "x", "v": i}
                                     for i in range(LIST_ROWS)]
    at = PART_ROWS + 20_000  # (in the second part: the first is shipped by then)
    records[at] = {"n": str(at), "v": 0.5}  # (the whole list's v: floats)
    with app.sdk("load"):
        out = Table("out", "w")
        out.init(contract="discard_row")
        for k in range(500):
            out.append({"n": str(-10 - k), "v": 0})
        out.flush()  # (a list appended with nothing buffered goes in parts)
        out.append(records)
    kept = [i for i in range(LIST_ROWS) if i % 1000]
    assert _rows(app) == [-1, *range(-10, -510, -1), *kept]


def test_a_refused_list_leaves_no_column_of_it_to_the_rows_before_it(
        app_runner: Any) -> None:
    """The parts shipped join the rows staged before the list (one staged append); taking
    them back leaves those rows as they were: without the list's fields, their types."""
    app = app_runner({"seed.py": SEED, "load.py": LOAD}, ["out"])
    assert app.run_node("seed").status == "succeeded"
    records: list[Any] = [{"n": i, "name": f"user{i}", "extra": i} for i in range(LIST_ROWS)]
    records[2 * PART_ROWS + 3] = {"n": 0, "tags": {1}}  # (a set: no column holds it)
    with app.sdk("load"):
        out = Table("out", "w")
        out.append({"n": -3, "name": "before"})
        out.flush()
        with pytest.raises(NodeError):
            out.append(records)
        # (the refused list's field is no column: text for it is a new text column)
        out.append({"n": -4, "name": "after", "extra": "text"})
    assert [(r["n"], r["extra"]) for r in app.rows("out")] == [
        (-1, None), (-3, None), (-4, "text")]
    assert app.engine.store.table("out").kinds()["extra"] == "text"


def test_a_list_is_checked_against_the_columns_before_it_not_as_its_parts_widen_them(
        app_runner: Any) -> None:
    """Floats for an integer column widen it, but a NaN among them is refused (the whole
    list, at ``append``, naming its line): a later part is not let through because the first
    part made the column float."""
    app = app_runner({"seed.py": SEED, "load.py": LOAD}, ["out"])
    assert app.run_node("seed").status == "succeeded"  # (n: a column of integers)
    records = [{"n": i + 0.5, "name": f"user{i}"} for i in range(LIST_ROWS)]
    records[PART_ROWS + 5]["n"] = float("nan")
    with app.sdk("load"):
        out = Table("out", "w")
        with pytest.raises(NodeError) as refused:
            out.append(records)
        assert "got NaN" in str(refused.value)
        assert "test_early_writes.py, line" in str(refused.value)
        assert _staged_rows(app) == 0
        out.append({"n": 7, "name": "after"})
    assert _rows(app) == [-1, 7]
    assert app.engine.store.table("out").kinds()["n"] == "int"


def test_a_list_in_parts_adds_variant_columns_in_the_order_the_whole_list_does(
        app_runner: Any) -> None:
    app = app_runner({"load.py": LOAD}, ["out"])
    records = [{"a": str(i), "b": str(i)} for i in range(LIST_ROWS)]
    records[5]["b"] = "y"  # (a value b's column cannot hold, in the first part)
    records[PART_ROWS + 5]["a"] = "x"  # (and a's, in the second)
    with app.sdk("load"):
        out = Table("out", "w")
        out.init(schema={"a": "int", "b": "int"}, contract="variant")
        out.append(records)
    # As the whole list at once (and before a list went in parts): a's, then b's.
    assert list(app.engine.store.table("out").kinds()) == ["a", "b", "a__text", "b__text"]
