"""Inserting a run's appended rows before its checkpoint: a measurement, not a benchmark.

``python -m bench.early_insert [ROUNDS] [PART] [VARIANTS]`` (variants such as
``commit:now,commit:b``; all by default; ``python -m bench.early_insert hazards`` prints
what variant ``a`` meets in DuckDB's snapshot isolation) measures, on a DuckDB file laid
out as the store lays out a table version (``patterns_id`` ZSTD text, the hidden block key,
the benchmark records' eight columns) already holding 1M rows, the CPU (``getrusage``:
DuckDB's threads included) and wall time of adding 1M more rows in three ways:

- ``now``: what a commit does today: a block of ids, then one ``INSERT`` of the rows with
  their ids, committed (``store.commit``'s core, ``tables.TableWriter._insert``).
- ``a``: the parts (``PART`` rows each) inserted into one transaction opened early, with a
  placeholder id (the id's counter) and key (-1); at the commit one ``UPDATE`` puts the
  block's prefix before each placeholder and sets the key, then ``COMMIT``.
- ``b``: each part inserted and committed at once, hidden (key = a negative marker); at the
  commit one ``UPDATE`` of the marked rows gives prefix and key.

Then the same as a whole ``append(list)`` (``overlap``): the main thread converts 1M
records with ``pyarrow.Table.from_pylist`` a part at a time (holding the GIL, as the node's
conversion does) while, for ``a`` and ``b``, a thread inserts each converted part (DuckDB
releases the GIL), for ``a`` into the one open transaction; ``now`` converts everything and
then inserts. ``two`` is the same with the node in a process of its own, its parts sent
over a pipe as Arrow IPC streams (the layout of a real run). Each line prints the phases'
wall and CPU. bench/RESULTS.md, "targets 1, 2, 8, fourth pass", has the figures.
"""

from __future__ import annotations

import os
import queue
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

N = 1_000_000
SELECT = "id, name, email, score, active, country, visits, to_json(address)"


def cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


class Phase:
    """Wall and CPU of a block of code, kept under ``label`` in ``into``."""

    def __init__(self, into: dict[str, tuple[float, float]], label: str) -> None:
        self.into, self.label = into, label

    def __enter__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), cpu()

    def __exit__(self, *exc: object) -> None:
        self.into[self.label] = (time.perf_counter() - self.wall, cpu() - self.cpu)


def fresh(folder: str) -> tuple[Any, Any]:
    """A table version as the store makes it, holding 1M committed rows, and its ids."""
    import duckdb

    from bench.records import arrow_table
    from patterns.store.ids import UlidSequence

    path = os.path.join(folder, "early.db")
    for stale in (path, path + ".wal"):
        if os.path.exists(stale):
            os.remove(stale)
    con = duckdb.connect(path)
    con.execute("CREATE TABLE t (patterns_id VARCHAR USING COMPRESSION zstd NOT NULL, "
                "_patterns_id_ms BIGINT NOT NULL, id BIGINT, name VARCHAR, email VARCHAR, "
                "score DOUBLE, active BOOLEAN, country VARCHAR, visits BIGINT, address JSON)")
    ids = UlidSequence()
    first = arrow_table(0, N).combine_chunks().append_column("__pid", ids.block(N))
    con.register("first", first)
    con.execute(f"INSERT INTO t SELECT __pid, {ids.key}, {SELECT} FROM first")
    con.unregister("first")
    con.execute("CHECKPOINT")
    return con, ids


def placeholders(n: int) -> Any:
    """The 10-character counters of a block of ``n`` ids (its prefix comes at the commit)."""
    import pyarrow.compute as pc

    from patterns.store.ids import UlidSequence

    return pc.utf8_slice_codeunits(UlidSequence().block(n), 16)


def insert_now(con: Any, ids: Any, data: Any) -> None:
    con.register("rows", data.append_column("__pid", ids.block(data.num_rows)))
    con.execute("BEGIN")
    con.execute(f"INSERT INTO t SELECT __pid, {ids.key}, {SELECT} FROM rows")
    con.execute("COMMIT")
    con.unregister("rows")


def insert_part(cur: Any, part: Any, counters: Any, marker: int) -> None:
    cur.register("part", part.append_column("__sfx", counters))
    cur.execute(f"INSERT INTO t SELECT __sfx, {marker}, {SELECT} FROM part")
    cur.unregister("part")


