"""Postgres constructs that sqlglot reads but does not translate to DuckDB the way Postgres
runs them: ``format()``, the ``jsonb_*``/``json_*`` functions and operators (``?``, ``?|``,
``?&``, ``@>``, ``#>``, ``#>>``, ``jsonb - 'key'``) and the set-returning JSON functions in
``FROM`` (``jsonb_array_elements``, ``jsonb_each``, ``jsonb_object_keys``...).

:func:`rewrite` turns each into DuckDB's equivalent on the parsed tree, right after parsing,
so the table and function checks of :mod:`patterns.engine.sql_scope` see DuckDB's functions.
The corpus of Postgres queries in ``tests/nodeapi/test_postgres_corpus.py`` checks every one
against PostgreSQL itself.
"""

from __future__ import annotations

import json
import re
from typing import Final

import sqlglot.expressions as exp

#: Postgres JSON functions with a DuckDB function of the same meaning (by lower-case name).
_RENAMED: Final = {
    "jsonb_array_length": "json_array_length", "json_array_length": "json_array_length",
    "jsonb_build_object": "json_object", "json_build_object": "json_object",
    "jsonb_build_array": "json_array", "json_build_array": "json_array",
    "jsonb_object_agg": "json_group_object", "json_object_agg": "json_group_object",
    "to_jsonb": "to_json", "jsonb_pretty": "json_pretty",
}
#: Set-returning JSON functions: (how each row is made from the argument, its columns).
_SET_RETURNING: Final = {
    "jsonb_array_elements": ("elements", ("value",)),
    "json_array_elements": ("elements", ("value",)),
    "jsonb_array_elements_text": ("elements_text", ("value",)),
    "json_array_elements_text": ("elements_text", ("value",)),
    "jsonb_object_keys": ("keys", None),
    "json_object_keys": ("keys", None),
    "jsonb_each": ("each", ("key", "value")),
    "json_each": ("each", ("key", "value")),
    "jsonb_each_text": ("each_text", ("key", "value")),
    "json_each_text": ("each_text", ("key", "value")),
}
_TYPEOF: Final = {"OBJECT": "object", "ARRAY": "array", "VARCHAR": "string",
                  "BOOLEAN": "boolean", "NULL": "null", "BIGINT": "number",
                  "UBIGINT": "number", "DOUBLE": "number", "HUGEINT": "number"}
_FORMAT_SPEC: Final = re.compile(r"%(?:(\d+)\$)?([sIL%])")


def rewrite(tree: exp.Expr) -> exp.Expr:
    """``tree`` (parsed as Postgres) with its Postgres-only constructs made DuckDB's (the
    innermost first, so a rewritten call's arguments are rewritten too)."""
    for node in reversed(list(tree.dfs())):
        new = _one(node)
        if new is node:
            continue
        if node is tree:
            tree = new
        else:
            node.replace(new)
    return tree


def _one(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Table) and isinstance(node.this, exp.Func):
        return _from_function(node) or node
    if isinstance(node, exp.Format):
        return _format(node) or node
    if isinstance(node, exp.JSONBContainsTopKey):
        return _call("list_contains", _call("json_keys", node.this), node.expression)
    if isinstance(node, exp.JSONBContainsAnyTopKeys):
        return _call("list_has_any", _call("json_keys", node.this), node.expression)
    if isinstance(node, exp.JSONBContainsAllTopKeys):
        return _call("list_has_all", _call("json_keys", node.this), node.expression)
    if isinstance(node, (exp.ArrayContainsAll, exp.ArrayContainedBy)) and (
            _json_literal(node.expression) or _json_literal(node.this)):
        outer, inner = (node.this, node.expression) if isinstance(
            node, exp.ArrayContainsAll) else (node.expression, node.this)
        return _call("json_contains", _as_json(outer), _as_json(inner))
    if isinstance(node, (exp.JSONBExtract, exp.JSONBExtractScalar)):
        path = _path_of_text_array(node.expression)
        if path is not None:
            name = "json_extract_string" if isinstance(node, exp.JSONBExtractScalar) \
                else "json_extract"
            return _call(name, node.this, exp.Literal.string(path))
    if isinstance(node, exp.Sub) and _removes_key(node):
        return _call("json_merge_patch", node.this,
                     _call("json_object", node.expression, exp.null()))
    if isinstance(node, exp.Func):
        replaced = _function(node)
        if replaced is not None:
            return _named_as(node, replaced)
    return node


