"""``patterns component add|list``: the component library that ``uses:`` resolves from.

``add`` copies a component folder (or the folder of a manifest file) into
``$PATTERNS_HOME/components/ORG/SLUG/VERSION/``, or installs a Python package that declares
components through the ``patterns.components`` entry point. See docs/components.md.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from patterns.cli.context import JSON_OPTION, print_json
from patterns.errors import ComponentError

if TYPE_CHECKING:
    from patterns.graph.components import Component

DEFAULT_ORG = "local"
_IGNORED = shutil.ignore_patterns(".patterns", "__pycache__", ".git", "*.pyc")


@click.group()
def component() -> None:
    """Install and list components (what `uses: org/name@vN` in graph.yml runs)."""


@component.command("add")
@click.argument("source", metavar="PATH|PACKAGE")
@click.option("--org", help=f"The publisher's name it is found under (default: {DEFAULT_ORG}; "
                            "`uses: patterns/x` of the original product's components).")
@click.option("--force", is_flag=True, help="Replace an installed copy of the same version.")
def add(source: str, org: str | None, force: bool) -> None:
    """Install a component from PATH (its folder or its manifest file) or a PACKAGE.

    A folder is copied into $PATTERNS_HOME/components/ORG/SLUG/VERSION/. A PACKAGE is a
    Python distribution declaring components through the `patterns.components` entry point;
    it is installed with pip into this Python unless it is installed already."""
    path = Path(source)
    if path.exists():
        installed = _add_folder(path, org or DEFAULT_ORG, force)
        click.secho(f"installed {installed.org}/{installed.slug}@{installed.version} in "
                    f"{installed.root}", fg="green")
        major = installed.version.split(".")[0]
        click.echo(f"use it in graph.yml: `uses: {installed.org}/{installed.slug}@v{major}`")
        return
    if org:
        raise ComponentError("--org names where a copied folder goes; a package's components "
                             "are found under the org its entry point names")
    for found in _add_package(source):
        click.secho(f"{found.org}/{found.slug}@{found.version} (from {found.source})",
                    fg="green")


def _add_folder(path: Path, org: str, force: bool) -> Component:
    from patterns.graph.components import component_at, components_home, find_manifest

    if path.is_file():
        manifest: Path | None = path
    else:
        manifest = find_manifest(path)
    if manifest is None:
        raise ComponentError(f"{path} holds no component manifest: a component folder has a "
                             f"graph.yml (or a <slug>.yml) with `slug:`, `version:` and "
                             f"`functions:`")
    found = component_at(manifest.resolve(), org, "given")
    if found is None:
        raise ComponentError(f"{manifest} is not a component manifest: it needs `slug:` and "
                             f"`functions:`")
    if not all(part.isalnum() or part in "-_." for part in found.slug) or \
            found.slug.startswith("."):
        raise ComponentError(f"slug {found.slug!r} in {manifest} must be letters, digits, "
                             f"'-', '_' and '.'")
    target = components_home() / org / found.slug / found.version
    if target.exists() and not force:
        raise ComponentError(f"{org}/{found.slug}@{found.version} is installed already "
                             f"({target}): give --force to replace it, or raise `version:` in "
                             f"{manifest.name}")
    partial = target.with_name(f".{found.version}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(manifest.parent, partial, ignore=_IGNORED)
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)
    return component_at(target / manifest.name, org, "home") or found


def _add_package(name: str) -> list[Component]:
    from patterns.graph.components import installed

    def provided() -> list[Component]:
        return [c for c in installed() if c.source == f"package {name}"
                or c.source.lower() == f"package {name}".lower().replace("_", "-")]

    found = provided()
    if found:
        return found
    result = subprocess.run([sys.executable, "-m", "pip", "install", name],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        why = lines[-1] if lines else f"pip exited with {result.returncode}"
        raise ComponentError(f"{name} is not a component folder here, and pip could not "
                             f"install a package of that name: {why}")
    import importlib

    importlib.invalidate_caches()
    found = provided()
    if not found:
        raise ComponentError(f"package {name} is installed but declares no components: a "
                             f"package provides them through the `patterns.components` entry "
                             f"point (see docs/components.md)")
    return found


@component.command("list")
@click.argument("app_dir", metavar="[APP]", required=False,
                type=click.Path(file_okay=False, path_type=Path))
@JSON_OPTION
def list_components(app_dir: Path | None, as_json: bool) -> None:
    """The installed components (and those in APP's components/ folder, if given)."""
    from patterns.graph.components import installed, read_manifest_head

    found = installed(app_dir.resolve() if app_dir else None)
    rows: list[dict[str, Any]] = []
    for c in found:
        head = read_manifest_head(c.manifest)
        rows.append({"org": c.org, "slug": c.slug, "version": c.version,
                     "uses": f"{c.org + '/' if c.org else ''}{c.slug}@v{c.version.split('.')[0]}",
                     "title": head.get("title"), "tags": head.get("tags") or [],
                     "source": c.source, "path": str(c.manifest)})
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.secho("no components installed: `patterns component add PATH` adds one",
                    dim=True)
        return
    from patterns.cli.render import Col, make_console, print_table

    print_table(make_console(), [Col("uses", "key"), Col("version", "key"), Col("title"),
                                 Col("source", "long")],
                [[str(r["uses"]), str(r["version"]), str(r["title"] or ""), str(r["source"])]
                 for r in rows], label=(0,))


def register(group: click.Group) -> None:
    group.add_command(component)
