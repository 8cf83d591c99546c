"""What ``patterns`` alone prints: the commands by what they are for, one line each.

The lines are the commands' own short help, so they cannot drift; a command not sorted into
a section here still shows, under "more".
"""

from __future__ import annotations

#: Sections of the overview and the top-level commands in each, in the order shown.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Start", ("create", "remove", "validate")),
    ("Run", ("run", "trigger", "serve")),
    ("Look", ("runs", "logs", "table", "state", "manifest", "list")),
    ("Replay and manage", ("stream", "component", "delete", "config")),
    ("Share with a server", ("upload", "download")),
)
#: Commands of the original hosted devkit that only say what to use instead.
HIDDEN = ("login", "logout")


def overview() -> str:
    from patterns.cli.main import cli

    commands = cli.commands
    width = max(len(name) for name in commands) + 2  # the summaries fit 80 columns
    placed = {name for _, names in SECTIONS for name in names}
    sections = [*SECTIONS,
                ("More", tuple(sorted(set(commands) - placed - set(HIDDEN))))]
    lines = ["Patterns: build and run data apps of Python and SQL nodes, locally.", "",
             "Usage: patterns COMMAND [APP] [ARGS]...",
             "  APP is the app's folder; left out, the app holding the current folder."]
    for title, names in sections:
        present = [n for n in names if n in commands]
        if not present:
            continue
        lines += ["", f"{title}:"]
        for name in present:
            summary = commands[name].get_short_help_str(limit=76 - width)
            lines.append(f"  {name:<{width}}{summary}")
    lines += ["", "First steps:",
              "  patterns create app hello && cd hello",
              "  patterns create node greet.py && patterns run",
              "", "Each command's options: patterns COMMAND --help (and docs/cli.md)."]
    return "\n".join(lines)

