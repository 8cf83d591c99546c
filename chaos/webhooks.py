"""``patterns serve`` under webhook load, with one SIGKILL of the server or a node process;
then a restart, a drain, and a check that every acknowledged record is stored exactly once
and copied downstream exactly once."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from chaos import apps, processes
from chaos.check import StoreReader, Verdict
from chaos.trial import COMMAND, Trial, environment, new_mark, reap, recover, run_cli, wait

CLIENTS = 4
TARGETS = ("server", "node")


class Server:
    """A ``patterns serve`` process and the URL it announced."""

    def __init__(self, app: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([*COMMAND, "serve", str(app), "--port", "0"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True)
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = ""

        def announced() -> bool:
            found = next((m for line in list(self.output)
                          if (m := re.search(r"on (http://\S+)", line))), None)
            if found:
                self.url = found.group(1)
            if self.proc.poll() is not None:
                raise RuntimeError("patterns serve exited:\n" + "".join(self.output))
            return bool(found)

        wait(announced, 60, "patterns serve to start")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                processes.kill_tree(self.proc.pid)
                self.proc.wait()


class Load:
    """Clients posting records with unique keys until told to stop; the keys acknowledged
    with a 2xx."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.acked: list[str] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                         for i in range(CLIENTS)]
        for t in self._threads:
            t.start()

    def _client(self, client: int) -> None:
        import requests

        session = requests.Session()
        n = 0
        while not self.stopping.is_set() and n < 2000:
            key = f"{self.prefix}-{client}-{n}"
            n += 1
            try:
                response = session.post(self.url, data=json.dumps({"k": key}), timeout=30,
                                        headers={"Content-Type": "application/json"})
            except requests.RequestException:
                if self.stopping.wait(0.05):
                    return
                continue
            if 200 <= response.status_code < 300:
                with self._lock:
                    self.acked.append(key)

    def stop(self) -> list[str]:
        self.stopping.set()
        for t in self._threads:
            t.join(timeout=60)
        return list(self.acked)


def _webhook_url(app: Path, server: Server, env: dict[str, str]) -> str:
    done = run_cli(["list", "webhooks", str(app), "--json"], env, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"patterns list webhooks failed: {done.stderr.strip()}")
    (hook,) = json.loads(done.stdout)
    return f"{server.url}{hook['path']}"


def trial(rng: random.Random, workdir: Path) -> Trial:
    started = time.monotonic()
    app = apps.webhooks(workdir / "app")
    mark = new_mark()
    env = environment(mark)
    notes: list[str] = []
    server = Server(app, env)
    url = _webhook_url(app, server, env)
    load = Load(url, "a")
    target = rng.choice(TARGETS)
    time.sleep(rng.uniform(0.2, 2.0))
    point = "missed"
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if target == "server":
            pid: int | None = server.proc.pid
        else:
            found = processes.node_processes(server.proc.pid)
            pid = rng.choice(found).pid if found else None
        if pid is not None and processes.kill(pid):
            point = f"kill:{target}"
            break
        time.sleep(0.02)
    if target == "server":
        acked = load.stop()
        server.proc.wait()
        stuck = reap(mark)
        if stuck:
            notes.append(f"{len(stuck)} process(es) outlived the server")
        server = Server(app, env)  # restart: what was acked must still be there
        url = _webhook_url(app, server, env)
        load = Load(url, "b")
        time.sleep(0.5)
        acked += load.stop()
    else:
        time.sleep(0.5)
        acked = load.stop()
    server.stop()
    reap(mark)
    verdict = Verdict()
    try:
        notes += recover(app, environment(mark))
    except Exception as exc:
        verdict.mismatches.append(f"recovery: {exc}")
    reap(mark)
    if not acked:
        notes.append("no request was acknowledged")
    with StoreReader(app) as store:
        events = store.column("events", "k")
        # Every acknowledged record once; an unacknowledged one (cut off by the kill) at
        # most once.
        verdict.once("events (acked)", [k for k in events if k in set(acked)], acked)
        verdict.once("events", events, set(events))
        copied = store.column("copied", "k")
        verdict.once("copied", copied, events)
        verdict.agree("copy count", store.state("copy0001").get("count"), len(copied))
        verdict.agree("runs left running", store.runs_left_running(), 0)
    return Trial("webhooks", point, verdict, time.monotonic() - started,
                 [*notes, f"{len(acked)} acked"])
