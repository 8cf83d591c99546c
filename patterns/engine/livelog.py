"""The live log: every run's output as it happens, in one append-only file beside the store.

The store keeps each run's whole log once the run ends, and only its engine may open the
store while it runs. So the engine also appends every output line, as it is made, to
``<store>.live.jsonl``, which any process can follow (``patterns logs -f``) without touching
the store. Each line is a JSON object:

- ``{"e": "start", "run": ID, "node": NODE_ID, "title": TITLE, "trigger": T, "pid": PID,
  "t": TIME}`` when a run starts (``pid``: the engine's, to notice an engine that died);
- ``{"e": "out", "run": ID, "t": TIME, "s": STREAM, "x": TEXT[, "l": LEVEL]}`` per line;
- ``{"e": "end", "run": ID, "t": TIME, "status": STATUS[, "error": MESSAGE]}`` when it ends.

The file is rotated (renamed to ``.1``) past :data:`ROTATE_BYTES`; a follower notices and
reopens. A reader never needs a lock: the engine writes whole lines. The file is 0600 and
what it holds is masked for secrets (the engine masks each line before it gets here).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from patterns.private_files import open_private
from patterns.store.model import RunRecord

ROTATE_BYTES = 8_000_000


def live_log_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".live.jsonl")


class LiveLog:
    """The engine's side: appends events, whole lines at a time, from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._lock = threading.Lock()

    def start(self, run: RunRecord) -> None:
        self._write({"e": "start", "run": run.id, "node": run.node_id, "title": run.node_title,
                     "trigger": run.trigger, "pid": os.getpid(), "t": _now()})

    def output(self, run_id: str, line: str) -> None:
        """``line`` is a stored log line, ``[time, stream, text(, level)]`` as JSON."""
        stamp, stream, text, *level = json.loads(line)
        event = {"e": "out", "run": run_id, "t": stamp, "s": stream, "x": text}
        if level:
            event["l"] = level[0]
        self._write(event)

    def end(self, run: RunRecord) -> None:
        event: dict[str, Any] = {"e": "end", "run": run.id, "t": _now(), "status": run.status}
        if run.error:
            event["error"] = run.error
        self._write(event)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _write(self, event: dict[str, Any]) -> None:
        data = json.dumps(event, ensure_ascii=False) + "\n"
        with self._lock:
            try:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    fd = open_private(self.path, os.O_WRONLY | os.O_APPEND)
                    self._file = open(fd, "a", encoding="utf-8")  # noqa: SIM115
                self._file.write(data)
                self._file.flush()
                if self._file.tell() > ROTATE_BYTES:
                    self._file.close()
                    self._file = None
                    os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            except OSError:
                # The live log is a convenience; the store keeps the run's log regardless.
                self._file = None


@dataclass
class LiveRun:
    run: str
    node: str
    title: str
    trigger: str
    pid: int
    lines: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None


@dataclass
class Event:
    """What a follower sees: ``kind`` is ``start``, ``out`` or ``end``."""

    kind: str
    run: LiveRun
    line: dict[str, Any] | None = None


def read_runs(path: Path) -> dict[str, LiveRun]:
    """Every run in the live log (and its rotated predecessor), with its lines so far."""
    runs: dict[str, LiveRun] = {}
    for part in (path.with_name(path.name + ".1"), path):
        with contextlib.suppress(FileNotFoundError), open(part, encoding="utf-8") as file:
            for raw in file:
                _apply(runs, raw)
    return runs


