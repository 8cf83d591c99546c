"""Running SQL nodes (and ``execute_sql``) inside the engine: no process, no data plane.

A SQL node's template is rendered in the sandbox (``Table()`` gives the table's SQL name,
``Parameter()`` a placeholder bound to its value), split into statements, checked (only the
node's declared tables; writes only to its ``"w"`` tables) and translated to the store's
dialect. Every statement becomes a staged :class:`~patterns.store.model.SqlWrite`, and one
checkpoint commits them all in one transaction, in order:

- a bare SELECT makes a new version of the node's output table (port ``output_table``);
- INSERT, UPDATE, DELETE, TRUNCATE, CREATE TABLE, ALTER TABLE ... ADD COLUMN change a
  table the node declared with ``Table("t", "w")``.

The run is recorded like any other (status, rows written, output lines, error).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlglot  # noqa: F401  (whole, first: see sql_translate)
import sqlglot.expressions as exp

from patterns.engine.launcher import Exit
from patterns.engine.sql_scope import bind_tables
from patterns.engine.sql_translate import (
    Source,
    Statement,
    integer_division,
    is_query,
    postgres_names,
    statements,
    store_sql,
    target_store,
    writes_inside,
)
from patterns.errors import CommitTimeout, NodeError, PatternsError
from patterns.graph.sql_interface import OUTPUT_PORT
from patterns.graph.sql_template import Bound, Slots, dialect_of, render
from patterns.store.model import SqlAction, SqlWrite, TableOp

if TYPE_CHECKING:
    from patterns.engine.session import RunSession
    from patterns.store.interface import Transaction
    from patterns.store.model import CommitResult, RunRecord

    AtFinal = Callable[[Transaction, CommitResult], tuple[RunRecord, str]]

#: What a write statement may be, by sqlglot's name for it.
_ACTIONS: dict[str, SqlAction] = {
    "Insert": "insert", "Update": "update", "Delete": "delete", "TruncateTable": "truncate",
    "Create": "create", "Alter": "add_column"}
_ALLOWED = ("SELECT (a new version of the output table), or INSERT, UPDATE, DELETE, "
            "TRUNCATE, CREATE TABLE or ALTER TABLE ... ADD COLUMN on a table the node "
            "declares with Table(\"t\", \"w\")")


def run_sql_node(session: RunSession, limit: float, say: Callable[[str], None]) -> Exit:
    """Run the SQL node of ``session`` once; the outcome is left on the session (finished,
    or requests.error) for the engine's run record."""
    node = session.node
    started = time.monotonic()
    try:
        source = _rendered(session)
        planned = plan(session, source, query_target=OUTPUT_PORT)
        if not planned:
            raise NodeError(f"{node.rel_file}: the template renders no SQL statement; write a "
                            f"SELECT, or INSERT INTO {{{{ Table(\"t\", \"w\") }}}} ...")
        session.stage_sql(planned)
        _count_reads(session)
        stores = sorted({s for s, _ in planned})
        before = dict(session.rows_written)
        at_final = session.at_final
        if at_final is not None:
            session.at_final = _saying_rows(at_final, stores, say)
        # The final checkpoint: it records the run's end, and queues the readers of what it
        # wrote, in its own transaction (as a Python run's last checkpoint does).
        session.checkpoint(None, {}, timeout=limit - (time.monotonic() - started),
                           final=at_final is not None)
    except CommitTimeout:
        session.rollback()
        return Exit(None, timed_out=True)
    except PatternsError as exc:
        session.rollback()
        session.requests.error = str(exc)
        say(f"error: {exc}")
        return Exit(1)
    if at_final is None:  # (a session without a run record to end: say it here)
        session.finished = True
        for store in stores:
            added = session.rows_written.get(store, 0) - before.get(store, 0)
            say(f"{store}: {added} row(s) written")
    return Exit(0)


def _saying_rows(at_final: AtFinal, stores: list[str], say: Callable[[str], None]) -> AtFinal:
    """``at_final`` that first says the rows each of ``stores`` got (the lines are in the
    log saved with the run's end)."""

    def ended(tx: Transaction, result: CommitResult) -> tuple[RunRecord, str]:
        for store in stores:
            say(f"{store}: {result.rows_added.get(store, 0)} row(s) written")
        return at_final(tx, result)

    return ended


