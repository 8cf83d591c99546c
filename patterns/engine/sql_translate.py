"""Portable SQL: parsing what users write (Postgres or DuckDB), checking which tables it
reads, and translating it to the store's dialect with sqlglot.

Used by SQL nodes, ``read_sql`` and ``execute_sql``. Which tables a statement may read is
decided in :mod:`patterns.engine.sql_scope`.
Postgres SQL is translated as the original product ran it: its column names (``count`` for
``count(*)``), its integer division, its JSON operators. Errors name the file and the line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import sqlglot  # noqa: F401  (first and whole: its modules import each other, so importing
import sqlglot.expressions as exp  # a part first from two threads at once can fail)
from sqlglot.dialects.dialect import Dialect
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ErrorLevel, ParseError, TokenError, UnsupportedError
from sqlglot.tokenizer_core import TokenType

from patterns.errors import NodeError
from patterns.store.pg_sql import postgres_text

STORE_DIALECT: Final = "duckdb"
_WRITES: Final = ("Insert", "Update", "Delete", "Create", "Drop", "Alter", "TruncateTable",
                  "Merge", "Command", "Copy", "Set", "Pragma", "Attach", "Detach", "Use")


@dataclass(frozen=True)
class Source:
    """SQL text and how to name its lines in messages (``daily.sql:{line}``)."""

    text: str
    dialect: str
    where: str  # a format string with {line}
    template_line: Callable[[int], int] = lambda line: line
    slots: tuple[tuple[int, int], ...] = ()  # (offset, n) of rendered parameter placeholders
    values: tuple[Any, ...] = ()  # the value of each rendered placeholder $n

    def at(self, rendered_line: int) -> str:
        return self.where.format(line=self.template_line(rendered_line))

    def lines(self, first: int, last: int) -> tuple[tuple[int, str], ...]:
        """(template line, text) of rendered lines ``first`` to ``last``."""
        rendered = self.text.split("\n")
        return tuple((self.template_line(n), rendered[n - 1])
                     for n in range(first, min(last, len(rendered)) + 1))


@dataclass(frozen=True)
class Statement:
    """One statement of a source: its parse tree (in the source's dialect), its lines (in
    the rendered text) and the values of its placeholders."""

    tree: exp.Expression
    first: int
    last: int
    params: tuple[Any, ...] = ()

    @property
    def kind(self) -> str:
        return type(self.tree).__name__


def statements(source: Source) -> list[Statement]:
    """The statements of ``source``, split at ``;`` and parsed; a syntax error names its
    line and quotes the database's parser."""
    dialect = parsing_dialect(source.dialect)
    try:
        tokens = dialect.tokenize(source.text)
    except TokenError as exc:
        raise NodeError(_syntax_error(source, str(exc), None)) from None
    _check_slots(source, tokens)
    found: list[Statement] = []
    chunk: list[Any] = []
    for token in [*tokens, None]:
        if token is not None and token.token_type != TokenType.SEMICOLON:
            chunk.append(token)
            continue
        if chunk:
            try:
                trees = dialect.parser().parse(chunk, source.text)
            except ParseError as exc:
                first = exc.errors[0] if exc.errors else {}
                raise NodeError(_syntax_error(source, str(first.get("description") or exc),
                                              first.get("line") or chunk[0].line)) from None
            for tree in trees:
                if tree is not None and source.dialect == "postgres":
                    from patterns.engine.sql_postgres import rewrite

                    tree = rewrite(tree)
                if tree is not None:
                    statement = Statement(tree, chunk[0].line, chunk[-1].line)  # type: ignore[arg-type]
                    found.append(_numbered(statement, source))
        chunk = []
    return found


def store_sql(statement: Statement, source: Source, tree: exp.Expression | None = None,
              dialect: str = STORE_DIALECT) -> str:
    """The statement (or ``tree``, a part of it) in the store's ``dialect``; a construct
    that has no translation is an error at its line. On a PostgreSQL store the tables' views
    (``main."t"`` once bound) are those of schema ``public``, and Postgres SQL runs as
    written."""
    target = tree or statement.tree
    try:
        if dialect == "postgres":
            return postgres_text(target)
        return target.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        reason = str(exc).strip().splitlines()[0]
        names = {"duckdb": "DuckDB", "postgres": "PostgreSQL"}
        how = ("in DuckDB's SQL with `-- dialect: duckdb` as the first line"
               if dialect == "duckdb" else "in PostgreSQL's SQL (without `-- dialect: duckdb`)")
        raise NodeError(
            f"{source.at(statement.first)}: this {names.get(source.dialect, source.dialect)} "
            f"SQL cannot be translated to {names.get(dialect, dialect)}, the store's "
            f"({reason}); write it another way, or {how}") from None


def integer_division(source: Source) -> bool:
    """Postgres divides integers as integers (7 / 2 = 3); DuckDB does so when told."""
    return source.dialect == "postgres"


# ---------------------------------------------------------------------- tables
def target_store(statement: Statement) -> str | None:
    """The store an INSERT/UPDATE/DELETE/CREATE/ALTER writes (after
    :func:`~patterns.engine.sql_scope.bind_tables`)."""
    target = statement.tree.this
    if isinstance(statement.tree, exp.TruncateTable):
        tables = statement.tree.expressions
        target = tables[0] if len(tables) == 1 else None
    if isinstance(target, exp.Schema):
        target = target.this
    return target.name if isinstance(target, exp.Table) else None


