"""Carrying out node runs on a Dask distributed cluster (``--executor dask://HOST:PORT``).

Each run is one Dask task (:func:`patterns.engine.dask_task.run_on_worker`): the worker
starts the node process, which reaches the engine's data plane over TCP with its run token.
The output comes back as it is printed, as Dask events (one topic per launcher); a run is
stopped through a Dask event the task watches (cancellation, and a backstop past the time
limit the worker enforces itself).

A run whose worker is lost (killed, its machine gone) is started again, from its last
checkpoint, up to :data:`MAX_LOST` times (see :mod:`patterns.engine.relaunch`). A cluster
with no worker left for :data:`NO_WORKERS_SECONDS` fails its runs with an error that names
the scheduler and says what to do.

``--executor dask-local:N`` starts a ``LocalCluster`` of N worker processes on this machine,
ended with the launcher: a way to try this out.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from patterns.engine.dask_task import run_on_worker, started_event, stop_event
from patterns.engine.launcher import Exit
from patterns.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from distributed import Client, Future

    from patterns.engine.launching import RunRequest

#: How long to try reaching the scheduler, and to wait for a first worker.
CONNECT_SECONDS = float(os.environ.get("PATTERNS_DASK_CONNECT_SECONDS", "10"))
#: A cluster without a worker for this long fails the runs waiting on it.
NO_WORKERS_SECONDS = float(os.environ.get("PATTERNS_DASK_NO_WORKERS_SECONDS", "20"))
#: Times a run is started again after losing its worker, before it fails.
MAX_LOST = 3
#: Past its time limit (which the worker enforces), how long before the engine stops a run
#: itself, and then how long it waits for the worker to say so.
BACKSTOP_SECONDS = 30.0

log = logging.getLogger("patterns.engine")


class DaskLauncher:
    """A :class:`~patterns.engine.launching.Launcher` that runs nodes on Dask workers."""

    def __init__(self, client: Client, address: str, cluster: Any = None) -> None:
        self.client = client
        self.address = address
        self._cluster = cluster
        self.topic = f"patterns-output-{uuid.uuid4().hex}"
        self._receiving: dict[str, _Receiving] = {}  # task key -> its run's output
        self._keys: dict[str, str] = {}  # run id -> the key of its current task
        self._lock = threading.Lock()
        self._workers_seen = time.monotonic()
        self._workers_checked = 0.0
        #: Forgets the events of ended runs on the scheduler, off the runs' path.
        self._sweeper = ThreadPoolExecutor(1, thread_name_prefix="patterns-dask-sweep")
        client.subscribe_topic(self.topic, self._received)

    @classmethod
    def connect(cls, address: str) -> DaskLauncher:
        """A launcher on the running cluster whose scheduler is at ``address`` (``tcp://``);
        ConfigError (one line: the address, and what to do) when it cannot be reached or
        has no worker."""
        from distributed import Client

        _quiet_dask()
        try:
            client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {address} ({_why(exc)}): start it "
                f"(`dask scheduler --port PORT`) and its workers (`dask worker {address}`), "
                f"or fix --executor") from exc
        launcher = cls(client, address)
        try:
            client.wait_for_workers(1, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError) as exc:
            launcher.close()
            raise ConfigError(
                f"the Dask scheduler at {address} has no workers: start some with "
                f"`dask worker {address}` (each with patterns installed and the app folder "
                f"at the same path)") from exc
        return launcher

    @classmethod
    def local(cls, workers: int) -> DaskLauncher:
        """A launcher on a new ``LocalCluster`` of ``workers`` processes (one run at a time
        each), ended with it."""
        from distributed import Client, LocalCluster

        _quiet_dask()
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=":0",
                               silence_logs=logging.ERROR)
        client = Client(cluster, set_as_default=False)
        return cls(client, str(cluster.scheduler_address), cluster)

    def data_plane_host(self) -> str | None:
        """Where the engine's data plane should listen for this cluster's workers: None
        (loopback) for a scheduler on this machine; else every interface, advertised as
        this machine's address towards the scheduler."""
        import ipaddress

        host = self.address.split("://", 1)[-1].rpartition(":")[0].strip("[]")
        try:
            if host == "localhost" or ipaddress.ip_address(host).is_loopback:
                return None
        except ValueError:
            pass
        advertised = _route_to(self.address)
        return f"0.0.0.0={advertised}" if advertised else "0.0.0.0"

    def parallelism(self) -> int:
        """How many runs the cluster's workers can carry out at once."""
        return max(1, int(sum(self.client.nthreads().values())))

    def prepare(self, engine_uri: str, python: str | None = None) -> None:
        """(The workers start their warm workers at their first run.)"""

    def close(self) -> None:
        import contextlib

        self._sweeper.shutdown(wait=True)
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self.topic)
        with contextlib.suppress(Exception):
            self.client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()

    def cancel(self, run_id: str) -> None:
        with self._lock:
            key = self._keys.get(run_id)
        if key is not None:
            self._event(stop_event(key)).set()

    # ------------------------------------------------------------------ runs
    def run(self, request: RunRequest) -> Exit:
        config: Mapping[str, object] | None = request.config
        lost = 0
        while True:
            assert config is not None
            exit_, lost_why = self._attempt(request, config, lost + 1)
            if lost_why is None:
                return exit_
            lost += 1
            self._say(request, f"[patterns] {lost_why}; the run was rolled back to its last "
                               f"checkpoint")
            if request.relaunch is None or lost > MAX_LOST:
                return Exit(None, error=f"{lost_why} ({lost} time(s)); the run was rolled "
                                        f"back to its last checkpoint")
            config = request.relaunch()
            if config is None:  # cancelled meanwhile, or its work was already committed
                return Exit(None, error=lost_why)
            self._say(request, f"[patterns] starting it again on another worker "
                               f"(start {lost + 1})")

    def _attempt(self, request: RunRequest, config: Mapping[str, object],
                 number: int) -> tuple[Exit, str | None]:
        """One start of the run on the cluster: its exit, or why it was lost."""
        key = f"patterns-run-{request.run_id}-{number}"
        receiving = _Receiving(request)
        with self._lock:
            self._receiving[key] = receiving
            self._keys[request.run_id] = key
        spec = {"key": key, "topic": self.topic, "config": dict(config),
                "app_root": str(request.app_root), "node_file": request.node_file,
                "time_limit": request.time_limit, "python": request.python}
        future = self.client.submit(run_on_worker, spec, key=key, pure=False, retries=0)
        try:
            outcome = self._wait(future, key, request)
            if isinstance(outcome, str):
                return Exit(None), outcome
            if isinstance(outcome, Exit):
                return outcome, None
            if outcome.get("stale"):
                return Exit(None), "the Dask worker running it was lost"
            if outcome.get("error"):
                return Exit(None, error=str(outcome["error"])), None
            receiving.wait_for(int(outcome.get("lines") or 0))
            if request.on_start is not None and not receiving.started:
                request.on_start()
            code = outcome.get("code")
            return Exit(None if code is None else int(code), bool(outcome.get("timed_out"))), None
        finally:
            with self._lock:
                self._receiving.pop(key, None)
                if self._keys.get(request.run_id) == key:
                    self._keys.pop(request.run_id, None)
            future.release()
            self._sweeper.submit(self._forget_events, key)

    def _wait(self, future: Future[Any], key: str,
              request: RunRequest) -> dict[str, Any] | Exit | str:
        """The task's result; an Exit when the engine had to end the run itself; a string
        when its worker was lost."""
        from distributed import CancelledError
        from distributed.scheduler import KilledWorker

        backstop = time.monotonic() + request.time_limit + BACKSTOP_SECONDS
        stopped_at: float | None = None
        while True:
            try:
                result: dict[str, Any] = future.result(timeout=1.0)
                return result
            except TimeoutError:
                pass
            except KilledWorker:
                return "the Dask workers running it died"
            except CancelledError:
                return f"the Dask scheduler at {self.address} dropped it"
            except Exception as exc:  # the task itself failed on the worker (no patterns?)
                return Exit(None, error=f"the Dask worker could not run it: "
                                        f"{type(exc).__name__}: {exc}")
            now = time.monotonic()
            if stopped_at is None and now > backstop:  # the worker did not stop it in time
                self._event(stop_event(key)).set()
                stopped_at = now
            elif stopped_at is not None and now > stopped_at + BACKSTOP_SECONDS:
                future.cancel()
                return Exit(None, timed_out=True)
            workerless = self._workerless_for()
            if workerless >= NO_WORKERS_SECONDS:
                future.cancel()
                return Exit(None, error=(
                    f"the Dask cluster at {self.address} has had no workers (or no "
                    f"scheduler) for {workerless:.0f} s: start workers with "
                    f"`dask worker {self.address}` and run the node again"))

    def _workerless_for(self) -> float:
        """For how long the cluster has had no worker (0: it has some)."""
        now = time.monotonic()
        if now - self._workers_checked >= 1.0:
            self._workers_checked = now
            try:
                workers = self.client.scheduler_info(n_workers=-1).get("workers") or {}
            except Exception:  # (the scheduler itself is unreachable: as good as none)
                workers = {}
            if workers:
                self._workers_seen = now
        return now - self._workers_seen

    def _received(self, event: tuple[float, dict[str, Any]]) -> None:
        _, msg = event
        with self._lock:
            receiving = self._receiving.get(str(msg.get("key")))
        if receiving is not None:
            receiving.add(msg.get("lines") or [])

    def _say(self, request: RunRequest, text: str) -> None:
        shown = request.capture.add("stderr", text)
        if shown is not None:
            request.on_line("stderr", shown, None)

    def _event(self, name: str) -> Any:
        from distributed import Event

        return Event(name, client=self.client)

    def _forget_events(self, key: str) -> None:
        import contextlib

        for name in (started_event(key), stop_event(key)):
            with contextlib.suppress(Exception):
                self._event(name).clear()


