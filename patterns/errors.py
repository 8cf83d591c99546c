"""The error families of Patterns.

Every error a user can meet is a :class:`PatternsError`. A message says what failed, the bad
value, the valid choices and the fix. The CLI prints ``str(error)`` as one red line (graph
errors print one line per problem) and exits 1; a traceback reaching a user is a bug.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class PatternsError(Exception):
    """Root of every error Patterns raises on purpose."""

    #: True when the same operation may succeed if simply tried again.
    retryable: bool = False


@dataclass(frozen=True)
class Problem:
    """One problem found in an app: where it is, what is wrong, how to fix it."""

    file: str
    line: int | None
    message: str
    fix: str | None = None
    node: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        who = f" (node {self.node})" if self.node else ""
        fix = f": {self.fix}" if self.fix else ""
        return f"{where}{who}: {self.message}{fix}"


class GraphError(PatternsError):
    """The app (graph.yml or a node file) is invalid. Carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(PatternsError):
    """A setting, a CLI option, a parameter value or a secret is wrong or missing."""


class NodeError(PatternsError):
    """Node code used the API wrongly (undeclared table, unstorable value...).

    ``record`` is the index, within what was appended, of the record at fault, when known.
    """

    def __init__(self, message: str, record: int | None = None) -> None:
        super().__init__(message)
        self.record = record


class StoreError(PatternsError):
    """The store refused an operation or cannot be opened."""


class StoreBusyError(StoreError):
    """Another process holds the store open for writing."""

    retryable = True


class DiskFullError(StoreError):
    """The store's disk had no room for a write; the write was rolled back."""


class EngineError(PatternsError):
    """The engine could not run or record a run."""


class AtOnce(EngineError):
    """(From the engine to the SDK, never shown to a user.) A long list must be shipped
    whole, converted at once, not in parts: its table's rules would store it otherwise in
    parts (``contract: variant`` adds a side column where a part first needs one)."""


class CommitTimeout(StoreError):
    """A checkpoint's statements ran past the time they were given, or were asked to stop;
    nothing was committed."""

    retryable = True


class DataError(StoreError):
    """A value does not fit the column it is stored in or compared with (a text in a number
    column, a filter value of the wrong type); nothing was written."""


class QueryError(StoreError):
    """A query over the store's tables failed (its syntax, a name, a type): the backend's
    own message, first line."""


class ComponentError(ConfigError):
    """A component named by ``uses:`` is not installed, or cannot be installed."""


def did_you_mean(wanted: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a misspelled ``wanted``, else ''."""
    import difflib

    options = [str(c) for c in choices if c]
    close = difflib.get_close_matches(wanted, options, n=1, cutoff=0.6) or \
        difflib.get_close_matches(wanted.lower(), options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
