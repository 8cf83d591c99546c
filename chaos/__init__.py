"""The chaos campaign: kill the platform's processes and break its store at random points
while apps run, recover, and check that every record took effect exactly once.

``python -m chaos --trials 1000`` runs the full campaign; ``tests/test_chaos.py`` runs a few
trials of each scenario in CI. A scenario is a module with ``trial(rng, workdir) -> Trial``:

- ``pipeline``: a three-node streaming app under ``patterns run``; one SIGKILL of the engine,
  a warm worker or a node process at a random moment, then ``patterns run`` again until the
  app is up to date.
- ``webhooks``: ``patterns serve`` of an app with a webhook and a stream consumer under
  concurrent webhook load; one SIGKILL of the server or a node process, then a restart.
- ``faults``: the pipeline with I/O errors and full-disk errors injected into the store's
  commits (``PATTERNS_FAULTS``, see ``patterns/store/faults.py``), then a clean recovery.

After each trial the store is read directly and checked: no input record missing (lost) or
present twice (doubled) in any table, and each node's state agreeing with its output
(mismatches).
"""
