"""``patterns_id``: ULIDs assigned at commit, strictly increasing in commit order.

A ULID is 26 Crockford base32 characters: 48 bits of milliseconds then 80 random bits.
The store holds one :class:`UlidSequence` and takes every id from it while it holds the
commit lock, so ids grow in commit order across all tables, even when the clock stalls or
steps back (the sequence then keeps counting from its last id). Blocks of ids are made with
numpy, never one Python string per row.

Every block of ids has a *key* of its own: the id's first 13 characters, its millisecond
then a 15-bit block number (:func:`id_key`), a 63-bit integer that grows from block to block
and is the same for every id of a block. The DuckDB store keeps it in a hidden column (see
:data:`~patterns.store.model.ID_MS`) so a stream pass can skip the row groups of every block
up to its lower bound's. Ids made before blocks had keys (before migration 4) share their
first 13 characters across commits; see docs/store.md.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pyarrow as pa

ALPHABET = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Every pair of characters, as the 16-bit unit it is in memory; index: 10 bits.
_PAIRS = np.frombuffer(b"".join(bytes([a, b]) for a in ALPHABET for b in ALPHABET),
                       dtype=np.uint16)
_DECODE = {c: i for i, c in enumerate(ALPHABET.decode())}
_LOW_BITS = 50
_LOW_LIMIT = 1 << _LOW_BITS
#: Bits of the block number (the 3 characters after the millisecond) and of the random
#: part after it (3 characters).
_BLOCK_BITS = 15
_BLOCK_LIMIT = 1 << _BLOCK_BITS
_RAND_BITS = 15


def encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return bytes(reversed(chars)).decode()


def id_ms(ulid: str) -> int:
    """The millisecond a ULID was made in (its first 10 characters): what the hidden column
    :data:`~patterns.store.model.ID_MS` holds for the row with that id."""
    return decode(ulid[:10])


#: The same in SQL (DuckDB and PostgreSQL), for ``column`` holding ULIDs.
def id_ms_sql(column: str) -> str:
    return _prefix_sql(column, 10)


def id_key_sql(column: str) -> str:
    """:func:`id_key` in SQL (DuckDB and PostgreSQL), for ``column`` holding ULIDs."""
    return _prefix_sql(column, 13)


def _prefix_sql(column: str, length: int) -> str:
    digits = [f"(strpos('{ALPHABET.decode()}', substr({column}, {i + 1}, 1)) - 1) * "
              f"{32 ** (length - 1 - i)}" for i in range(length)]
    return "CAST(" + " + ".join(digits) + " AS BIGINT)"


def id_key(ulid: str) -> int:
    """The key of the block ``ulid`` was made in: its first 13 characters as an integer
    (millisecond * 2**15 + block number). Always at least :func:`id_ms` of the same id."""
    return decode(ulid[:13])


def decode(text: str) -> int:
    value = 0
    for ch in text.upper():
        value = (value << 5) | _DECODE[ch]
    return value


class UlidSequence:
    """Hands out increasing blocks of ULIDs, each with a key of its own.

    The 80 bits after the millisecond are a 15-bit block number, 15 random bits and a 50-bit
    counter: a block of n ids is one prefix (millisecond, block number, random bits) and n
    consecutive counters, and the next block in the same millisecond has the next block
    number, so no two blocks share a key (:func:`id_key`).
    """

    def __init__(self, after: str | None = None) -> None:
        self._ms = 0
        self._block = 0
        self._rand = 0
        self._next_low = 0
        if after:
            self.advance_past(after)

    def advance_past(self, ulid: str) -> None:
        """Make every later id, and every later block's key, greater than ``ulid``'s (an id
        already stored)."""
        value = decode(ulid)
        ms, rest = value >> 80, value & ((1 << 80) - 1)
        block = rest >> (_RAND_BITS + _LOW_BITS)
        rand = (rest >> _LOW_BITS) & ((1 << _RAND_BITS) - 1)
        low = rest & (_LOW_LIMIT - 1)
        if (ms, block, rand, low) >= (self._ms, self._block, self._rand, self._next_low):
            self._ms, self._block, self._rand, self._next_low = ms, block, rand, low + 1

    def block(self, n: int) -> pa.Array:
        """``n`` new ids, increasing, as an Arrow string array: one block, one key."""
        now = int(time.time() * 1000)
        if now > self._ms:
            self._ms, self._block = now, 0
        elif self._block + 1 < _BLOCK_LIMIT:
            self._block += 1
        else:  # this millisecond's block numbers are used up: move on to the next one
            self._ms, self._block = self._ms + 1, 0
        self._rand = int.from_bytes(os.urandom(2), "big") >> (16 - _RAND_BITS)
        self._next_low = int.from_bytes(os.urandom(7), "big") >> 7  # < 2**49
        start = self._next_low
        self._next_low += n
        prefix = encode(self._ms, 10) + encode(self._block, 3) + encode(self._rand, 3)
        return _block_array(prefix.encode(), start, n)

    @property
    def ms(self) -> int:
        """The millisecond of the ids of the last block (every id of a block shares it)."""
        return self._ms

    @property
    def key(self) -> int:
        """The key of the last block (:func:`id_key` of each of its ids)."""
        return (self._ms << _BLOCK_BITS) | self._block

    def last(self) -> str | None:
        if self._ms == 0:
            return None
        return (encode(self._ms, 10) + encode(self._block, 3) + encode(self._rand, 3)
                + encode(self._next_low - 1, 10))


#: Rows whose counters :func:`_block_array` works out at a time: its scratch arrays stay
#: small (0.5 MB) and are reused, instead of six temporary arrays of 8 bytes per id.
_STEP_ROWS = 1 << 16
#: The offsets of a block of ids (``26 * i``): the same for every block, so one array, grown
#: to the longest block yet up to _KEPT_OFFSETS rows (8 MB), serves each as a slice
#: (read-only); a longer block gets its own.
_offsets = np.arange(0, 26 * (_STEP_ROWS + 1), 26, dtype=np.int32)
_KEPT_OFFSETS = 1 << 21


def _block_array(prefix: bytes, start: int, n: int) -> pa.Array:
    # Two characters at a time: the 10-character counter is 5 lookups of 10 bits each into
    # a table of the 1,024 two-character codes, written as 16-bit units. A step of rows at
    # a time: 1M ids made 128 MB of fresh temporary memory, whose pages (new to the process
    # each time) cost the engine 0.1-0.5 s of system time in a commit; now the ids' own 26
    # MB (docs/store.md, "A long list in parts; the ids' memory").
    global _offsets
    units = np.empty((n, 13), dtype=np.uint16)
    units[:, :8] = np.frombuffer(prefix, dtype=np.uint16)
    step = max(1, min(n, _STEP_ROWS))
    index = np.empty(step, dtype=np.int64)
    for at in range(0, n, step):
        m = min(step, n - at)
        part, idx = np.arange(start + at, start + at + m, dtype=np.int64), index[:m]
        for k in range(5):
            np.right_shift(part, 40 - 10 * k, out=idx)
            np.bitwise_and(idx, 1023, out=idx)
            units[at:at + m, 8 + k] = _PAIRS[idx]
    offsets = _offsets
    if len(offsets) < n + 1:
        offsets = np.arange(0, 26 * (n + 1), 26, dtype=np.int32)
        if n < _KEPT_OFFSETS:
            _offsets = offsets
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets[:n + 1]), pa.py_buffer(units)]
    )
