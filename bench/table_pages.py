"""Benchmark 10 (issue 12): a page of rows from a big table, as the Studio asks for it.

The table ``src`` is filled first (10,000,000 rows; 200,000 with --small; untimed). Each
figure is the p95 over 20 asks of one 50-row page **deep in the table** (after the middle
row), through the code the endpoint ``GET /apps/{app}/tables/{t}/page`` runs
(:func:`patterns.server.table_pages.read_page`; the HTTP layer adds a millisecond or two):
keyset paging ordered by the id, and sorted on ``score``, a column with no index and many
ties. Baseline, in the same run on the same store: the same page by ``OFFSET`` (what
``/rows?offset=`` does), which scans every row before it. Target: a page in at most 200 ms
(p95) on the 10,000,000-row table; no ratio target.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import FILL_NODE, Figure, bench_engine, fill, percentile, timed

REPS = 20
LIMIT = 50


def run(small: bool) -> list[Figure]:
    from patterns.server.table_pages import PageQuery, decode_cursor, encode_cursor, read_page
    from patterns.store.reads import scan_sql, select_list
    from patterns.store.tables import q, qualified

    n = 200_000 if small else 10_000_000
    graph = "title: Pages\nfunctions:\n  - node_file: fill.py\nstores:\n  - table: src\n"
    figures = []
    with bench_engine({"fill.py": FILL_NODE}, graph) as engine:
        fill(engine, 0, n)
        store = engine.store
        meta = store.table("src")
        assert meta is not None and store.count(meta) == n
        ident = q(meta.physical_id)
        middle = n // 2

        def page(ask: PageQuery) -> Any:  # (a read view per page, as the server opens)
            with store.read() as view:
                return read_page(view, meta, ask)

        for label, sort in (("ordered by id", None), ("sorted on an unindexed column", "score")):
            order = f"{q(sort)} DESC NULLS LAST, {ident}" if sort else ident
            row = store.arrow(f"SELECT {select_list(meta)}, {ident} AS __k FROM "
                              f"{qualified(meta.physical)} ORDER BY {order} LIMIT 1 "
                              f"OFFSET {middle}").to_pylist()[0]
            top = PageQuery(sort=sort, descending=sort is not None, limit=LIMIT)
            started = time.perf_counter()
            _, following = page(top)  # (the first page of this sort: the store sorts once)
            first_ask = time.perf_counter() - started
            # The cursor the Studio holds after paging to the middle row: the row's sort
            # value and id, and its place in the store's kept order (from the first page's).
            hint = [v for v in decode_cursor(following or "") if isinstance(v, dict)]
            values = [row[sort], row["__k"]] if sort else [row["__k"]]
            cursor = encode_cursor(values + [{**h, "at": middle + 1} for h in hint])
            ask = PageQuery(sort=sort, descending=sort is not None, after=cursor, limit=LIMIT)
            first, _ = page(ask)
            assert len(first) == LIMIT
            keyset = [timed(lambda ask=ask: page(ask)) for _ in range(REPS)]
            offset_sql = (scan_sql(meta, limit=LIMIT, offset=middle + 1) if sort is None else
                          f"SELECT {select_list(meta)} FROM {qualified(meta.physical)} "
                          f"ORDER BY {order} LIMIT {LIMIT} OFFSET {middle + 1}")
            expected = store.arrow(offset_sql).to_pylist()
            assert [r["id"] for r in first] == [r["id"] for r in expected], (first[:2], expected[:2])
            by_offset = [timed(lambda sql=offset_sql: store.arrow(sql)) for _ in range(REPS)]
            plain = PageQuery(sort=sort, descending=sort is not None,
                              after=encode_cursor(values), limit=LIMIT)
            by_sql = [timed(lambda ask=plain: page(ask)) for _ in range(5)]
            note = ("target: <= 200 ms on 10,000,000 rows; baseline: the same page by OFFSET; "
                    f"the first page of this order took {first_ask * 1000:,.0f} ms (the store "
                    f"sorts the row ids once per table state and order); the same deep page "
                    f"by keyset SQL alone: p95 {percentile(by_sql, 95) * 1000:,.0f} ms")
            figures.append(Figure(
                bench="table_pages", figure=f"a deep page, {label}: p95",
                value=percentile(keyset, 95) * 1000, baseline=percentile(by_offset, 95) * 1000,
                unit="ms", target="", size=n, note=note))
    return figures
