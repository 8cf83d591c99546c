"""Pages of a big table from the store's kept order (patterns.store.page_orders): the same
rows, in the same order, as the keyset SQL gives, and still right after the table changes.

The threshold is lowered so a few thousand rows count as big (the order is the same code at
any size; benchmark 10 times it on 10,000,000 rows)."""

from __future__ import annotations

from typing import Any

import pytest

from patterns.server.table_pages import PageQuery, decode_cursor, encode_cursor, read_page
from patterns.store import page_builds, page_orders

ROWS = 3_000


def walk(runner: Any, ask: PageQuery) -> tuple[list[dict[str, Any]], list[str]]:
    """Every page from the first, and the cursors the pages gave."""
    rows: list[dict[str, Any]] = []
    cursors: list[str] = []
    after = None
    while True:
        with runner.engine.store.read() as view:
            page, after = read_page(view, view.tables.get("big"), PageQuery(
                sort=ask.sort, descending=ask.descending, after=after, limit=ask.limit))
        rows.extend(page)
        if after is None:
            return rows, cursors
        cursors.append(after)


@pytest.fixture
def runner(app_runner: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(page_orders, "MIN_ROWS", 1_000)
    made = app_runner({"fill.py": f"""
        from patterns import Table
        import datetime as dt
        Table("big", "w").append([{{
            "n": i, "score": None if i % 11 == 0 else i % 7,
            "f": None if i % 13 == 0 else (i % 9) / 4 - 1.0, "b": None if i % 5 == 0 else i % 3 == 0,
            "day": dt.date(2024, 1, 1) + dt.timedelta(days=i % 17), "word": "w" + str(i % 19)}}
            for i in range({ROWS})])
    """, "more.py": """
        from patterns import Table
        Table("big", "w").append([{"n": -1, "score": 3}])
    """, "edit.py": """
        from patterns import Table
        Table("big", "w").execute_sql("UPDATE big SET score = 6 WHERE n = 10")
    """}, ["big"])
    assert made.run_node("fill.py").status == "succeeded"
    return made


@pytest.mark.parametrize("descending", [False, True])
def test_kept_order_pages_are_the_keyset_sqls(runner: Any, monkeypatch: pytest.MonkeyPatch,
                                              descending: bool) -> None:
    ask = PageQuery(sort="score", descending=descending, limit=97)
    page_builds.forget()
    before, _ = walk(runner, ask)  # (while the order is made in the background, or after)
    assert page_builds.wait_for_builds(60)
    kept, cursors = walk(runner, ask)
    # the order is kept now: every page is a slice of it, and its cursor holds its place
    assert all(any(isinstance(v, dict) for v in decode_cursor(c)) for c in cursors)
    monkeypatch.setattr(page_orders, "MIN_ROWS", 10**9)  # the SQL alone, as for a small table
    by_sql, plain = walk(runner, ask)
    assert not any(isinstance(v, dict) for c in plain for v in decode_cursor(c))
    assert [r["n"] for r in kept] == [r["n"] for r in by_sql] == [r["n"] for r in before]
    assert len({r["n"] for r in kept}) == ROWS
    scores = [r["score"] for r in kept if r["score"] is not None]
    assert scores == sorted(scores, reverse=descending)
    assert all(r["score"] is None for r in kept[len(scores):])  # no value: last either way


def test_a_cursor_from_before_a_change_still_gives_the_right_rows(runner: Any) -> None:
    ask = PageQuery(sort="score", limit=50)
    with runner.engine.store.read() as view:
        _, after = read_page(view, view.tables.get("big"), ask)
    assert after is not None
    assert runner.run_node("more.py").status == "succeeded"  # the kept order is stale now
    with runner.engine.store.read() as view:
        meta = view.tables.get("big")
        page, _ = read_page(view, meta, PageQuery(sort="score", after=after, limit=50))
        expected = view.query(
            "SELECT n FROM big ORDER BY score NULLS LAST, patterns_id LIMIT 50 OFFSET 50"
        ).read_all().column("n").to_pylist()
    assert [r["n"] for r in page] == expected


def sql_rows(runner: Any, sql: str) -> list[dict[str, Any]]:
    with runner.engine.store.read() as view:
        return list(view.query(sql).read_all().to_pylist())


@pytest.mark.parametrize(("sort", "descending"), [(None, False), ("score", False),
                                                  ("score", True)])
def test_a_deep_page_after_a_cursor_without_its_place_is_the_full_sorts(
        runner: Any, sort: str | None, descending: bool) -> None:
    # A cursor with no place in the kept order (the second page of a sort, or any cursor
    # the keyset SQL gave) is placed by bisecting the order: the page must be the rows a
    # full ORDER BY ... OFFSET gives, ties (broken by id) and rows with no score included.
    order = (f"score {'DESC' if descending else 'ASC'} NULLS LAST, patterns_id" if sort
             else "patterns_id")
    # Each page twice: before the order is made (two small top-Ns, or the SQL), then from it.
    for made in (False, True):
        page_builds.forget()
        if made:
            with runner.engine.store.read() as view:  # (the first page asks for the order)
                read_page(view, view.tables.get("big"), PageQuery(sort=sort,
                                                                  descending=descending))
            assert page_builds.wait_for_builds(60)
        for at in (0, 1_234, 2_999 - 50, 2_750):  # (2_750: among the rows with no score)
            (row,) = sql_rows(runner, f"SELECT n, score, patterns_id FROM big ORDER BY "
                                      f"{order} LIMIT 1 OFFSET {at}")
            values = [row["score"], row["patterns_id"]] if sort else [row["patterns_id"]]
            with runner.engine.store.read() as view:
                page, after = read_page(view, view.tables.get("big"), PageQuery(
                    sort=sort, descending=descending, after=encode_cursor(values), limit=60))
            expected = sql_rows(runner, f"SELECT n FROM big ORDER BY {order} LIMIT 60 "
                                        f"OFFSET {at + 1}")
            assert [r["n"] for r in page] == [r["n"] for r in expected], (made, at)
            if after is not None and (made or sort is None):  # (from the order: placed)
                assert any(isinstance(v, dict) for v in decode_cursor(after))
            elif after is None:
                assert at + 1 + len(page) == ROWS


def test_a_cursor_whose_row_is_not_in_the_table_pages_as_the_keyset_sql_does(
        runner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # between two scores, and an id before every id: the rows past it in the sort order
    cursor = encode_cursor([3.5, "0"])
    pages = []
    for least in (1_000, 10**9):  # the kept order, then the keyset SQL alone
        monkeypatch.setattr(page_orders, "MIN_ROWS", least)
        with runner.engine.store.read() as view:
            pages.append(read_page(view, view.tables.get("big"), PageQuery(
                sort="score", descending=True, after=cursor, limit=80))[0])
    kept, by_sql = pages
    assert [r["n"] for r in kept] == [r["n"] for r in by_sql]
    assert [r["score"] for r in kept] == [3] * 80


def test_a_cursor_with_a_place_out_of_the_order_is_placed_by_its_values(runner: Any) -> None:
    ask = PageQuery(sort="score", limit=70)
    _, cursors = walk(runner, ask)
    values = decode_cursor(cursors[3])
    hint = next(v for v in values if isinstance(v, dict))
    pages = []
    for at in (hint["at"], -5, ROWS + 10):  # (a place edited by hand is not trusted)
        changed = [v if not isinstance(v, dict) else {**v, "at": at} for v in values]
        with runner.engine.store.read() as view:
            pages.append(read_page(view, view.tables.get("big"), PageQuery(
                sort="score", after=encode_cursor(changed), limit=70))[0])
    assert [r["n"] for r in pages[1]] == [r["n"] for r in pages[0]]
    assert [r["n"] for r in pages[2]] == [r["n"] for r in pages[0]]
    assert len(pages[0]) == 70


@pytest.mark.parametrize(("where", "op", "value"), [(None, "eq", None), ("score", "gte", "2"),
                                                     ("score", "null", None)])
def test_pages_read_by_rowid_are_the_plain_keyset_sqls(runner: Any, where: str | None,
                                                       op: str, value: str | None) -> None:
    # (the DuckDB store's keyset SQL picks the page's rowids first, then reads their rows)
    from patterns.store.interface import PageRequest
    from patterns.store.pages import page_sql

    with runner.engine.store.read() as view:
        meta = view.tables.get("big")
        for after in (None, [3, "0"], [None, "0"]):
            ask = PageRequest(sort="score", descending=True, where=where, op=op, value=value,
                              after=after, limit=90)
            plain, by_rowid = (view.query(*page_sql(meta, ask, "k", by_rowid=b)).read_all()
                               for b in (False, True))
            assert by_rowid.column("n").to_pylist() == plain.column("n").to_pylist()
            assert plain.num_rows in (0, 91)


def test_rows_are_known_in_id_order_until_an_update_gives_rows_new_ids_in_place(
        runner: Any) -> None:
    def in_order() -> bool:
        with runner.engine.store.read() as view:
            return page_orders.in_id_order(view.cursor, view.tables.get("big"),
                                           str(runner.engine.store.file))

    assert in_order()  # (appends keep rowid order id order)
    assert runner.run_node("more.py").status == "succeeded"
    assert in_order()
    assert runner.run_node("edit.py").status == "succeeded"
    assert not in_order()  # (row 10 has the newest id, before 2,990 older rows)
    page_builds.forget()
    for sort in (None, "score"):  # (pages of it sort by id: still the full order's rows)
        rows, _ = walk(runner, PageQuery(sort=sort, limit=400))
        order = f"{sort} NULLS LAST, patterns_id" if sort else "patterns_id"
        assert [r["n"] for r in rows] == [r["n"] for r in sql_rows(
            runner, f"SELECT n FROM big ORDER BY {order}")]


@pytest.mark.parametrize("sort", ["f", "b", "day", "word", "patterns_id"])
@pytest.mark.parametrize("descending", [False, True])
def test_orders_made_in_the_background_are_the_sqls_for_every_kind_of_column(
        runner: Any, sort: str, descending: bool) -> None:
    # (numbers, booleans and dates are sorted by numpy, text by DuckDB, the id is the rowids)
    page_builds.forget()
    ask = PageQuery(sort=sort, descending=descending, limit=500)
    before, _ = walk(runner, ask)
    assert page_builds.wait_for_builds(60)
    kept, cursors = walk(runner, ask)
    assert all(any(isinstance(v, dict) for v in decode_cursor(c)) for c in cursors)
    order = f"{sort} {'DESC' if descending else 'ASC'} NULLS LAST, patterns_id"
    expected = [r["n"] for r in sql_rows(runner, f"SELECT n FROM big ORDER BY {order}")]
    assert [r["n"] for r in before] == expected
    assert [r["n"] for r in kept] == expected
