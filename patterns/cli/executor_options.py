"""The options that say where node runs are carried out: ``--executor`` and
``--data-plane-host`` (of ``patterns run`` and ``patterns serve``)."""

from __future__ import annotations

import click

EXECUTOR_OPTION = click.option(
    "--executor", envvar="PATTERNS_EXECUTOR", metavar="WHERE", default=None,
    help="Where node runs are carried out: local (default), dask://HOST:PORT (the workers of "
         "a running Dask scheduler) or dask-local:N (a local Dask cluster of N processes, to "
         "try it). Env PATTERNS_EXECUTOR. See docs/deploy.md.")

DATA_PLANE_HOST_OPTION = click.option(
    "--data-plane-host", envvar="PATTERNS_DATA_PLANE_HOST", metavar="HOST", default=None,
    help="Address the engine's data plane listens on for node processes (default: "
         "127.0.0.1; with a Dask scheduler on another machine, the address of this machine "
         "that routes to it). BIND=ADVERTISED listens on one address and tells nodes "
         "another. Env PATTERNS_DATA_PLANE_HOST.")

