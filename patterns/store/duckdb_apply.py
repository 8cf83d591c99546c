"""A checkpoint applied inside an open DuckDB transaction: its table ops in staging order,
a commit record per table it changed (all under one commit number), then the node's state
and stream positions. :class:`~patterns.store.duckdb.DuckDBStore` runs this under its commit
lock, and also, rolled back after, to show a run its own staged writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import duckdb

from patterns.store import faults
from patterns.store.duckdb_early import DuckDBEarlyWrites
from patterns.store.duckdb_view import DuckDBConnection
from patterns.store.ids import UlidSequence
from patterns.store.migrations import META
from patterns.store.model import Checkpoint, CommitResult, TableMeta, TableOptions
from patterns.store.repositories import Memory, utcnow
from patterns.store.tables import TableWriter, prune_versions


@dataclass
class _Progress:
    """One table within a commit: its metadata so far, rows added, whether it has a new
    version."""

    meta: TableMeta
    #: As the commit found it, as its row says (only what changed is updated); None for
    #: a table the commit made.
    found: TableMeta | None
    added: int = 0
    new_version: bool = False


def apply_checkpoint(cur: duckdb.DuckDBPyConnection, cp: Checkpoint, ids: UlidSequence,
                     id_compression: str, found: Callable[[str], TableMeta | None],
                     early: DuckDBEarlyWrites | None = None) -> CommitResult:
    """Apply ``cp`` in the open transaction of ``cur``: ``found(name)`` gives a table's facts
    as the store holds them (None: the commit makes it); ``early``, what of ``cp``'s appends
    the transaction already holds; ``ids`` draws the new rows' ids."""
    now = utcnow()
    writer = TableWriter(cur, ids, now, cp.run_id, rules=cp.rules,
                         max_columns=cp.max_columns, infer_timestamps=cp.infer_timestamps,
                         id_compression=id_compression)
    touched: dict[str, _Progress] = {}
    for name, op in cp.sequence():  # in staging order: a statement sees earlier ops
        progress = touched.get(name)
        if progress is None:
            table = before = found(name)
            if table is None:
                init = next((o.options for o in cp.ops[name] if o.kind == "init"), None)
                table = writer.create(name, init or TableOptions())
            progress = touched[name] = _Progress(table, before)
            went = early.applying(name, op) if early is not None else None
            if went is not None:
                rest, progress.added, progress.meta = went
                if rest is None:
                    faults.point(f"commit.{op.kind}")
                    continue
                op = rest
        version = progress.meta.version
        progress.meta, n = writer.apply(progress.meta, op)
        faults.point(f"commit.{op.kind}")
        progress.added += n
        progress.new_version |= progress.meta.version != version
    rows: dict[str, int] = {}
    metas: dict[str, TableMeta] = {}
    seq = None
    for name in sorted(touched):
        progress = touched[name]
        table, added = progress.meta, progress.added
        changed = bool(added) or progress.new_version
        if changed:
            facts = [name, table.version, cp.run_id, cp.node_id, added, now, cp.wakes]
            if seq is None:  # the commit's number, drawn by its first commit record
                seq = int(cur.execute(
                    f"INSERT INTO {META}.commits SELECT nextval('{META}.commit_seq'), ?, "
                    f"?, ?, ?, ?, ?, ? RETURNING seq", facts).fetchall()[0][0])
            else:
                cur.execute(f"INSERT INTO {META}.commits VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            [seq, *facts])
        if progress.new_version and cp.keep_versions:
            prune_versions(cur, table, cp.keep_versions)
        writer.save(table, seq if changed else None, before=progress.found)
        rows[name] = added
        metas[name] = replace(table, last_commit=seq) if changed and seq else table
    memory = Memory(DuckDBConnection(cur))
    if cp.state is not None:
        memory.set_state(cp.node_id, cp.state)
    for table_name, position in cp.positions.items():
        memory.set_position(cp.node_id, table_name, position)
    return CommitResult(seq=seq or 0, rows_added=rows, tables=metas)
