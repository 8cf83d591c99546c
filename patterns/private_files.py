"""Platform files are private to their owner: folders 0700, files 0600.

The app's ``.patterns/`` folder (the store, its write-ahead log, the live log, the server's
address file) and ``$PATTERNS_HOME`` (the secret key and the encrypted secrets) hold run
records, logs and credentials. Patterns creates its folders 0700 and its files 0600, and
tightens ones an older version left readable. Files that DuckDB creates itself (the store's
``.wal``, made again after every checkpoint) are made private right after it does, by
:func:`keep_private`; the 0700 folder around them keeps them out of reach in between.
Nothing here touches the process's umask, which would change the files of users' own code.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Final

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600


def private_dir(path: Path) -> Path:
    """Make ``path`` (and any missing parents) and leave ``path`` itself 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DIR_MODE)
    return path


def keep_private(path: Path) -> None:
    """Make the file at ``path``, if there is one, readable by its owner only."""
    _tighten(path, FILE_MODE)


def open_private(path: Path, flags: int) -> int:
    """``os.open`` of a file that is 0600 however it was left (``flags`` as for os.open,
    O_CREAT added)."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    with contextlib.suppress(OSError):
        if stat.S_IMODE(os.fstat(fd).st_mode) & ~FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    return fd


def write_private(path: Path, text: str) -> None:
    """Replace the file at ``path`` with ``text``, atomically, as a 0600 file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _tighten(path: Path, mode: int) -> None:
    with contextlib.suppress(FileNotFoundError, PermissionError):
        if stat.S_IMODE(path.stat().st_mode) & ~mode:
            os.chmod(path, mode)
