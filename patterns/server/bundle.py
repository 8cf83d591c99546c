"""App versions on a server: an app's files as a zip, their content hash, and installing an
uploaded version (validated first; the previous one kept under ``.patterns/versions``)."""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from patterns.errors import ConfigError, PatternsError

#: Never part of an app's files: the store and platform folder, caches, VCS.
SKIP_DIRS = {".patterns", "__pycache__", ".git", ".venv", ".pytest_cache", ".mypy_cache"}
MAX_FILES = 5_000
MAX_UNZIPPED = 200_000_000


class VersionConflict(PatternsError):
    """The app changed on the server since the version the upload was based on."""


def app_files(root: Path) -> list[Path]:
    """The app's own files, relative to ``root``, sorted."""
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS for part in rel.parts) or not path.is_file():
            continue
        if path.suffix in (".pyc", ".pyo"):
            continue
        found.append(rel)
    return sorted(found)


def app_version(root: Path) -> str:
    """A hash of the app's files (names and contents): equal files, equal version."""
    digest = hashlib.sha256()
    for rel in app_files(root):
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256((root / rel).read_bytes()).digest())
    return digest.hexdigest()[:16]


def zip_app(root: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in app_files(root):
            zf.write(root / rel, rel.as_posix())
    return buffer.getvalue()


def unzip(data: bytes, into: Path) -> list[PurePosixPath]:
    """Extract an uploaded zip safely: no absolute paths, no ``..``, bounded size."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ConfigError("the upload is not a zip file") from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > MAX_FILES:
            raise ConfigError(f"the upload has {len(members)} files; at most {MAX_FILES}")
        if sum(m.file_size for m in members) > MAX_UNZIPPED:
            raise ConfigError(f"the upload unpacks to more than {MAX_UNZIPPED} bytes")
        names = []
        for member in members:
            name = PurePosixPath(member.filename)
            if name.is_absolute() or ".." in name.parts or not name.parts:
                raise ConfigError(f"the upload has an unsafe path: {member.filename!r}")
            if any(part in SKIP_DIRS for part in name.parts):
                continue
            target = into.joinpath(*name.parts)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(member))
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise ConfigError(f"the upload cannot be unpacked at {member.filename!r}: "
                                  f"{exc}") from None
            names.append(name)
    return names


def install(service: Any, data: bytes, base: str | None, force: bool) -> tuple[str, str]:
    """Make the uploaded zip the app's files; returns (new version, previous version)."""

    with service.install_lock:  # one install at a time, checked and done together
        return _install(service, data, base, force)


def _install(service: Any, data: bytes, base: str | None, force: bool) -> tuple[str, str]:
    from patterns.graph.loader import load_app

    root: Path = service.root
    current = app_version(root)
    if base is not None and base != current and not force:
        raise VersionConflict(
            f"the app on the server changed since your version (server {current}, yours was "
            f"based on {base}): download it first, or upload with --force to overwrite")
    with tempfile.TemporaryDirectory(prefix="patterns-upload-") as tmp:
        staged = Path(tmp) / "app"
        staged.mkdir()
        unzip(data, staged)
        load_app(staged)  # an invalid app is refused here, with the CLI's messages
        new = app_version(staged)
        if new == current:
            return new, current
        versions = root / ".patterns" / "versions"
        versions.mkdir(parents=True, exist_ok=True)
        (versions / f"{current}.zip").write_bytes(zip_app(root))
        for rel in app_files(root):
            (root / rel).unlink()
        for rel in app_files(staged):
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(staged / rel, target)
    service.reload()
    return new, current