def is_query(statement: Statement) -> bool:

    return isinstance(statement.tree, (exp.Query, exp.Values))


def writes_inside(statement: Statement) -> str | None:
    """The kind of the first statement that writes, anywhere in ``statement``."""
    for node in statement.tree.walk():
        if type(node).__name__ in _WRITES:
            return type(node).__name__.upper().replace("TABLE", "")
    return None


# ---------------------------------------------------------------------- names
def postgres_names(tree: exp.Expression) -> None:
    """Name a query's unnamed columns as Postgres does (``count(*)`` → ``count``,
    ``x::int`` → ``x``, ``a + b`` → ``?column?``), not as DuckDB would."""
    while isinstance(tree, exp.SetOperation):
        tree = tree.this
    if isinstance(tree, exp.Subquery):
        tree = tree.this
    if not isinstance(tree, exp.Select):
        return
    named: list[Any] = []
    for projection in tree.expressions:
        if isinstance(projection, (exp.Alias, exp.Column, exp.Star, exp.Dot)):
            named.append(projection)
        else:
            named.append(exp.alias_(projection, _postgres_name(projection), quoted=True))
    tree.set("expressions", named)


def _postgres_name(node: exp.Expression) -> str:

    if isinstance(node, exp.Column):
        return node.name
    if isinstance(node, exp.Alias):
        return node.alias
    if isinstance(node, exp.Paren):
        return _postgres_name(node.this)
    if isinstance(node, exp.Cast):
        inner = _postgres_name(node.this)
        return inner if inner != "?column?" else node.to.sql(dialect="postgres").lower()
    if isinstance(node, exp.Case):
        return "case"
    if isinstance(node, exp.Window):
        return _postgres_name(node.this)
    if isinstance(node, exp.Subquery):
        select = node.this
        if isinstance(select, exp.Select) and select.expressions:
            return _postgres_name(select.expressions[0])
        return "?column?"
    if isinstance(node, exp.Exists):
        return "exists"
    if isinstance(node, exp.Array):
        return "array"
    if isinstance(node, exp.Func):
        text = node.sql(dialect="postgres")
        match = re.match(r'\s*"?([A-Za-z_][\w$]*)"?\s*(\(|$)', text)
        if match:
            return match.group(1).lower()
    return "?column?"


# ---------------------------------------------------------------------- helpers
@functools.cache
def parsing_dialect(name: str) -> Dialect:
    """The dialect to read: Postgres without lambdas, which it does not have (sqlglot reads
    ``f(col->'key')`` as a lambda otherwise)."""
    if name != "postgres":
        return Dialect.get_or_raise(name)

    class PatternsPostgres(Postgres):
        class Parser(Postgres.Parser):  # type: ignore[valid-type,misc]
            LAMBDAS: Final[dict[Any, Any]] = {}

    return PatternsPostgres()


def function_name(func: exp.Func) -> str:

    name = func.name if isinstance(func, exp.Anonymous) else func.sql_name()
    return str(name).lower()


def _numbered(statement: Statement, source: Source) -> Statement:
    """Number the rendered placeholders of one statement from $1, with their values."""

    if not source.slots:
        return statement
    numbers: dict[int, int] = {}
    for parameter in statement.tree.find_all(exp.Parameter):
        value = parameter.this
        if isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit():
            n = int(value.this)
            numbers.setdefault(n, len(numbers) + 1)
            parameter.set("this", exp.Literal.number(numbers[n]))
    params = tuple(source.values[n - 1] for n in sorted(numbers, key=numbers.__getitem__))
    return Statement(statement.tree, statement.first, statement.last, params)


def _check_slots(source: Source, tokens: list[Any]) -> None:
    """A parameter inside quotes would be text, not a bound value: refuse it."""
    for offset, _ in source.slots:
        for token in tokens:
            if token.start <= offset <= token.end and token.token_type in (
                    TokenType.STRING, TokenType.IDENTIFIER):
                line = source.text.count("\n", 0, offset) + 1
                raise NodeError(
                    f"{source.at(line)}: a Parameter is inside quotes; parameters are bound "
                    f"as values, never pasted into the SQL, so write it without quotes "
                    f"(e.g. name ILIKE '%' || {{{{ Parameter(\"q\") }}}} || '%')")


def line_of(node: exp.Expr, statement: Statement) -> int:
    for part in node.walk():
        line = part.meta.get("line") if part.meta else None
        if line:
            return int(line)
    return statement.first


def _syntax_error(source: Source, message: str, line: int | None) -> str:
    """The database's own message when its parser also rejects the text, else sqlglot's."""
    from patterns.store.duckdb_catalog import syntax_error

    text = syntax_error(source.text)
    if text is not None:
        found = re.search(r"\nLINE (\d+):", text)
        line = int(found.group(1)) if found else line
        message = re.split(r"\n\s*LINE \d+:", text, maxsplit=1)[0].strip()
        message = message.removeprefix("Parser Error: ")
    message = re.sub(r"\x1b\[[0-9;]*m", "", message).strip()
    return f"{source.at(line or 1)}: SQL syntax error: {message}"
