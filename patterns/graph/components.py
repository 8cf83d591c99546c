"""The component library: where ``uses: org/name@vN`` finds its component.

A component is an app folder whose manifest (its ``graph.yml``, or a single ``<slug>.yml`` as
the original product's published components are laid out) has ``slug``, ``version``, ``tags``,
``icon`` and ``exposes``. Components are found, in this order of preference:

1. folders under the app's own ``components/`` folder (``components/ORG/SLUG/`` or
   ``components/SLUG/``, any org then);
2. ``$PATTERNS_HOME/components/ORG/SLUG/VERSION/`` (what ``patterns component add`` writes);
3. installed Python packages that declare components through the ``patterns.components``
   entry point (name: the org; value: a package whose folder holds component folders).

``@vN`` picks the newest installed version with major N (``@v2.1`` the newest 2.1.x,
``@2.0.4`` exactly that one); no version picks the newest. A slug installed under one org
only is found under that org whatever org ``uses:`` names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from patterns.errors import ComponentError

ENTRY_POINT_GROUP: Final = "patterns.components"
APP_FOLDER: Final = "components"
MANIFEST_NAMES: Final = ("graph.yml", "graph.yaml")
#: Keys of a component's manifest that are about the component, not its graph.
MANIFEST_KEYS: Final = ("version", "tags", "icon", "icon_url", "org", "description")
_USES: Final = re.compile(
    r"^(?:(?P<org>[A-Za-z0-9_.-]+)/)?(?P<slug>[A-Za-z0-9_.-]+)"
    r"(?:@v?(?P<version>\d+(?:\.\d+){0,2}))?$")
_MAX_DEPTH: Final = 4


@dataclass(frozen=True)
class Component:
    """One installed version of a component."""

    org: str | None
    slug: str
    version: str
    manifest: Path
    source: str

    @property
    def root(self) -> Path:
        return self.manifest.parent

    @property
    def ref(self) -> str:
        return f"{self.org or '*'}/{self.slug}@{self.version}"

    @property
    def version_key(self) -> tuple[int, ...]:
        return version_key(self.version)


def version_key(version: str) -> tuple[int, ...]:
    """``"2.0.4"`` -> (2, 0, 4); parts that are not numbers count as 0."""
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.+-]", version)[:3])


def components_home() -> Path:
    """``$PATTERNS_HOME/components`` (default ``~/.patterns/components``)."""
    home = os.environ.get("PATTERNS_HOME") or str(Path.home() / ".patterns")
    return Path(home) / "components"


def find_manifest(folder: Path) -> Path | None:
    """The manifest of the component in ``folder``: its graph.yml, else its one ``*.yml``
    that says ``slug:`` (the original's published layout)."""
    for name in MANIFEST_NAMES:
        if (folder / name).is_file():
            return folder / name
    candidates = sorted(p for p in folder.glob("*.y*ml") if p.is_file())
    named = [p for p in candidates if p.stem == folder.name]
    for path in named or candidates:
        if read_manifest_head(path).get("slug"):
            return path
    return None


def read_manifest_head(path: Path) -> dict[str, Any]:
    """The manifest's top-level keys (an empty dict when it is not a YAML mapping)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def component_at(manifest: Path, org: str | None, source: str) -> Component | None:
    head = read_manifest_head(manifest)
    slug = str(head.get("slug") or manifest.parent.name)
    if not head.get("functions") and not head.get("slug"):
        return None
    version = str(head.get("version") or "0.0.0")
    return Component(org=org, slug=slug, version=version, manifest=manifest, source=source)


def installed(app_root: Path | None = None) -> list[Component]:
    """Every component found, in order of preference (app, home, packages)."""
    found: list[Component] = []
    if app_root is not None:
        base = app_root / APP_FOLDER
        for manifest in _manifests(base):
            parts = manifest.parent.relative_to(base).parts
            org = parts[0] if len(parts) >= 2 else None
            found += _one(manifest, org, f"app folder {APP_FOLDER}/")
    home = components_home()
    for manifest in _manifests(home):
        parts = manifest.parent.relative_to(home).parts
        found += _one(manifest, parts[0] if len(parts) >= 2 else None, str(home))
    for org, folder, dist in _package_folders():
        for manifest in _manifests(folder):
            found += _one(manifest, org, f"package {dist}")
    return found


def _one(manifest: Path, org: str | None, source: str) -> list[Component]:
    component = component_at(manifest, org, source)
    return [component] if component is not None else []


def _manifests(base: Path, depth: int = 0) -> Iterator[Path]:
    """Manifests of the component folders under ``base`` (a folder with one is not searched
    further: its subfolders are its own)."""
    if depth > _MAX_DEPTH or not base.is_dir():
        return
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        manifest = find_manifest(folder)
        if manifest is not None:
            yield manifest
        elif folder.name != "__pycache__":
            yield from _manifests(folder, depth + 1)


def _package_folders() -> Iterator[tuple[str, Path, str]]:
    """(org, folder, distribution) of each ``patterns.components`` entry point."""
    from importlib.metadata import entry_points
    from importlib.util import find_spec

    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = find_spec(point.value)
        except (ImportError, ValueError):
            continue
        locations = list(spec.submodule_search_locations or []) if spec else []
        dist = point.dist.name if point.dist is not None else point.value
        for location in locations:
            yield point.name, Path(location), dist


def parse_uses(uses: str) -> tuple[str | None, str, str | None]:
    """``org/name@vN`` -> (org, slug, version prefix); ComponentError when malformed."""
    match = _USES.match(uses.strip())
    if match is None:
        raise ComponentError(f"`uses: {uses}` is not a component reference: write "
                             f"`uses: org/name@v1` (org and version optional)")
    return match["org"], match["slug"], match["version"]


def resolve(uses: str, app_root: Path | None = None) -> Component:
    """The component ``uses`` names: the newest matching version, app first."""
    org, slug, version = parse_uses(uses)
    every = installed(app_root)
    same_slug = [c for c in every if c.slug == slug]
    candidates = [c for c in same_slug if org is None or c.org in (org, None)]
    if not candidates and len({c.org for c in same_slug}) == 1:
        candidates = same_slug  # installed under one org only: found under it
    if version is not None:
        wanted = version_key(version)[: version.count(".") + 1]
        candidates = [c for c in candidates if c.version_key[: len(wanted)] == wanted]
    if not candidates:
        raise ComponentError(not_installed_message(uses, slug, same_slug, every))
    newest = max(c.version_key for c in candidates)
    return next(c for c in candidates if c.version_key == newest)


def not_installed_message(uses: str, slug: str, same_slug: list[Component],
                          every: list[Component]) -> str:
    if same_slug:
        have = ", ".join(sorted({c.ref for c in same_slug}))
        what = f"installed versions of {slug}: {have}"
    else:
        refs = sorted({c.ref for c in every})
        what = ("installed components: " + ", ".join(refs[:12]) +
                (f" and {len(refs) - 12} more" if len(refs) > 12 else "")) if refs \
            else "no components are installed"
        what += " (`patterns component list` shows them)"
    org = uses.split("/")[0] if "/" in uses else "ORG"
    return (f"component `{uses}` is not installed ({what}); install it with "
            f"`patterns component add PATH --org {org}` (PATH: its folder or manifest) or "
            f"`patterns component add PACKAGE` for a Python package that provides it")
