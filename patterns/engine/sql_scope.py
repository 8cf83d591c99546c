"""Which tables a statement reads: every table reference resolved by its real scope.

A node's SQL (a ``.sql`` node, ``read_sql``, ``execute_sql``) may read only the tables the
node declared. :func:`bind_tables` decides, for each table reference, whether it names a
CTE **visible where it stands** or a real table, and then:

- a real table must be a declared one (by port or store name, or as rendered by
  ``{{ Table() }}``, in schema ``main``/``public`` or none); it is rewritten to its store's
  view, ``main."store"``, which no CTE and no replacement scan can shadow;
- a CTE reference, and the CTE's definition, are renamed to a name no table or file can have
  (``"private#1"``, the reference keeping the name it was written with as its alias), so a
  reference this module took for a CTE can only ever read that CTE: if it was wrong, DuckDB
  finds no such table and the statement fails, it never falls through to a real table.

Visibility follows DuckDB, which runs the SQL: a CTE is visible in the body of the statement
that carries its ``WITH`` (and that statement's subqueries, lateral joins and set operations),
to the CTEs after it in the same ``WITH``, and to itself only under ``WITH RECURSIVE``; a name
in an inner ``WITH`` shadows an outer one inside its own statement only; a DML or DDL target
(``INSERT INTO t``, ``UPDATE t``, ``CREATE TABLE t``) is always a real table; a qualified name
(``main.t``) is never a CTE. Names match as the source dialect does (Postgres folds unquoted
names to lower case and keeps quoted ones; DuckDB ignores case). Default deny: a reference is
a CTE only when this structural resolution and sqlglot's scope analysis
(:mod:`sqlglot.optimizer.scope`) both say so; anything else is a real table and is checked.

Functions are checked too. Table functions (in ``FROM``, ``JOIN`` or ``LATERAL``) are an
allowlist, :data:`SAFE_TABLE_FUNCTIONS`: they make rows and read nothing. Elsewhere, any
function DuckDB has only as a table function, and the families that reach files, settings,
variables or the catalog (:data:`OUTSIDE_FUNCTIONS`, :data:`_OUTSIDE_PREFIXES`) are refused;
a function sqlglot does not know must be one of DuckDB's built-ins (read from its catalog).
Statements that reach outside the tables (``ATTACH``, ``COPY``, ``PRAGMA``, ``SET``,
``INSTALL``, ``USE``, and any text sqlglot could only keep as a raw command) are refused.
Catalog views (``information_schema``, ``pg_catalog``, ``duckdb_tables``, ...) are tables no
node declares, so they are refused like any undeclared table.

A PostgreSQL store must also enforce this itself (docs/sql.md, "A PostgreSQL store enforces
it too"): each run's SQL runs under a role (``SET LOCAL ROLE``) granted SELECT on exactly the
run's declared tables and writes only on the tables it writes, inside the run's transaction,
no superuser and in none of the file- or settings-reading roles, with ``search_path`` set to
the app's schema; a reference this check misjudges then fails with ``permission denied``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import sqlglot  # noqa: F401  (whole, first: see sql_translate)
import sqlglot.expressions as exp

from patterns.engine.sql_translate import (
    Source,
    Statement,
    function_name,
    line_of,
    parsing_dialect,
)
from patterns.errors import NodeError

#: Table functions a query may read from: they make rows, they do not read data.
SAFE_TABLE_FUNCTIONS: Final = frozenset({
    "generate_series", "exploding_generate_series", "range", "unnest", "json_each",
    "json_tree", "generate_subscripts", "repeat"})
#: Functions that reach outside the node's tables: files, the environment, settings,
#: variables, sequences, SQL given as text.
OUTSIDE_FUNCTIONS: Final = frozenset({
    "getenv", "glob", "query", "query_table", "parquet_scan", "parquet_metadata",
    "parquet_schema", "sniff_csv", "iceberg_scan", "delta_scan", "load", "install",
    "current_setting", "getvariable", "set_config", "sql_auto_complete", "which_secret",
    "json_execute_serialized_sql", "nextval", "currval", "setval", "lastval", "checkpoint",
    "force_checkpoint", "summary", "st_read", "postgres_query", "mysql_query",
    "sqlite_attach"})
#: Families of those, by how their names start or end.
_OUTSIDE_PREFIXES: Final = ("read_", "duckdb_", "pragma_", "parquet_", "iceberg_", "delta_",
                            "sqlite_", "postgres_", "mysql_", "pg_", "icu_", "python_",
                            "pandas_", "arrow_")
_OUTSIDE_SUFFIXES: Final = ("_scan", "_metadata", "_attach", "_query")
_FINE_PREFIXED: Final = frozenset({"pg_typeof"})
_OPEN_SCHEMAS: Final = ("", "main", "public")
#: Statements node SQL never runs, wherever they appear: they reach outside the tables.
_NEVER: Final = (exp.Command, exp.Pragma, exp.Set, exp.Attach, exp.Detach, exp.Install,
                 exp.Use, exp.Copy, exp.Export)
#: Names sqlglot reads as calls that are DuckDB syntax, not functions.
_SYNTAX_CALLS: Final = frozenset({"columns", "row", "struct_pack", "grouping_id"})
#: Where a function is a table function (it makes the rows of a FROM item).
_TABLE_POSITIONS: Final = (exp.Table, exp.From, exp.Join, exp.Lateral)
#: Statements whose ``this`` (or ``expressions``) is the table they change.
_TARGETS: Final = (exp.DML, exp.DDL, exp.Into, exp.Alter, exp.Drop, exp.TruncateTable)


def bind_tables(statement: Statement, source: Source, tables: Mapping[str, str],
                node: str) -> set[str]:
    """Point every real table the statement names at its store's view (``main."store"``),
    rename its CTEs apart, and return the stores it reads or writes. ``tables`` maps each
    name the node may use (port or store name) to the store; any other table is refused."""
    tree = statement.tree
    declared = ", ".join(sorted(set(tables.values()))) or "none"
    command = next(tree.find_all(*_NEVER), None)
    if command is not None:  # a Command is text sqlglot could not parse: nothing to check
        word = type(command).__name__.upper()
        if isinstance(command, exp.Command):
            word = (str(command.this).split() or ["?"])[0].upper()
        raise NodeError(f"{source.at(line_of(command, statement))}: {word} statements are "
                        f"not allowed; node {node} may read only the tables it declares "
                        f"({declared}) with SELECT, and change its own with INSERT, UPDATE, "
                        f"DELETE, TRUNCATE, CREATE TABLE or ALTER TABLE ... ADD COLUMN")
    _check_functions(statement, source, node, declared)
    lowered = {name.lower(): store for name, store in tables.items()}
    references = list(tree.find_all(exp.Table))
    agreed = _sqlglot_cte_references(tree, source.dialect)
    ctes = {id(t): _visible_cte(t, source.dialect) for t in references
            if isinstance(t.this, exp.Identifier)}
    cte_names = {_key(cte.args["alias"].this, source.dialect) for cte in tree.find_all(exp.CTE)}
    renamed = _renamed_ctes(tree)
    used: set[str] = set()
    for table in references:
        at = source.at(line_of(table, statement))
        if not isinstance(table.this, exp.Identifier):
            name = function_name(table.this) if isinstance(table.this, exp.Func) else "?"
            if name not in SAFE_TABLE_FUNCTIONS:
                raise NodeError(f"{at}: the table function {name}() is not allowed; node "
                                f"{node} may read only the tables it declares ({declared})")
            continue
        cte = ctes[id(table)]
        if cte is not None and id(table) in agreed:
            _point_at_cte(table, renamed[id(cte)])
            continue
        name, schema = table.name, table.db.lower()
        if table.catalog or schema not in _OPEN_SCHEMAS:
            full = ".".join(p for p in (table.catalog, table.db, name) if p)
            raise NodeError(f"{at}: the query reads {full}, which is not one of node "
                            f"{node}'s tables ({declared}); the platform's own schemas, the "
                            f"database's catalog and other databases are out of reach")
        store = tables.get(name, lowered.get(name.lower()))
        if store is None:
            raise NodeError(
                f"{at}: the query reads table {name!r}, which node {node} did not declare "
                f"(its tables: {declared}); declare it with Table({name!r}) so the graph "
                f"knows the node reads it{_shadow_hint(table, cte_names, source.dialect)}")
        table.set("this", exp.to_identifier(store, quoted=True))
        table.set("db", exp.to_identifier("main"))
        used.add(store)
    return used


# ---------------------------------------------------------------------- CTE scope
def _visible_cte(table: exp.Table, dialect: str) -> exp.CTE | None:
    """The CTE that ``table`` names where it stands, or None for a real table."""
    if table.args.get("db") or table.args.get("catalog"):
        return None
    key = _key(table.this, dialect)
    child: exp.Expr = table
    parent = table.parent
    while parent is not None:
        if isinstance(parent, _TARGETS) and isinstance(child, (exp.Table, exp.Schema)) \
                and child.arg_key in ("this", "expressions"):
            return None  # what a statement changes is a real table
        with_ = parent.args.get("with_")
        if isinstance(with_, exp.With):
            ctes: list[exp.CTE] = list(with_.expressions)
            if child is with_:  # inside a CTE's definition: only the ones before it
                inner = _enclosing_cte(table, with_)
                index = next((i for i, c in enumerate(ctes) if c is inner), 0)
                ctes = ctes[:index + 1] if with_.args.get("recursive") else ctes[:index]
            for cte in ctes:
                if _key(cte.args["alias"].this, dialect) == key:
                    return cte
        child, parent = parent, parent.parent
    return None


def _enclosing_cte(table: exp.Expr, with_: exp.With) -> exp.Expr | None:
    node: exp.Expr | None = table
    while node is not None and node.parent is not with_:
        node = node.parent
    return node


def _key(identifier: exp.Expression, dialect: str) -> str:
    """A name as the dialect compares it."""
    name = identifier.name
    if dialect == "postgres" and isinstance(identifier, exp.Identifier) and identifier.quoted:
        return name
    return name.lower()


def _sqlglot_cte_references(tree: exp.Expression, dialect: str) -> set[int]:
    """The table references (ids in ``tree``) that sqlglot's scope analysis resolves to a
    CTE; none when it cannot analyse the statement (so every reference is a real table)."""
    from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
    from sqlglot.optimizer.scope import traverse_scope

    copy = tree.copy()
    try:
        normalize_identifiers(copy, dialect=parsing_dialect(dialect))
        scopes = traverse_scope(copy)
        originals = {id(c): o for c, o in zip(copy.find_all(exp.Table),
                                              tree.find_all(exp.Table), strict=True)}
    except Exception:  # (any failure of the analysis: deny, never allow)
        return set()
    found: set[int] = set()
    for scope in scopes:
        rooted = [scope.expression] if isinstance(scope.expression, exp.Table) else []
        for table in [*scope.tables, *rooted]:
            if not table.args.get("db") and table.name in scope.cte_sources \
                    and id(table) in originals:
                found.add(id(originals[id(table)]))
    return found


def _renamed_ctes(tree: exp.Expression) -> dict[int, str]:
    """Give every CTE a name no table, view or file can have; by the CTE's id."""
    renamed: dict[int, str] = {}
    for number, cte in enumerate(tree.find_all(exp.CTE), start=1):
        alias = cte.args["alias"]
        new = f"{alias.name}#{number}"
        alias.set("this", exp.to_identifier(new, quoted=True))
        renamed[id(cte)] = new
    return renamed


