"""Write docs/cli.md, the CLI reference, from the commands' own ``--help``.

    python scripts/cli_reference.py           # rewrite docs/cli.md
    python scripts/cli_reference.py --check   # exit 1 if docs/cli.md is out of date

A test runs the check, so the reference cannot drift from the code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from patterns.cli.main import cli

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
WIDTH = 100
HEADER = """\
# CLI reference

Generated from the commands' `--help` by `scripts/cli_reference.py`; do not edit by hand.
Run `python scripts/cli_reference.py` after changing a command.

## How every command behaves

- **The app.** Every command takes the app the same way: an optional APP (the app's folder,
  or any folder inside it), else the app holding the current folder, found by searching
  upwards for `graph.yml` as git finds `.git`. Where more arguments follow APP
  (`table show [APP] TABLE`), APP is taken only when all of them are given:
  `patterns table show orders` inside the app shows its table `orders`. `patterns` alone
  prints an overview of the commands.
- **A broken graph.yml.** Commands that only read the store (`runs`, `logs`, `table
  list|show|versions|export`, `state show`) say in one line that graph.yml has problems and go
  on, knowing the nodes by the ids and files graph.yml names; commands that run or change the
  app refuse until `patterns validate` is clean.
- **Run ids.** A run is shown everywhere (live lines, summaries, `runs`, `logs`, `table
  versions`, the API's `short_id`) by its short id: the last 8 characters of its ULID, the
  random part (the start is a timestamp that runs of the same moment share). `--run` and the
  API take the short id, the whole id or any unambiguous start or end of it; one that matches
  several runs is refused with their short ids.
- **Names.** A misspelled table, node or secret gets a did-you-mean (difflib's closest match).
  `patterns validate` checks every `${{ secret }}` and `${{ connection.x }}`; a node with a
  missing one needs configuration: it does not run (no run is recorded, and `run --node` on
  it is refused), the rest of the app does.
- **No terminal.** A question (`table reset`, `remove table`, `delete`...) takes an answer
  piped in; with no terminal and nothing piped it changes nothing and names the flag that
  skips it (`-y`, or `--force` for `delete`). `create secret NAME --stdin` or `--from-file
  FILE` keeps the value out of the shell's history.
- **Removing.** `remove node` takes the node out of graph.yml (comments and layout kept) and
  leaves its file, run history and state; `remove table` refuses a table nodes still use, and
  empties a table holding rows (a new, empty version: the old one stays readable with
  `--version` while it is kept) after asking, unless `--keep-data`.
"""


def walk(command: click.Command, parent: click.Context | None = None,
         name: str = "patterns") -> Iterator[tuple[str, str]]:
    """(full command name, help text) for ``command`` and every subcommand, depth first."""
    settings = {"terminal_width": WIDTH, "max_content_width": WIDTH, **command.context_settings}
    ctx = click.Context(command, info_name=name, parent=parent, **settings)
    yield ctx.command_path, command.get_help(ctx)
    if isinstance(command, click.Group):
        for sub_name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, ctx, sub_name)


def render() -> str:
    parts = [HEADER]
    for path, text in walk(cli):
        parts.append(f"\n## `{path}`\n\n```text\n{text.rstrip()}\n```\n")
    return "".join(parts)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is out of date: run `python scripts/cli_reference.py`",
                  file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