def _count_reads(session: RunSession) -> None:
    """The rows a SQL node reads: each table it reads from the store, whole, as of now (the
    statements scan the current version; a WHERE still reads every row)."""
    reads = {store for store, mode in session.ports.values() if mode == "r"}
    with session.store.read() as view:
        for store in sorted(reads):
            meta = view.tables.get(store)
            if meta is not None:
                session.rows_read[store] = session.rows_read.get(store, 0) + \
                    view.tables.count(meta)


def _rendered(session: RunSession) -> Source:
    node = session.node
    assert node.file is not None and node.rel_file is not None
    text = node.file.read_text(encoding="utf-8")
    dialect = dialect_of(text, node.settings.sql_dialect)
    slots = Slots()
    declared = {p.name: p for p in node.interface.parameters}

    def table(name: str, mode: str = "r", *args: Any, **kwargs: Any) -> str:
        store = session.store_for(name, "w" if mode == "w" else "r")
        return session.store.view_name(store)

    def parameter(name: str, type: Any = None, default: Any = None, *args: Any,
                  **kwargs: Any) -> Bound:
        decl = declared.get(name)
        if decl is not None and decl.type == "connection":
            raise NodeError(f"Parameter {name!r} is a connection (credentials), which a SQL "
                            f"node cannot use")
        value = session.parameters.get(name, default)
        return slots.bind(name, value)

    rendered = render(text, node.rel_file, table, parameter, slots)
    return Source(rendered.text, dialect, f"{node.rel_file}:{{line}}",
                  rendered.template_line, rendered.slots, rendered.values)


def plan(session: RunSession, source: Source, *, query_target: str | None,
         only: str | None = None) -> list[tuple[str, TableOp]]:
    """Each statement of ``source`` as a staged op on the store it changes. A bare query
    writes ``query_target``'s store (a SQL node's output port), if any; with ``only``,
    every statement must change that store (``execute_sql``)."""
    node = session.node.rel_file or session.node.id
    names = _names(session)
    writable = {store for store, mode in session.ports.values() if mode == "w"}
    dialect = session.store.capabilities.dialect
    found = statements(source)
    planned: list[tuple[str, TableOp]] = []
    query_at: int | None = None
    for statement in found:
        used = bind_tables(statement, source, names, node)
        relations = tuple(session.outside.relations(used))
        where = source.at(statement.first)
        if is_query(statement):
            inner = writes_inside(statement)
            if inner or only is not None or query_target is None:
                raise NodeError(f"{where}: {_no_query(only, inner)}")
            if query_target not in session.ports:
                raise NodeError(
                    f"{where}: this SELECT has no table to go to: the node writes its "
                    f"own tables ({', '.join(sorted(writable))}); INSERT INTO or CREATE TABLE "
                    f"{{{{ Table(\"t\", \"w\") }}}} AS SELECT ... instead")
            if query_at is not None:
                raise NodeError(f"{where}: a second SELECT (the first is at "
                                f"{source.at(query_at)}); a SQL node's output table gets one "
                                f"SELECT's rows: combine them with UNION ALL or a CTE")
            query_at = statement.first
            if source.dialect == "postgres":
                postgres_names(statement.tree)
            store = session.store_for(query_target, "w")
            planned.append((store, _op("select", statement, source, dialect, relations)))
            continue
        action = _action(statement, where)
        target = target_store(statement)
        if target is None or target not in writable or (only is not None and target != only):
            mine = only or ", ".join(sorted(writable)) or "none"
            raise NodeError(f"{where}: {statement.kind.upper()} may change only "
                            f"{'this table' if only else 'tables the node writes'} ({mine}), "
                            f"not {target!r}; declare it with Table({target!r}, \"w\")")
        if action == "select" and source.dialect == "postgres":
            postgres_names(statement.tree.expression)
        planned.append((target, _op(action, statement, source, dialect, relations)))
    return planned


