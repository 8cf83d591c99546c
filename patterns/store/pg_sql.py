"""SQL as a PostgreSQL store runs it: a parsed statement (sqlglot) rendered in PostgreSQL's
dialect, its tables' views (``main."t"`` once bound by the engine) those of schema
``public``, every identifier quoted.

Every identifier is quoted (unquoted ones folded to lower case first, as PostgreSQL does) so
that a name sqlglot reads as a column stays a column: ``user`` is the field, as on DuckDB,
not PostgreSQL's ``current_user``; an app gives the same rows on either store. Used by the
engine (``read_sql``) and the store (SQL nodes' writes); no driver is imported here.
"""

from __future__ import annotations

from typing import Final

import sqlglot  # noqa: F401  (whole, first: see patterns.engine.sql_translate)
import sqlglot.expressions as exp
from sqlglot.errors import ErrorLevel

#: Where a PostgreSQL store keeps the tables' views (patterns.store.postgres.migrations).
VIEWS: Final = "public"


def postgres_text(tree: exp.Expression) -> str:
    """``tree`` in PostgreSQL's SQL; a construct it has no form for raises sqlglot's
    ``UnsupportedError``."""
    tree = tree.copy()
    for table in tree.find_all(exp.Table):
        if table.args.get("db") is not None and table.db == "main":
            table.set("db", exp.to_identifier(VIEWS))
    return str(tree.sql(dialect="postgres", identify=True, normalize=True,
                        unsupported_level=ErrorLevel.RAISE))
