"""The default node environment: the common data packages, for apps without a requirements
file.

The original product ran every node with scikit-learn, scipy, statsmodels... installed, and
its docs import them with no requirements file. Patterns itself stays light to install:
those packages are not its dependencies. Instead, a node that imports one of them (found in
its source before it runs) and that the engine's own Python lacks runs in the default
environment, built once with uv from PyPI (the configured index) and cached with the other
environments (``$PATTERNS_HOME/envs``, or ``$PATTERNS_ENVS``). The packages the engine
already has (numpy, pandas, pyarrow, requests) are pinned to the engine's versions there, so
a node sees the same ones either way. Every other node keeps running in the engine's own
Python, with its warm workers, and an app that never imports such a package never builds it.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import sys
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING

from patterns.graph.python_ast import parse_python
from patterns.sdk.packages import DEFAULT_PACKAGES

if TYPE_CHECKING:
    from patterns.engine.environments import _Requirements

#: Bumped when the way the environment is made changes.
_VERSION = 1


def needs_default(file: Path) -> bool:
    """Whether the node file imports a package of the default environment that the engine's
    own Python cannot import."""
    try:
        stat = file.stat()
    except OSError:
        return False
    return bool(_missing_imports(str(file), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=1024)
def _missing_imports(file: str, _mtime: int, _size: int) -> frozenset[str]:
    try:
        tree = parse_python(Path(file).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return frozenset()  # (the run reports the file's own error)
    wanted = set(DEFAULT_PACKAGES.values())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return frozenset(m for m in found & wanted if not _importable(m))


@functools.cache
def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def requirements(envs: Path) -> _Requirements:
    """The default environment's requirements, written to ``envs/default-requirements.txt``
    (the engine's own versions of the packages it has, pinned)."""
    from patterns.engine.environments import _Requirements, engine_paths

    lines = ["# The default node environment of Patterns (apps with no requirements file)"]
    for package in sorted(DEFAULT_PACKAGES):
        lines.append(f"{package}=={_version(package)}" if _version(package) else package)
    text = "\n".join(lines) + "\n"
    material = {"version": _VERSION, "requirements": text, "engine": list(engine_paths()),
                "python": f"{sys.implementation.name}-{sys.version_info[0]}."
                          f"{sys.version_info[1]}-{sysconfig.get_platform()}"}
    key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    envs.mkdir(parents=True, exist_ok=True)
    file = envs / f"default-requirements-{key[:16]}.txt"
    if not file.is_file():
        tmp = file.with_suffix(f".{key[16:24]}.tmp")
        tmp.write_text(text)
        tmp.replace(file)
    return _Requirements("the default node environment", file, text, key)


@functools.cache
def _version(package: str) -> str | None:
    """The engine's own version of ``package`` (None: the engine does not have it)."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