def give_ids(cur: Any, ids: Any, marker: int, n: int) -> None:
    ids.block(n)
    prefix = (ids.last() or "")[:16]
    cur.execute(f"UPDATE t SET patterns_id = '{prefix}' || patterns_id, _patterns_id_ms = "
                f"{ids.key} WHERE _patterns_id_ms = {marker}")


def in_order(con: Any) -> bool:
    """Every id greater than the one before it, in storage order (what reads rely on)."""
    found = con.execute("SELECT count(*) FROM (SELECT patterns_id < lag(patterns_id) OVER "
                        "(ORDER BY rowid) AS back FROM t) WHERE back").fetchall()
    return int(found[0][0]) == 0


def commit_costs(variant: str, part_rows: int, folder: str) -> dict[str, tuple[float, float]]:
    from bench.records import arrow_table

    data = arrow_table(N, N).combine_chunks()
    parts = [data.slice(at, part_rows) for at in range(0, N, part_rows)]
    counters = placeholders(N)
    con, ids = fresh(folder)
    phases: dict[str, tuple[float, float]] = {}
    if variant == "now":
        with Phase(phases, "commit"):
            insert_now(con, ids, data)
    else:
        cur = con.cursor()
        marker = -1 if variant == "a" else -7
        with Phase(phases, "early parts"):
            if variant == "a":
                cur.execute("BEGIN")
            for at, part in zip(range(0, N, part_rows), parts, strict=True):
                insert_part(cur, part, counters.slice(at, part.num_rows), marker)
        with Phase(phases, "commit"):
            if variant == "b":
                cur.execute("BEGIN")
            give_ids(cur, ids, marker, N)
            cur.execute("COMMIT")
    with Phase(phases, "CHECKPOINT"):
        con.execute("CHECKPOINT")
    assert in_order(con)
    con.close()
    return phases


def overlap(variant: str, part_rows: int, records: list[dict[str, Any]], folder: str
            ) -> dict[str, tuple[float, float]]:
    import pyarrow as pa

    con, ids = fresh(folder)
    phases: dict[str, tuple[float, float]] = {}
    if variant == "now":
        with Phase(phases, "convert"):
            data = pa.concat_tables([pa.Table.from_pylist(records[at:at + part_rows])
                                     for at in range(0, N, part_rows)])
        with Phase(phases, "commit"):
            insert_now(con, ids, data)
    else:
        counters = placeholders(N)
        waiting: queue.Queue[tuple[int, Any] | None] = queue.Queue()
        cur = con.cursor()

        marker = -1 if variant == "a" else -7
        if variant == "a":
            cur.execute("BEGIN")

        def inserts() -> None:
            while (item := waiting.get()) is not None:
                insert_part(cur, item[1], counters.slice(item[0], item[1].num_rows), marker)

        inserter = threading.Thread(target=inserts)
        inserter.start()
        with Phase(phases, "convert"):
            for at in range(0, N, part_rows):
                waiting.put((at, pa.Table.from_pylist(records[at:at + part_rows])))
        with Phase(phases, "commit"):
            waiting.put(None)
            inserter.join()
            if variant == "b":
                cur.execute("BEGIN")
            give_ids(cur, ids, marker, N)
            cur.execute("COMMIT")
    assert in_order(con)
    con.close()
    return phases


def _node(part_rows: int, out: int) -> None:
    """The node's side of ``two``: convert 1M records a part at a time, each part sent as an
    Arrow IPC stream on ``out`` as soon as it is converted."""
    import pyarrow as pa

    from bench.records import record_list

    records = record_list(0, N)
    with os.fdopen(out, "wb") as pipe:
        pipe.write(f"{time.monotonic()!r}\n".encode())
        for at in range(0, N, part_rows):
            part = pa.Table.from_pylist(records[at:at + part_rows])
            with pa.ipc.new_stream(pipe, part.schema) as writer:
                writer.write_table(part)
            pipe.flush()


def two_processes(variant: str, part_rows: int, folder: str) -> dict[str, tuple[float, float]]:
    """``overlap`` with the node in a process of its own (as it is): the engine's side
    reads each part from a pipe and, for ``a``, inserts it at once into its early
    transaction. Phases: ``node`` from its first conversion to its last part read here
    (wall; CPU of this process), ``commit`` after it."""
    import multiprocessing

    import pyarrow as pa

    con, ids = fresh(folder)
    read, write = os.pipe()
    node = multiprocessing.get_context("fork").Process(target=_node, args=(part_rows, write))
    node.start()
    os.close(write)
    phases: dict[str, tuple[float, float]] = {}
    cur = con.cursor()
    counters = placeholders(N)
    with os.fdopen(read, "rb") as pipe:
        began = float(pipe.readline())
        c0 = cpu()
        parts, at = [], 0
        if variant == "a":
            cur.execute("BEGIN")
        while at < N:
            part = pa.ipc.open_stream(pipe).read_all()
            if variant == "a":
                insert_part(cur, part, counters.slice(at, part.num_rows), -1)
            else:
                parts.append(part)
            at += part.num_rows
        phases["node"] = (time.monotonic() - began, cpu() - c0)
    node.join()
    with Phase(phases, "commit"):
        if variant == "a":
            give_ids(cur, ids, -1, N)
            cur.execute("COMMIT")
        else:
            insert_now(con, ids, pa.concat_tables(parts))
    assert in_order(con)
    con.close()
    return phases


