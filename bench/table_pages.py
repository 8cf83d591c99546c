"""Benchmark 10 (issue 12): pages of rows from a big table, as a user of the Studio asks.

The table ``src`` is filled first (10,000,000 rows; 200,000 with --small; untimed). For each
order — by the id, and sorted on ``score`` descending, a column with no index and many ties —
each of :data:`REPS` rounds starts from a new sort (no kept order: what the first user of a
table state sees) and asks, through the code the endpoint ``GET /apps/{app}/tables/{t}/page``
runs (:func:`patterns.server.table_pages.read_page`; the HTTP layer adds a millisecond or
two), what a user does: the first page, the next pages (each right after the one before),
then a jump deep (a cursor after the middle row: its sort value and id alone, no place in a
kept order). A round waits until no order is being made before the next starts. Figures: the
p95 of each kind of page over the rounds, and of a deep page once the order is kept (the
cursor placed by bisection; the note adds the page after it, whose cursor holds its place).
Baseline, in the same run on the same store: the same deep page by ``OFFSET`` (what
``/rows?offset=`` does), which scans every row before it. Target: every page in at most
200 ms (p95) on the 10,000,000-row table; no ratio target.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import FILL_NODE, Figure, bench_engine, fill, percentile, timed

REPS = 10
NEXT_PAGES = 3
LIMIT = 50


def run(small: bool) -> list[Figure]:
    from patterns.server.table_pages import PageQuery, decode_cursor, encode_cursor, read_page
    from patterns.store import page_builds
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
            descending = sort is not None
            order = f"{q(sort)} DESC NULLS LAST, {ident}" if sort else ident
            row = store.arrow(f"SELECT {select_list(meta)}, {ident} AS __k FROM "
                              f"{qualified(meta.physical)} ORDER BY {order} LIMIT 1 "
                              f"OFFSET {middle}").to_pylist()[0]
            # A cursor after the middle row: its sort value and id, no place in the order.
            values = [row[sort], row["__k"]] if sort else [row["__k"]]
            deep = PageQuery(sort=sort, descending=descending, after=encode_cursor(values),
                             limit=LIMIT)
            firsts: list[float] = []
            nexts: list[float] = []
            jumps: list[float] = []
            for _ in range(REPS):
                assert page_builds.wait_for_builds(600)
                page_builds.forget()  # (a new sort: no order kept)
                started = time.perf_counter()
                _, after = page(PageQuery(sort=sort, descending=descending, limit=LIMIT))
                firsts.append(time.perf_counter() - started)
                for _ in range(NEXT_PAGES):
                    started = time.perf_counter()
                    _, after = page(PageQuery(sort=sort, descending=descending, after=after,
                                              limit=LIMIT))
                    nexts.append(time.perf_counter() - started)
                jumps.append(timed(lambda ask=deep: page(ask)))
            assert page_builds.wait_for_builds(600)
            page(PageQuery(sort=sort, descending=descending, limit=LIMIT))  # (asks the order)
            assert page_builds.wait_for_builds(600)
            first, following = page(deep)
            assert len(first) == LIMIT and following is not None
            assert any(isinstance(v, dict) for v in decode_cursor(following))
            kept = [timed(lambda ask=deep: page(ask)) for _ in range(REPS)]
            placed = PageQuery(sort=sort, descending=descending, after=following, limit=LIMIT)
            with_place = [timed(lambda ask=placed: page(ask)) for _ in range(REPS)]
            offset_sql = (scan_sql(meta, limit=LIMIT, offset=middle + 1) if sort is None else
                          f"SELECT {select_list(meta)} FROM {qualified(meta.physical)} "
                          f"ORDER BY {order} LIMIT {LIMIT} OFFSET {middle + 1}")
            expected = store.arrow(offset_sql).to_pylist()
            assert [r["id"] for r in first] == [r["id"] for r in expected], (first[:2], expected[:2])
            by_offset = percentile([timed(lambda sql=offset_sql: store.arrow(sql))
                                    for _ in range(5)], 95) * 1000
            target = "target: <= 200 ms on 10,000,000 rows; baseline: the same deep page by OFFSET"
            for kind, times, note in (
                    ("the first page of a new sort", firsts, ""),
                    (f"the {NEXT_PAGES} pages after it", nexts, ""),
                    ("then a jump deep", jumps, ""),
                    ("a deep page, the order kept", kept,
                     f"; the page after it, its cursor holding its place: p95 "
                     f"{percentile(with_place, 95) * 1000:,.0f} ms")):
                figures.append(Figure(
                    bench="table_pages", figure=f"{kind}, {label}: p95",
                    value=percentile(times, 95) * 1000, baseline=by_offset, unit="ms",
                    target="", size=n, note=target + note))
    return figures