def _point_at_cte(table: exp.Table, name: str) -> None:
    if not table.args.get("alias"):
        table.set("alias", exp.TableAlias(this=table.this.copy()))
    table.set("this", exp.to_identifier(name, quoted=True))


def _shadow_hint(table: exp.Table, cte_names: set[str], dialect: str) -> str:
    if _key(table.this, dialect) not in cte_names:
        return ""
    return (f" (a CTE named {table.name!r} exists elsewhere in the statement but is not "
            f"visible here: a CTE is visible in its own statement, to the CTEs after it and "
            f"to itself under WITH RECURSIVE)")


# ---------------------------------------------------------------------- functions
def _check_functions(statement: Statement, source: Source, node: str, declared: str) -> None:
    for func in statement.tree.find_all(exp.Func):
        name = function_name(func)
        at = source.at(line_of(func, statement))
        if _reaches_outside(name):
            raise NodeError(f"{at}: {name}() reads outside the app's tables (files, settings, "
                            f"variables or the database's catalog); node {node} may read only "
                            f"the tables it declares ({declared})")
        in_from = isinstance(func.parent, _TABLE_POSITIONS) and func.arg_key == "this"
        if isinstance(func, exp.Anonymous) and not in_from and name not in _SYNTAX_CALLS \
                and name not in _builtin_functions():
            hint = (" (it may be a Postgres function with no DuckDB translation: use "
                    "DuckDB's own, with `-- dialect: duckdb` as the first line)"
                    if source.dialect == "postgres" else "")
            raise NodeError(f"{at}: function {name} does not exist among DuckDB's built-in "
                            f"functions, the ones node {node} may call{hint}")
        if in_from and name not in SAFE_TABLE_FUNCTIONS:
            raise NodeError(f"{at}: the table function {name}() is not allowed; node {node} "
                            f"may read only the tables it declares ({declared}) and the "
                            f"functions that make rows ({', '.join(sorted(SAFE_TABLE_FUNCTIONS))})")


def _reaches_outside(name: str) -> bool:
    if name in _FINE_PREFIXED:
        return False
    return (name in OUTSIDE_FUNCTIONS or name in _table_only_functions()
            or name.startswith(_OUTSIDE_PREFIXES) or name.endswith(_OUTSIDE_SUFFIXES))


def _table_only_functions() -> frozenset[str]:
    """DuckDB's functions that exist only as table functions (``duckdb_tables``,
    ``read_text``, ``query``...): not safe in any position, apart from the safe ones."""
    from patterns.store.duckdb_catalog import table_only_functions

    return table_only_functions() - SAFE_TABLE_FUNCTIONS


def _builtin_functions() -> frozenset[str]:
    """DuckDB's built-in scalar, aggregate and window functions and macros: the functions
    sqlglot does not know that node SQL may still call (minus :func:`_reaches_outside`)."""
    from patterns.store.duckdb_catalog import builtin_functions

    return builtin_functions()
