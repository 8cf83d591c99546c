"""``.patterns/engine.json``: which engine holds an app's store now, and how to reach it.

Every running engine (of ``patterns serve`` or of ``patterns run``) writes this file beside
its store once it has opened the store, and removes it when it closes. It says where the
engine's data plane listens and carries an admin token for this engine only; the file is
readable by its owner only (0600), so the token grants what the file system already grants:
whoever may read the store file may ask the engine. :func:`running_engine` is the one lookup
that decides "is an engine running for this store"; a file left by an engine that died (its
pid is gone) is ignored and removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ENGINE_FILE = "engine.json"
VERSION = 1


@dataclass(frozen=True)
class RunningEngine:
    """An engine holding a store: its process, data plane and admin token."""

    pid: int
    uri: str
    token: str
    kind: str  # "serve" | "run"
    store: str  # the store file it holds (resolved)
    started_at: float  # time.time()
    version: int = VERSION
    #: The store it serves as messages name it (a path, or a URL without its password),
    #: its backend, and the engine's identity in the store's leases (several engines).
    location: str = ""
    backend: str = "duckdb"
    engine_id: str = ""

    @property
    def what(self) -> str:
        """How messages name it: ``patterns serve (pid 12)``."""
        return f"patterns {self.kind} (pid {self.pid})"


def engine_file(store_path: Path) -> Path:
    return store_path.parent / ENGINE_FILE


def announce(store_path: Path, uri: str, kind: str, *, location: str = "",
             backend: str = "duckdb", engine_id: str = "") -> RunningEngine:
    """Write the engine file for an engine of this process holding ``store_path``."""
    engine = RunningEngine(pid=os.getpid(), uri=uri, token=secrets.token_urlsafe(32),
                           kind=kind, store=str(store_path.resolve()), started_at=time.time(),
                           location=location or str(store_path.resolve()), backend=backend,
                           engine_id=engine_id)
    path = engine_file(store_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(engine), out)
    os.replace(tmp, path)
    return engine


def withdraw(store_path: Path, engine: RunningEngine) -> None:
    """Remove the engine file, if it is still this engine's."""
    path = engine_file(store_path)
    if _read(path) == engine:
        with contextlib.suppress(OSError):
            path.unlink()


def running_engine(store_path: Path) -> RunningEngine | None:
    """The engine holding ``store_path`` now, or None (a stale file is removed)."""
    path = engine_file(store_path)
    engine = _read(path)
    if engine is None:
        return None
    if not _alive(engine.pid):
        if _read(path) == engine:  # (not replaced by a new engine meanwhile)
            with contextlib.suppress(OSError):
                path.unlink()
        return None
    if engine.store != str(store_path.resolve()):
        return None  # an engine of another store file in the same folder
    return engine


def _read(path: Path) -> RunningEngine | None:
    try:
        doc = json.loads(path.read_text())
        return RunningEngine(**doc)
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