def _function(node: exp.Func) -> exp.Expr | None:
    name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
    args = list(node.expressions) if isinstance(node, exp.Anonymous) else \
        [a for a in (node.this, *node.expressions) if isinstance(a, exp.Expr)]
    if name in _RENAMED:
        return _call(_RENAMED[name], *args)
    if name in ("jsonb_agg", "json_agg") and len(args) == 1 and isinstance(node, exp.Anonymous):
        # (list() takes ORDER BY, DISTINCT and FILTER, as jsonb_agg does)
        aggregate = node.copy()
        aggregate.set("this", "list")
        return _call("to_json", aggregate)
    if name in ("jsonb_typeof", "json_typeof") and len(args) == 1:
        case = exp.Case(this=_call("json_type", args[0]))
        for duck, pg in _TYPEOF.items():
            case = case.when(exp.Literal.string(duck), exp.Literal.string(pg))
        return case
    if name in ("jsonb_extract_path", "json_extract_path",
                "jsonb_extract_path_text", "json_extract_path_text") and len(args) > 1:
        keys = [a.name for a in args[1:] if isinstance(a, exp.Literal) and a.is_string]
        if len(keys) != len(args) - 1:
            return None
        target = "json_extract_string" if name.endswith("_text") else "json_extract"
        return _call(target, args[0], exp.Literal.string(_json_path(keys)))
    if name in ("jsonb_strip_nulls", "json_strip_nulls") and len(args) == 1:
        # (a JSON merge patch drops the members whose value is null, at every depth)
        return _call("json_merge_patch", _as_json(exp.Literal.string("{}")), args[0])
    if name == "jsonb_set" and len(args) in (3, 4):
        path = _keys_of_text_array(args[1])
        if path is None or any(k.isdigit() for k in path):
            return None
        value: exp.Expr = _as_json(args[2])
        for key in reversed(path):
            value = _call("json_object", exp.Literal.string(key), value)
        return _call("json_merge_patch", args[0], value)
    if name in _SET_RETURNING and len(args) == 1 and _projected(node):
        how, _ = _SET_RETURNING[name]
        if how in ("elements", "elements_text", "keys"):
            return exp.Explode(this=_unnested(how, args[0]))
    return None


def _projected(node: exp.Expr) -> bool:
    parent = node.parent
    if isinstance(parent, exp.Alias):
        parent = parent.parent
    return isinstance(parent, exp.Select)


def _named_as(original: exp.Func, replaced: exp.Expr) -> exp.Expr:
    """A projection keeps the column name Postgres gives it (the function's name)."""
    if isinstance(original.parent, exp.Select) and original.arg_key == "expressions":
        name = (original.name if isinstance(original, exp.Anonymous)
                else original.sql_name()).lower()
        return exp.alias_(replaced, name, quoted=True)
    return replaced


def _from_function(table: exp.Table) -> exp.Expr | None:
    """``FROM jsonb_array_elements(x) AS e(v)`` and the like, as a subquery DuckDB runs."""
    func = table.this
    name = (func.name if isinstance(func, exp.Anonymous) else func.sql_name()).lower()
    if name not in _SET_RETURNING:
        return None
    args = list(func.expressions) if isinstance(func, exp.Anonymous) else [func.this]
    if len(args) != 1 or not isinstance(args[0], exp.Expr):
        return None
    how, columns = _SET_RETURNING[name]
    alias = table.args.get("alias")
    alias_name = alias.name if alias is not None else ""
    given: list[str] = [c.name for c in alias.columns] if alias is not None else []
    if columns is None or (len(columns) == 1 and not given and alias_name):
        # (a function returning one value per row: its column is named as the alias)
        names = given[:1] or ([alias_name] if alias_name else [name])
    else:
        names = given + list(columns[len(given):])
    source = args[0]
    if how in ("elements", "elements_text", "keys"):
        select = exp.select(exp.alias_(exp.Explode(this=_unnested(how, source)), names[0],
                                       quoted=True))
    else:
        value: exp.Expr = exp.column("value")
        if how == "each_text":
            value = _call("json_extract_string", value, exp.Literal.string("$"))
        select = exp.select(exp.alias_(exp.column("key"), names[0], quoted=True),
                            exp.alias_(value, names[1], quoted=True)).from_(
            exp.Table(this=_call("json_each", source)))
    return exp.Subquery(this=select, alias=exp.TableAlias(
        this=exp.to_identifier(alias_name or name)))


