"""One table style for every command that prints a table (runs, table list/show/versions,
schedule, webhooks...), fitted to the terminal.

Columns have a kind that says how they give way when the terminal is narrow:

- ``key`` (time, node, status, run id): never cut or wrapped; the table is built around them;
- ``number``: right-aligned, thousands separators, never cut;
- ``text``: cut with an ellipsis (one line per row) when there is no room;
- ``long`` (an error, a traceback, JSON): its first line, cut to the room left; when less
  than :data:`LONG_MIN` columns are left (or with ``full``), the values go below the table,
  each labelled by the row's key columns, whole.

Piped output (not a terminal) has no colour and no width: nothing is cut or wrapped, long
values stay in their row on one line, and lines carry no trailing spaces, so ``grep``,
``awk`` and ``cut`` see every value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.text import Text

Kind = Literal["key", "number", "text", "long"]

#: The fewest columns a long value gets in the table before it moves below it.
LONG_MIN = 24
#: The width of "the terminal" when output is piped: wide enough for any row.
PIPED_WIDTH = 100_000
#: A text cell's widest (in a terminal) before it is cut.
TEXT_MAX = 40


@dataclass(frozen=True)
class Col:
    name: str
    kind: Kind = "text"
    #: A second header line (a column's type, dim).
    note: str = ""


def make_console(*, stderr: bool = False) -> Console:
    """The console of a command: the terminal's width and colours, or, piped, no colour
    and no width limit."""
    from rich.console import Console

    probe = Console(stderr=stderr, highlight=False)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, highlight=False, width=PIPED_WIDTH, soft_wrap=True)


def is_piped(console: Console) -> bool:
    return console.width >= PIPED_WIDTH


def number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def duration(seconds: float | None) -> str:
    """``0.15s``, ``12.3s``, ``4m05s``, ``2h03m``."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def when(at: dt.datetime | str | None, *, today: dt.date | None = None) -> str:
    """A moment in local time: ``HH:MM:SS`` today, ``YYYY-MM-DD HH:MM`` another day."""
    if isinstance(at, str):
        try:
            at = dt.datetime.fromisoformat(at)
        except ValueError:
            return "-"
    if at is None:
        return "-"
    local = at.astimezone()
    if local.date() == (today or dt.datetime.now().astimezone().date()):
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def _text(value: str | Text, style: str = "") -> Text:
    from rich.text import Text

    if isinstance(value, Text):
        return value
    return Text(value, style=style)


def _first_line(text: Text) -> Text:
    plain = text.plain.strip("\n")
    lines = plain.splitlines() or [""]
    if len(lines) == 1 and plain == text.plain:
        return text
    more = " …" if len(lines) > 1 else ""
    return _text(lines[0] + more, str(text.style))


def print_table(console: Console, columns: Sequence[Col], rows: Sequence[Sequence[str | Text]],
                *, title: str | None = None, full: bool = False,
                full_hint: str | None = None, label: Sequence[int] | None = None) -> None:
    """Print ``rows`` under ``columns`` (see the module's docstring for how they fit).

    ``full``: long values below the table, whole; ``full_hint``: the line that says how to
    see them whole, printed when some were cut; ``label``: the columns that name a row
    whose long value is below the table (default: its key columns)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    piped = is_piped(console)
    cells = [[_text(v) for v in row] for row in rows]
    widths = [max([len(c.name), len(c.note)] + [r[i].cell_len for r in cells])
              for i, c in enumerate(columns)]
    empty = {i for i, c in enumerate(columns)  # (a long column with nothing in it: left out)
             if c.kind == "long" and not any(r[i].plain.strip() for r in cells)}
    long_at = [i for i, c in enumerate(columns) if c.kind == "long" and i not in empty]
    below: list[int] = []
    room = console.width
    if long_at and not piped:
        room -= sum(widths[i] + 2 for i, c in enumerate(columns) if c.kind != "long")
        room = room // len(long_at) - 2
        if full or room < LONG_MIN:
            below = long_at
    view = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", title_style="bold",
                 show_edge=False, padding=(0, 1, 0, 0))
    shown = [i for i in range(len(columns)) if i not in below and i not in empty]
    for i in shown:
        col = columns[i]
        header = _text(col.name, "bold")
        if col.note:
            header = header.copy()
            header.append("\n" + col.note, style="dim")
        firm = col.kind in ("key", "number")
        view.add_column(header, justify="right" if col.kind == "number" else "left",
                        no_wrap=True, overflow="ellipsis",
                        min_width=widths[i] if firm and not piped else None,
                        max_width=None if piped else TEXT_MAX if col.kind == "text" else
                        max(room, LONG_MIN) if col.kind == "long" else None)
    keys = list(label) if label is not None else [
        i for i, c in enumerate(columns) if c.kind == "key"]
    notes: list[Text] = []
    for row in cells:
        values = []
        for i in shown:
            value = row[i]
            if columns[i].kind == "long":
                value = _flat(value) if piped else _first_line(value)
            elif piped and "\n" in value.plain:
                value = _flat(value)
            values.append(value)
        view.add_row(*values)
        for i in below:
            if row[i].plain.strip():
                notes.append(Text.assemble((f"  {' '.join(row[k].plain for k in keys)}: ",
                                            "dim"), row[i]))
    emit(console, view)
    if notes:
        console.print(_text(f"{columns[below[0]].name}:", "bold"))
        for note in notes:
            console.print(note)
    elif long_at and not below and not piped and full_hint and _was_cut(cells, long_at, room):
        console.print(_text(full_hint, "dim"))


def _was_cut(cells: list[list[Text]], long_at: list[int], room: int) -> bool:
    return any("\n" in row[i].plain.strip("\n") or row[i].cell_len > room
               for row in cells for i in long_at)


def _flat(text: Text) -> Text:
    """A multi-line value on one line (piped output keeps one row per line)."""
    return _text(" ⏎ ".join(text.plain.strip("\n").splitlines()), str(text.style))


def emit(console: Console, renderable: RenderableType) -> None:
    """Print; piped, without the trailing spaces of the table's padding."""
    if not is_piped(console):
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    text = "\n".join(line.rstrip() for line in captured.get().splitlines())
    console.file.write(text + "\n")
    console.file.flush()
