"""How far a run has read its inputs: the newest commit whose rows it consumed, per table.

The scheduler wakes a node when a table it reads gets rows committed after its last run's
``seen_commit``. That used to be the commit the run *started* after; but a stream run reads
every pass committed while it runs (a pass finishes, the next one covers what came
meanwhile), so the commits that landed during a busy run were mostly read by it already,
and the run they woke found nothing (36-73 ms and a worker each, in the 4-node pipeline).

So a run's end records the commit its reads covered instead:

- A stream that found its pass empty has delivered every row committed up to the commit
  that was the store's newest just *before* the pass looked at the table (the store's
  commit number moves only once a commit's rows are visible). That commit is the stream's
  end for its table, provided the run then commits the position of that empty pass (the
  node consumed the stream to its end, and did not move it after): a position committed
  at a checkpoint decides, per table.
- A SQL node's statements read its inputs inside its final commit's transaction (a query
  worked out beforehand is used only if nothing it reads changed since): it read every
  commit before its own.
- Any other input (read whole, read partly, not read at all in this run) counts as read up
  to the run's start, as before.

The run's ``seen_commit`` is the oldest of its inputs' ends, never before its start, and is
moved only for a run that succeeded (a failed run's writes, and the positions of what it
read, were rolled back). A commit landing after a stream's last pass has a greater number
than that pass's end, so it still wakes the node, even if it landed while the run ran.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from patterns.positions import StreamPosition


@dataclass(frozen=True)
class _End:
    """A stream found empty: the commit it covered, and the position it ended on (None: the
    table had no rows, or did not exist; any position then covers it)."""

    seq: int
    version: int | None
    hi: str | None
    empty_table: bool


@dataclass
class ReadThrough:
    #: The commit the run started after (its inputs are read at least up to it).
    started: int
    _ends: dict[str, _End] = field(default_factory=dict)
    #: Per table: the commit read through, as the run's committed positions stand.
    _covered: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def stream_ended(self, table: str, seq: int, position: StreamPosition | None) -> None:
        """A pass of ``table``'s stream was found empty; ``seq`` is the store's newest commit
        read before the table's facts were (every row it committed was there to see)."""
        end = _End(seq, position.version if position else None,
                   position.hi if position else None,
                   empty_table=position is None or position.hi is None)
        with self._lock:
            self._ends[table] = end

    def after(self, positions: Mapping[str, StreamPosition | None]) -> dict[str, int]:
        """Each table's commit read through once a checkpoint with ``positions`` commits
        (what :meth:`committed` is then given)."""
        with self._lock:
            covered = dict(self._covered)
            for table, position in positions.items():
                end = self._ends.get(table)
                if end is not None and (end.empty_table or (
                        position is not None and position.done
                        and position.version == end.version and position.hi == end.hi)):
                    covered[table] = end.seq
                else:  # (moved elsewhere, or mid-pass: read up to the start, as before)
                    covered.pop(table, None)
            return covered

    def committed(self, covered: dict[str, int]) -> None:
        with self._lock:
            self._covered = covered

    def commit(self, reads: Iterable[str], covered: Mapping[str, int] | None = None) -> int:
        """The commit the run's inputs ``reads`` were all read through (``covered``: as the
        checkpoint in progress leaves them; else as committed)."""
        with self._lock:
            through = self._covered if covered is None else covered
            ends = [through.get(table, self.started) for table in reads]
        return max(self.started, min(ends)) if ends else self.started
