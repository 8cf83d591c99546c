"""Commits of a few rows, planned without DuckDB's optimizer (DuckDB store).

A trivial run's final transaction is a handful of one-row statements: the rows' insert (a
``VALUES`` list, :mod:`.small_rows`), the commit record, the table's row, the run's record.
DuckDB's optimizer passes cost each of them a fixed 0.1-0.2 ms of CPU and improve nothing:
none reads a table the optimizer could skip parts of. So a commit whose table ops are only
appends of at most :data:`~patterns.store.small_rows.SMALL_ROWS` rows in all runs on a cursor
the store keeps for such commits, with the optimizer off (``PRAGMA disable_optimizer``: a
setting of that cursor alone; every other cursor of the store, and so every query, stream
pass, bulk insert, upsert and SQL node, keeps it). Measured on DuckDB 2.0.1, a trivial
run's commit 0.9-1.0 ms of CPU less (bench/RESULTS.md, target 4, seventh pass); turning the
setting off on a new cursor for each commit would cost 0.15-0.35 ms of that back.

Statements the store does not know in advance (the engine's, in the commit's ``also``: a
run record's ``UPDATE`` by id, the queue's writes under ``patterns serve``) turn the
optimizer back on first, unless they read no table (an ``INSERT`` of a ``VALUES`` list):
an ``UPDATE`` of one run among 100,000 without it scans every row (8 ms against 2-4). A
cursor that had it turned back on is closed after its commit; the next gets a new one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import duckdb

from patterns.store.model import Checkpoint
from patterns.store.small_rows import SMALL_ROWS

#: An ``INSERT`` of a ``VALUES`` list: reads no table, so the optimizer has nothing to improve.
_INSERT_VALUES = re.compile(r"\s*INSERT\s+INTO\s+[^()]+(\([^()]*\)\s*)?VALUES\s*\(", re.I)
#: What may read a table inside one: a query (``SELECT``, or DuckDB's ``FROM``-first form),
#: or a second statement after a ``;``.
_READS = re.compile(r"\bSELECT\b|\bFROM\b|;", re.I)


def plain(cp: Checkpoint) -> bool:
    """Whether ``cp``'s commit is one of a few rows: its table ops are appends of at most
    :data:`SMALL_ROWS` rows in all, and ``init()``s (a table's row, columns added; its one
    read of a table, a ``count(*)``, costs the same without the optimizer). State and
    positions are rows of small tables."""
    rows = 0
    for ops in cp.ops.values():
        for op in ops:
            if op.kind == "init":
                continue
            if op.kind != "append" or op.data is None:
                return False
            rows += op.data.num_rows
    return rows <= SMALL_ROWS


def reads_nothing(sql: str) -> bool:
    """Whether ``sql`` is an ``INSERT`` of a ``VALUES`` list with no query in it."""
    return _INSERT_VALUES.match(sql) is not None and _READS.search(sql) is None


class Optimizer:
    """DuckDB's optimizer on a cursor that runs without it, turned back on at the first
    statement that may read a table."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.cur = cur
        #: Whether it was turned back on (the cursor is then not kept).
        self.on = False

    def before(self, sql: str | None = None) -> None:
        """Before a statement (``sql``; None: a read of table data): the optimizer back on,
        unless the statement reads no table."""
        if self.on or (sql is not None and reads_nothing(sql)):
            return
        self.cur.execute("PRAGMA enable_optimizer")
        self.on = True


class PlainCursor:
    """The store's cursor for commits of a few rows, kept with the optimizer off. Used
    under the commit lock only, by one commit at a time."""

    def __init__(self, cursors: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._cursors = cursors
        self._cur: duckdb.DuckDBPyConnection | None = None

    def take(self) -> Optimizer:
        """The cursor for the next commit (made at the first, or after one was dropped)."""
        if self._cur is None:
            cur = self._cursors()
            cur.execute("PRAGMA disable_optimizer")
            self._cur = cur
        return Optimizer(self._cur)

    def done(self, optimizer: Optimizer, *, kept: bool) -> None:
        """After its commit: kept for the next one, unless the commit failed (``kept``
        False: its transaction was rolled back and the cursor closed) or turned the
        optimizer back on."""
        if not kept or optimizer.on:
            self.close()

    def close(self) -> None:
        if self._cur is not None:
            cur, self._cur = self._cur, None
            cur.close()
