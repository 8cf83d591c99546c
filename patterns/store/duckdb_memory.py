"""What an embedded store keeps in memory of its nodes' state and stream positions.

A run starts from its node's state and positions (the engine sends them with its start
request), which only change in this store's own transactions: each commit's checkpoint, and
write transactions (resetting a node's state or a stream from the CLI, the API or Studio).
So a DuckDB store reads a node's memory once, updates it from each committed checkpoint as
it would read back (the same JSON round trip), and forgets it whenever a write transaction
changes it or a commit fails. All of it happens under the store's commit lock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from patterns.positions import StreamPosition
from patterns.store.interface import MemoryRepository
from patterns.store.model import Checkpoint, dumps

Memory = tuple[dict[str, Any], dict[str, StreamPosition]]


class NodeMemory:
    """Nodes' committed state and positions, by node id (only those read since)."""

    def __init__(self) -> None:
        self._nodes: dict[str, Memory] = {}

    def get(self, node_id: str) -> Memory | None:
        return self._nodes.get(node_id)

    def keep(self, node_id: str, memory: Memory) -> None:
        self._nodes[node_id] = memory

    def clear(self) -> None:
        self._nodes.clear()

    def committed(self, cp: Checkpoint) -> None:
        """``cp`` was committed: its node's state and positions are now what it set."""
        known = self._nodes.get(cp.node_id)
        if known is None or (cp.state is None and not cp.positions):
            return
        state, positions = known
        if cp.state is not None:  # (as stored: JSON text, empty forgotten)
            state = dict(json.loads(dumps(cp.state))) if cp.state else {}
        if cp.positions:
            positions = dict(positions)
            for table, position in cp.positions.items():
                if position is None:
                    positions.pop(table, None)
                else:
                    positions[table] = StreamPosition.from_json(
                        json.loads(dumps(position.to_json())))
        self._nodes[cp.node_id] = (state, positions)

    def forgetting(self, memory: MemoryRepository) -> MemoryRepository:
        """``memory`` (a write transaction's), forgetting what is kept here when it changes
        anything."""
        return _Forgetting(memory, self)


class _Forgetting:
    """A transaction's memory repository whose writes make the store read memory again."""

    def __init__(self, inner: MemoryRepository, kept: NodeMemory) -> None:
        self._inner = inner
        self._kept = kept

    def state(self, node_id: str) -> dict[str, Any]:
        return self._inner.state(node_id)

    def set_state(self, node_id: str, doc: Mapping[str, Any] | None) -> None:
        self._kept.clear()
        self._inner.set_state(node_id, doc)

    def positions(self, node_id: str) -> dict[str, StreamPosition]:
        return self._inner.positions(node_id)

    def set_position(self, node_id: str, table: str,
                     position: StreamPosition | None) -> None:
        self._kept.clear()
        self._inner.set_position(node_id, table, position)

    def reset_positions(self, node_id: str, table: str | None = None) -> int:
        self._kept.clear()
        return self._inner.reset_positions(node_id, table)

    def all_positions(self) -> list[tuple[str, str, StreamPosition]]:
        return self._inner.all_positions()

    def memory(self, node_id: str) -> Memory:
        return self._inner.memory(node_id)
