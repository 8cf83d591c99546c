"""Finding the processes of a running engine (from ``/proc``) and killing one of them."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    cmdline: str


def _read(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may hold spaces and parentheses: the fields follow the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None  # a zombie: already dead
    return Proc(pid, int(fields[1]), cmdline.strip())


def descendants(root: int) -> list[Proc]:
    """Every live process below ``root`` (children first, then theirs)."""
    procs = [p for p in (_read(int(d)) for d in os.listdir("/proc") if d.isdigit()) if p]
    children: dict[int, list[Proc]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    found: list[Proc] = []
    frontier = [root]
    while frontier:
        pid = frontier.pop(0)
        for child in children.get(pid, []):
            found.append(child)
            frontier.append(child.pid)
    return found


def workers(root: int) -> list[Proc]:
    """The warm workers (zygotes) of the engine ``root``."""
    below = descendants(root)
    zygotes = {p.pid for p in below if "_zygote" in p.cmdline}
    return [p for p in below if p.pid in zygotes and p.ppid not in zygotes]


def node_processes(root: int) -> list[Proc]:
    """Processes running (or waiting to run) node code: children of a warm worker, or cold
    runners."""
    below = descendants(root)
    zygotes = {p.pid for p in below if "_zygote" in p.cmdline}
    return [p for p in below
            if (p.ppid in zygotes and "_zygote" in p.cmdline) or "_runner" in p.cmdline]


def kill(pid: int) -> bool:
    """SIGKILL ``pid``; False when it was already gone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def kill_tree(root: int) -> None:
    """SIGKILL ``root`` and everything below it (the end of a trial)."""
    for p in [*reversed(descendants(root))]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(root, signal.SIGKILL)
