"""Pages of a big table through `patterns serve` (a real server on loopback, a real DuckDB
file): 120,000 rows, past the size from which the store serves pages from kept orders and
two small top-Ns (patterns.store.page_orders). Whatever serves a page, it must hold the rows
a full ``ORDER BY sort NULLS LAST, id`` gives there: first pages and deep pages, ascending
and descending, ties, rows with no value, filters, and after the table changes."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from patterns.server.table_pages import encode_cursor
from tests.server.conftest import Server, write_app

ROWS = 120_000
BIG = "/apps/big-pages/tables/big"

GRAPH = """
title: Big pages
slug: big-pages
functions:
  - node_file: fill.py
    id: fill0001
  - node_file: more.py
    id: more0001
    trigger: manual
  - node_file: edit.py
    id: edit0001
    trigger: manual
stores:
  - table: big
"""
FILES = {
    "fill.py": f"""
        from patterns import Table
        Table("big", "w").append([{{"n": i, "score": None if i % 11 == 0 else i % 7,
                                   "word": "w" + str(i % 13)}} for i in range({ROWS})])
    """,
    "more.py": """
        from patterns import Table
        Table("big", "w").append([{"n": -1, "score": 3, "word": "late"}])
    """,
    # (an UPDATE gives the rows new ids where they are: the rows are out of id order)
    "edit.py": """
        from patterns import Table
        Table("big", "w").execute_sql("UPDATE big SET word = 'edited' WHERE n % 1000 = 5")
    """,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = write_app(tmp_path_factory.mktemp("apps") / "big_pages", GRAPH,
                     {k: textwrap.dedent(v) for k, v in FILES.items()})
    served = Server([root], env={"PATTERNS_HOME": str(tmp_path_factory.mktemp("home"))})
    try:
        served.wait_for(lambda: any(r["status"] == "succeeded"
                                    for r in served.runs("big-pages", "fill0001")),
                        timeout=120, what="the run of fill.py")
        yield served
    finally:
        if served.proc is not None and served.proc.poll() is None:
            served.kill()


def every_row(server: Server) -> list[dict[str, Any]]:
    """The table whole, through the download (the reference the pages are checked on)."""
    import json

    answer = server.http.get(server.api(f"{BIG}/download?format=jsonl"), timeout=120)
    assert answer.status_code == 200, answer.text[:300]
    return [json.loads(line) for line in answer.text.splitlines() if line]


def in_order(rows: list[dict[str, Any]], sort: str | None, descending: bool
             ) -> list[dict[str, Any]]:
    """``ORDER BY sort NULLS LAST, id`` (the page order) in Python."""
    by_id = sorted(rows, key=lambda r: r["patterns_id"])
    if sort is None:
        return by_id
    have = [r for r in by_id if r[sort] is not None]
    have.sort(key=lambda r: r[sort], reverse=descending)  # (stable: ties stay by id)
    return have + [r for r in by_id if r[sort] is None]


def page(server: Server, query: str) -> dict[str, Any]:
    return dict(server.get(f"{BIG}/page?{query}"))


def check_pages(server: Server, rows: list[dict[str, Any]], sort: str | None,
                descending: bool) -> None:
    """The first pages, then jumps deep (a cursor of a row's value and id, as a page gives
    without a place in an order), against the full order."""
    expected = in_order(rows, sort, descending)
    ask = f"limit=101{f'&sort={sort}' if sort else ''}{'&desc=true' if descending else ''}"
    after, seen = None, []
    for _ in range(3):
        got = page(server, ask + (f"&after={after}" if after else ""))
        seen.extend(got["rows"])
        after = got["next"]
    assert [r["n"] for r in seen] == [r["n"] for r in expected[:303]], (sort, descending)
    for at in (5_000, ROWS // 2, ROWS - 40, ROWS - ROWS // 11 - 3):
        row = expected[at]
        values = [row[sort], row["patterns_id"]] if sort else [row["patterns_id"]]
        got = page(server, f"{ask}&after={encode_cursor(values)}")
        assert [r["n"] for r in got["rows"]] == [r["n"] for r in expected[at + 1:at + 102]], \
            (sort, descending, at)
        assert (got["next"] is None) == (at + 102 >= len(expected))


ORDERS = [(None, False), ("patterns_id", False), ("patterns_id", True), ("score", False),
          ("score", True), ("word", True)]


@pytest.mark.parametrize(("sort", "descending"), ORDERS)
def test_first_and_deep_pages_hold_the_rows_of_the_full_order(
        server: Server, sort: str | None, descending: bool) -> None:
    rows = every_row(server)
    assert len(rows) == ROWS
    check_pages(server, rows, sort, descending)
    check_pages(server, rows, sort, descending)  # (again: an order may be kept by now)


def test_filtered_pages_of_a_big_table_are_the_filtered_order(server: Server) -> None:
    rows = every_row(server)
    for query, keep in (("where=score&op=gte&value=5", lambda r: r["score"] is not None
                         and r["score"] >= 5),
                        ("where=score&op=null", lambda r: r["score"] is None),
                        ("where=word&op=eq&value=w3", lambda r: r["word"] == "w3")):
        expected = [r["n"] for r in in_order([r for r in rows if keep(r)], "score", True)]
        seen: list[int] = []
        after = None
        while True:
            got = page(server, f"{query}&sort=score&desc=true&limit=1000"
                               + (f"&after={after}" if after else ""))
            seen.extend(r["n"] for r in got["rows"])
            after = got["next"]
            if after is None:
                break
        assert seen == expected, query


def test_pages_after_a_change_are_the_new_states_rows(server: Server) -> None:
    # a cursor from before an append, and a table whose rows an UPDATE left out of id order
    first = page(server, "sort=score&desc=true&limit=50")
    run = server.post("/apps/big-pages/nodes/more0001/trigger")
    assert run.status_code in (200, 201, 202), run.text
    server.wait_for(lambda: len(every_row(server)) == ROWS + 1, timeout=60,
                    what="the appended row")
    rows = every_row(server)
    got = page(server, f"sort=score&desc=true&limit=50&after={first['next']}")
    expected = in_order(rows, "score", True)
    assert [r["n"] for r in got["rows"]] == [r["n"] for r in expected[50:100]]
    run = server.post("/apps/big-pages/nodes/edit0001/trigger")
    assert run.status_code in (200, 201, 202), run.text
    server.wait_for(lambda: sum(r["word"] == "edited" for r in every_row(server)) == 120,
                    timeout=60, what="the edited rows")
    rows = every_row(server)
    for sort, descending in ORDERS:
        check_pages(server, rows, sort, descending)

