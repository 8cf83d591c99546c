"""The app graph: graph.yml and node interfaces, loaded and validated before anything runs."""

from __future__ import annotations

from patterns.graph.edit import add_node, add_store, add_webhook, create_app, ensure_ids
from patterns.graph.interface import discover_python
from patterns.graph.loader import load_app
from patterns.graph.model import (
    MISSING,
    RUNTIME_DEFAULT,
    App,
    Node,
    NodeInterface,
    ParameterDecl,
    Settings,
    StoreDecl,
    TableDecl,
)
from patterns.graph.parameters import convert_parameter, is_reference, parse_reference
from patterns.graph.sql_interface import discover_sql

__all__ = [
    "MISSING",
    "RUNTIME_DEFAULT",
    "App",
    "Node",
    "NodeInterface",
    "ParameterDecl",
    "Settings",
    "StoreDecl",
    "TableDecl",
    "add_node",
    "add_store",
    "add_webhook",
    "convert_parameter",
    "create_app",
    "discover_python",
    "discover_sql",
    "ensure_ids",
    "is_reference",
    "load_app",
    "parse_reference",
]
