"""The platform metadata's repositories on PostgreSQL."""

from __future__ import annotations

import datetime as dt

from patterns.store.interface import Schedule
from patterns.store.model import RunRecord
from patterns.store.postgres import PostgresStore
from tests.store.postgres.conftest import append, commit

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _run(run_id: str, node: str, status: str, minute: int, seen: int = 0) -> RunRecord:
    return RunRecord(id=run_id, node_id=node, node_title=node.title(), trigger="manual",
                     status=status, queued_at=T0 + dt.timedelta(minutes=minute),
                     parameters={"p": 1}, seen_commit=seen, rows_written={"t": 3})


def test_runs(pg_store: PostgresStore) -> None:
    with pg_store.transaction() as tx:
        tx.runs.insert(_run("01AAA111", "load", "succeeded", 1, seen=4))
        tx.runs.insert(_run("01BBB222", "load", "running", 2))
        tx.runs.insert(_run("01CCC333", "report", "failed", 3, seen=2))
        assert tx.runs.update("01BBB222", status="succeeded", rows_read={"src": 9}, seen_commit=7)
        assert not tx.runs.update("nope", status="failed")
    with pg_store.read() as view:
        got = view.runs.get("01BBB222")
        assert got is not None and got.rows_read == {"src": 9} and got.parameters == {"p": 1}
        assert view.runs.get("CCC333").id == "01CCC333"  # type: ignore[union-attr]
        assert view.runs.get("01") is None  # (ambiguous)
        assert view.runs.matching("01") == ["01CCC333", "01BBB222", "01AAA111"]
        assert [r.id for r in view.runs.recent(node_id="load")] == ["01BBB222", "01AAA111"]
        assert [r.id for r in view.runs.recent(status="failed")] == ["01CCC333"]
        assert view.runs.latest_status() == {"load": "succeeded", "report": "failed"}
        assert view.runs.nodes_that_ran() == {"load", "report"}
        assert view.runs.seen_commits(succeeded_only=True) == {"load": 7}
        assert view.runs.seen_commits(succeeded_only=False) == {"load": 7, "report": 2}
    with pg_store.transaction() as tx:
        tx.runs.insert(_run("01DDD444", "report", "running", 4))
        assert tx.runs.fail_unfinished("engine stopped", T0) == ["01DDD444"]
        tx.runs.add_error(["01DDD444", "01CCC333"], "and more")
    with pg_store.read() as view:
        assert view.runs.get("01DDD444").error == "engine stopped; and more"  # type: ignore[union-attr]
        assert view.runs.get("01CCC333").error == "and more"  # type: ignore[union-attr]


def test_queue_schedules_webhooks_logs(pg_store: PostgresStore) -> None:
    with pg_store.transaction() as tx:
        first = tx.queue.enqueue("load", "cron", parameters={"day": 1})
        assert first is not None
        assert tx.queue.enqueue("load", "commit", coalesce=True) is None
        second = tx.queue.enqueue("report", "manual", not_before=T0)
        assert second is not None
        tx.queue.mark_started(first.id, "run-1")
        assert [i.id for i in tx.queue.items(started=False)] == [second.id]
        tx.schedules.set(Schedule("load", "0 * * * *", "UTC", T0))
        tx.schedules.set(Schedule("load", "5 * * * *", "UTC", T0))
        token = tx.webhooks.ensure_token("hook")
        assert tx.webhooks.ensure_token("hook") == token and len(token) > 30
        tx.logs.save("run-1", "", False, first=True)
        assert tx.logs.get("run-1") is None
        tx.logs.save("run-1", "line 1\n", False)
        tx.logs.save("run-1", "line 1\nline 2\n", True)
    with pg_store.transaction() as tx:  # after a crash: the started item waits again
        recovered = tx.queue.recover()
        assert [(i.id, i.run_id, i.parameters) for i in recovered] == [
            (first.id, "run-1", {"day": 1})]
        assert {i.id for i in tx.queue.items(started=False)} == {first.id, second.id}
        tx.queue.remove(second.id)
        tx.schedules.drop("nothing")
    with pg_store.read() as view:
        assert [i.node_id for i in view.queue.items()] == ["load"]
        assert view.schedules.all() == {"load": Schedule("load", "5 * * * *", "UTC", T0)}
        assert view.webhooks.tokens() == {"hook": token}
        assert view.logs.get("run-1") == "line 1\nline 2\n"


def test_memory_and_commits(pg_store: PostgresStore) -> None:
    with pg_store.transaction() as tx:
        tx.memory.set_state("n", {"cursor": 5})
        tx.memory.set_state("n", {"cursor": 6})
        tx.memory.set_position("n", "a", {"version": 1, "hi": "X"})
        tx.memory.set_position("n", "b", {"version": 2})
        tx.memory.set_position("m", "a", {"version": 1})
    with pg_store.read() as view:
        assert view.memory.memory("n") == ({"cursor": 6}, {"a": {"version": 1, "hi": "X"},
                                                           "b": {"version": 2}})
        assert [(n, t) for n, t, _ in view.memory.all_positions()] == [
            ("m", "a"), ("n", "a"), ("n", "b")]
    with pg_store.transaction() as tx:
        assert tx.memory.reset_positions("n", "a") == 1
        assert tx.memory.reset_positions("n") == 1
        tx.memory.set_state("n", None)
    with pg_store.read() as view:
        assert view.memory.state("n") == {} and view.memory.positions("n") == {}
    one = commit(pg_store, "a", append({"x": [1]}), node_id="load")
    commit(pg_store, "b", append({"x": [1]}), node_id="quiet", wakes=False)
    three = commit(pg_store, "b", append({"x": [2]}), node_id="load")
    with pg_store.read() as view:
        since = view.commits.since(0)
        assert [(c.seq, c.table, c.node_id) for c in since] == [
            (one.seq, "a", "load"), (three.seq, "b", "load")]
        assert view.commits.since(one.seq)[0].seq == three.seq
        assert set(view.commits.last_per_table()) == {"a", "b"}
        assert [m.name for m in view.tables.all()] == ["a", "b"]
        meta = view.tables.get("b")
        assert meta is not None and view.tables.count(meta) == 2
