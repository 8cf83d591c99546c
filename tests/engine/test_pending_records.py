"""A port's records not yet converted (``Pending``, one per port for a run, kept by each of
its Table handles): appends through two handles, a replace between appends, a long list the
node changes after its append, a refused list, a failed run, a Table made in an imported
module (a fresh process per run, warm or not: nothing of one run's records reaches the next)."""
from __future__ import annotations

from typing import Any

MIXED = """
from patterns import Table
t = Table("items", "w")
other = Table("items", "w")
for i in range(5):
    t.append({"n": i})
t.replace([{"n": 100}])
for i in range(5):
    other.append({"n": 200 + i})
rows = [{"n": 1000 + i} for i in range(10_000)]
other.append(rows)
rows[0]["n"] = -5
t.append({"n": 5000})
"""


def test_appends_through_two_handles_around_a_replace_keep_their_order(app_runner: Any) -> None:
    app = app_runner({"mixed.py": MIXED}, ["items"])
    assert app.run_node("mixed").status == "succeeded"
    assert [r["n"] for r in app.rows("items")] == \
        [100, *range(200, 205), *range(1000, 11_000), 5000]


FAIL_THEN_OK = """
import os
from patterns import Table
t = Table("items", "w")
for i in range(7):
    t.append({"n": i})
flag = os.path.join(os.path.dirname(os.path.abspath(__file__)), "failed-once")
if not os.path.exists(flag):
    open(flag, "w").close()
    raise RuntimeError("first run fails")
"""


def test_a_failed_runs_pending_records_do_not_reach_the_next_run(app_runner: Any) -> None:
    app = app_runner({"f.py": FAIL_THEN_OK}, ["items"])
    assert app.run_node("f").status != "succeeded"
    assert app.run_node("f").status == "succeeded"
    assert [r["n"] for r in app.rows("items")] == list(range(7))


CAUGHT = """
from patterns import Table
from patterns.errors import NodeError
t = Table("items", "w")
rows = [{"n": i} for i in range(12_000)]
rows[5] = {"n": 0, "tags": {1}}
try:
    t.append(rows)
except NodeError:
    pass
rows[5] = {"n": 5}
t.append(rows)
"""


def test_a_refused_list_fixed_in_place_and_appended_again_lands_once(app_runner: Any) -> None:
    app = app_runner({"c.py": CAUGHT}, ["items"])
    assert app.run_node("c").status == "succeeded"
    assert [r["n"] for r in app.rows("items")] == list(range(12_000))


IMPORTING = """
from patterns import Table
declared = Table("items", "w")
import os, common
common.out.append({"pid": os.getpid()})
common.out.append([{"pid": -1}])
"""
COMMON = "from patterns import Table\nout = Table('items', 'w')\n"


def test_a_table_made_in_an_imported_module_writes_in_each_run(app_runner: Any) -> None:
    app = app_runner({"m.py": IMPORTING}, ["items"])
    (app.root / "common.py").write_text(COMMON)
    r1 = app.run_node("m")
    r2 = app.run_node("m")
    rows = app.rows("items")
    assert r1.status == r2.status == "succeeded"
    assert len(rows) == 4


def test_a_table_made_in_an_imported_module_writes_in_each_warm_run(tmp_path: Any) -> None:
    from patterns.engine.engine import Engine
    from patterns.engine.launcher import ProcessLauncher
    from patterns.graph.loader import load_app
    from tests.conftest import write_app
    root = write_app(tmp_path / "app", {"m.py": IMPORTING}, ["items"])
    (root / "common.py").write_text(COMMON)
    app = load_app(root)
    engine = Engine(app, launcher=ProcessLauncher(warm=True))
    try:
        recs = [engine.run_node(app.node("m.py"), "manual")[0] for _ in range(3)]
        rows = engine.store.arrow('SELECT pid FROM main."items" ORDER BY patterns_id').to_pylist()
        assert [r.status for r in recs] == ["succeeded"] * 3
        assert len(rows) == 6
    finally:
        engine.close()
