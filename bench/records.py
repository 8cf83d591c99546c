"""The records every benchmark moves: deterministic dicts of 8 fields, one a nested dict.

Record ``i`` is the same wherever it is made: :func:`records` yields the dicts (what node
code and the baselines append), :func:`arrow_table` builds the very same rows column-wise
with Arrow compute, to fill big tables quickly where filling them is not what is timed.

This file is also copied into each benchmark's throwaway app, next to the node files, so
the nodes import it as ``benchrecords``: it must import nothing of ``bench`` or ``patterns``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

COUNTRIES = ["NL", "DE", "FR", "US", "JP"]
CITIES = ["Amsterdam", "Berlin", "Paris", "Boston", "Osaka", "Utrecht", "Lyon"]


def records(start: int, n: int) -> Iterator[dict[str, Any]]:
    """Records ``start`` .. ``start + n - 1``."""
    countries, cities = COUNTRIES, CITIES
    for i in range(start, start + n):
        yield {
            "id": i,
            "name": f"user{i}",
            "email": f"user{i}@example.com",
            "score": (i % 1000) / 10,
            "active": i % 3 == 0,
            "country": countries[i % 5],
            "visits": i * 7 % 1000,
            "address": {"city": cities[i % 7], "zip": str(10000 + i % 90000)},
        }


def record_list(start: int, n: int) -> list[dict[str, Any]]:
    return list(records(start, n))


def arrow_table(start: int, n: int) -> Any:
    """The same rows as ``pyarrow.Table.from_pylist(record_list(start, n))``, made
    column-wise (a few hundred ms per million rows instead of seconds)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    i = np.arange(start, start + n, dtype=np.int64)
    text = pc.cast(pa.array(i), pa.string())
    address = pa.StructArray.from_arrays(
        [pa.array(CITIES).take(pa.array(i % 7)),
         pc.cast(pa.array(10000 + i % 90000), pa.string())],
        names=["city", "zip"])
    return pa.table({
        "id": pa.array(i),
        "name": pc.binary_join_element_wise("user", text, ""),
        "email": pc.binary_join_element_wise("user", text, "@example.com", ""),
        "score": pa.array((i % 1000) / 10),
        "active": pa.array(i % 3 == 0),
        "country": pa.array(COUNTRIES).take(pa.array(i % 5)),
        "visits": pa.array(i * 7 % 1000),
        "address": address,
    })

