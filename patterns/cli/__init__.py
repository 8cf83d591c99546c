"""The devkit: the ``patterns`` command."""