class _Receiving:
    """A run's output as it comes from its worker."""

    def __init__(self, request: RunRequest) -> None:
        self.request = request
        self.count = 0
        self.started = False
        self._arrived = threading.Condition()

    def add(self, lines: list[list[Any]]) -> None:
        if not self.started and self.request.on_start is not None:
            self.started = True
            self.request.on_start()
        for stream, text, level in lines:
            shown = self.request.capture.add(stream, text, level)
            if shown is not None:
                self.request.on_line(stream, shown, level)
        with self._arrived:
            self.count += len(lines)
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        """Until the run's last output lines have come (they are sent before its end)."""
        with self._arrived:
            self._arrived.wait_for(lambda: self.count >= count, timeout=timeout)


def _why(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _quiet_dask() -> None:
    """Dask's own log lines (a worker lost, a connection retried) are not the user's
    business: the run's record says what happened."""
    for name in ("distributed", "distributed.client", "distributed.scheduler",
                 "distributed.worker", "distributed.nanny", "distributed.core"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _route_to(address: str) -> str | None:
    """The address of this machine that routes to ``address`` (``tcp://HOST:PORT``)."""
    import socket

    host, _, port = address.split("://", 1)[-1].rpartition(":")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((host.strip("[]"), int(port or 8786)))  # (no packet is sent)
            return str(probe.getsockname()[0])
    except (OSError, ValueError):
        return None
