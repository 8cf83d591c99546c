"""A throwaway PostgreSQL server: a fresh cluster in a folder, on a free loopback port.

The tests, the benchmarks and ``patterns store`` trials start one from the PostgreSQL binaries
on this machine (Debian's ``postgresql`` package: ``scripts/install-postgres``) when no server
is given (``PATTERNS_TEST_POSTGRES``). PostgreSQL refuses to run as root: as root, the cluster
belongs to the ``postgres`` user and its commands run through ``runuser``.
Settings favour speed over durability (``fsync=off``): the cluster is thrown away.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from patterns.errors import StoreError

USER = "patterns"


def binaries() -> Path:
    """The folder of ``pg_ctl`` and ``initdb``: on PATH, else the newest Debian install."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda p: int(re.sub(r"\D", "", p.parent.parent.name) or 0))
    if not versions:
        raise StoreError("no PostgreSQL server binaries (pg_ctl) on this machine: run "
                         "scripts/install-postgres (Debian's `postgresql` package), or give "
                         "a server with PATTERNS_TEST_POSTGRES=postgresql://...")
    return versions[-1].parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running throwaway cluster; :meth:`stop` ends it, :meth:`database` makes a database."""

    folder: Path
    port: int
    _run_as: list[str]
    _bin: Path

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def database(self, name: str) -> str:
        """A new empty database (dropped first if it exists); its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            con.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run([*self._run_as, str(self._bin / "pg_ctl"), "-D",
                            str(self.folder / "data"), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def start() -> Server:
    """Start a new cluster in a new folder of the system's temporary directory (as root, the
    ``postgres`` user must reach it: a pytest ``tmp_path`` lies in a folder only root can
    enter). :meth:`Server.stop` removes it."""
    import tempfile

    bin_dir = binaries()
    folder = Path(tempfile.mkdtemp(prefix="patterns-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        folder.chmod(0o700)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, sockets = folder / "data", folder / "sockets"
    subprocess.run([*run_as, "mkdir", "-p", str(sockets)], check=True)

    def run(*args: str) -> None:
        done = subprocess.run([*run_as, *args], capture_output=True, text=True, timeout=120,
                              check=False)
        if done.returncode:
            raise StoreError(f"could not start a throwaway PostgreSQL ({args[0]}): "
                             f"{(done.stderr or done.stdout).strip()}")

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8",
        "--locale=C", "--no-sync")
    for attempt in range(3):  # a port found free may be taken before the server binds it
        port = free_port()
        options = (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        try:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                str(folder / "server.log"), "-w", "-t", "60", "start")
            return Server(folder, port, run_as, bin_dir)
        except StoreError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
