"""Types are a contract: a value that does not fit never retypes a column or its rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patterns.errors import NodeError
from patterns.sdk._convert import records_to_arrow
from patterns.store.duckdb import DuckDBStore
from patterns.store.model import Checkpoint, StoreRules, TableOp, TableOptions


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    s = DuckDBStore(tmp_path / "store.duckdb")
    yield s
    s.close()


def append(store: DuckDBStore, records: list[dict[str, Any]], *, table: str = "t",
           options: TableOptions | None = None, rules: StoreRules | None = None,
           max_columns: int | None = None, webhook: bool = False) -> None:
    ops = [TableOp("init", options=options)] if options is not None else []
    ops.append(TableOp("append", records_to_arrow(records, table)))
    store.commit(Checkpoint(run_id="r", node_id="n", ops={table: ops},
                            rules={table: rules} if rules else {}, max_columns=max_columns,
                            infer_timestamps=webhook))


def kinds(store: DuckDBStore, table: str = "t") -> dict[str, str]:
    meta = store.table(table)
    assert meta is not None
    return meta.kinds()


def rows(store: DuckDBStore, table: str = "t") -> list[dict[str, Any]]:
    data = store.arrow(f'SELECT * EXCLUDE (patterns_id) FROM main."{table}" '
                       f'ORDER BY patterns_id')
    return data.to_pylist()


def refused(store: DuckDBStore, records: list[dict[str, Any]], *fragments: str,
            **kwargs: Any) -> NodeError:
    before = (kinds(store), rows(store))
    with pytest.raises(NodeError) as info:
        append(store, records, **kwargs)
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {info.value}"
    assert (kinds(store), rows(store)) == before
    return info.value


def test_text_for_an_int_column_is_refused_naming_field_value_and_record(
        store: DuckDBStore) -> None:
    append(store, [{"amount": 1}, {"amount": 2}])
    error = refused(store, [{"amount": 3}, {"amount": "lots"}],
                    "table 't'", "record 1", "field 'amount'", "'lots'", "int")
    assert error.record == 1
    assert kinds(store) == {"amount": "int"}


def test_lossless_widenings_are_taken(store: DuckDBStore) -> None:
    append(store, [{"n": 1, "day": dt.date(2024, 1, 2)}])
    append(store, [{"n": 2.5, "day": dt.datetime(2024, 1, 3, 10, 30)}])
    assert kinds(store) == {"n": "float", "day": "timestamp"}
    assert rows(store) == [{"n": 1.0, "day": dt.datetime(2024, 1, 2)},
                           {"n": 2.5, "day": dt.datetime(2024, 1, 3, 10, 30)}]
    append(store, [{"n": 7}])  # an int fits a float column
    assert kinds(store)["n"] == "float"


@pytest.mark.parametrize(("first", "then"), [
    (True, 1), (1, True), (1.5, False), (1, dt.date(2024, 1, 1)), (dt.date(2024, 1, 1), 3),
    (1, {"a": 1}), (b"x", "x"), (dt.time(10, 0), 5), (1, "12 apples"),
])
def test_values_of_another_type_are_refused(store: DuckDBStore, first: Any, then: Any) -> None:
    append(store, [{"v": first}])
    refused(store, [{"v": then}], "field 'v'", "does not fit")


def test_text_columns_take_any_scalar_as_its_text(store: DuckDBStore) -> None:
    append(store, [{"code": "A1"}])
    append(store, [{"code": 5}, {"code": 2.5}, {"code": True}])
    assert kinds(store) == {"code": "text"}
    assert [r["code"] for r in rows(store)] == ["A1", "5", "2.5", "true"]


def test_text_that_spells_a_value_is_parsed(store: DuckDBStore) -> None:
    append(store, [{"n": 1, "x": 1.5, "ok": True, "day": dt.date(2024, 1, 1),
                    "at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                    "naive": dt.datetime(2024, 1, 1)}])
    append(store, [{"n": " 42 ", "x": "1e3", "ok": "false", "day": "2024-02-29",
                    "at": "2024-03-01T10:00:00+02:00", "naive": "2024-03-01T10:00:00Z"},
                   {"n": None, "x": "-0.5", "ok": "true", "day": None,
                    "at": "2024-03-01 10:00:00", "naive": "2024-03-01"}])
    assert kinds(store) == {"n": "int", "x": "float", "ok": "bool", "day": "date",
                            "at": "timestamptz", "naive": "timestamp"}
    got = rows(store)[1:]
    assert [r["n"] for r in got] == [42, None]
    assert [r["x"] for r in got] == [1000.0, -0.5]
    assert [r["ok"] for r in got] == [False, True]
    assert got[0]["day"] == dt.date(2024, 2, 29)
    assert [r["at"] for r in got] == [dt.datetime(2024, 3, 1, 8, tzinfo=dt.UTC),
                                      dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC)]
    assert [r["naive"] for r in got] == [dt.datetime(2024, 3, 1, 10), dt.datetime(2024, 3, 1)]


def test_text_that_parses_only_as_a_wider_type_widens(store: DuckDBStore) -> None:
    append(store, [{"n": 1, "day": dt.date(2024, 1, 1)}])
    append(store, [{"n": "2.5", "day": "2024-01-02T12:00:00"}])
    assert kinds(store) == {"n": "float", "day": "timestamp"}
    refused(store, [{"day": "2024-02-30"}], "'2024-02-30'", "record 0")


def test_a_column_of_nulls_takes_the_first_real_type(store: DuckDBStore) -> None:
    append(store, [{"n": None, "k": 1}])
    assert kinds(store)["n"] == "null"
    append(store, [{"n": 5, "k": 2}])
    assert kinds(store)["n"] == "int"
    refused(store, [{"n": "five"}], "'five'")


def test_mixed_dates_and_datetimes_in_one_append_keep_the_time_of_day(
        store: DuckDBStore) -> None:
    append(store, [{"at": dt.date(2024, 1, 1)}, {"at": dt.datetime(2024, 1, 1, 15, 45)}])
    assert kinds(store) == {"at": "timestamp"}
    assert [r["at"] for r in rows(store)] == [dt.datetime(2024, 1, 1),
                                              dt.datetime(2024, 1, 1, 15, 45)]


@pytest.mark.parametrize("contract", ["variant", "discard_value", "discard_row"])
def test_a_contract_keeps_what_does_not_fit_aside(store: DuckDBStore, contract: str) -> None:
    append(store, [{"id": 1, "amount": 10}], options=TableOptions(contract=contract))
    append(store, [{"id": 2, "amount": "lots"}, {"id": 3, "amount": 30}])
    got = rows(store)
    assert kinds(store)["amount"] == "int"
    if contract == "variant":
        assert kinds(store)["amount__text"] == "text"
        assert [(r["id"], r["amount"], r["amount__text"]) for r in got] == [
            (1, 10, None), (2, None, "lots"), (3, 30, None)]
    elif contract == "discard_value":
        assert [(r["id"], r["amount"]) for r in got] == [(1, 10), (2, None), (3, 30)]
    else:
        assert [(r["id"], r["amount"]) for r in got] == [(1, 10), (3, 30)]


def test_graph_yml_contract_and_schema_apply_and_init_wins(store: DuckDBStore) -> None:
    rules = StoreRules(contract="discard_value", schema={"amount": "Integer"})
    append(store, [{"amount": 1.5, "note": "x"}], rules=rules)  # declared: no widening
    assert kinds(store) == {"amount": "int", "note": "text"}
    assert rows(store) == [{"amount": None, "note": "x"}]
    refused(store, [{"amount": 2.5}], "field 'amount'", "2.5",
            options=TableOptions(schema={"amount": "Integer"}, contract="refuse"), rules=rules)


def test_declared_schemas_are_enforced(store: DuckDBStore) -> None:
    options = TableOptions(schema={"id": "Integer"}, schema_hints={"when": "Date"})
    append(store, [{"id": 1, "when": "2024-05-01"}], options=options)
    assert kinds(store) == {"id": "int", "when": "date"}
    refused(store, [{"id": 2.5}], "field 'id'", "2.5")  # declared int: does not widen
    refused(store, [{"when": "soon"}], "field 'when'", "'soon'")


def test_the_column_cap_refuses_a_record_with_too_many_fields(store: DuckDBStore) -> None:
    append(store, [{"a": 1, "b": 2}], max_columns=3)
    refused(store, [{"a": 1, "c": 3, "d": 4}], "4 columns", "3 a table may have",
            "settings.max_columns", max_columns=3)
    append(store, [{"a": 5, "b": 6}], max_columns=1)  # no new column: a table past it works
    assert len(rows(store)) == 2
    with pytest.raises(NodeError, match="1000 a table may have"):  # the default
        append(store, [{f"f{i}": i for i in range(1_001)}], table="wide")
    assert store.table("wide") is None or store.count(store.table("wide")) == 0  # type: ignore[arg-type]


@pytest.mark.parametrize(("record", "fragment"), [
    ({"": 1}, "non-empty"), ({"a\x00b": 1}, "NUL"), ({"Amount": 1}, "upper/lower case"),
])
def test_field_names_that_cannot_be_columns_are_refused(store: DuckDBStore, record: Any,
                                                        fragment: str) -> None:
    append(store, [{"amount": 1}])
    data = pa.table({name: [value] for name, value in record.items()})
    before = rows(store)
    with pytest.raises(NodeError, match=fragment):
        store.commit(Checkpoint(run_id="r", node_id="n", ops={"t": [TableOp("append", data)]}))
    assert rows(store) == before


def test_a_table_first_written_by_a_webhook_infers_timestamps(store: DuckDBStore) -> None:
    append(store, [{"at": "2024-01-01T10:00:00Z", "day": "2024-01-01", "mixed": "2024-01-01",
                    "word": "2024-01-01 and more", "naive": "2024-01-01T10:00:00"},
                   {"at": "2024-01-02T10:00:00+01:00", "day": None,
                    "mixed": "2024-01-02T11:00:00", "word": "x", "naive": None}],
           webhook=True)
    assert kinds(store) == {"at": "timestamptz", "day": "date", "mixed": "timestamp",
                            "word": "text", "naive": "timestamp"}
    assert rows(store)[1]["at"] == dt.datetime(2024, 1, 2, 9, tzinfo=dt.UTC)
    # A column that is already text keeps taking text as it is.
    append(store, [{"word": "2024-01-01T10:00:00Z"}], webhook=True)
    assert rows(store)[2]["word"] == "2024-01-01T10:00:00Z"


# ------------------------------------------------------------------ property
TYPED = {
    "int": st.integers(-(2**62), 2**62),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "bool": st.booleans(),
    "date": st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 1, 1)),
    "naive": st.datetimes(min_value=dt.datetime(1900, 1, 1),
                          max_value=dt.datetime(2200, 1, 1)),
}
#: Values that fit none of the columns above (for a float column: not int or float either).
BAD = st.one_of(
    st.text(min_size=1, max_size=12).filter(lambda s: not _parses(s)),
    st.dictionaries(st.text(min_size=1, max_size=4), st.integers(), min_size=1, max_size=2),
    st.lists(st.integers(), min_size=1, max_size=3),
    st.binary(min_size=1, max_size=4),
)


def _parses(text: str) -> bool:
    """Text that some column type above could parse (and so may fit)."""
    import pyarrow.compute as pc

    for t in (pa.int64(), pa.float64(), pa.bool_(), pa.date32(), pa.timestamp("us")):
        try:
            pc.cast(pc.utf8_trim_whitespace(pa.array([text])), t)
            return True
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    try:
        dt.datetime.fromisoformat(text.strip())
        return True
    except ValueError:
        return False


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_a_bad_value_never_changes_an_existing_column_or_its_rows(tmp_path: Path,
                                                                  data: Any) -> None:
    column = data.draw(st.sampled_from(sorted(TYPED)))
    good = data.draw(st.lists(TYPED[column], min_size=1, max_size=5))
    bad = data.draw(BAD)
    position = data.draw(st.integers(0, 3))
    batch: list[Any] = [data.draw(TYPED[column]) for _ in range(3)]
    batch.insert(position, bad)
    path = tmp_path / f"p{data.draw(st.integers(0, 10**9))}.duckdb"
    s = DuckDBStore(path)
    try:
        append(s, [{"v": v, "k": i} for i, v in enumerate(good)])
        before = (kinds(s), rows(s))
        with pytest.raises(NodeError) as info:
            append(s, [{"v": v, "k": 100 + i} for i, v in enumerate(batch)])
        assert info.value.record == position
        assert "field 'v'" in str(info.value)
        assert (kinds(s), rows(s)) == before
    finally:
        s.close()
        path.unlink(missing_ok=True)
