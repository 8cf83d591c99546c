"""Benchmarks: each measures the platform and its baseline in the same run, on the same
records, and prints one JSON line per figure with the ratio. `python -m bench --small` is the
CI smoke run; the default sizes give the real figures (recorded in bench/RESULTS.md)."""
