"""Per-app Python environments: one virtual environment per distinct requirements file.

An app whose graph.yml names a ``requirements_file`` runs its Python nodes in a virtual
environment built with ``uv`` from that file. Environments live in
``$PATTERNS_HOME/envs/<key>`` and are shared by every run and every app whose requirements
come to the same key (the file's content, the contents of files it includes with ``-r`` or
``-c``, the Python version and platform, the engine's import paths, and the file's folder when
the file refers to relative paths).

An environment does not reinstall Patterns or the data packages: a ``.pth`` file appends the
engine's own import paths after the environment's site-packages, so node code can
``import patterns`` and ``pyarrow`` while a version pinned in the requirements file wins.

A build goes into a temporary sibling folder that is renamed into place when complete, under
a file lock, so a killed build never leaves an environment that looks ready and two engines
building the same environment build it once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from patterns.engine.secrets import patterns_home
from patterns.errors import ConfigError
from patterns.graph.model import App, Node

Progress = Callable[[str], None]

#: Written into a finished environment; its presence is what makes the environment ready.
MARKER = "patterns-env.json"
#: Sorts after every other .pth file, so the environment's own paths all come first.
LAYER_FILE = "zz_patterns_engine.pth"

_PATH_OPTION = re.compile(r"^(--requirement|--constraint|--editable|--find-links|-[rcef])[\s=]*(\S+)")
_INCLUDE_OPTIONS = ("-r", "-c", "--requirement", "--constraint")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_COMMENT = re.compile(r"(^|\s)#.*$")
_NOISE = re.compile(r"^(Using Python .* environment at|Activate with):")
_NETWORK = re.compile(r"error sending request|dns error|failed to connect|connection refused|"
                      r"tcp connect error|timed out|network is unreachable", re.IGNORECASE)
_MAX_ERROR_CHARS = 800


@dataclass(frozen=True)
class _Requirements:  # (also made by patterns.engine.default_env)
    shown: str  # as written in graph.yml
    file: Path
    text: str
    key: str


class Environments:
    """The environments kept in ``home/envs`` (``home`` defaults to ``$PATTERNS_HOME``)."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or patterns_home()
        shared = os.environ.get("PATTERNS_ENVS")  # (a folder of environments shared by homes)
        self.envs = Path(shared) if shared and home is None else self.home / "envs"

    def python_for_node(self, app: App, node: Node, progress: Progress | None = None
                        ) -> str | None:
        """The Python to run ``node`` with: its app's environment when the app has a
        requirements file; the default node environment (see :mod:`patterns.engine.
        default_env`) when the node imports a data package Patterns itself lacks; None
        (the engine's own, with its warm workers) otherwise."""
        if node.kind == "sql":
            return None
        if app.requirements_file:
            return self.python_for(app, progress)
        from patterns.engine.default_env import needs_default, requirements

        if node.file is None or not needs_default(node.file):
            return None
        return self._python(requirements(self.envs), progress)

    def python_for(self, app: App, progress: Progress | None = None) -> str:
        """The Python executable to run ``app``'s nodes with: this interpreter when the app
        has no requirements file, else its environment's, built first if needed (uv's output
        goes to ``progress`` line by line; nothing is reported when the environment exists)."""
        if not app.requirements_file:
            return sys.executable
        return self._python(_read(app), progress)

    def _python(self, reqs: _Requirements, progress: Progress | None) -> str:
        final = self.envs / reqs.key[:16]
        python = final / "bin" / "python"
        if _ready(final):
            return str(python)
        say = progress or (lambda _line: None)
        self.envs.mkdir(parents=True, exist_ok=True)
        waiting = f"waiting for another build of the environment for {reqs.shown}"
        with _locked(self.envs / f".{final.name}.lock", lambda: say(waiting)):
            if _ready(final):
                return str(python)
            _clear(final)
            say(f"building environment for {reqs.shown} (sha {reqs.key[:8]}…)")
            _build(reqs, final, say)
        return str(python)


def _read(app: App) -> _Requirements:
    shown = str(app.requirements_file)
    file = (app.root / shown).resolve()
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{shown}: the requirements file named by requirements_file in graph.yml does not "
            f"exist ({file}); create it with one requirement per line (e.g. 'requests>=2'), or "
            f"remove requirements_file from graph.yml") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read the requirements file {file}: "
                          f"{exc.strerror}") from None
    material = {
        "version": 1,
        "requirements": hashlib.sha256(data).hexdigest(),
        "included": _included(file, data, {file}),
        "folder": str(file.parent) if _refers_to_relative_paths(data) else None,
        "python": f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}-"
                  f"{sysconfig.get_platform()}",
        "engine": list(engine_paths()),
    }
    key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return _Requirements(shown, file, data.decode("utf-8", errors="replace"), key)


