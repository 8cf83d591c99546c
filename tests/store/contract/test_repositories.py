"""Each repository of the platform metadata: runs, the queue, schedules, webhook tokens,
logs, a node's memory (state and stream positions) and the commit log."""

from __future__ import annotations

import datetime as dt

from patterns.positions import StreamPosition
from patterns.store.interface import Schedule, Store
from patterns.store.model import RunRecord
from tests.store.contract.conftest import append

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def run(run_id: str, node: str = "a", status: str = "succeeded", minute: int = 0,
        seen: int = 0) -> RunRecord:
    at = T0 + dt.timedelta(minutes=minute)
    return RunRecord(id=run_id, node_id=node, node_title=f"{node}.py", trigger="manual",
                     status=status, queued_at=at, started_at=at, seen_commit=seen,
                     parameters={"p": 1}, rows_read={"t": 2})


def test_runs(store: Store) -> None:
    with store.transaction() as tx:
        tx.runs.insert(run("01AAAA000000000000000XYZ01", "a", "succeeded", 0, seen=3))
        tx.runs.insert(run("01AAAA000000000000000XYZ02", "a", "failed", 1, seen=5))
        tx.runs.insert(run("01BBBB000000000000000QQQ03", "b", "running", 2))
    with store.read() as view:
        got = view.runs.get("01AAAA000000000000000XYZ01")
        assert got is not None and got.parameters == {"p": 1} and got.rows_read == {"t": 2}
        assert got.queued_at == T0
        assert view.runs.get("01BBBB") is not None  # the start of an id
        assert view.runs.get("QQQ03").id == "01BBBB000000000000000QQQ03"  # type: ignore[union-attr]
        assert view.runs.get("01AAAA") is None  # two runs start so: which one?
        assert view.runs.matching("01AAAA") == ["01AAAA000000000000000XYZ02",
                                                "01AAAA000000000000000XYZ01"]
        assert [r.id[-2:] for r in view.runs.recent()] == ["03", "02", "01"]
        assert [r.id[-2:] for r in view.runs.recent("a", 1)] == ["02"]
        assert [r.id[-2:] for r in view.runs.recent(None, 5, "succeeded")] == ["01"]
        assert [r.id[-2:] for r in view.runs.recent("b", 5, "succeeded")] == []
        assert {n: r.id[-2:] for n, r in view.runs.latest().items()} == {"a": "02", "b": "03"}
        assert view.runs.latest_status() == {"a": "failed", "b": "running"}
        assert view.runs.nodes_that_ran() == {"a", "b"}
        assert view.runs.seen_commits(succeeded_only=True) == {"a": 3}
        assert view.runs.seen_commits(succeeded_only=False) == {"a": 5}
    with store.transaction() as tx:
        assert tx.runs.update("01AAAA000000000000000XYZ01", status="failed", error="x",
                              rows_written={"out": 4})
        assert not tx.runs.update("NO-SUCH-RUN", status="failed")
        assert tx.runs.fail_running("the engine died", T0) == 1
        tx.runs.add_error(["01BBBB000000000000000QQQ03", "01AAAA000000000000000XYZ01"],
                          "; again")
    with store.read() as view:
        lost = view.runs.get("01BBBB000000000000000QQQ03")
        assert lost is not None and (lost.status, lost.error) == \
            ("failed", "the engine died; again")
        changed = view.runs.get("01AAAA000000000000000XYZ01")
        assert changed is not None and changed.rows_written == {"out": 4}
        assert changed.error == "x; again"


