"""The intake journal file on its own: records come back as written, offsets only grow (across
rotations and a lost file), a torn tail is dropped, the file is private, a full disk writes
nothing."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from patterns.errors import StoreError
from patterns.server.journal import Journal, encode, read_range


def test_records_come_back_with_growing_offsets_and_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / ".patterns" / "intake.journal"
    journal = Journal(path)
    ends = journal.append([encode("hook", "events", [{"n": 1}]),
                           encode("hook", "events", [{"n": 2, "s": "é\ud800"}])])
    more = journal.append([encode("other", "clicks", [{"n": 3}, {"n": 4}])])
    journal.close()
    assert ends[0] < ends[1] < more[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Journal(path)
    assert [(e.node_id, e.table, e.records, e.end) for e in again.entries] == [
        ("hook", "events", [{"n": 1}], ends[0]),
        ("hook", "events", [{"n": 2, "s": "é\ud800"}], ends[1]),
        ("other", "clicks", [{"n": 3}, {"n": 4}], more[0])]
    assert again.end == more[0]


def test_values_come_back_as_they_were_whichever_encoder_wrote_them(tmp_path: Path) -> None:
    # (orjson writes most records; json the ones it refuses: an int past 64 bits here)
    records = [{"big": 2**70, "neg": -(2**64), "f": -0.0, "tiny": 5e-324, "t": "é\U0001F600",
                "nested": {"a": [1, 2.5, None, True]}}, {"n": 1, "s": "x"}]
    journal = Journal(tmp_path / "intake.journal")
    journal.append([encode("hook", "events", records[:1]), encode("hook", "events",
                                                                   records[1:])])
    journal.close()
    again = [r for e in Journal(tmp_path / "intake.journal").entries for r in e.records]
    assert again == records and repr(again) == repr(records)


def test_a_torn_tail_is_dropped_and_writing_goes_on_after_the_last_whole_record(
        tmp_path: Path) -> None:
    path = tmp_path / "intake.journal"
    journal = Journal(path)
    (end,) = journal.append([encode("hook", "events", [{"n": 1}])])
    journal.close()
    whole = path.read_bytes()
    torn = encode("hook", "events", [{"n": 2}])
    for cut in (3, 8, len(torn) - 1):  # the length, the checksum, the payload cut short
        path.write_bytes(whole + torn[:cut])
        reopened = Journal(path)
        assert [e.records for e in reopened.entries] == [[{"n": 1}]]
        assert path.stat().st_size == len(whole)
        reopened.close()
    flipped = bytearray(whole + torn)
    flipped[-2] ^= 0xFF  # a whole record whose bytes are wrong
    path.write_bytes(bytes(flipped))
    reopened = Journal(path)
    assert [e.records for e in reopened.entries] == [[{"n": 1}]]
    (next_end,) = reopened.append([encode("hook", "events", [{"n": 3}])])
    reopened.close()
    assert next_end > end
    assert [e.records for e in Journal(path).entries] == [[{"n": 1}], [{"n": 3}]]


def test_rotation_keeps_what_is_not_committed_and_offsets_never_go_back(tmp_path: Path) -> None:
    path = tmp_path / "intake.journal"
    journal = Journal(path)
    ends = journal.append([encode("hook", "events", [{"n": i}]) for i in range(5)])
    journal.rotate(ends[2])  # the first three are committed
    assert [e.records[0]["n"] for e in Journal(path).entries] == [3, 4]
    assert journal.end == ends[-1]
    (after,) = journal.append([encode("hook", "events", [{"n": 5}])])
    assert after > ends[-1]
    journal.rotate(journal.end)
    journal.close()
    assert Journal(path).entries == [] and Journal(path).end == after
    path.unlink()  # lost: a new journal starts past what the store has committed
    assert Journal(path, floor=after).end == after


def test_syncs_in_several_threads_each_cover_what_was_written_before_they_began(
        tmp_path: Path) -> None:
    # (an acceptor fsyncs several groups at once; rotations wait for the syncs in flight)
    import threading

    journal = Journal(tmp_path / "intake.journal")
    lock = threading.Lock()
    written: list[int] = []
    cut = [0]
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(40):
                with lock:  # (an acceptor writes from its loop: one write at a time)
                    (end,) = journal.write([encode("hook", "events", [{"n": k * 100 + i}])])
                    written.append(k * 100 + i)
                assert journal.sync() >= end  # durable up to its own record at least
                if k == 0 and i % 10 == 9:
                    with lock:  # (all committed so far: the file is replaced meanwhile)
                        journal.rotate(journal.end)
                        cut.append(len(written))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    journal.close()
    again = Journal(tmp_path / "intake.journal")
    assert len(cut) == 5
    # what was not rotated away, once, in order
    assert [e.records[0]["n"] for e in again.entries] == written[cut[-1]:]
    assert again.end == journal.end


def test_a_cut_back_to_what_was_acknowledged_drops_records_synced_since(
        tmp_path: Path) -> None:
    # (an acceptor whose fsync failed refuses every unanswered request, even those another
    # thread's fsync covered meanwhile: none of them may stay to be folded later)
    journal = Journal(tmp_path / "intake.journal")
    (first,) = journal.append([encode("hook", "events", [{"n": 1}])])
    journal.append([encode("hook", "events", [{"n": 2}]), encode("hook", "events", [{"n": 3}])])
    journal.discard_unsynced(first)
    assert journal.end == first
    (again,) = journal.append([encode("hook", "events", [{"n": 4}])])
    journal.close()
    reopened = Journal(tmp_path / "intake.journal")
    assert [e.records for e in reopened.entries] == [[{"n": 1}], [{"n": 4}]]
    assert reopened.end == again


def test_a_file_that_is_not_a_journal_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "intake.journal"
    path.write_bytes(b"something else entirely")
    with pytest.raises(StoreError, match="is not an intake journal"):
        Journal(path)


def test_a_full_disk_writes_nothing_and_says_so(tmp_path: Path) -> None:
    # A child process whose files may not grow past 64 KiB: the append fails, the file is
    # cut back to what it held, and the next append that fits works.
    script = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        from patterns.errors import DiskFullError
        from patterns.server.journal import Journal, encode, read_range
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
        journal = Journal(Path({str(tmp_path / "intake.journal")!r}))
        journal.append([encode("hook", "events", [{{"n": 1}}])])
        size = journal.size()
        try:
            journal.append([encode("hook", "events", [{{"pad": "x" * 100000}}])])
        except DiskFullError as exc:
            print("refused:", exc)
        assert journal.size() == size
        journal.append([encode("hook", "events", [{{"n": 2}}])])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "refused: the disk of the intake journal" in done.stdout and "is full" in done.stdout
    entries = Journal(tmp_path / "intake.journal").entries
    assert [e.records for e in entries] == [[{"n": 1}], [{"n": 2}]]


def test_a_replayed_request_the_table_now_refuses_is_set_aside_never_dropped(
        tmp_path: Path) -> None:
    # The journal holds two acknowledged requests; since they were checked, their table got
    # an int column that the first one's text does not fit. The replay commits the second,
    # keeps the first in intake-rejected.jsonl (0600), and a second start does neither again.
    import json

    import pyarrow as pa

    from patterns.server.webhooks import OFFSET_KEY, WebhookIntake
    from patterns.store.duckdb import DuckDBStore
    from patterns.store.model import Checkpoint, TableOp

    folder = tmp_path / ".patterns"
    store = DuckDBStore(folder / "store.duckdb")
    try:
        store.commit(Checkpoint(run_id="r1", node_id="writer", ops={
            "events": [TableOp("append", data=pa.table({"amount": [1]}))]}))
        journal = Journal(folder / "intake.journal")
        ends = journal.append([encode("hook", "events", [{"amount": "lots"}]),
                               encode("hook", "events", [{"amount": 2}])])
        journal.close()
        for _ in range(2):
            intake = WebhookIntake(store, on_commit=lambda: None, folder=folder)
            intake.start()
            intake.settle(30)
            intake.stop()
        with store.read() as view:
            assert view.memory.state("hook")[OFFSET_KEY] == ends[-1]
        table = store.table("events")
        assert table is not None
        with store.read() as view:
            rows = view.scan(table).read_all()
        assert sorted(rows.column("amount").to_pylist()) == [1, 2]
    finally:
        store.close()
    rejected = folder / "intake-rejected.jsonl"
    lines = [json.loads(line) for line in rejected.read_text().splitlines()]
    assert [(x["table"], x["records"]) for x in lines] == [("events", [{"amount": "lots"}])]
    assert "field 'amount'" in lines[0]["error"]
    assert stat.S_IMODE(rejected.stat().st_mode) == 0o600
    assert Journal(folder / "intake.journal").entries == []  # rotated at stop


RESERVE = 64 * 1024


def wait_until(check: Any, what: str, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_reserved_journal_is_zero_filled_ahead_and_keeps_its_size(tmp_path: Path) -> None:
    # (an acceptor's segment: an fsync after each group then writes no new file size)
    path = tmp_path / "intake-a1.journal"
    journal = Journal(path, reserve=RESERVE)
    assert path.stat().st_size == RESERVE and set(path.read_bytes()[16:]) == {0}
    ends = journal.append([encode("hook", "events", [{"n": 1}]),
                           encode("hook", "events", [{"n": 2}])])
    assert path.stat().st_size == RESERVE  # written over the zeros, no size change
    size = journal.size()
    journal.close()
    again = Journal(path, reserve=RESERVE)
    assert [e.records for e in again.entries] == [[{"n": 1}], [{"n": 2}]]
    assert again.end == ends[-1] and again.size() == size
    (more,) = again.append([encode("hook", "events", [{"n": 3}])])
    again.close()
    assert more > ends[-1]
    plain = Journal(path)  # (the server opens a segment without a reserve to replay it)
    assert [e.records for e in plain.entries] == [[{"n": 1}], [{"n": 2}], [{"n": 3}]]
    assert plain.end == more
    plain.close()


def test_a_write_says_whether_it_made_the_file_longer(tmp_path: Path) -> None:
    # (an acceptor fsyncs on its loop a group that did not, in its helpers one that did)
    record = encode("hook", "events", [{"n": 1}])
    reserved = Journal(tmp_path / "intake-a1.journal", reserve=RESERVE)
    reserved.write([record])
    assert not reserved.grew  # (into the zeros)
    reserved.write([record] * ((RESERVE // len(record)) + 1))
    assert reserved.grew  # (past them)
    reserved.write([record])
    assert reserved.grew
    reserved.discard_unsynced(0)  # (a cut drops the zeros: the next write grows again)
    reserved.write([record])
    assert reserved.grew
    reserved.close()
    plain = Journal(tmp_path / "intake.journal")
    plain.write([record])
    assert plain.grew
    plain.close()


def test_a_torn_record_followed_by_zeros_is_cut_as_one_at_the_end_is(tmp_path: Path) -> None:
    path = tmp_path / "intake-a1.journal"
    journal = Journal(path, reserve=RESERVE)
    (end,) = journal.append([encode("hook", "events", [{"n": 1}])])
    whole = journal.size()
    journal.close()
    torn = encode("hook", "events", [{"n": 2, "pad": "x" * 50}])
    flipped = bytearray(torn)
    flipped[-2] ^= 0xFF  # a whole record whose bytes are wrong
    for bad in (torn[:3], torn[:8], torn[:-1], bytes(flipped)):
        with open(path, "r+b") as f:  # (in the zeros, as a crash mid-write leaves it)
            f.seek(whole)
            f.write(bad)
        reopened = Journal(path, reserve=RESERVE)
        assert [e.records for e in reopened.entries] == [[{"n": 1}]]
        assert reopened.end == end
        data = path.read_bytes()
        assert len(data) == RESERVE and set(data[whole:]) == {0}  # cut, zero-filled again
        reopened.close()
    # a shorter record written where a longer torn one was leaves none of its bytes behind
    reopened = Journal(path, reserve=RESERVE)
    (next_end,) = reopened.append([encode("hook", "events", [{"n": 3}])])
    reopened.close()
    assert next_end > end
    assert [e.records for e in Journal(path, reserve=RESERVE).entries] == [[{"n": 1}], [{"n": 3}]]


def test_a_rotation_takes_the_spare_zero_filled_in_advance(tmp_path: Path) -> None:
    path = tmp_path / "intake-a1.journal"
    journal = Journal(path, reserve=RESERVE)
    wait_until(journal.spare_ready, "the spare")
    ends = journal.append([encode("hook", "events", [{"n": i}]) for i in range(5)])
    journal.rotate(ends[2])  # the first three are committed
    assert path.stat().st_size == RESERVE  # the spare, renamed over the segment
    assert [e.records[0]["n"] for e in read_range(path, ends[2], ends[-1])] == [3, 4]
    wait_until(journal.spare_ready, "the next spare")
    assert path.with_name(path.name + ".spare").stat().st_size == RESERVE
    (after,) = journal.append([encode("hook", "events", [{"n": 5}])])
    assert path.stat().st_size == RESERVE and after > ends[-1]
    journal.rotate(after)
    journal.rotate(after)  # (no spare yet, or none needed: the file is written as before)
    journal.close()
    again = Journal(path, reserve=RESERVE)
    assert again.entries == [] and again.end == after
    again.close()
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_a_journal_given_a_reserve_later_is_zero_filled_from_its_next_rotation(
        tmp_path: Path) -> None:
    # (an acceptor's segment of an app whose first webhook came by a reload)
    path = tmp_path / "intake-a1.journal"
    journal = Journal(path)
    (first,) = journal.append([encode("hook", "events", [{"n": 1}])])
    assert path.stat().st_size == journal.size()  # no reserve: the file is its records
    journal.reserve_ahead(RESERVE)
    wait_until(journal.spare_ready, "the spare")
    (second,) = journal.append([encode("hook", "events", [{"n": 2}])])
    journal.rotate(first)
    assert path.stat().st_size == RESERVE
    assert [e.records for e in read_range(path, first, second)] == [[{"n": 2}]]
    journal.close()
    assert [e.records for e in Journal(path).entries] == [[{"n": 2}]]


def test_a_spare_is_not_left_behind_when_its_segment_is_opened_without_a_reserve(
        tmp_path: Path) -> None:
    # (a replay by the server, or an app whose webhooks went: 8 MB each, for good)
    path = tmp_path / "intake-a3.journal"
    spare = path.with_name(path.name + ".spare")
    journal = Journal(path, reserve=RESERVE)
    wait_until(journal.spare_ready, "the spare")
    journal.append([encode("hook", "events", [{"n": 1}])])
    journal.close()
    assert spare.stat().st_size == RESERVE
    plain = Journal(path)
    assert [e.records for e in plain.entries] == [[{"n": 1}]]
    assert not spare.exists()
    plain.close()