def follow(path: Path, *, run_id: str | None = None, node_ids: set[str] | None = None,
           stop: Callable[[], bool] = lambda: False, poll: float = 0.1) -> Iterator[Event]:
    """Events of the runs in the live log as they happen.

    With ``run_id``, that run's lines so far and then live, until it ends. Without, the runs
    in progress now (their lines so far) and every run that starts later, until ``stop()``.
    A run whose engine died without ending it is ended with status ``engine stopped``.
    """
    runs: dict[str, LiveRun] = {}
    with contextlib.suppress(FileNotFoundError), \
            open(path.with_name(path.name + ".1"), encoding="utf-8") as older:
        for raw in older:  # runs that began before the last rotation
            _apply(runs, raw)
    file, inode, partial = None, None, ""
    started = False
    try:
        while True:
            if file is None:
                file, inode = _open(path)
            # Checked before reading: the engine closes a file before renaming it, so once
            # renamed, this read gets the rest of it.
            rotated = file is not None and _rotated(path, inode)
            if file is not None:
                chunk = partial + file.read()
                if rotated:  # and rotated again since: the generation in between
                    chunk += _between(path, inode)
                lines = chunk.split("\n")
                partial = lines.pop()
                for raw in lines:
                    event = _apply(runs, raw, keep_lines=not started)
                    if not started or event is None or not _wanted(event.run, run_id,
                                                                    node_ids):
                        continue  # before the catch-up below, collect only
                    yield event
                    if event.kind == "end":
                        runs.pop(event.run.run, None)
                        if run_id is not None:
                            return
            if not started:
                started = True
                # Catch up: what happened before we looked, for runs still in progress.
                for run in list(runs.values()):
                    if run.end is not None:
                        del runs[run.run]
                        if run_id is None or not _wanted(run, run_id, node_ids):
                            continue
                    elif not _wanted(run, run_id, node_ids):
                        continue
                    yield Event("start", run)
                    for line in run.lines:
                        yield Event("out", run, line)
                    run.lines = []
                    if run.end is not None:
                        yield Event("end", run, run.end)
                        return
            if rotated:
                assert file is not None
                file.close()
                file, inode, partial = None, None, ""
                continue
            for run in list(runs.values()):
                if not _alive(run.pid) and _wanted(run, run_id, node_ids):
                    run.end = {"status": "engine stopped",
                               "error": "the engine that ran it stopped before the run ended"}
                    del runs[run.run]
                    yield Event("end", run, run.end)
                    if run_id is not None:
                        return
            if stop():
                return
            time.sleep(poll)
    finally:
        if file is not None:
            file.close()


def _open(path: Path) -> tuple[IO[str] | None, int | None]:
    try:
        file = open(path, encoding="utf-8")  # noqa: SIM115
    except FileNotFoundError:
        return None, None
    return file, os.fstat(file.fileno()).st_ino


def _between(path: Path, drained: int | None) -> str:
    """The rotated-away file, if it is not the one just drained (two rotations between
    polls); "" otherwise."""
    try:
        with open(path.with_name(path.name + ".1"), encoding="utf-8") as older:
            if os.fstat(older.fileno()).st_ino == drained:
                return ""
            return older.read()
    except FileNotFoundError:
        return ""


def _rotated(path: Path, inode: int | None) -> bool:
    try:
        return path.stat().st_ino != inode
    except FileNotFoundError:
        return True


def _apply(runs: dict[str, LiveRun], raw: str, keep_lines: bool = True) -> Event | None:
    try:
        event = json.loads(raw)
        kind = event["e"]
        run_id = event["run"]
    except (ValueError, KeyError, TypeError):
        return None
    if kind == "start":
        started = runs[run_id] = LiveRun(run_id, event.get("node", ""), event.get("title", ""),
                                         event.get("trigger", ""), int(event.get("pid", 0)))
        return Event("start", started)
    run = runs.get(run_id)
    if run is None:
        return None  # started in a rotated-away part
    if kind == "out":
        if keep_lines:
            run.lines.append(event)
        return Event("out", run, event)
    if kind == "end":
        run.end = event
        return Event("end", run, event)
    return None


def _wanted(run: LiveRun, run_id: str | None, node_ids: set[str] | None) -> bool:
    if run_id is not None and run.run != run_id:
        return False
    return node_ids is None or run.node in node_ids


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
