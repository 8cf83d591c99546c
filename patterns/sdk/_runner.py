"""The node process: connect to the engine, run the node file, commit or report.

Started by the engine as ``python -m patterns.sdk._runner``, which reads the run's config
(JSON: the data plane's address, the run's token, what the run needs first) from stdin, or
forked by a warm worker (:mod:`patterns.sdk._zygote`), which hands it over in memory. The
token is never in an environment variable: no process the node starts inherits it, and no
other process can read it from ``/proc/PID/environ``. The node file runs as ``__main__`` with the app folder on
``sys.path`` (so ``import common`` finds the app's own modules). On success the run's last
checkpoint is committed; on an exception the traceback, trimmed to the user's code, goes to
stderr and to the run record, and the process exits 1.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import os
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO

EXIT_ERROR = 1


def main(connection: Any = None, config: dict[str, Any] | None = None) -> int:
    """Run the node of ``config`` (read from stdin if not given); ``connection``: a Flight
    client to the engine made ahead of time by a warm worker (:mod:`patterns.sdk._zygote`),
    used if it is to the same engine."""
    if config is None:
        config = _config_from_stdin()
    app_root = Path(config["app_root"])
    node_file = app_root / config["node_file"]

    from patterns.sdk._context import current_run
    from patterns.sdk._flight import FlightEngineClient
    from patterns.sdk._runtime import NodeRun

    _interleave_stderr()
    connected = connection if connection is not None and connection[0] == config["uri"] \
        else None
    channel = None
    if isinstance(config.get("channel_fd"), int):  # a local run's control channel
        from patterns.sdk._channel import ChannelClient

        channel = ChannelClient(config["channel_fd"])
    client = FlightEngineClient(config["uri"], config["token"], config.get("run_info"),
                                connection=connected[1] if connected else None,
                                channel=channel)
    run = NodeRun(client)
    current_run.set(run)
    # Node code makes records by the thousand: collect the youngest objects every
    # GC_YOUNG allocations rather than Python's 700, so a record appended is seldom
    # scanned before it is converted and freed (a tenth of an append loop's CPU).
    gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
    sys.path.insert(0, str(app_root))
    sys.argv = [str(node_file)]
    try:
        try:
            run_node_file(app_root, node_file, package=bool(config.get("package")))
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise
        run.checkpoint(final=True)
    except BaseException as exc:
        message, trimmed = describe(exc, app_root)
        sys.stdout.flush()
        sys.stderr.write(trimmed)
        sys.stderr.flush()
        with contextlib.suppress(Exception):
            run.settle()  # (no write of the sender's thread may share the connection)
            client.report_error(message, trimmed)
        code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 1
        return code or EXIT_ERROR
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def _config_from_stdin() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(sys.stdin.buffer.read())
    # The node gets an empty stdin, as a forked run does.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return config


APP_PACKAGE = "patterns_app"


def run_node_file(app_root: Path, node_file: Path, *, package: bool = False) -> None:
    """Run the node as ``__main__``.

    In an app folder with an ``__init__.py`` the node runs as a module of the app package
    (imported as ``patterns_app``), so ``from . import common`` and ``from .lib import x``
    work; otherwise it runs as a script. Either way the app folder is on ``sys.path``, so a
    plain ``import common`` finds the app's own modules. ``package``: run as a module of the
    folder's package even without an ``__init__.py`` (a component's nodes import its modules
    with ``from .base import ...``).
    """
    init = app_root / "__init__.py"
    if not init.exists() and not package:
        runpy.run_path(str(node_file), run_name="__main__")
        return
    import importlib.util
    import types

    if init.exists():
        spec = importlib.util.spec_from_file_location(
            APP_PACKAGE, init, submodule_search_locations=[str(app_root)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[APP_PACKAGE] = module
        spec.loader.exec_module(module)
    else:
        module = types.ModuleType(APP_PACKAGE)
        module.__path__ = [str(app_root)]
        sys.modules[APP_PACKAGE] = module
    relative = node_file.relative_to(app_root).with_suffix("")
    runpy.run_module(".".join((APP_PACKAGE, *relative.parts)), run_name="__main__",
                     alter_sys=True)


#: The node's threshold of young-object allocations between collections (Python's: 700).
#: Cycles are still collected; at most this many young objects wait for it.
GC_YOUNG = 10_000

STDERR_MARK = "\x1f"
LOG_MARK = "\x1e"  # LOG_MARK + level + LOG_MARK + text: a line of a ``logging`` record


class _MarkedStderr(io.TextIOBase):
    """Python's stderr, sent down stdout with each line marked, so the engine keeps prints
    and tracebacks in the order they happened (two pipes read by two threads cannot)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._out.write(STDERR_MARK + line + "\n")
        self._out.flush()
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._out.write(STDERR_MARK + self._partial + "\n")
            self._partial = ""
        self._out.flush()


