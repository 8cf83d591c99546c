"""The launcher interface: what the engine asks of whatever carries out its node runs.

The engine hands a launcher a :class:`RunRequest` (the node, the run's id, the config its
process gets: the data plane's address and the run's token, its first facts; the time limit;
where its output goes) and gets an :class:`~patterns.engine.launcher.Exit` back. It stops a
run with :meth:`Launcher.cancel` by the run's id. Everything about processes (pids, process
groups, warm workers, the sandbox, remote machines) stays inside the launcher: the local
:class:`~patterns.engine.launcher.ProcessLauncher` and the Dask one
(:class:`~patterns.engine.dask_launcher.DaskLauncher`) are two of them.

:func:`make_launcher` turns the ``--executor`` setting into a launcher.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from patterns.errors import ConfigError

if TYPE_CHECKING:
    from patterns.engine.launcher import Exit, LogCapture, OnLine

__all__ = ["Launcher", "RunRequest", "executor_launcher", "make_launcher"]


@dataclass(frozen=True)
class RunRequest:
    """One run of one node, as the engine asks for it."""

    run_id: str
    node_id: str
    #: The node's file, relative to ``app_root`` (for messages; it travels in ``config``).
    node_file: str
    app_root: Path
    #: What the node process gets on its config pipe: ``uri`` (the data plane), ``token``
    #: (the run's, valid while it runs), ``run_info`` (its first facts)...
    config: Mapping[str, object]
    time_limit: float
    #: Keeps (and masks) the run's output; each kept line also goes to ``on_line``.
    capture: LogCapture
    on_line: OnLine
    #: The Python to run the node with (an app's own environment); None: the launcher's.
    python: str | None = None
    #: Called once the run's process has started.
    on_start: Callable[[], None] | None = None
    #: The run's process was lost with its machine (a Dask worker died): the engine rolls
    #: the run back to its last checkpoint, revokes the lost process's token and gives the
    #: config of a fresh start (a new token, the facts as of that checkpoint), or None when
    #: the run must not start again (it was cancelled, or its work is already committed).
    relaunch: Callable[[], Mapping[str, object] | None] | None = None


class Launcher(Protocol):
    """Carries out node runs: locally (:class:`~patterns.engine.launcher.ProcessLauncher`)
    or elsewhere (:class:`~patterns.engine.dask_launcher.DaskLauncher`)."""

    def prepare(self, engine_uri: str, python: str | None = None) -> None:
        """Get ready for runs that reach the engine at ``engine_uri`` (warm up)."""

    def run(self, request: RunRequest) -> Exit:
        """Carry out one run to its end; its output goes to ``request.capture`` as it
        comes. Never raises for a failure of the node itself."""

    def cancel(self, run_id: str) -> None:
        """End the run ``run_id`` and everything it started, now or as soon as it has a
        process; nothing if it is not running."""

    def close(self) -> None:
        """Stop whatever the launcher keeps (warm workers, a cluster connection)."""


#: How ``--executor`` is written.
EXECUTOR_FORMS = "local, dask://HOST:PORT (a running Dask scheduler) or dask-local:N"


def make_launcher(executor: str | None) -> Launcher | None:
    """The launcher ``--executor`` names: None for ``local`` (the engine's default), a
    :class:`~patterns.engine.dask_launcher.DaskLauncher` for ``dask://HOST:PORT`` (an
    existing cluster) or ``dask-local:N`` (a local cluster of N worker processes, to try it).
    Raises ConfigError for anything else, or a scheduler that cannot be reached."""
    if executor is None or executor == "local":
        return None
    if executor.startswith(("dask://", "tcp://")):
        from patterns.engine.dask_launcher import DaskLauncher

        address = "tcp://" + executor.split("://", 1)[1].rstrip("/")
        if not address.rpartition(":")[2].isdigit():  # no port: Dask's default
            address += ":8786"
        return DaskLauncher.connect(address)
    if executor.startswith("dask-local"):
        count = executor.partition(":")[2] or "2"
        if not count.isdigit() or int(count) < 1:
            raise ConfigError(f"--executor {executor!r}: the worker count after "
                              f"dask-local: must be a whole number of at least 1, e.g. "
                              f"dask-local:2")
        from patterns.engine.dask_launcher import DaskLauncher

        return DaskLauncher.local(int(count))
    raise ConfigError(f"--executor {executor!r} is not one of: {EXECUTOR_FORMS}")


def executor_launcher(executor: str | None,
                      data_plane_host: str | None) -> tuple[Launcher | None, str | None]:
    """The launcher ``--executor`` names, and where the data plane should listen with it:
    ``data_plane_host`` if given; for a Dask scheduler on another machine, every interface,
    advertised as the address of this machine that routes to the scheduler; else loopback
    (None)."""
    launcher = make_launcher(executor)
    if launcher is None or data_plane_host:
        return launcher, data_plane_host
    from patterns.engine.dask_launcher import DaskLauncher

    if isinstance(launcher, DaskLauncher):
        return launcher, launcher.data_plane_host()
    return launcher, None


def parallelism(launcher: Launcher | None) -> int | None:
    """How many runs ``launcher`` can carry out at once, if it says (a Dask cluster's
    threads); None: the engine's default."""
    count = getattr(launcher, "parallelism", None)
    return int(count()) if callable(count) else None
