"""``python -m bench [--small] [NAME ...]``: run the benchmarks, one JSON line per figure."""

from __future__ import annotations

import argparse
import importlib
import sys

#: Benchmark modules in bench/, in the order of the benchmarks issue.
BENCHMARKS = ["append_list", "append_record", "consume", "run_overhead", "stream_new_rows",
              "stream_memory", "webhooks", "load_vs_dlt", "copy", "table_pages", "pg_store",
              "dask_scaling", "studio_first_load", "studio_status_latency"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--small", action="store_true",
                        help="small sizes: a smoke run of seconds (what CI runs)")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"only these benchmarks (of: {', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark {', '.join(sorted(unknown))}; "
                     f"known: {', '.join(BENCHMARKS)}")
    for name in args.names or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        for figure in module.run(args.small):
            print(figure.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
