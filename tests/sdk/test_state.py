"""State: the document, its conversions, and should_continue's margins."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from patterns import State
from patterns.errors import NodeError


@pytest.fixture
def app(app_runner: Any) -> Any:
    return app_runner({"s.py": "from patterns import State\nState()\n"}, [])


def test_state_methods_round_trip(app: Any) -> None:
    with app.sdk("s"):
        s = State()
        s.set({"a": 1, "nested": {"b": [1, 2]}})
        s.set_value("when", dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC))
        got = s.get()
        got["a"] = 99  # a copy: changing it does not change the state
        assert s.get_value("a") == 1 and s.get_value("missing", "d") == "d"
        assert s.get_datetime("when") == dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
        with pytest.raises(NodeError, match="JSON"):
            s.set_value("bad", {1, 2})
    with app.sdk("s"):
        s = State()
        assert s.get()["nested"] == {"b": [1, 2]}
        s.reset()
    with app.sdk("s"):
        assert State().get() == {}


def test_should_continue_margins(app: Any) -> None:
    with app.sdk("s") as run:  # the test session's limit is 600 s, just started
        s = State()
        assert s.should_continue()
        assert not s.should_continue(pct_of_limit=0.0)
        assert s.should_continue(pct_of_limit=0.5)
        assert not s.should_continue(seconds_till_limit=600)
        assert s.should_continue(seconds_till_limit=10)
        run.info = type(run.info)(**{**run.info.__dict__, "started_at":
                                     run.info.started_at - 481})
        assert not s.should_continue()  # past 80 % of 600 s
        assert s.should_continue(pct_of_limit=0.9, seconds_till_limit=60)
