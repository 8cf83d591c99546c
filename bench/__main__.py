"""``python -m bench [--small] [--large] [--store STORE] [NAME ...]``: run the benchmarks, one JSON
line per figure (each naming the store it ran on)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from bench import stores

#: Benchmark modules in bench/, in the order of the benchmarks issue.
BENCHMARKS = ["append_list", "append_record", "consume", "run_overhead", "stream_new_rows",
              "stream_memory", "webhooks", "load_vs_dlt", "copy", "pipeline", "table_pages",
              "pg_store", "dask_scaling", "studio_first_load", "studio_status_latency",
              "scheduler_look"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--small", action="store_true",
                        help="small sizes: a smoke run of seconds (what CI runs)")
    parser.add_argument("--large", action="store_true",
                        help="also the large sizes that take minutes to fill (stream_new_rows "
                             "at 20,000,000 rows)")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"only these benchmarks (of: {', '.join(BENCHMARKS)})")
    parser.add_argument("--store", default="duckdb", metavar="STORE",
                        help="duckdb (default), postgresql://USER@HOST:PORT/DB (a new "
                             "database per benchmark) or postgresql-temp (a throwaway "
                             "server); on PostgreSQL the store benchmarks run: "
                             f"{', '.join(stores.ON_POSTGRES)}")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark {', '.join(sorted(unknown))}; "
                     f"known: {', '.join(BENCHMARKS)}")
    if not stores.valid(args.store):
        parser.error(f"unknown store {args.store!r}: give duckdb, a postgresql:// URL or "
                     f"{stores.TEMP}")
    names = args.names or (BENCHMARKS if args.store == "duckdb" else stores.ON_POSTGRES)
    if args.store != "duckdb" and set(names) - set(stores.ON_POSTGRES):
        parser.error(f"on PostgreSQL only the store benchmarks run: "
                     f"{', '.join(stores.ON_POSTGRES)}")
    if args.large:
        os.environ["BENCH_LARGE"] = "1"
    with stores.store_for_each(args.store) as fresh:
        for name in names:
            fresh(name)
            module = importlib.import_module(f"bench.{name}")
            for figure in module.run(args.small):
                doc = json.loads(figure.line())
                doc["store"] = stores.backend(args.store)
                print(json.dumps(doc), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
