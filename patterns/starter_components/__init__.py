"""The starter component library shipped with Patterns (org ``patterns``).

Each folder here is a component (a graph.yml with ``slug``, ``version`` and ``exposes``) that
works offline. The package is registered through the ``patterns.components`` entry point, so
``uses: patterns/date-table@v1`` finds these folders; see docs/components.md.
"""
