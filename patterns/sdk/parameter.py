"""``Parameter`` and ``Connection``: values the node is configured with."""

from __future__ import annotations

from typing import Any

from patterns.errors import ConfigError
from patterns.sdk._context import node_run


class _Required:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()


class Connection:
    """``Parameter("stripe", type=Connection("stripe"))``: a credentials dict."""

    def __init__(self, connection_type: str) -> None:
        self.connection_type = connection_type

    def __repr__(self) -> str:
        return f"Connection({self.connection_type!r})"


_UNSET: Any = object()


def Parameter(name: str, description: Any = None, type: Any = _UNSET,
              default: Any = REQUIRED) -> Any:
    """The value of this node's parameter ``name``.

    The arguments come in the original API's order, ``Parameter(name, description, type,
    default)``; the older ``Parameter(name, type, default)`` (a type second) still works.
    The engine resolved and converted every parameter before the run started (from
    graph.yml ``parameter_values``, ``--param``, secrets and defaults), so this only looks it up.
    """
    if description is not None and not isinstance(description, str):
        # Parameter(name, type[, default[, description]]): the positions shift by one
        description, type, default = (None if default is REQUIRED else default,
                                      description, REQUIRED if type is _UNSET else type)
    if type is _UNSET:
        type = str
    run = node_run()
    values = run.info.parameters
    if name in values:
        return values[name]
    if default is REQUIRED:
        if run.offline:
            raise ConfigError(f"parameter {name!r} has no default and there is no run to give "
                              f"it a value: run the node with `patterns run`")
        raise ConfigError(f"parameter {name!r} has no value: the engine found none for it "
                          f"(was it declared with a literal name, Parameter({name!r}, ...)?)")
    # A default the engine could not read statically (computed by the node's code).
    from patterns.graph.model import ParameterDecl
    from patterns.graph.parameters import convert_parameter

    decl = ParameterDecl(name=name, type=_type_name(type), default=default, line=0,
                         description=description)
    return convert_parameter(decl, default, node=run.info.node_file)


def _type_name(t: Any) -> str:
    import datetime as dt

    if isinstance(t, Connection):
        return "connection"
    names = {str: "str", int: "int", float: "float", bool: "bool", dt.datetime: "datetime",
             dt.date: "date", list: "list"}
    if t in names:
        return names[t]
    raise ConfigError(f"Parameter type {t!r} is not supported; use str, int, float, bool, "
                      f"datetime, date, list or Connection('kind')")
