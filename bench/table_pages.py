"""Benchmark 10 (issue 12): a page of rows from a big table, as the Studio asks for it.

The table ``src`` is filled first (10,000,000 rows; 200,000 with --small; untimed). Each
figure is the p95 over 20 asks of one 50-row page **deep in the table** (after the middle
row), through the code the endpoint ``GET /apps/{app}/tables/{t}/page`` runs
(:func:`patterns.server.table_pages.read_page`; the HTTP layer adds a millisecond or two):
keyset paging ordered by the id, and sorted on ``score``, a column with no index and many
ties. The cursor is the middle row's sort value and id alone, with no place in the store's
kept order (as the second page of a sort, or any cursor of the keyset SQL, is): the store
finds the place by bisecting the order (:mod:`patterns.store.page_orders`). The note gives
the p95 of the page after it, whose cursor has the place (as from the third page on), and
of the same deep page by the keyset SQL alone (:func:`patterns.store.pages.page_sql`, what
a small table's pages run). Baseline, in the same run on the same store: the same page by
``OFFSET`` (what ``/rows?offset=`` does), which scans every row before it. Target: a page in
at most 200 ms (p95) on the 10,000,000-row table; no ratio target.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import FILL_NODE, Figure, bench_engine, fill, percentile, timed

REPS = 20
LIMIT = 50


def run(small: bool) -> list[Figure]:
    from patterns.server.table_pages import PageQuery, decode_cursor, encode_cursor, read_page
    from patterns.store.interface import PageRequest
    from patterns.store.pages import page_sql
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
            first_page = timed(lambda top=top: page(top))  # (the keyset SQL's)
            # A cursor after the middle row: its sort value and id, no place in the order.
            values = [row[sort], row["__k"]] if sort else [row["__k"]]
            ask = PageQuery(sort=sort, descending=sort is not None,
                            after=encode_cursor(values), limit=LIMIT)
            started = time.perf_counter()
            first, following = page(ask)  # (the first deep page: the store sorts once)
            sorting = time.perf_counter() - started
            assert len(first) == LIMIT and following is not None
            assert any(isinstance(v, dict) for v in decode_cursor(following))
            keyset = [timed(lambda ask=ask: page(ask)) for _ in range(REPS)]
            placed = PageQuery(sort=sort, descending=sort is not None, after=following,
                               limit=LIMIT)
            with_place = [timed(lambda ask=placed: page(ask)) for _ in range(REPS)]
            offset_sql = (scan_sql(meta, limit=LIMIT, offset=middle + 1) if sort is None else
                          f"SELECT {select_list(meta)} FROM {qualified(meta.physical)} "
                          f"ORDER BY {order} LIMIT {LIMIT} OFFSET {middle + 1}")
            expected = store.arrow(offset_sql).to_pylist()
            assert [r["id"] for r in first] == [r["id"] for r in expected], (first[:2], expected[:2])
            by_offset = [timed(lambda sql=offset_sql: store.arrow(sql)) for _ in range(REPS)]
            sql, params = page_sql(meta, PageRequest(sort=sort, descending=sort is not None,
                                                     after=values, limit=LIMIT), "__k")

            def by_keyset_sql(sql: str = sql, params: list[Any] = params) -> Any:
                with store.read() as view:
                    return view.query(sql, params).read_all()

            by_sql_ids = by_keyset_sql().column("id").to_pylist()[:LIMIT]
            assert by_sql_ids == [r["id"] for r in first]
            by_sql = [timed(by_keyset_sql) for _ in range(5)]
            note = ("target: <= 200 ms on 10,000,000 rows; baseline: the same page by OFFSET; "
                    f"the page after it, its cursor holding its place in the kept order: "
                    f"p95 {percentile(with_place, 95) * 1000:,.0f} ms; the same deep page "
                    f"by keyset SQL alone: p95 {percentile(by_sql, 95) * 1000:,.0f} ms; the "
                    f"first page (keyset SQL) {first_page * 1000:,.0f} ms; the first deep "
                    f"page, which sorted the row ids (once per table state and order), "
                    f"{sorting * 1000:,.0f} ms")
            figures.append(Figure(
                bench="table_pages", figure=f"a deep page, {label}: p95",
                value=percentile(keyset, 95) * 1000, baseline=percentile(by_offset, 95) * 1000,
                unit="ms", target="", size=n, note=note))
    return figures
