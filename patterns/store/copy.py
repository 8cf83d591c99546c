"""Copy a whole store into another, whatever their backends (``patterns store copy``).

Every table version still kept (its rows with every column, hidden ids included, so stream
positions stay true), then the platform metadata: table records and version history, the
commit log, runs and their logs, node state, stream positions, the run queue, cron
schedules, webhook tokens. Physical table names are the target's own (PostgreSQL shortens
long ones). All of it is written in one transaction of the target: a copy that fails leaves
the target as it was. (Secrets are not in a store: they live in the secret store of
``$PATTERNS_HOME``, which a copy does not touch.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from patterns.errors import StoreError
from patterns.store.archive import METADATA
from patterns.store.interface import Archive, Store

#: The lease an engine holds while it serves a store (see ``patterns.engine.claims``).
_ENGINE_LEASES = "engine:"


@dataclass
class CopyReport:
    """What a copy moved: per table its versions and rows; per metadata table its rows."""

    tables: dict[str, tuple[int, int]] = field(default_factory=dict)
    metadata: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(rows for _, rows in self.tables.values())


def copy_store(source: Store, target: Store, *, force: bool = False,
               say: Callable[[str], None] = lambda line: None) -> CopyReport:
    """Copy everything ``source`` holds into ``target``; ``say`` gets a line per table. A
    target that holds anything is refused unless ``force`` (then it is replaced); a store
    an engine is serving is refused."""
    where, there = source.capabilities.location, target.capabilities.location
    if where == there:
        raise StoreError(f"the source and the target are the same store ({where}); "
                         f"give two different stores")
    report = CopyReport()
    with source.archive() as src, target.archive(write=True) as dst:
        _refuse_served(src, where, "source")
        _refuse_served(dst, there, "target")
        if not dst.is_empty():
            if not force:
                raise StoreError(f"the target store {there} is not empty: it holds tables or "
                                 f"runs already. Give an empty one, or --force to replace "
                                 f"everything in it")
            say(f"clearing the target {there} (--force)")
            dst.clear()
        for meta in src.view.tables.all():
            versions, rows = 0, 0
            for version in src.view.tables.versions(meta.name):
                if not version.available:  # (pruned: only its record is copied)
                    continue
                old = meta if version.version == meta.version else \
                    src.view.tables.as_of(meta, version)
                rows += dst.put_version(old, src.version_rows(version.physical))
                versions += 1
            report.tables[meta.name] = (versions, rows)
            say(f"table {meta.name}: {versions} version{'s' * (versions != 1)}, "
                f"{rows:,} rows (current: version {meta.version})")
        for table in METADATA:
            names, found = src.meta_rows(table)
            if table in ("tables", "table_versions"):
                found = _renamed(dst, names, found)
            report.metadata[table] = dst.put_meta(table, names, found)
            say(f"{table.replace('_', ' ')}: {len(found):,} rows")
        dst.finish()
    return report


def _refuse_served(archive: Archive, location: str, which: str) -> None:
    engines = archive.view.leases.live(_ENGINE_LEASES)
    if engines:
        raise StoreError(f"the {which} store {location} is being served by "
                         f"{len(engines)} engine{'s' * (len(engines) != 1)} (engine "
                         f"{engines[0].holder}); stop `patterns serve` and `patterns run` on "
                         f"it first, then copy")


def _renamed(dst: Archive, names: Sequence[str], rows: Sequence[Sequence[Any]]
             ) -> list[tuple[Any, ...]]:
    """Rows of ``tables``/``table_versions`` with each version's physical name the
    target's."""
    name, version, physical = (names.index(c) for c in ("name", "version", "physical"))
    out = []
    for row in rows:
        values = list(row)
        values[physical] = dst.physical(str(row[name]), int(row[version]))
        out.append(tuple(values))
    return out