def test_the_queue(store: Store) -> None:
    with store.transaction() as tx:
        first = tx.queue.enqueue("a", "upstream", coalesce=True)
        assert first is not None
        assert tx.queue.enqueue("a", "upstream", coalesce=True) is None  # one waiting is enough
        later = tx.queue.enqueue("b", "retry", not_before=T0 + dt.timedelta(days=9999),
                                 attempt=2, parameters={"x": [1, 2]})
        assert later is not None
    with store.read() as view:
        items = view.queue.items()
    assert [(i.node_id, i.trigger) for i in items] == [("a", "upstream"), ("b", "retry")]
    assert items[1].attempt == 2 and items[1].parameters == {"x": [1, 2]}
    with store.transaction() as tx:
        tx.queue.mark_started(first.id, "RUN1")
        # started: new rows queue another run of the node
        assert tx.queue.enqueue("a", "upstream", coalesce=True) is not None
    with store.read() as view:
        assert [i.run_id for i in view.queue.items(started=True)] == ["RUN1"]
        assert len(view.queue.items(started=False)) == 2
    with store.transaction() as tx:
        interrupted = tx.queue.recover()  # after a crash
    assert [(i.id, i.run_id) for i in interrupted] == [(first.id, "RUN1")]
    with store.read() as view:
        assert view.queue.items(started=True) == []
    with store.transaction() as tx:
        tx.queue.mark_started(first.id, "RUN2")
        tx.queue.release(first.id)
        tx.queue.remove(later.id)
    with store.read() as view:
        assert {(i.node_id, i.run_id) for i in view.queue.items()} == {("a", None)}


def test_schedules(store: Store) -> None:
    with store.transaction() as tx:
        tx.schedules.set(Schedule("a", "*/5 * * * *", "UTC", T0))
        tx.schedules.set(Schedule("b", "0 * * * *", "Europe/Paris", T0))
        tx.schedules.set(Schedule("a", "*/5 * * * *", "UTC", T0 + dt.timedelta(minutes=5)))
    with store.read() as view:
        found = view.schedules.all()
    assert found["a"].next_fire == T0 + dt.timedelta(minutes=5)
    assert found["b"].timezone == "Europe/Paris"
    with store.transaction() as tx:
        tx.schedules.drop("b")
    with store.read() as view:
        assert set(view.schedules.all()) == {"a"}


def test_webhook_tokens(store: Store) -> None:
    with store.transaction() as tx:
        one = tx.webhooks.ensure_token("hook1")
        two = tx.webhooks.ensure_token("hook2")
    with store.transaction() as tx:
        assert tx.webhooks.ensure_token("hook1") == one  # made once, then kept
    assert len(one) >= 40 and one != two
    with store.read() as view:
        assert view.webhooks.tokens() == {"hook1": one, "hook2": two}


def test_logs(store: Store) -> None:
    with store.transaction() as tx:
        tx.logs.save("r1", "", False, first=True)  # nothing to keep
        tx.logs.save("r2", "line 1\n", False, first=True)
        tx.logs.save("r2", "line 1\nline 2\n", True)
    with store.read() as view:
        assert view.logs.get("r1") is None and not view.logs.exists("r1")
        assert view.logs.get("r2") == "line 1\nline 2\n" and view.logs.exists("r2")


def test_a_nodes_memory(store: Store) -> None:
    pos = StreamPosition(version=2, lo=None, hi="01H", v="2026-01-01", id="01G", done=False,
                         started=True, order_by="ts", kind="timestamp")
    with store.transaction() as tx:
        tx.memory.set_state("a", {"count": 3, "nested": {"x": [1, None]}})
        tx.memory.set_position("a", "t1", pos)
        tx.memory.set_position("a", "t2", StreamPosition(version=1))
        tx.memory.set_position("b", "t1", StreamPosition(version=1, gt=5))
    with store.read() as view:
        assert view.memory.state("a") == {"count": 3, "nested": {"x": [1, None]}}
        assert view.memory.positions("a") == {"t1": pos, "t2": StreamPosition(version=1)}
        assert view.memory.memory("a") == (view.memory.state("a"), view.memory.positions("a"))
        assert [(n, t) for n, t, _ in view.memory.all_positions()] == \
            [("a", "t1"), ("a", "t2"), ("b", "t1")]
    with store.transaction() as tx:
        assert tx.memory.reset_positions("a", "t2") == 1
        assert tx.memory.reset_positions("b") == 1
        tx.memory.set_state("a", None)
    with store.read() as view:
        assert view.memory.memory("a") == ({}, {"t1": pos})
        assert view.memory.positions("b") == {}


def test_the_commit_log(store: Store) -> None:
    start = store.last_commit()
    first = append(store, "t", [{"n": 1}], node="w1")
    append(store, "quiet", [{"n": 1}], node="w1", wakes=False)
    append(store, "u", [{"n": 1}], node="w2")
    assert store.last_commit() > first.seq > start
    with store.read() as view:
        since = view.commits.since(start)
        assert [(c.table, c.node_id) for c in since] == [("t", "w1"), ("u", "w2")]
        assert [c.table for c in view.commits.since(first.seq)] == ["u"]
        last = view.commits.last_per_table()
    assert set(last) == {"t", "quiet", "u"} and last["u"] >= last["t"]


