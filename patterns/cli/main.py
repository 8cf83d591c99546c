"""``patterns``: the command-line devkit.

Subcommands live in their own modules and import the engine, the store and rich only when
they run, so ``patterns --help`` stays fast. A :class:`PatternsError` becomes one red line
(one per problem for an invalid app) and exit code 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from patterns.cli.app_folder import AppGroup
from patterns.errors import GraphError, PatternsError


class PatternsGroup(AppGroup):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PatternsError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            report_error(exc)
            sys.exit(1)
        except KeyboardInterrupt:
            click.secho("interrupted", fg="red", err=True)
            sys.exit(130)


def report_error(exc: PatternsError) -> None:
    if isinstance(exc, GraphError):
        count = len(exc.problems)
        click.secho(f"error: the app has {count} problem{'s' if count != 1 else ''}; "
                    f"nothing was run", fg="red", err=True)
        for problem in exc.problems:
            click.secho(f"  {problem}", fg="red", err=True)
        return
    click.secho(f"error: {exc}", fg="red", err=True)


@click.group(cls=PatternsGroup, context_settings={"help_option_names": ["-h", "--help"]},
             invoke_without_command=True)
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.version_option(package_name="patterns-local", prog_name="patterns")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Patterns: build and run data apps of Python and SQL nodes, locally.

    APP is the app's folder; left out, it is the app holding the current folder."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if ctx.invoked_subcommand is None:
        from patterns.cli.overview import overview

        click.echo(overview())


def _register() -> None:
    from patterns.cli import (
        client,
        compat,
        components,
        create,
        history,
        remove,
        run,
        serve,
        store_copy,
        tables,
    )

    for module in (run, serve, create, remove, tables, history, client, store_copy):
        module.register(cli)
    components.register(cli)
    compat.register(cli)


_register()


def main() -> None:
    cli(obj={}, prog_name="patterns")


if __name__ == "__main__":
    main()
