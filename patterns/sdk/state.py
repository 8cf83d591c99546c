"""``State``: a small JSON document per node, committed with the run's checkpoints."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

from patterns.errors import NodeError
from patterns.sdk._context import node_run


class State:
    """The node's state: a dict that survives across runs.

    Changes commit with the run's checkpoints (atomically with its writes and stream
    positions); a failed run's changes since its last checkpoint are dropped.
    """

    def __init__(self) -> None:
        self._run = node_run()

    def get(self) -> dict[str, Any]:
        return copy.deepcopy(self._run.state())

    def set(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict):
            raise NodeError(f"State.set takes a dict, not a {type(state).__name__}")
        self._run.set_state(_jsonable(copy.deepcopy(state)))

    def get_value(self, key: str, default: Any = None) -> Any:
        return copy.deepcopy(self._run.state().get(key, default))

    def set_value(self, key: str, value: Any) -> None:
        self._run.state()[key] = _jsonable({key: value})[key]
        self._run.touch_state()

    def get_datetime(self, key: str, default: dt.datetime | None = None) -> dt.datetime | None:
        value = self._run.state().get(key)
        if value is None:
            return default
        if isinstance(value, dt.datetime):
            return value
        try:
            return dt.datetime.fromisoformat(str(value))
        except ValueError:
            return default

    def reset(self) -> None:
        self._run.set_state({})

    def should_continue(self, pct_of_limit: float | None = None,
                        seconds_till_limit: float | None = None) -> bool:
        """False once the run is near its time limit: past ``pct_of_limit`` of it (default
        80 %) or within ``seconds_till_limit`` of it (default 120 s), whichever comes first."""
        limit = self._run.info.time_limit_seconds
        left = self._run.seconds_left()
        elapsed = limit - left
        pct = 0.8 if pct_of_limit is None else pct_of_limit
        secs = 120.0 if seconds_till_limit is None else seconds_till_limit
        if pct_of_limit is not None and seconds_till_limit is None:
            return elapsed < pct * limit
        if seconds_till_limit is not None and pct_of_limit is None:
            return left > secs
        return elapsed < pct * limit and left > secs

    def request_new_run(self, trigger_downstream: bool = True,
                        wait_atleast_seconds: float | None = None) -> None:
        """Run this node again after this run commits (at the earliest after the delay)."""
        self._run.client.request_new_run(trigger_downstream, wait_atleast_seconds)


def _jsonable(doc: dict[str, Any]) -> dict[str, Any]:
    """State is stored as JSON: datetimes and dates become ISO strings; others must be JSON."""

    def default(v: Any) -> Any:
        if isinstance(v, (dt.datetime, dt.date)):
            return v.isoformat()
        raise TypeError(type(v).__name__)

    try:
        return dict(json.loads(json.dumps(doc, default=default)))
    except (TypeError, ValueError) as exc:
        raise NodeError(f"state values must be JSON (text, numbers, booleans, lists, dicts, "
                        f"datetimes): {exc} in {str(doc)[:80]}") from exc
