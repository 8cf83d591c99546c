"""The chat enrich app is a package, so its nodes share code with relative imports
(`from .lib.text import preview`)."""
