"""Which braces of a SQL template are template code: not those in SQL comments and strings.

The original Studio starts every SQL node it made with ``-- Type '{{' to use Tables and
Parameters``; to Jinja that ``{{`` opens an expression that never closes. Text inside SQL
comments (``-- ...``, ``/* ... */``) and string literals (``'...'``, ``$$...$$``) is not
template code, so :func:`shield` hides its braces from Jinja before a template is parsed,
replacing ``{`` with a private-use character of the same length (lines and columns do not
move), and :func:`unshield` puts them back in the rendered SQL.

One exception keeps a helpful error: a ``{{ Table(...) }}`` or ``{{ Parameter(...) }}``
written inside quotes stays template code, so that the engine can say that a Parameter
belongs outside quotes (it is bound by the database, never pasted into the text).
"""

from __future__ import annotations

import re
from typing import Final

SHIELD: Final = "\ue004"  # stands for a "{" that is SQL text, not template code
_JINJA_OPEN: Final = ("{{", "{%", "{#")
_JINJA_CLOSE: Final = {"{{": "}}", "{%": "%}", "{#": "#}"}
_API_CALL: Final = re.compile(r"\{\{-?\s*(Table|Parameter)\s*\(")
_RAW: Final = re.compile(r"\{%-?\s*raw\s*-?%\}")
_ENDRAW: Final = re.compile(r"\{%-?\s*endraw\s*-?%\}")
_DOLLAR: Final = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def shield(source: str) -> str:
    """``source`` with every ``{`` inside a SQL comment or string literal replaced by
    :data:`SHIELD` (see the module's docstring for the one exception)."""
    if "{" not in source:
        return source
    out: list[str] = []
    i = 0
    n = len(source)
    while i < n:
        two = source[i:i + 2]
        if two in _JINJA_OPEN:
            end = _jinja_end(source, i, _JINJA_CLOSE[two], quotes=two != "{#")
            if two == "{%" and _RAW.match(source, i):  # {% raw %}...{% endraw %}: as is
                closing = _ENDRAW.search(source, end)
                end = closing.end() if closing else len(source)
            out.append(source[i:end])
            i = end
        elif source[i] == '"':  # a quoted identifier: "a--b" is not a comment
            end = source.find('"', i + 1)
            end = n if end < 0 else end + 1
            out.append(source[i:end])
            i = end
        elif two == "--":
            end = source.find("\n", i)
            end = n if end < 0 else end
            out.append(_shielded(source[i:end]))
            i = end
        elif two == "/*":
            end = source.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(_shielded(source[i:end]))
            i = end
        elif source[i] == "'":
            i = _string(source, i, out)
        elif source[i] == "$" and (dollar := _DOLLAR.match(source, i)) is not None:
            tag = dollar.group(0)
            end = source.find(tag, dollar.end())
            end = n if end < 0 else end + len(tag)
            out.append(tag + _shielded(source[dollar.end():end]))
            i = end
        else:
            out.append(source[i])
            i += 1
    return "".join(out)


def unshield(text: str) -> str:
    """Rendered SQL with the braces :func:`shield` hid put back."""
    return text.replace(SHIELD, "{")


def _shielded(text: str) -> str:
    return text.replace("{", SHIELD)


def _string(source: str, start: int, out: list[str]) -> int:
    """Copy the string literal at ``start`` (a ``'``) to ``out``; the index after it."""
    n = len(source)
    i = start + 1
    out.append("'")
    while i < n:
        char = source[i]
        if char == "'":
            if source[i + 1:i + 2] == "'":  # '' is a quote inside the string
                out.append("''")
                i += 2
                continue
            out.append("'")
            return i + 1
        if source.startswith("{{", i) and _API_CALL.match(source, i):
            end = _jinja_end(source, i, "}}")
            out.append(source[i:end])
            i = end
            continue
        out.append(SHIELD if char == "{" else char)
        i += 1
    return n


def _jinja_end(source: str, start: int, close: str, *, quotes: bool = True) -> int:
    """The index just past the Jinja tag opened at ``start`` (quotes inside it are Jinja's),
    or the end of ``source`` when it never closes (Jinja then reports the syntax error)."""
    n = len(source)
    i = start + 2
    quote: str | None = None
    while i < n:
        char = source[i]
        if quote is not None:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = None
        elif quotes and char in "'\"":
            quote = char
        elif source.startswith(close, i):
            return i + len(close)
        i += 1
    return n
