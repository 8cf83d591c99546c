"""Masking secrets in everything a run leaves behind: its output, error, traceback and record.

The engine builds one :class:`Masker` per run, before the run starts, from every secret it
could leak: each stored secret value and every string field of every connection (nested
dicts and lists included), plus the values the run's own parameters resolved to. Each value
is masked as ``****`` in every form a node is likely to print it in:

- as it is;
- ``repr()``-escaped, with either quote style, and ``ascii()``-escaped;
- ``json.dumps``-escaped, with ``ensure_ascii`` on and off;
- any of these escaped once more by ``json.dumps`` or ``repr()`` (a JSON log line of a
  message holding a ``repr``);
- URL-encoded (``quote`` and ``quote_plus``), and as the bytes' ``repr``;
- for a value that is a URL with a password (``postgresql://user:pw@host/db``): the
  password on its own, too (decoded and as written);
- for a value of several lines (a PEM key): each of its lines on its own.

Forms shorter than :data:`MIN_LENGTH` characters are not masked inside text (a password
``abc`` would mask every ``abc`` in the logs); a line of output that is nothing but such a
short value (spaces aside) is still masked. The engine applies the masker where output
arrives from the node process, line by line, before any of it is kept, streamed or shown:
the node process is never trusted to mask.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any, Final
from urllib.parse import quote, quote_plus, unquote, urlsplit

from patterns.store.model import RunRecord

MASK: Final = "****"
#: Values (and forms of them) shorter than this are not masked inside longer text.
MIN_LENGTH: Final = 4


class Masker:
    """Replaces every form of the given secret values with ``****``."""

    def __init__(self, values: Iterable[Any] = ()) -> None:
        forms: set[str] = set()
        short: set[str] = set()
        for value in secret_strings(values):
            for form in _forms(value):
                (forms if len(form) >= MIN_LENGTH else short).add(form)
        self._short = frozenset(s.strip() for s in short if s.strip())
        self._pattern = re.compile(_trie_pattern(forms)) if forms else None

    def __bool__(self) -> bool:
        return self._pattern is not None or bool(self._short)

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        if self._short and text.strip() in self._short:
            return text.replace(text.strip(), MASK)
        return text

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self(text)

    def value(self, value: Any) -> Any:
        """``value`` with every string in it masked (dicts and lists walked)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, Mapping):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def record(self, run: RunRecord) -> RunRecord:
        """The run record as it may be kept and shown: error, traceback and parameters
        masked."""
        if not self:
            return run
        return replace(run, error=self.optional(run.error),
                       traceback=self.optional(run.traceback),
                       parameters=None if run.parameters is None else
                       self.value(dict(run.parameters)))


@functools.lru_cache(maxsize=16)
def masker_for(values: tuple[str, ...]) -> Masker:
    """The masker of ``values``, made once (runs of an engine mostly share their secrets)."""
    return Masker(values)


def secret_strings(values: Iterable[Any]) -> Iterator[str]:
    """Every non-empty string within ``values``: plain secrets, and the string fields of
    connections (nested dicts and lists walked; a connection stored as JSON text is
    parsed)."""
    for value in values:
        if isinstance(value, str):
            if value:
                yield value
                if value.lstrip().startswith(("{", "[")):
                    try:
                        doc = json.loads(value)
                    except ValueError:
                        continue
                    yield from secret_strings([doc])
        elif isinstance(value, Mapping):
            yield from secret_strings(value.values())
        elif isinstance(value, list | tuple):
            yield from secret_strings(value)


def _forms(value: str) -> set[str]:
    forms = {value, *_escaped(value)}
    for line in value.splitlines():
        if line.strip() and line != value:
            forms |= {line, *_escaped(line)}
    password = _url_password(value)
    if password:
        for part in {password, unquote(password)}:
            forms |= {part, *_escaped(part)}
    # Escaped twice: a JSON log line (or a repr) of a message that holds a repr or JSON.
    forms |= {twice for form in list(forms) for twice in _escaped_again(form)}
    return {f for f in forms if f}


def _escaped(value: str) -> set[str]:
    return {
        _py_body(value, "'"), _py_body(value, '"'),
        _ascii_body(value, "'"), _ascii_body(value, '"'),
        json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""), quote(value), quote_plus(value),
        repr(value.encode())[2:-1],
    }


def _escaped_again(form: str) -> set[str]:
    return {json.dumps(form)[1:-1], json.dumps(form, ensure_ascii=False)[1:-1],
            _py_body(form, "'"), _py_body(form, '"')}


def _py_body(value: str, quote_char: str) -> str:
    """What ``repr()`` writes between the quotes, when it quotes with ``quote_char``."""
    return "".join("\\" + c if c == quote_char else repr(c)[1:-1] for c in value)


def _ascii_body(value: str, quote_char: str) -> str:
    return "".join("\\" + c if c == quote_char else ascii(c)[1:-1] for c in value)


def _trie_pattern(forms: Iterable[str]) -> str:
    """One regular expression matching any of ``forms``, the longest where several start
    at the same place: a prefix tree (forms of one secret share their start), about twice
    as fast to search as a plain alternation."""
    trie: dict[str, Any] = {}
    for form in forms:
        node = trie
        for char in form:
            node = node.setdefault(char, {})
        node[""] = {}
    return _node_pattern(trie)


def _node_pattern(node: dict[str, Any]) -> str:
    branches = []
    for char, child in sorted(node.items()):
        if not char:
            continue
        run = char  # a chain without branches is one literal (and no recursion)
        while len(child) == 1 and "" not in child:
            ((more, child),) = child.items()
            run += more
        branches.append(re.escape(run) + _node_pattern(child))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body  # (greedy: the longer form first)


def _url_password(value: str) -> str | None:
    if "://" not in value or "@" not in value:
        return None
    try:
        return urlsplit(value.strip()).password
    except ValueError:
        return None
