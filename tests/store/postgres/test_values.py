"""Property test: Python values through a PostgreSQL table and back, unchanged."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patterns.store.postgres import PostgresStore
from tests.store.postgres.conftest import append, commit, rows

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                max_size=40)
_records = st.lists(st.fixed_dictionaries({
    "s": st.one_of(st.none(), _text, st.sampled_from(["\\.", "\\", '"', ",", "\n", "\r\n",
                                                       "NULL", "null", "", " "])),
    "i": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    "f": st.one_of(st.none(), st.floats(allow_nan=False)),
    "t": st.one_of(st.none(), st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 1, 1))),
    "j": st.one_of(st.none(), st.dictionaries(_text, st.integers(-1000, 1000), max_size=3)),
}), min_size=1, max_size=20)
_tables = itertools.count()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=_records)
def test_values_come_back_as_they_went_in(pg_store: PostgresStore,
                                          records: list[dict[str, object]]) -> None:
    import json

    table = f"t{next(_tables)}"
    schema = pa.schema([("s", pa.string()), ("i", pa.int64()), ("f", pa.float64()),
                        ("t", pa.timestamp("us")),
                        ("j", pa.map_(pa.string(), pa.int64()))])
    data = pa.Table.from_pylist(
        [{**r, "j": list(r["j"].items()) if r["j"] is not None else None}  # type: ignore[attr-defined]
         for r in records], schema=schema)
    commit(pg_store, table, append(data))
    got = rows(pg_store, table)
    assert len(got) == len(records)
    for back, sent in zip(got, records, strict=True):
        assert back["s"] == sent["s"]
        assert back["i"] == sent["i"]
        assert back["t"] == sent["t"]
        f = sent["f"]
        assert back["f"] == f or (isinstance(f, float) and math.isinf(f) and back["f"] == f)
        assert (json.loads(back["j"]) if back["j"] is not None else None) == sent["j"]