def show(kind: str, variant: str, phases: dict[str, tuple[float, float]]) -> None:
    wall = sum(w for label, (w, _) in phases.items() if label != "CHECKPOINT")
    parts = "  ".join(f"{label} {w:.2f}/{c:.2f}" for label, (w, c) in phases.items())
    print(f"{kind:8s} {variant:3s} {parts}  (wall/cpu s; wall before CHECKPOINT {wall:.2f}; "
          f"load {os.getloadavg()[0]:.1f})", flush=True)


def hazards(folder: str) -> None:
    """What a transaction opened early meets at its commit, when another transaction
    committed meanwhile (DuckDB is snapshot-isolated): printed, one line each."""
    import duckdb

    con = duckdb.connect(os.path.join(folder, "hazards.db"))
    con.execute("CREATE TABLE tables_ (name VARCHAR, last_id VARCHAR)")
    con.execute("INSERT INTO tables_ VALUES ('t', 'a')")
    con.execute("CREATE TABLE runs (id VARCHAR, status VARCHAR)")
    con.execute("CREATE TABLE data (x INT)")
    early, other = con.cursor(), con.cursor()
    early.execute("BEGIN")
    early.execute("INSERT INTO data SELECT range FROM range(1000)")
    other.execute("UPDATE tables_ SET last_id = 'b' WHERE name = 't'")
    other.execute("INSERT INTO runs VALUES ('r1', 'running')")
    print("a run record inserted meanwhile, updated by the early transaction: rows",
          early.execute("UPDATE runs SET status = 'done' WHERE id = 'r1'").fetchall())
    print("a table row updated meanwhile, read by it:",
          early.execute("SELECT last_id FROM tables_").fetchall())
    for what, sql in (("CHECKPOINT meanwhile", None),
                      ("its UPDATE of that table row", "UPDATE tables_ SET last_id = 'c'")):
        try:
            (other if sql is None else early).execute(sql or "CHECKPOINT")
            print(what, "ok")
        except duckdb.Error as exc:
            print(what, "->", str(exc).splitlines()[0][:120])
    early.execute("ROLLBACK")
    early.execute("BEGIN")
    early.execute("INSERT INTO data SELECT range FROM range(10)")
    other.execute("ALTER TABLE data ADD COLUMN y INT")  # (another run's new field)
    try:
        early.execute("COMMIT")
        print("its COMMIT after another transaction altered the table: ok")
    except duckdb.Error as exc:
        print("its COMMIT after another transaction altered the table ->",
              str(exc).splitlines()[0][:120])
    con.close()


def main(argv: list[str]) -> None:
    from bench.records import record_list

    if argv[:1] == ["hazards"]:
        with tempfile.TemporaryDirectory() as folder:
            hazards(folder)
        return

    rounds = int(argv[0]) if argv else 2
    part_rows = int(argv[1]) if len(argv) > 1 else 100_000
    records = record_list(0, N)
    with tempfile.TemporaryDirectory() as folder:
        steps: list[tuple[str, str, Callable[[], dict[str, tuple[float, float]]]]] = []
        for variant in ("now", "a", "b"):
            steps.append(("commit", variant,
                          lambda v=variant: commit_costs(v, part_rows, folder)))
        for variant in ("now", "a"):
            steps.append(("two", variant,
                          lambda v=variant: two_processes(v, part_rows, folder)))
        for variant in ("now", "a", "b"):
            steps.append(("overlap", variant,
                          lambda v=variant: overlap(v, part_rows, records, folder)))
        chosen = set(argv[2].split(",")) if len(argv) > 2 else None
        for _ in range(rounds):
            for kind, variant, step in steps:
                if chosen is not None and f"{kind}:{variant}" not in chosen:
                    continue
                show(kind, variant, step())


if __name__ == "__main__":
    main(sys.argv[1:])
