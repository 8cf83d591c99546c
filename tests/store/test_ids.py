"""patterns_id: ULIDs that grow in commit order, made a block at a time."""

from __future__ import annotations

import time

from patterns.store.ids import (
    _STEP_ROWS,
    ALPHABET,
    UlidSequence,
    decode,
    encode,
    id_key,
    id_ms,
)


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
    # Its block numbers used up (ZZZ), the sequence moves on to the next millisecond.
    assert id_ms(first[0]) == id_ms(later) + 1 and id_key(first[0]) > id_key(later)
    earlier = encode(int(time.time() * 1000) + 3_600_000, 10) + "00500000" + encode(41, 8)
    seq = UlidSequence(after=earlier)
    (after,) = seq.block(1).to_pylist()
    assert after > earlier and id_key(after) == id_key(earlier) + 1 == seq.key


def test_every_block_has_a_key_of_its_own_that_grows() -> None:
    """A stream bounds a finished pass strictly by its last id's key: no later block, even in
    the same millisecond, may share it, and every id of a block has it."""
    seq = UlidSequence()
    blocks = [seq.block(n).to_pylist() for n in (1, 5, 1, 300, 2) * 200]
    keys = [seq.key]
    for ids in blocks:
        assert {id_key(i) for i in ids} == {id_key(ids[0])}
    firsts = [id_key(ids[0]) for ids in blocks]
    assert firsts == sorted(firsts) and len(set(firsts)) == len(firsts)
    assert keys == [firsts[-1]]
    # (a thousand blocks, some of them in one millisecond)
    assert len({id_ms(ids[0]) for ids in blocks}) < len(blocks)
    # The key is the id's first 13 characters: its millisecond, then the block number.
    assert all(id_key(ids[0]) >> 15 == id_ms(ids[0]) for ids in blocks)


def test_a_block_longer_than_a_step_counts_up_by_one_across_steps() -> None:
    """Ids are made a step of rows at a time (``_STEP_ROWS``): every id of a long block,
    also at the joins of the steps and after a shorter block reused the offsets, is the
    block's prefix and its own counter, one more than the id before it."""
    seq = UlidSequence()
    n = 2 * _STEP_ROWS + 5
    ids = seq.block(n).to_pylist()
    short = seq.block(3).to_pylist()
    assert len(ids) == n and len(short) == 3
    assert len({i[:16] for i in ids}) == 1
    counters = [decode(i[16:]) for i in ids]
    assert counters == list(range(counters[0], counters[0] + n))
    assert all(len(i) == 26 for i in (*ids[_STEP_ROWS - 1:_STEP_ROWS + 2], *short))
    assert ids == sorted(ids) and short[0] > ids[-1] and seq.last() == short[-1]
