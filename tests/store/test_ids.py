"""patterns_id: ULIDs that grow in commit order, made a block at a time."""

from __future__ import annotations

import time

from patterns.store.ids import ALPHABET, UlidSequence, decode, encode


def test_blocks_are_valid_ulids_increasing_across_blocks() -> None:
    seq = UlidSequence()
    ids = [*seq.block(3).to_pylist(), *seq.block(70_000).to_pylist(), *seq.block(1).to_pylist()]
    assert all(len(i) == 26 and set(i) <= set(ALPHABET.decode()) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert seq.last() == ids[-1]
    # Consecutive ids of a block differ by one in their counter.
    assert decode(ids[4]) - decode(ids[3]) == 1
    # The time part is the time of the block, in milliseconds.
    assert abs((decode(ids[0]) >> 80) - time.time() * 1000) < 60_000


def test_a_sequence_reopened_after_an_id_continues_past_it() -> None:
    later = encode(int(time.time() * 1000) + 3_600_000, 10) + "ZZZZZZ" + encode(41, 10)
    seq = UlidSequence(after=later)  # a clock behind the stored ids
    first = seq.block(2).to_pylist()
    assert first[0] > later and first == sorted(first)
    assert decode(first[0]) == decode(later) + 1