def _options(data: bytes) -> Iterator[tuple[str, str]]:
    """(option, value) of the path-taking options in a requirements file, plus ("", line)
    for a requirement that is a relative path."""
    for raw in data.decode("utf-8", errors="replace").splitlines():
        line = _COMMENT.sub("", raw).strip()
        if match := _PATH_OPTION.match(line):
            yield match.group(1), match.group(2)
        elif line.startswith("."):
            yield "", line


def _refers_to_relative_paths(data: bytes) -> bool:
    return any(not _URL.match(value) and not Path(value).expanduser().is_absolute()
               for _, value in _options(data))


def _included(file: Path, data: bytes, seen: set[Path]) -> list[list[str]]:
    """[path, sha256] of every file included with -r or -c, recursively."""
    found: list[list[str]] = []
    for option, value in _options(data):
        if option not in _INCLUDE_OPTIONS or _URL.match(value):
            continue
        path = (file.parent / Path(value).expanduser()).resolve()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        content = path.read_bytes()
        found.append([str(path), hashlib.sha256(content).hexdigest()])
        found.extend(_included(path, content, seen))
    return found


@functools.cache
def engine_paths() -> tuple[str, ...]:
    """Where this engine imports from beyond the standard library, in its ``sys.path``
    order: its site-packages folders and the folder holding the ``patterns`` package."""
    import patterns

    found = [*site.getsitepackages(), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    found.append(str(Path(patterns.__file__).resolve().parent.parent))
    position: dict[str, int] = {}
    for index, entry in enumerate(sys.path):
        position.setdefault(os.path.realpath(entry or "."), index)
    unique = list(dict.fromkeys(os.path.realpath(p) for p in found if os.path.isdir(p)))
    return tuple(sorted(unique, key=lambda p: position.get(p, len(sys.path))))


def _ready(env: Path) -> bool:
    return (env / MARKER).is_file() and (env / "bin" / "python").exists()


@contextlib.contextmanager
def _locked(path: Path, on_wait: Callable[[], None]) -> Iterator[None]:
    with path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _clear(env: Path) -> None:
    """Under the lock: remove what killed builds left and an environment that broke (its
    marker or its interpreter gone)."""
    for leftover in env.parent.glob(f".{env.name}.*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
    if env.exists():
        doomed = env.with_name(f".{env.name}.broken-{uuid.uuid4().hex[:8]}")
        env.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def _build(reqs: _Requirements, final: Path, say: Progress) -> None:
    tmp = final.with_name(f".{final.name}.build-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    uv = uv_executable()
    cwd = reqs.file.parent
    try:
        _uv(reqs, [uv, "venv", "--quiet", "--relocatable", "--python", sys.executable,
                   str(tmp)], cwd, None)
        python = tmp / "bin" / "python"
        _uv(reqs, [uv, "pip", "install", "--python", str(python), "-r", str(reqs.file)], cwd, say)
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True, capture_output=True, text=True).stdout.strip()
        lines = ["# Patterns: the engine's import paths, after this environment's own",
                 *engine_paths()]
        (Path(purelib) / LAYER_FILE).write_text("\n".join(lines) + "\n")
        version = subprocess.run([uv, "--version"], capture_output=True, text=True).stdout
        marker = {
            "version": 1,
            "key": reqs.key,
            "requirements_file": str(reqs.file),
            "requirements": reqs.text,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "uv": version.split()[1] if len(version.split()) > 1 else version.strip(),
            "python": platform.python_version(),
            "engine_paths": list(engine_paths()),
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _uv(reqs: _Requirements, args: list[str], cwd: Path, say: Progress | None) -> None:
    """Run uv, passing its output lines to ``say``; a failure is a ConfigError quoting uv."""
    env = {**os.environ, "NO_COLOR": "1"}
    output: list[str] = []
    with subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, encoding="utf-8", errors="replace") as proc:
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                line = raw.strip()
                if line and not _NOISE.match(line):
                    output.append(line)
                    if say is not None:
                        say(line)
        except BaseException:
            proc.kill()
            raise
    if proc.returncode != 0:
        said = "; ".join(output).removeprefix("error: ").rstrip(".") or f"exit code {proc.returncode}"
        if len(said) > _MAX_ERROR_CHARS:
            said = said[:_MAX_ERROR_CHARS] + "…"
        network = bool(_NETWORK.search(said))
        fix = ("check the network connection and the index settings, then run again" if network
               else f"correct {reqs.shown} and run again")
        error = ConfigError(f"{reqs.shown}: could not build the environment: uv says: {said}; "
                            f"{fix}")
        error.retryable = network
        raise error


def uv_executable() -> str:
    """The ``uv`` shipped by the ``uv`` package Patterns depends on, else one on PATH."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise ConfigError("requirements_file needs uv to build the app's environment, and uv is "
                      "not installed: run 'pip install uv'")
