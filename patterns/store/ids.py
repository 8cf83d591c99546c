"""``patterns_id``: ULIDs assigned at commit, strictly increasing in commit order.

A ULID is 26 Crockford base32 characters: 48 bits of milliseconds then 80 random bits.
The store holds one :class:`UlidSequence` and takes every id from it while it holds the
commit lock, so ids grow in commit order across all tables, even when the clock stalls or
steps back (the sequence then keeps counting from its last id). Blocks of ids are made with
numpy, never one Python string per row.
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
    digits = [f"(strpos('{ALPHABET.decode()}', substr({column}, {i + 1}, 1)) - 1) * "
              f"{32 ** (9 - i)}" for i in range(10)]
    return "CAST(" + " + ".join(digits) + " AS BIGINT)"


def decode(text: str) -> int:
    value = 0
    for ch in text.upper():
        value = (value << 5) | _DECODE[ch]
    return value


class UlidSequence:
    """Hands out increasing blocks of ULIDs.

    The 80 random bits are split into a 30-bit high part fixed per millisecond and a 50-bit
    counter; a block of n ids is one prefix and n consecutive counters.
    """

    def __init__(self, after: str | None = None) -> None:
        self._ms = 0
        self._hi = 0
        self._next_low = 0
        if after:
            self.advance_past(after)

    def advance_past(self, ulid: str) -> None:
        """Make every later id greater than ``ulid`` (an id already stored)."""
        value = decode(ulid)
        ms, rand = value >> 80, value & ((1 << 80) - 1)
        hi, low = rand >> _LOW_BITS, rand & (_LOW_LIMIT - 1)
        if (ms, hi, low) >= (self._ms, self._hi, self._next_low):
            self._ms, self._hi, self._next_low = ms, hi, low + 1

    def block(self, n: int) -> pa.Array:
        """``n`` new ids, increasing, as an Arrow string array."""
        now = int(time.time() * 1000)
        if now > self._ms:
            self._ms = now
            self._hi = int.from_bytes(os.urandom(4), "big") >> 2
            self._next_low = int.from_bytes(os.urandom(7), "big") >> 7  # < 2**49
        if self._next_low + n >= _LOW_LIMIT:
            # This millisecond's counter is used up: move on to the next millisecond.
            self._ms += 1
            self._hi = 0
            self._next_low = 0
        start = self._next_low
        self._next_low += n
        prefix = encode(self._ms, 10) + encode(self._hi, 6)
        return _block_array(prefix.encode(), start, n)

    @property
    def ms(self) -> int:
        """The millisecond of the ids of the last block (every id of a block shares it)."""
        return self._ms

    def last(self) -> str | None:
        if self._ms == 0:
            return None
        return encode(self._ms, 10) + encode(self._hi, 6) + encode(self._next_low - 1, 10)


def _block_array(prefix: bytes, start: int, n: int) -> pa.Array:
    # Two characters at a time: the 10-character counter is 5 lookups of 10 bits each into
    # a table of the 1,024 two-character codes, written as 16-bit units.
    units = np.empty((n, 13), dtype=np.uint16)
    units[:, :8] = np.frombuffer(prefix, dtype=np.uint16)
    low = np.arange(start, start + n, dtype=np.int64)
    for k in range(5):
        units[:, 8 + k] = _PAIRS[(low >> (40 - 10 * k)) & 1023]
    offsets = np.arange(0, 26 * (n + 1), 26, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(units)]
    )