def _unnested(how: str, source: exp.Expr) -> exp.Expr:
    if how == "keys":
        return _call("json_keys", source)
    name = "json_extract_string" if how == "elements_text" else "json_extract"
    return _call(name, source, exp.Literal.string("$[*]"))


def _format(node: exp.Format) -> exp.Expr | None:
    """``format('%s%%', x)`` as Postgres means it: %s the value as text (null: empty), %I
    an identifier, %L a quoted literal (null: NULL), %% a percent sign."""
    template = node.this
    if not (isinstance(template, exp.Literal) and template.is_string):
        return None
    args = list(node.expressions)
    parts: list[exp.Expr] = []
    text, at, next_arg = template.this, 0, 0
    for match in _FORMAT_SPEC.finditer(text):
        if match.start() > at:
            parts.append(exp.Literal.string(text[at:match.start()]))
        at = match.end()
        kind = match.group(2)
        if kind == "%":
            parts.append(exp.Literal.string("%"))
            continue
        index = int(match.group(1)) - 1 if match.group(1) else next_arg
        next_arg = index + 1
        if index >= len(args):
            return None  # (Postgres refuses it: leave the error to the database)
        value: exp.Expr = exp.cast(args[index].copy(), "text")
        if kind == "I":
            value = _call("concat", exp.Literal.string('"'),
                          _call("replace", value, exp.Literal.string('"'),
                                exp.Literal.string('""')), exp.Literal.string('"'))
        elif kind == "L":
            quoted = exp.DPipe(this=exp.DPipe(
                this=exp.Literal.string("'"),
                expression=_call("replace", value, exp.Literal.string("'"),
                                 exp.Literal.string("''"))),
                expression=exp.Literal.string("'"))  # (|| keeps a null null)
            value = exp.Coalesce(this=quoted, expressions=[exp.Literal.string("NULL")])
        parts.append(value)
    if at < len(text):
        parts.append(exp.Literal.string(text[at:]))
    if "%" in _FORMAT_SPEC.sub("", text):
        return None  # (a width or flag: not translated)
    return _call("concat", *parts) if parts else exp.Literal.string("")


def _removes_key(node: exp.Sub) -> bool:
    """``jsonb - 'key'``: a key that is no interval ('1 day') nor number."""
    right = node.expression
    return (isinstance(right, exp.Literal) and right.is_string and bool(right.this)
            and not re.match(r"[\s\d+\-.@]", right.this)
            and isinstance(node.this, (exp.Column, exp.JSONExtract, exp.Dot)))


def _json_literal(node: exp.Expr) -> bool:
    if not (isinstance(node, exp.Literal) and node.is_string):
        return False
    text = node.this.strip()
    if not text.startswith(("{\"", "[")):  # ({} and {1,2} may be Postgres arrays)
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _keys_of_text_array(node: exp.Expr) -> list[str] | None:
    """The keys of a Postgres text-array literal such as ``'{coupon,code}'``."""
    if not (isinstance(node, exp.Literal) and node.is_string):
        return None
    text = node.this.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    return [k.strip().strip('"') for k in text[1:-1].split(",") if k.strip()]


def _path_of_text_array(node: exp.Expr) -> str | None:
    keys = _keys_of_text_array(node)
    return _json_path(keys) if keys else None


def _json_path(keys: list[str]) -> str:
    path = "$"
    for key in keys:
        path += f"[{key}]" if key.isdigit() else '."' + key.replace('"', '\\"') + '"'
    return path


def _as_json(node: exp.Expr) -> exp.Expr:
    return exp.cast(node, "json") if isinstance(node, exp.Literal) else node


def _call(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))