def _action(statement: Statement, where: str) -> SqlAction:
    tree = statement.tree
    action = _ACTIONS.get(statement.kind)
    problem = None
    if action is None:
        problem = f"{statement.kind.upper()} statements are not allowed here"
    elif tree.args.get("returning") or tree.args.get("conflict"):
        problem = ("RETURNING and ON CONFLICT are not supported; de-duplicate in the SELECT "
                   "(DISTINCT ON) or use upsert from a Python node")
    elif isinstance(tree, exp.Create):
        props = tree.args.get("properties")
        temporary = props is not None and any(isinstance(p, exp.TemporaryProperty)
                                              for p in props.expressions)
        if str(tree.args.get("kind", "")).upper() != "TABLE" or temporary:
            problem = "only CREATE TABLE is allowed (no views, temporary tables or indexes)"
        elif tree.expression is not None:
            return "select"
    elif isinstance(tree, exp.Alter) and not all(
            isinstance(a, exp.ColumnDef) for a in tree.args.get("actions") or []):
        problem = "ALTER TABLE may only ADD COLUMN"
    if problem or action is None:
        raise NodeError(f"{where}: {problem}; a statement may be {_ALLOWED}")
    return action


def _op(action: SqlAction, statement: Statement, source: Source, dialect: str,
        relations: tuple[tuple[str, Any], ...] = ()) -> TableOp:
    # (an untranslatable construct fails here, at its line)
    store_sql(statement, source, dialect=dialect)
    tree = statement.tree
    exists = bool(tree.args.get("exists")) or (
        isinstance(tree, exp.Alter) and all(bool(a.args.get("exists"))
                                            for a in tree.args.get("actions") or []))
    if action == "select" and isinstance(tree, exp.Create):
        action = "create"
    write = SqlWrite(action=action, statement=tree, params=statement.params,
                     where=source.where, lines=source.lines(statement.first, statement.last),
                     if_not_exists=exists, integer_division=integer_division(source),
                     relations=relations)
    return TableOp("sql", sql=write)


def _names(session: RunSession) -> dict[str, str]:
    """Names a statement may use for the node's tables: store names and port names."""
    names = {store: store for store, _ in session.ports.values()}
    names.update({port: store for port, (store, _) in session.ports.items()})
    return names


def _no_query(only: str | None, inner: str | None) -> str:
    if inner:
        return f"a query may not contain {inner} (a data-modifying WITH)"
    return ("execute_sql changes its table (INSERT, UPDATE, DELETE...); run queries with "
            "read_sql")


# ---------------------------------------------------------------------- Python nodes
def read_query(session: RunSession, sql: str) -> tuple[str, bool]:
    """``read_sql``'s query in the store's dialect, and whether it divides integers as
    integers; it must be one query over the node's declared tables."""
    node = session.node.rel_file or session.node.id
    source = Source(sql, dialect_of(sql, session.node.settings.sql_dialect),
                    f"read_sql in {node}, line {{line}} of the query")
    found = statements(source)
    if len(found) != 1:
        raise NodeError(f"read_sql in {node} runs one query; it was given {len(found)} "
                        f"statements")
    (statement,) = found
    if not is_query(statement) or writes_inside(statement):
        kind = writes_inside(statement) or statement.kind.upper()
        raise NodeError(f"read_sql in {node} runs read-only queries, and this one is a "
                        f"{kind}: change tables with table.execute_sql(...) on a table the "
                        f"node writes, or append/upsert/replace")
    bind_tables(statement, source, _names(session), node)
    if source.dialect == "postgres":
        postgres_names(statement.tree)
    return (store_sql(statement, source, dialect=session.store.capabilities.dialect),
            integer_division(source))


def plan_execute_sql(session: RunSession, store: str, sql: str) -> list[tuple[str, TableOp]]:
    node = session.node.rel_file or session.node.id
    source = Source(sql, dialect_of(sql, session.node.settings.sql_dialect),
                    f"execute_sql in {node}, line {{line}} of the SQL")
    planned = plan(session, source, query_target=None, only=store)
    if not planned:
        raise NodeError(f"execute_sql in {node} was given no SQL statement")
    return planned


def offline_query(sql: str, dialect: str, tables: list[str], target: str = "duckdb"
                  ) -> tuple[str, bool]:
    """``read_sql`` outside a run (a notebook): one query over any of the app's tables."""
    source = Source(sql, dialect_of(sql, dialect), "read_sql, line {line} of the query")
    found = statements(source)
    if len(found) != 1 or not is_query(found[0]) or writes_inside(found[0]):
        raise NodeError("read_sql runs one read-only query (outside a run the store is "
                        "read-only)")
    (statement,) = found
    bind_tables(statement, source, {name: name for name in tables}, "(notebook)")
    if source.dialect == "postgres":
        postgres_names(statement.tree)
    return store_sql(statement, source, dialect=target), integer_division(source)
