"""Python's cyclic garbage collector held off while many objects are made at once.

Making thousands of dicts (a batch's records, a journal's requests) sets the collector off
every 700 allocations, to rescan them all again — half the time of reading a million rows,
and full collections of a server's whole heap. They are freed by their counts all the
same; the collector runs as usual once the block ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def held() -> Iterator[None]:
    """The collector off for the block, unless it is off already (then whoever turned it
    off turns it back on)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
