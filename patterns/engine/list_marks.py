"""What a run staged for a table when its node began shipping a long list in parts.

A list of many records is shipped a part at a time as the node converts it
(``NodeRun._append_in_parts``, docs/store.md "A long list goes in parts"). Before its first
part the node sends ``mark``: the run's session keeps what was staged for the table then.
``keep`` ends it once the whole list is staged; ``cut`` puts the staging back as it was
when the rest of the list could not follow (a slice typed otherwise, a refused record):
nothing of the list stays staged. Put back, not cut by the node's count of the rows it
shipped: a contract may have dropped some (``discard_row``), and the first part joined the
append staged before it (whose columns it may have widened). While a mark stands, each
part is checked against the table's columns as they were before the list, as the whole
list would be.
"""

from __future__ import annotations

from dataclasses import dataclass

from patterns.errors import EngineError
from patterns.store.model import Checkpoint, TableOp


@dataclass(frozen=True)
class _Mark:
    """A table's staged ops (None: none), its entries in the checkpoint's order, its
    columns (None: none worked out yet), its appended rows."""

    ops: list[TableOp] | None
    order: int
    columns: dict[str, str] | None
    rows: int


class ListMarks:
    """The marks of one staging (a checkpoint's), by table. Used under the session's lock."""

    def __init__(self) -> None:
        self._marks: dict[str, _Mark] = {}

    def mark(self, cp: Checkpoint, table: str, columns: dict[str, str] | None) -> None:
        ops = cp.ops.get(table)
        self._marks[table] = _Mark(None if ops is None else list(ops), cp.order.count(table),
                                   columns, _appended_rows(ops))

    def keep(self, table: str) -> None:
        """The whole list followed its mark."""
        self._marks.pop(table, None)

    def marked(self, table: str) -> bool:
        return table in self._marks

    def columns(self, table: str) -> dict[str, str] | None:
        """``table``'s columns at its mark (what a part of the list is checked against)."""
        return self._marks[table].columns

    def cut(self, cp: Checkpoint, table: str) -> tuple[int, dict[str, str] | None]:
        """Put ``cp``'s staging of ``table`` back as it was at its mark: the rows taken back,
        and the table's columns then."""
        mark = self._marks.pop(table, None)
        ops = cp.ops.get(table)
        if mark is None or (ops is not None and any(
                op.kind != "append" for op in ops[len(mark.ops or ()):])):
            raise EngineError(f"cannot take back the rows staged for table {table!r} since "
                              f"its mark: there is no mark, or other writes followed it")
        for _ in range(cp.order.count(table) - mark.order):
            del cp.order[len(cp.order) - 1 - cp.order[::-1].index(table)]
        if mark.ops is None:
            cp.ops.pop(table, None)
        else:
            cp.ops[table] = mark.ops
        return _appended_rows(ops) - mark.rows, mark.columns


def _appended_rows(ops: list[TableOp] | None) -> int:
    return sum(op.data.num_rows for op in ops or () if op.kind == "append" and op.data is not None)
