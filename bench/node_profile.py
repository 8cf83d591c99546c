"""Profiling a benchmark's nodes: ``BENCH_NODE_PROFILE=DIR python -m bench NAME``.

Copied into each benchmark's throwaway app as ``benchprofile.py`` and imported first by
every node file there. With ``BENCH_NODE_PROFILE`` set to a folder, the node profiles the
rest of its run (its code, the last flush and the final commit's round trip) with cProfile
into ``DIR/<node file>-<pid>.prof`` (read it with ``python -m pstats``); unset, it does
nothing. For local experiments: figures taken with it on are not the benchmark's.
"""

from __future__ import annotations

import os


def _profile(folder: str) -> None:
    import atexit
    import cProfile
    import sys

    profile = cProfile.Profile()
    node = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "node"
    path = os.path.join(folder, f"{node}-{os.getpid()}.prof")
    # The node process runs atexit functions after the run's final checkpoint.
    atexit.register(lambda: (profile.disable(), profile.dump_stats(path)))
    profile.enable()


if os.environ.get("BENCH_NODE_PROFILE") and __name__ == "benchprofile":
    _profile(os.environ["BENCH_NODE_PROFILE"])