def _interleave_stderr() -> None:
    sys.stderr = _MarkedStderr(sys.stdout)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.__stderr__:
            handler.setStream(sys.stderr)
    _capture_logging(sys.stdout)


def _capture_logging(out: TextIO) -> None:
    """Send ``logging`` records to the run's log with their level, INFO and up.

    Only until the node configures logging itself: ``logging.basicConfig`` first takes this
    handler away and puts the root level back, so the node's own configuration is what it
    gets, exactly as it wrote it.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler = _RecordHandler(out)
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    basic_config = logging.basicConfig

    def basicConfig(**kwargs: Any) -> None:
        if handler in root.handlers:
            root.removeHandler(handler)
            root.setLevel(previous_level)
        basic_config(**kwargs)  # type: ignore[call-overload]

    logging.basicConfig = basicConfig  # type: ignore[assignment]


class _RecordHandler(logging.Handler):
    """Writes each record's lines marked with its level; the engine keeps the level."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self._out = out
        self.setFormatter(_RecordFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            self._out.write("".join(f"{LOG_MARK}{record.levelname}{LOG_MARK}{line}\n"
                                    for line in text.split("\n")))
            self._out.flush()
        except Exception:
            self.handleError(record)


class _RecordFormatter(logging.Formatter):
    """The message, after the logger's name unless it is the root logger's."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.name == "root" else f"{record.name}: {message}"


def describe(exc: BaseException, app_root: Path) -> tuple[str, str]:
    """A one-line summary and the traceback trimmed to the app's own files."""
    from patterns.errors import PatternsError

    if isinstance(exc, SystemExit):
        return f"the node exited with code {exc.code}", f"SystemExit: {exc.code}\n"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_user(f.filename, app_root)]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)] \
        if frames else []
    if isinstance(exc, PatternsError):
        lines.append(f"{type(exc).__name__}: {exc}\n")
    else:
        lines.extend(traceback.format_exception_only(type(exc), exc))
    summary = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    where = f" ({_short(frames[-1].filename, app_root)}, line {frames[-1].lineno})" \
        if frames else ""
    first = summary[-1] if not isinstance(exc, SyntaxError) else " ".join(summary)
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        first += missing_package_hint(exc.name, app_root)
    return f"{first}{where}", "".join(lines)


def missing_package_hint(module: str, app_root: Path) -> str:
    """What to add to the app's requirements file for a module that is not installed."""
    from patterns.sdk.packages import package_of

    package = package_of(module)
    named = _requirements_file(app_root)
    if named:
        return (f": the package {package} is not installed in the app's environment; add "
                f"the line `{package}` to {named} and run again")
    return (f": the package {package} is not installed in the default node environment; "
            f"create requirements.txt in the app folder with the line `{package}`, add "
            f"`requirements_file: requirements.txt` to graph.yml, and run again")


def _requirements_file(app_root: Path) -> str | None:
    import yaml

    try:
        graph = yaml.safe_load((app_root / "graph.yml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    named = graph.get("requirements_file") if isinstance(graph, dict) else None
    return str(named) if named else None


def _is_user(filename: str, app_root: Path) -> bool:
    if filename.startswith("<"):
        return False
    try:
        Path(filename).resolve().relative_to(app_root.resolve())
    except ValueError:
        return False
    return True


def _short(filename: str, app_root: Path) -> str:
    try:
        return str(Path(filename).resolve().relative_to(app_root.resolve()))
    except ValueError:
        return filename


if __name__ == "__main__":
    sys.exit(main())
