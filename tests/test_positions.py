"""Stream positions cross the SDK, the wire and the store as JSON: they come back as they
went, positions stored by older versions (format 1, no ``format`` key) still read, and one
from a newer version is refused with what to do."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patterns import wire
from patterns.errors import StoreError
from patterns.positions import FORMAT, StreamPosition

ids = st.none() | st.text("0123456789ABCDEFGHJKMNPQRSTVWXYZ", min_size=26, max_size=26)
values = st.none() | st.integers(-2**53, 2**53) | st.text(max_size=20) | st.booleans() | \
    st.floats(allow_nan=False, allow_infinity=False)
positions = st.builds(StreamPosition, version=st.none() | st.integers(1, 10**6), lo=ids, hi=ids,
                      v=values, id=ids, done=st.booleans(), started=st.booleans(),
                      order_by=st.none() | st.text(min_size=1, max_size=10),
                      kind=st.none() | st.sampled_from(["int", "text", "timestamp"]),
                      floor=values, gt=values, after=values)


@given(positions)
def test_a_position_comes_back_as_it_went(pos: StreamPosition) -> None:
    assert StreamPosition.from_json(pos.to_json()) == pos
    through = json.loads(json.dumps(pos.to_json()))  # as the store keeps it
    assert StreamPosition.from_json(through) == pos
    assert StreamPosition.from_json(wire.decode(wire.encode(pos.to_json()))) == pos
    assert pos.to_json()["format"] == FORMAT


def test_positions_stored_by_older_versions_still_read() -> None:
    old = {"version": 3, "lo": "01A", "hi": "01B", "v": "2024-01-01T00:00:00", "id": "01AB",
           "done": False, "started": True, "order_by": "ts", "kind": "timestamp",
           "floor": None}
    pos = StreamPosition.from_json(old)
    assert (pos.version, pos.hi, pos.v, pos.done, pos.started, pos.order_by) == \
        (3, "01B", "2024-01-01T00:00:00", False, True, "ts")
    assert StreamPosition.from_json({"after": 5}) == StreamPosition.seek(5)  # a seek
    assert StreamPosition.from_json({"version": 1, "lo": None, "hi": None, "done": True,
                                     "gt": 7}).gt == 7


def test_a_position_from_a_newer_version_says_to_upgrade() -> None:
    with pytest.raises(StoreError, match=r"newer than this version.*upgrade Patterns"):
        StreamPosition.from_json({"format": FORMAT + 1, "version": 1})
    with pytest.raises(StoreError, match=r"does not know \(wobble\).*patterns stream reset"):
        StreamPosition.from_json({"version": 1, "wobble": 2})


def test_moves_keep_the_pass() -> None:
    pos = StreamPosition(version=1, lo=None, hi="01Z", done=False, order_by="ts")
    import datetime as dt

    moved = pos.delivered("01C", dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    assert (moved.started, moved.id, moved.v) == (True, "01C", "2026-01-02T00:00:00+00:00")
    assert moved.finished().done and moved.finished().hi == "01Z"
