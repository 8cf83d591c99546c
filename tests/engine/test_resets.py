"""A reset of a node's state (``patterns state reset``) asked of a running engine while a
run of the node starts: the reset is not refused as busy, neither waits for the other for
ever (the reset holds the engine's run starts while it waits for the store's commit lock),
and the run counts from the reset state. (Registering a run waits for a reset being
written, so a run never reads the state from before a reset and commits over it; the
window between the reset's check and its write is too short to force from a test.)"""

from __future__ import annotations

import threading
from typing import Any

from patterns.engine.door import EngineDoor
from tests.conftest import wait_for


def test_a_run_starting_during_a_state_reset_reads_the_reset_state(app_runner: Any) -> None:
    app = app_runner({"count.py": """
        from patterns import State
        s = State()
        s.set_value("n", s.get_value("n", 0) + 1)
    """}, [])
    engine, node = app.engine, app.app.node("count")
    for _ in range(2):
        assert engine.run_node(node, "manual")[0].status == "succeeded"
    assert app.state(node.id)["n"] == 2

    answers: list[Any] = []
    records: list[Any] = []
    reset = threading.Thread(target=lambda: answers.append(
        EngineDoor(engine.announced).call("reset_state", node_id=node.id)))
    run = threading.Thread(target=lambda: records.append(engine.run_node(node, "manual")[0]))
    with engine.store.commit_lock:  # the reset's write waits here, after its check
        reset.start()
        wait_for(engine._starts.locked, "the reset to check that the node is idle")
        run.start()
    reset.join(60)
    run.join(60)
    assert answers == [{}]  # (not {"busy": ...}: no run of the node was in progress)
    assert records[0].status == "succeeded"
    assert app.state(node.id)["n"] == 1  # the run counted from the reset state
