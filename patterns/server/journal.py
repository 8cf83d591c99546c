"""The webhook intake journal: where a request's records are made durable before its 2xx.

One file, ``.patterns/intake.journal`` (mode 0600): a 16-byte header (``PTNJRNL1`` and the
journal offset its first record starts at, a little-endian u64), then records, each a
length (u32), a CRC-32 of the payload (u32) and the payload (UTF-8 JSON: the webhook node,
its table and the request's records). A record's **offset** is where it ends, counted from
the start of the journal's life, not of the file: it only grows, across rotations and
restarts, so the store can keep "everything of node N up to offset X is committed" and a
replay skips exactly what was committed.

:meth:`Journal.write` writes a group of records with one ``write``; :meth:`Journal.sync`
makes everything written so far durable with one ``fdatasync``, while the next group may be
written meanwhile (group commit: requests arriving during an fsync ride on the next one). A record
cut short by a crash (a torn tail) fails its length or checksum check when the journal is
opened; it and anything after it are dropped and the file is cut back: it was never
acknowledged, since an acknowledgement waits for the fsync that covers the whole record.
:meth:`Journal.rotate` replaces the file by one holding only the records not yet committed
(written to a temporary file, fsync'd and renamed over, so a crash leaves one or the other).

A journal opened with a ``reserve`` (an acceptor's segment) is kept **zero-filled** that far
past its records, so an ``fdatasync`` after a group only flushes data: appending to a file
that grows makes each one also write the inode's new size (a second write on this disk: 25
to 85 % more CPU and about half as much again in latency per sync, bench/RESULTS.md, target
7's sixth pass). The zeros
are written, not ``fallocate``d (an unwritten extent needs a metadata change on its first
write, as PostgreSQL's WAL segments avoid too). A record's length is never 0, so the scan
stops at the first zero length exactly as at the end of the file; a torn record followed
by zeros is cut as a torn record at the end is (the file is cut back to the last whole
record, then zero-filled again). A rotation takes a spare file zero-filled in advance by a
thread (``intake-aK.journal.spare``), so neither the zeros nor their fsync are on the
request path; with no spare ready it writes the file as above and lets it grow. :attr:`Journal.grew`
says whether the last write made the file longer (an acceptor syncs a group that did not on
its event loop, one that did in its helpers: acceptor.py).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from patterns.errors import DiskFullError, StoreError
from patterns.server.bodies import has_long_number

MAGIC = b"PTNJRNL1"
_HEADER = struct.Struct("<8sQ")
_RECORD = struct.Struct("<II")
#: The largest payload a record may have (a webhook body is capped far below this).
MAX_PAYLOAD = 256 * 1024 * 1024
FILE_NAME = "intake.journal"
#: An acceptor process's own journal (a segment), named by the segment (``a1``, ``a2``...).
SEGMENT_GLOB = "intake-*.journal"
#: Longest a new server waits for an acceptor of a dead one to let go of its segment.
LOCK_WAIT = 10.0
_ZEROS = bytes(1 << 20)


class Entry(NamedTuple):
    """One journaled request: its records and where it starts and ends in the journal (a
    named tuple: the fold makes one per request, at a third of a frozen dataclass's cost)."""

    start: int
    end: int
    node_id: str
    table: str
    records: list[dict[str, Any]]


def encode(node_id: str, table: str, records: list[dict[str, Any]]) -> bytes:
    doc = {"n": node_id, "t": table, "r": records}
    try:  # (a tenth of json's time; the same JSON values)
        payload = orjson.dumps(doc)
    except orjson.JSONEncodeError:  # an int past 64 bits, a lone surrogate: json writes them
        payload = json.dumps(doc, separators=(",", ":"),
                             ensure_ascii=False).encode("utf-8", "surrogatepass")
    return _RECORD.pack(len(payload), zlib.crc32(payload)) + payload


class Journal:
    """The intake journal file; every method is safe to call from several threads."""

    def __init__(self, path: Path, floor: int = 0, reserve: int = 0) -> None:
        """Open (or create) the journal at ``path``. ``floor``: the highest offset the store
        has seen committed; a journal that was lost or deleted starts past it, so an old
        offset is never reused. ``reserve``: bytes kept zero-filled ahead (see above)."""
        self.path = path
        self.reserve = reserve
        self._spare_path = path.with_name(path.name + ".spare")
        self._spare_ready = threading.Event()
        self._spare_maker: threading.Thread | None = None
        self._lock = threading.Lock()  # the file's size and position
        self._sync_lock = threading.Lock()  # rotations, cuts and closing: one at a time
        self._idle = threading.Condition(self._lock)  # (notified as each sync ends)
        self._syncing = 0  # fdatasyncs in flight (several may be: see sync)
        #: whether the last write made the file longer (its fsync also writes the new size)
        self.grew = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.fchmod(self._fd, 0o600)
        self.base, self.entries, size = self._scan(floor)
        # (a crash may have left it half-written; and one opening without a reserve — a
        # replay, an app whose webhooks went — would leave its 8 MB behind for good)
        self._spare_path.unlink(missing_ok=True)
        if size < _HEADER.size:
            self._replace(floor, b"")
        else:
            os.ftruncate(self._fd, size)  # a torn tail goes (it was never acknowledged)
            # (whole records a killed process wrote but did not fsync are kept: made
            # durable now, before anything may commit them and record their offsets)
            with contextlib.suppress(OSError):
                os.fdatasync(self._fd)
            self._size = self._synced = size
            if self.end < floor and not self.entries:
                self._replace(floor, b"")
        if reserve:
            self._zero_fill()
            self._make_spare()
        self._length = os.fstat(self._fd).st_size  # (the file's, zeros included)

    @property
    def end(self) -> int:
        """The offset just past the last record."""
        return self.base + self._size - _HEADER.size

    def size(self) -> int:
        return self._size

    def reserve_ahead(self, reserve: int) -> None:
        """Keep the file zero-filled ``reserve`` bytes ahead from the next rotation on (a
        journal opened without a reserve)."""
        self.reserve = reserve
        self._make_spare()

    def spare_ready(self) -> bool:
        """Whether the next rotation has a zero-filled file ready (with a ``reserve``)."""
        return self._spare_ready.is_set()

    # ------------------------------------------------------------------ reading
    def _scan(self, floor: int) -> tuple[int, list[Entry], int]:
        """The header's base, the whole records, and the byte length they fill."""
        data = b""
        with open(self._fd, "rb", closefd=False) as f:
            data = f.read()
        if len(data) < _HEADER.size:
            return floor, [], 0
        magic, base = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise StoreError(f"{self.path} is not an intake journal (it starts with "
                             f"{data[:8]!r}); move it away and start again (records in it "
                             f"were never committed)")
        entries, pos = _parse(data, _HEADER.size, base - _HEADER.size)
        return base, entries, pos

    # ------------------------------------------------------------------ writing
    def append(self, records: list[bytes]) -> list[int]:
        """:meth:`write` and :meth:`sync`: ``records`` durable; their end offsets."""
        ends = self.write(records)
        try:
            self.sync()
        except StoreError:
            self.discard_unsynced()
            raise
        return ends

    def write(self, records: list[bytes]) -> list[int]:
        """Write ``records`` (from :func:`encode`) after the last ones, not yet durable
        (:meth:`sync`); their end offsets. On a failure nothing was written (the file is cut
        back) and a StoreError says why."""
        blob = b"".join(records)
        with self._lock:
            at = self._size
            try:
                written = os.pwrite(self._fd, blob, at)
                if written != len(blob):
                    raise OSError(errno.ENOSPC, "short write")
            except OSError as exc:
                with contextlib.suppress(OSError):  # (else a torn tail, dropped at open)
                    os.ftruncate(self._fd, at)
                self._length = at
                raise _journal_error(self.path, exc) from exc
            self._size = at + len(blob)
            self.grew = self._size > self._length
            self._length = max(self._length, self._size)
            ends, end = [], self.base + at - _HEADER.size
            for record in records:
                end += len(record)
                ends.append(end)
            return ends

    def sync(self) -> int:
        """Make everything written so far durable (one fdatasync, while more may be written
        meanwhile: group commit); the offset up to which the journal is now durable.

        Several threads may sync at once, each covering what was written before it began:
        a group written while another group's fsync is in flight need not wait for it (the
        disk serves overlapping flushes in about the time of one)."""
        with self._lock:
            self._syncing += 1
            size, end, fd = self._size, self.end, self._fd
        synced = False
        try:
            os.fdatasync(fd)
            synced = True
        except OSError as exc:
            raise _journal_error(self.path, exc) from exc
        finally:
            with self._lock:
                self._syncing -= 1
                if synced:
                    self._synced = max(self._synced, size)
                self._idle.notify_all()
        return end

    def fileno(self) -> int:
        """The file's descriptor, for a sync made elsewhere (:meth:`synced_elsewhere`)."""
        return self._fd

    def synced_elsewhere(self, size: int, error: OSError | None) -> None:
        """Note a sync of :meth:`fileno` made by another process (an acceptor's fsync helper)
        begun when the file was ``size`` bytes (:meth:`size`); the StoreError a failed one
        means. Not counted among the syncs :meth:`rotate` and :meth:`close` wait for: the
        caller does not rotate while one is in flight."""
        if error is not None:
            raise _journal_error(self.path, error)
        with self._lock:
            self._synced = max(self._synced, size)

    @contextlib.contextmanager
    def _alone(self) -> Iterator[None]:
        """Hold the file with no sync in flight (to cut, replace or close it)."""
        with self._sync_lock, self._lock:
            while self._syncing:
                self._idle.wait()
            yield

    def discard_unsynced(self, end: int | None = None) -> None:
        """Cut the file back to what the last successful :meth:`sync` covered (after a
        failed sync: those records were never acknowledged), or back to offset ``end`` if
        that is before it (what the caller acknowledged: syncs in other threads may have
        covered more, whose requests it refuses all the same)."""
        with self._alone():
            size = self._synced
            if end is not None:
                size = max(_HEADER.size, min(size, _HEADER.size + end - self.base))
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
            self._size = self._synced = self._length = size

    def rotate(self, keep_from: int) -> None:
        """Replace the file by one holding only the records from offset ``keep_from`` on
        (everything before it is committed to the store)."""
        with self._alone():
            if keep_from <= self.base:
                return
            tail = b""
            if keep_from < self.end:
                tail = os.pread(self._fd, self.end - keep_from,
                                _HEADER.size + keep_from - self.base)
            self._replace(keep_from, tail)

    def _replace(self, base: int, tail: bytes) -> None:
        spare = self._spare_ready.is_set()
        tmp = self._spare_path if spare else self.path.with_name(self.path.name + ".tmp")
        self._spare_ready.clear()
        fd = os.open(tmp, os.O_WRONLY if spare else os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        try:
            data = _HEADER.pack(MAGIC, base) + tail
            if os.pwrite(fd, data, 0) != len(data):
                raise OSError(errno.ENOSPC, "short write")
            sync = os.fdatasync if spare else os.fsync  # (a spare's size is durable)
            sync(fd)
        except OSError as exc:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise _journal_error(self.path, exc) from exc
        os.close(fd)
        os.replace(tmp, self.path)
        _sync_dir(self.path.parent)
        old, self._fd = self._fd, os.open(self.path, os.O_RDWR)
        os.close(old)
        self.base, self._size = base, _HEADER.size + len(tail)
        self._synced = self._size
        self._length = os.fstat(self._fd).st_size
        if self.reserve and self._spare_maker is not None:
            if spare:  # (its thread said ready as it ended: the next one must start)
                self._spare_maker.join()
            self._make_spare()

    def _zero_fill(self) -> None:
        """Write zeros from the last record to ``reserve`` bytes, durably (at open)."""
        at = self._size
        try:
            while at < self.reserve:
                at += os.pwrite(self._fd, _ZEROS[:self.reserve - at], at)
            os.fsync(self._fd)
        except OSError:  # (a full disk: the file grows as it is written, as without)
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)

    def _make_spare(self) -> None:
        """Zero-fill the next rotation's file in a thread, unless one is at it already."""
        if self._spare_maker is not None and self._spare_maker.is_alive():
            return
        self._spare_maker = threading.Thread(target=self._fill_spare, daemon=True,
                                             name="patterns-journal-spare")
        self._spare_maker.start()

    def _fill_spare(self) -> None:
        try:
            fd = os.open(self._spare_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError:
            return
        try:
            at = 0
            while at < self.reserve:
                at += os.write(fd, _ZEROS[:self.reserve - at])
            os.fsync(fd)
        except OSError:  # (a full disk: the rotation writes a file that grows)
            with contextlib.suppress(OSError):
                self._spare_path.unlink()
            return
        finally:
            os.close(fd)
        self._spare_ready.set()

    def close(self) -> None:
        with self._alone():
            os.close(self._fd)
        if self._spare_maker is not None:
            self._spare_maker.join()


def _parse(data: bytes, pos: int, shift: int) -> tuple[list[Entry], int]:
    """The whole records in ``data`` from byte ``pos`` on (offset = byte + ``shift``), and
    the byte just past the last of them.

    The payloads are checked one by one and then, unless one holds a number JSON may not
    fit in 64 bits, read by one ``orjson.loads`` of them joined into an array (half the
    cost of one call per record; the fold reads thousands at once)."""
    payloads, ends = _framed(data, pos)
    docs = _joined(payloads, data[pos:ends[-1]]) if len(payloads) > 1 else None
    if docs is None:
        docs = _each(payloads)
    entries: list[Entry] = []
    # (_each stops at a payload that does not read: its records end there)
    for doc, end in zip(docs, ends[:len(docs)], strict=True):
        entries.append(Entry(pos + shift, end + shift, str(doc["n"]), str(doc["t"]),
                             list(doc["r"])))
        pos = end
    return entries, pos


def _framed(data: bytes, pos: int) -> tuple[list[bytes], list[int]]:
    """The payloads of the whole records from byte ``pos`` on, and the byte each ends at:
    up to the first that is torn, fails its checksum, or is a zero-filled tail."""
    payloads: list[bytes] = []
    ends: list[int] = []
    while pos + _RECORD.size <= len(data):
        length, crc = _RECORD.unpack_from(data, pos)
        stop = pos + _RECORD.size + length
        if not length or length > MAX_PAYLOAD or stop > len(data):  # (0: a zero-filled tail)
            break
        payload = data[pos + _RECORD.size:stop]
        if zlib.crc32(payload) != crc:
            break
        payloads.append(payload)
        ends.append(stop)
        pos = stop
    return payloads, ends


def _joined(payloads: list[bytes], raw: bytes) -> list[Any] | None:
    """The payloads read by one ``orjson.loads``; None where that could read one otherwise
    than alone (a long number in ``raw``, their bytes) or fails (a lone surrogate)."""
    if has_long_number(raw):
        return None
    try:
        docs = orjson.loads(b"[" + b",".join(payloads) + b"]")
    except ValueError:  # (a lone surrogate, which json wrote: record by record)
        return None
    return docs if isinstance(docs, list) and len(docs) == len(payloads) else None


def _each(payloads: list[bytes]) -> list[Any]:
    """The payloads read one at a time, up to the first that does not read."""
    docs = []
    for payload in payloads:
        try:  # (orjson reads an int past 64 bits as a float: json reads those)
            doc = (orjson.loads(payload) if not has_long_number(payload)
                   else json.loads(payload.decode("utf-8", "surrogatepass")))
        except ValueError:  # (orjson's error is one: a lone surrogate, json wrote it)
            try:
                doc = json.loads(payload.decode("utf-8", "surrogatepass"))
            except ValueError:
                break
        docs.append(doc)
    return docs


def read_range(path: Path, start: int, end: int) -> list[Entry]:
    """The records between offsets ``start`` and ``end`` of the journal at ``path``, which
    another process writes (durable up to ``end``: it said so); a StoreError if they are
    not all there."""
    try:
        with open(path, "rb") as f:
            header = f.read(_HEADER.size)
            magic, base = _HEADER.unpack(header) if len(header) == _HEADER.size else (b"", 0)
            if magic != MAGIC or not base <= start <= end:
                raise StoreError(f"the intake journal {path} does not hold offsets {start} "
                                 f"to {end} (it starts at {base})")
            f.seek(_HEADER.size + start - base)
            data = f.read(end - start)
    except OSError as exc:
        raise _journal_error(path, exc) from exc
    entries, pos = _parse(data, 0, start)
    if pos != end - start:
        raise StoreError(f"the intake journal {path} is damaged between offsets "
                         f"{start + pos} and {end}")
    return entries


def segment_file(segment: str) -> str:
    return f"intake-{segment}.journal"


#: A segment's ``.end`` file: the offset up to which its acceptor has made it durable.
END = struct.Struct("<Q")


def end_file(segment: str) -> str:
    return f"intake-{segment}.end"


def durable_end(folder: Path, segment: str) -> int | None:
    """What a segment's acceptor last said it is durable up to (None: it never said)."""
    try:
        with open(folder / end_file(segment), "rb") as f:
            data = f.read(END.size)
    except OSError:
        return None
    return END.unpack(data)[0] if len(data) == END.size else None


def segment_of(path: Path) -> str:
    return path.name.removeprefix("intake-").removesuffix(".journal")


def take_segment_lock(folder: Path, segment: str, wait: float = LOCK_WAIT) -> int:
    """Hold the lock of a segment (one writer at a time: an acceptor for its life, the
    server while it replays); the file descriptor that holds it."""
    import fcntl
    import time

    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"intake-{segment}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise StoreError(f"the intake journal segment {segment} in {folder} is held "
                                 f"by another process (an acceptor of a server still "
                                 f"running?); stop it and start again") from None
            time.sleep(0.05)


@contextlib.contextmanager
def segment_lock(folder: Path, segment: str) -> Iterator[None]:
    fd = take_segment_lock(folder, segment)
    try:
        yield
    finally:
        os.close(fd)


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _journal_error(path: Path, exc: OSError) -> StoreError:
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return DiskFullError(f"the disk of the intake journal {path} is full "
                             f"({exc.strerror or exc})")
    return StoreError(f"the intake journal {path} could not be written "
                      f"({exc.strerror or exc})")
