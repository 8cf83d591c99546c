"""JSON columns come back as Python values, parsed a whole column at a time."""

from __future__ import annotations

import json
import math

import pyarrow as pa
import pytest

from patterns.sdk.table import arrow_records


def test_every_kind_of_json_value_and_null_comes_back() -> None:
    values = [{"a": [1, 2.5, None], "b": "x, ]\n\"y\""}, None, [], "text", 7, True, {},
              {"ü": "∑", "nested": {"deep": [[{}]]}}, "null"]
    texts = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
    texts[-1] = "null"  # a stored JSON null reads as None, like SQL NULL
    batch = pa.record_batch({"id": list(range(len(texts))), "doc": pa.array(texts, pa.string())})
    records = arrow_records(batch, ["doc"])
    assert [r["doc"] for r in records] == [*values[:-1], None]
    assert list(records[0]) == ["id", "doc"]  # the fields keep the table's order


def test_nan_and_a_chunked_column_parse_like_json_loads() -> None:
    table = pa.Table.from_batches([pa.record_batch({"doc": ['{"x": NaN}']}),
                                   pa.record_batch({"doc": ['{"x": 1}']})])
    records = arrow_records(table, ["doc"])
    assert math.isnan(records[0]["doc"]["x"]) and records[1]["doc"] == {"x": 1}


@pytest.mark.parametrize("bad", ["1, 2", "", "{"])
def test_a_value_that_is_not_one_json_text_is_refused_as_before(bad: str) -> None:
    # "1, 2" would join into a valid array of the wrong length: it must not be split up.
    batch = pa.record_batch({"doc": ["[1]", bad]})
    with pytest.raises(json.JSONDecodeError):
        arrow_records(batch, ["doc"])
