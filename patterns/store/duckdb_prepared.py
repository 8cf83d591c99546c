"""A SQL node's queries worked out on a snapshot, before its commit takes the commit lock.

A SQL statement that adds a query's rows (``INSERT ... SELECT``, a bare ``SELECT``) used to
run its query inside the commit, under the store's one commit lock: for as long as the query
scanned its inputs (100-900 ms in a busy pipeline), every other commit waited — a webhook's
intake, the Python stages' checkpoints, the scheduler's queue. Now :func:`prepare` runs each
such query first, into a temporary table of the commit's own cursor, on a snapshot taken
under the lock; the commit (under the lock) then inserts that table's rows instead of
running the query, **if nothing the query reads has changed since the snapshot**: no commit
touched any table it reads (the store counts, per table, the commits that had an op on it;
it is their only writer), no write transaction ran from outside a commit, and no op before
the statement in the same checkpoint changes a table it reads. Otherwise the commit runs the
query itself, as before. Either way the rows are those the query gives over the inputs as
the commit sees them, so the statement keeps its meaning (one transaction, docs/concepts.md);
only the time under the lock changes.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import duckdb
import sqlglot  # noqa: F401  (whole, first: see patterns.store.sql_writes)
import sqlglot.expressions as exp

from patterns.store.model import Checkpoint, SqlWrite, TableOp

if TYPE_CHECKING:
    from collections.abc import Callable

_names = itertools.count()
#: Table functions a query may read and still be worked out before its commit.
_PURE = frozenset({"range", "generate_series"})


@dataclass
class Prepared:
    """Query results made on a snapshot, and what must be unchanged for them to stand."""

    #: (table, index among the table's ops) → the temporary table holding the query's rows.
    results: dict[tuple[str, int], str] = field(default_factory=dict)
    #: The tables each prepared query reads.
    reads: dict[tuple[str, int], frozenset[str]] = field(default_factory=dict)
    #: The store's change counters at the snapshot (see :meth:`DuckDBStore.changes`).
    seen: tuple[int, dict[str, int]] = (0, {})


def preparable(cp: Checkpoint) -> list[tuple[str, int, SqlWrite, frozenset[str]]]:
    """The statements of ``cp`` whose query can be worked out before the commit: INSERT
    ... SELECT and bare SELECTs over the store's own tables (by their views), each with the
    tables it reads."""
    found = []
    for table, ops in cp.ops.items():
        for index, op in enumerate(ops):
            write = op.sql
            if op.kind != "sql" or write is None or write.action not in ("insert", "select"):
                continue
            query = write.statement.expression if write.action == "insert" \
                else write.statement
            if not isinstance(query, exp.Query) or isinstance(write.statement, exp.Create):
                continue
            reads = _reads(query, {name for name, _ in write.relations})
            if reads is not None:
                found.append((table, index, write, reads))
    return found


def prepare(cur: duckdb.DuckDBPyConnection, wanted: list[tuple[str, int, SqlWrite,
                                                                frozenset[str]]]
            ) -> dict[tuple[str, int], str]:
    """Run each query into a temporary table of ``cur`` (in its open snapshot); a query
    that fails is left for the commit, which says why in the user's terms."""
    results: dict[tuple[str, int], str] = {}
    for table, index, write, _ in wanted:
        query = write.statement.expression if write.action == "insert" else write.statement
        sql = query.sql(dialect="duckdb")
        relation = f"__patterns_prepared_{next(_names)}"
        params = list(write.params)
        for name, rows in write.relations:
            cur.register(name, rows)
        try:
            if write.integer_division:
                cur.execute("SET integer_division = true")
            columns = cur.sql(sql, params=params).columns if params else cur.sql(sql).columns
            if len(set(columns)) != len(columns):
                continue  # (the commit says which column is twice)
            cur.execute(f"CREATE TEMP TABLE {relation} AS {sql}", params)
            results[(table, index)] = relation
        except duckdb.InterruptException:
            raise
        except duckdb.Error:
            continue
        finally:
            for name, _ in write.relations:
                with contextlib.suppress(duckdb.Error):
                    cur.unregister(name)
            if write.integer_division:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("RESET integer_division")
    return results


def using(cp: Checkpoint, prepared: Prepared, now: tuple[int, dict[str, int]],
          has_columns: Callable[[str], bool]) -> tuple[Checkpoint, bool]:
    """``cp`` with each prepared statement reading its prepared rows, where they still
    stand (checked under the commit lock; ``cp`` itself when none does), and whether any
    did not because a commit changed what it reads since the snapshot (worth another)."""
    epoch, changes = now
    seen_epoch, seen = prepared.seen
    if not prepared.results:
        return cp, False
    if epoch != seen_epoch:
        return cp, True
    ops = {table: list(table_ops) for table, table_ops in cp.ops.items()}
    earlier: set[str] = set()  # tables an op before the statement may change
    done: dict[str, int] = {}
    used = stale = False
    for table, op in cp.sequence():
        index = done.get(table, 0)
        done[table] = index + 1
        key = (table, index)
        relation = prepared.results.get(key)
        reads = prepared.reads.get(key, frozenset())
        if relation is not None and not reads & earlier:
            if all(changes.get(name, 0) == seen.get(name, 0) for name in reads):
                assert op.sql is not None
                ops[table][index] = TableOp("sql", sql=_reading(op.sql, relation))
                used = True
            else:
                stale = True
        if not _no_op(op, table, has_columns):
            earlier.add(table)
    return (replace(cp, ops=ops) if used else cp), stale


def _reading(write: SqlWrite, relation: str) -> SqlWrite:
    """``write`` taking its rows from ``relation`` (same columns, same order)."""
    rows = exp.select("*").from_(exp.to_table(relation))
    if write.action == "insert":
        statement = write.statement.copy()
        statement.set("expression", rows)
    else:
        statement = rows
    return replace(write, statement=statement, params=(), relations=(),
                   integer_division=False)


def _no_op(op: TableOp, table: str, has_columns: Callable[[str], bool]) -> bool:
    """Whether ``op`` surely changes nothing: CREATE TABLE IF NOT EXISTS of a table that
    has columns (a SQL node's usual first statement)."""
    write = op.sql
    return (op.kind == "sql" and write is not None and write.action == "create"
            and write.if_not_exists and has_columns(table))


def _reads(query: Any, relations: set[str]) -> frozenset[str] | None:
    """The store tables ``query`` reads (by their views, ``main."name"``); None if it reads
    anything else (a table function but ``range``, another schema): left to the commit."""
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    reads: set[str] = set()
    for found in query.find_all(exp.Table):
        if isinstance(found.this, exp.GenerateSeries) or (
                isinstance(found.this, exp.Anonymous)
                and found.this.name.lower() in _PURE):
            continue
        name = found.name
        if not name or not isinstance(found.this, exp.Identifier):
            return None
        if found.db == "main" and not found.catalog:
            reads.add(name)
        elif found.db or found.catalog or (name not in ctes and name not in relations):
            return None
    return frozenset(reads)