def test_the_last_waking_commit_of_each_table_by_each_writer(store: Store) -> None:
    start = store.last_commit()
    append(store, "t", [{"n": 1}], node="w1")
    second = append(store, "t", [{"n": 2}], node="w1")
    by_w2 = append(store, "t", [{"n": 3}], node="w2")
    append(store, "t", [{"n": 4}], node="w2", wakes=False)  # (wakes nobody: not counted)
    other = append(store, "u", [{"n": 1}], node="w1")
    with store.read() as view:
        assert view.commits.last_by_writer(start) == \
            {("t", "w1"): second.seq, ("t", "w2"): by_w2.seq, ("u", "w1"): other.seq}
        assert view.commits.last_by_writer(by_w2.seq) == {("u", "w1"): other.seq}
        assert view.commits.last_by_writer(store.last_commit()) == {}


def test_runs_of_live_nodes_are_spared_and_an_item_starts_once(store: Store) -> None:
    with store.transaction() as tx:
        tx.runs.insert(run("RUN-A", "a", "running"))
        tx.runs.insert(run("RUN-B", "b", "running", 1))
        assert tx.runs.fail_running("lost", T0, except_nodes={"a"}) == 1  # a's engine lives
        item = tx.queue.enqueue("a", "manual")
        assert item is not None
        assert tx.queue.mark_started(item.id, "RUN-A")
        assert not tx.queue.mark_started(item.id, "RUN-C")  # another engine was first
    with store.read() as view:
        assert view.runs.latest_status() == {"a": "running", "b": "failed"}
        assert [i.run_id for i in view.queue.items()] == ["RUN-A"]


def test_leases(store: Store) -> None:
    """A store several processes write hands a lease to one holder at a time; a store of
    one process grants every lease and has none live."""
    with store.transaction() as tx:
        mine = tx.leases.acquire("node:a", "engine-1", 30)
        assert mine is not None and tx.leases.holds(mine)
        other = tx.leases.acquire("node:a", "engine-2", 30)
        live = [lease.name for lease in tx.leases.live("node:")]
    if store.capabilities.concurrent_processes:
        assert other is None and live == ["node:a"]
    else:
        assert other is not None and live == []

def test_a_position_moved_is_the_one_row_of_its_stream(store: Store) -> None:
    """A stream run's final checkpoint moves the node's position (an update in place): the
    position read back is the last one set, once, and the node's other positions and other
    nodes' are as they were; a position set to None is gone, and set again it is back."""
    with store.transaction() as tx:
        tx.memory.set_position("a", "t1", StreamPosition(version=1, hi="01A", done=True))
        tx.memory.set_position("a", "t2", StreamPosition(version=1, hi="01B", done=True))
        tx.memory.set_position("b", "t1", StreamPosition(version=1, hi="01C", done=True))
    for k, hi in enumerate(("01D", "01E", "01F")):
        with store.transaction() as tx:
            tx.memory.set_position("a", "t1", StreamPosition(version=2 + k, hi=hi, done=True))
    with store.read() as view:
        assert view.memory.positions("a") == {
            "t1": StreamPosition(version=4, hi="01F", done=True),
            "t2": StreamPosition(version=1, hi="01B", done=True)}
        assert [(n, t, p.hi) for n, t, p in view.memory.all_positions()] == \
            [("a", "t1", "01F"), ("a", "t2", "01B"), ("b", "t1", "01C")]
    with store.transaction() as tx:
        tx.memory.set_position("a", "t1", None)
    with store.read() as view:
        assert view.memory.positions("a") == {
            "t2": StreamPosition(version=1, hi="01B", done=True)}
    with store.transaction() as tx:
        tx.memory.set_position("a", "t1", StreamPosition(version=5, hi="01G", done=True))
    with store.read() as view:
        assert [(n, t, p.hi) for n, t, p in view.memory.all_positions()] == \
            [("a", "t1", "01G"), ("a", "t2", "01B"), ("b", "t1", "01C")]
