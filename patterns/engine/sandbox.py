"""The OS sandbox node code runs in under ``patterns serve`` and ``patterns run --sandbox``.

Node processes are started inside `bubblewrap <https://github.com/containers/bubblewrap>`_
(``bwrap``, from the distribution's packages): a well-kept, small setuid-free tool that sets
up Linux namespaces, which is what we would otherwise write ourselves with ``unshare`` and
``mount``. One sandbox holds one app's warm worker (:mod:`patterns.sdk._zygote`), so every
run forked from it is inside too. What node code sees there:

- the system (``/usr`` and the ``/lib``, ``/bin`` links), a short list of ``/etc`` files that
  name no secret (DNS, certificates, users), the Python interpreter and its site-packages,
  and the ``patterns`` package: all read-only;
- the app folder, read-only at its own path, with an empty folder over its ``.patterns``
  (the store, the live logs);
- its own ``/tmp`` (the home folder is ``/tmp`` too), ``/proc`` of its own PID namespace
  and a minimal ``/dev``;
- the network, shared with the host (nodes call APIs; the data plane is on loopback).

Not there: ``$PATTERNS_HOME`` (secrets, their key, other environments), the store, other
apps, other processes of the machine. The worker runs in new user, mount, PID, IPC, UTS and
cgroup namespaces with every capability dropped. What each run adds inside the worker's
sandbox (its own PID namespace and ``/tmp``) is in :mod:`patterns.sdk._zygote`; the
decisions are written down in ``docs/security.md``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from patterns.errors import ConfigError

#: System folders bound read-only (the merged-/usr links are recreated as links).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: ``/etc`` entries a Python program may need; none of them holds a secret.
ETC_FILES = ("resolv.conf", "hosts", "host.conf", "nsswitch.conf", "gai.conf", "services",
             "protocols", "passwd", "group", "localtime", "timezone", "ssl", "ca-certificates",
             "ca-certificates.conf", "pki", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
             "alternatives", "mime.types", "os-release", "python3", "fonts")
#: Variables of the engine's environment a node never gets: the platform's own settings
#: (the server's auth token among them).
PLATFORM_PREFIX = "PATTERNS_"
#: HOME and TMPDIR inside: the private temporary folder.
SANDBOX_HOME = "/tmp"

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../patterns


class SandboxUnavailable(ConfigError):
    """bubblewrap is missing or cannot create namespaces here."""


@dataclass(frozen=True)
class Sandbox:
    """How the node processes of the app at ``app_root`` are sandboxed."""

    app_root: Path
    #: Folders of the components the app uses (read-only too).
    extra_roots: tuple[Path, ...] = ()

    def command(self, python: str, argv: Iterable[str], *, per_run: bool = False) -> list[str]:
        """``python argv...`` inside the sandbox, in the app folder. ``per_run``: a sandbox
        for one cold run, which ends (with all its processes) when its starter does."""
        root = self.app_root.resolve()
        (root / ".patterns").mkdir(exist_ok=True)  # covered below, even if made later
        extra = [arg for path in self.extra_roots if not path.resolve().is_relative_to(root)
                 for arg in ("--ro-bind", str(path.resolve()), str(path.resolve()))]
        return [*bwrap_args(python, per_run=per_run), *extra,
                "--ro-bind", str(root), str(root), "--tmpfs", str(root / ".patterns"),
                "--chdir", str(root), python, *argv]

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        """The engine's environment as node code gets it inside: without the platform's
        own variables, with the private temporary folder as home."""
        inside = {k: v for k, v in env.items() if not k.startswith(PLATFORM_PREFIX)}
        inside.update(HOME=SANDBOX_HOME, TMPDIR=SANDBOX_HOME)
        return inside


def bwrap_args(python: str, *, per_run: bool = False) -> list[str]:
    """bwrap's options for a sandbox with ``python`` in it, before the app's folder."""
    args = ["bwrap", "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--cap-drop", "ALL", "--new-session",
            "--hostname", "patterns-node"]
    if per_run:
        args.append("--die-with-parent")
    # /tmp first: what is bound below may be under it (an app, an environment).
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for path in python_paths(python):
        args += ["--ro-bind", path, path]
    return [*args, "--ro-bind", str(PACKAGE_DIR), str(PACKAGE_DIR)]


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


@functools.cache
def python_paths(python: str) -> tuple[str, ...]:
    """The folders ``python`` needs (its prefixes and the entries of its ``sys.path``) that
    the system folders do not already hold; never a folder holding ``$PATTERNS_HOME``, nor
    the source checkout this package may be imported from (only the package itself is bound,
    by :func:`bwrap_args`)."""
    script = ("import json, sys; print(json.dumps([sys.prefix, sys.base_prefix, "
              "sys.exec_prefix, sys.base_exec_prefix, *sys.path]))")
    try:
        out = subprocess.run([python, "-I", "-c", script], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxUnavailable(f"cannot sandbox node code: the Python interpreter {python} "
                                 f"did not start ({exc})") from None
    from patterns.engine.secrets import patterns_home

    hidden = [str(patterns_home().resolve())]
    if PACKAGE_DIR.parent.name not in ("site-packages", "dist-packages"):
        hidden.append(str(PACKAGE_DIR.parent))  # a source checkout: maybe apps, and stores
    found: list[str] = []
    for entry in json.loads(out):
        if not entry or not os.path.isabs(entry) or not os.path.exists(entry):
            continue
        path = os.path.normpath(entry)  # bound where the interpreter looks for it
        if any(_within(path, d) for d in SYSTEM_DIRS):
            continue
        real = str(Path(path).resolve())
        if any(_within(h, path) or _within(h, real) for h in hidden):
            continue  # a folder that holds what node code must not see
        if not any(_within(path, f) for f in found):
            found = [f for f in found if not _within(f, path)] + [path]
    return tuple(found)


@functools.cache
def _probe() -> str | None:
    """Why the sandbox cannot start here, or None: a real (empty) sandbox is made once per
    process, and a PID namespace inside it, as each run makes one."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    check = ("import ctypes, os, sys; libc = ctypes.CDLL(None, use_errno=True); "
             "sys.exit(0 if libc.unshare(0x10000000 | 0x20000000) == 0 else "
             "print(os.strerror(ctypes.get_errno())) or 3)")
    command = [*bwrap_args(sys.executable), sys.executable, "-I", "-c", check]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap did not start: {exc}"
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        return f"bwrap cannot create namespaces here ({why[-1] if why else done.returncode})"
    return None


def check_available() -> None:
    """Raise :class:`SandboxUnavailable` (one line, with the fix) if node code cannot be
    sandboxed on this machine."""
    why = _probe()
    if why is not None:
        raise SandboxUnavailable(
            f"cannot sandbox node code: {why}. Install bubblewrap (apt-get install "
            f"bubblewrap) on a kernel that allows user namespaces, or run nodes unsandboxed "
            f"with --no-sandbox (they can then read the store and every secret)")


def available() -> bool:
    return _probe() is None
