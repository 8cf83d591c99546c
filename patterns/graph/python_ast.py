"""Parsing Python source into an AST, one thread at a time.

CPython 3.11's AST constructor keeps its recursion-depth check in interpreter-wide state, so
two threads parsing at once can fail with ``SystemError: AST constructor recursion depth
mismatch`` (python/cpython#106905). The engine parses node files from several threads (runs
start concurrently, the server reloads an app), so every parse goes through one lock; a
parse takes well under a millisecond for a node file.
"""

from __future__ import annotations

import ast
import threading

_lock = threading.Lock()


def parse_python(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source, filename)``, never at the same time as another thread's."""
    with _lock:
        return ast.parse(source, filename=filename)
