"""Per-app environments: real uv, real virtual environments, wheels built by the tests."""

from __future__ import annotations

import base64
import hashlib
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

import patterns
from patterns.engine.environments import MARKER, Environments
from patterns.errors import ConfigError
from patterns.graph.loader import load_app
from patterns.graph.model import App


def make_wheel(folder: Path, name: str, version: str, source: str,
               scripts: dict[str, str] | None = None) -> Path:
    """A minimal valid pure-Python wheel: one package ``name`` whose __init__ is ``source``."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": source,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    if scripts:
        files[f"{dist}/entry_points.txt"] = "[console_scripts]\n" + "".join(
            f"{script} = {target}\n" for script, target in scripts.items())
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def make_app(root: Path, requirements: str | None, file: str = "requirements.txt") -> App:
    root.mkdir(parents=True, exist_ok=True)
    (root / "hello.py").write_text("print('hello')\n")
    graph = "title: Env app\nfunctions:\n  - node_file: hello.py\n"
    if requirements is not None:
        (root / file).write_text(requirements)
    (root / "graph.yml").write_text(f"requirements_file: {file}\n{graph}")
    return load_app(root)


def run_python(python: str, code: str) -> str:
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    make_wheel(folder, "tinypkg", "0.1", "VALUE = 'tiny 0.1'\n\ndef hello():\n    print('hi')\n",
               scripts={"tinypkg-hello": "tinypkg:hello"})
    make_wheel(folder, "tinypkg", "0.2", "VALUE = 'tiny 0.2'\n")
    # requests (a dependency of Patterns) needs idna: a pin of it must win in the environment
    make_wheel(folder, "idna", "99.0", "PINNED = 'the app pin'\n")
    return folder


def offline(wheels: Path, *requirements: str) -> str:
    return "\n".join(["--no-index", f"--find-links {wheels}", *requirements]) + "\n"


def test_app_without_requirements_runs_with_the_engine_python(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("")
    (tmp_path / "graph.yml").write_text("functions:\n  - node_file: a.py\n")
    assert Environments().python_for(load_app(tmp_path)) == sys.executable


def test_builds_an_environment_that_sees_the_engine_and_reuses_it(
        tmp_path: Path, wheels: Path, patterns_home: Path) -> None:
    app = make_app(tmp_path / "app", offline(wheels, "tinypkg==0.1"))
    lines: list[str] = []
    python = Environments().python_for(app, lines.append)

    assert Path(python).is_relative_to(patterns_home / "envs")
    assert lines[0].startswith("building environment for requirements.txt (sha ")
    assert any("tinypkg==0.1" in line for line in lines), lines
    out = run_python(python, "import tinypkg, patterns, pyarrow, sys; "
                             "print(tinypkg.VALUE, patterns.__file__, sys.prefix)")
    value, sdk, prefix = out.rsplit(" ", 2)
    assert value == "tiny 0.1"
    assert sdk == patterns.__file__
    assert Path(prefix) == Path(python).parent.parent
    # built elsewhere and renamed into place: the package's command still works
    hello = subprocess.run([str(Path(python).parent / "tinypkg-hello")], capture_output=True,
                           text=True, check=True)
    assert hello.stdout == "hi\n"

    marker = Path(python).parent.parent / MARKER
    built = marker.stat().st_mtime_ns
    again: list[str] = []
    same = Environments().python_for(make_app(tmp_path / "other-app",
                                              offline(wheels, "tinypkg==0.1")), again.append)
    assert (same, again, marker.stat().st_mtime_ns) == (python, [], built)

    newer = make_app(tmp_path / "app", offline(wheels, "tinypkg==0.2"))
    python2 = Environments().python_for(newer)
    assert python2 != python
    assert run_python(python2, "import tinypkg; print(tinypkg.VALUE)") == "tiny 0.2"
    assert run_python(python, "import tinypkg; print(tinypkg.VALUE)") == "tiny 0.1"


def test_a_pin_in_the_requirements_wins_over_the_engine_copy(tmp_path: Path, wheels: Path) -> None:
    python = Environments().python_for(make_app(tmp_path / "app", offline(wheels, "idna==99.0")))
    assert run_python(python, "import idna; print(idna.PINNED)") == "the app pin"
    assert run_python(sys.executable, "import idna; print(hasattr(idna, 'PINNED'))") == "False"


def test_relative_paths_resolve_from_the_requirements_folder(tmp_path: Path) -> None:
    app_root = tmp_path / "app"
    make_wheel(app_root / "deps" / "wheels", "tinypkg", "0.1", "VALUE = 'local'\n")
    (app_root / "deps" / "base.txt").write_text("--no-index\n--find-links wheels\ntinypkg\n")
    app = make_app(app_root, "-r base.txt\n", file="deps/requirements.txt")
    python = Environments().python_for(app)
    assert run_python(python, "import tinypkg; print(tinypkg.VALUE)") == "local"

    # an included file is part of the key: changing it builds a new environment
    make_wheel(app_root / "deps" / "wheels", "tinypkg", "0.2", "VALUE = 'local 0.2'\n")
    (app_root / "deps" / "base.txt").write_text("--no-index\n--find-links wheels\ntinypkg==0.2\n")
    python2 = Environments().python_for(app)
    assert python2 != python
    assert run_python(python2, "import tinypkg; print(tinypkg.VALUE)") == "local 0.2"


def test_a_failed_install_names_the_file_quotes_uv_and_leaves_nothing(
        tmp_path: Path, patterns_home: Path) -> None:
    (tmp_path / "empty").mkdir()
    app = make_app(tmp_path / "app", offline(tmp_path / "empty", "nonexistent-pkg-xyz"))
    with pytest.raises(ConfigError) as caught:
        Environments().python_for(app)
    message = str(caught.value)
    assert message.startswith("requirements.txt: could not build the environment: uv says: ")
    assert "nonexistent-pkg-xyz" in message
    assert "correct requirements.txt and run again" in message
    assert not caught.value.retryable
    left = [p.name for p in (patterns_home / "envs").iterdir()]
    assert all(name.endswith(".lock") for name in left), left


def test_an_unreachable_index_is_a_retryable_error(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a loopback port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    app = make_app(tmp_path / "app", f"--index-url http://127.0.0.1:{port}/simple\n"
                                     "tinypkg-not-cached==0.1\n")
    with pytest.raises(ConfigError, match="check the network connection") as caught:
        Environments().python_for(app)
    assert caught.value.retryable


def test_a_missing_requirements_file_says_how_to_fix_it(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app", None)
    with pytest.raises(ConfigError, match=r"^requirements.txt: .* does not exist .*"
                                          r"create it .* or remove requirements_file"):
        Environments().python_for(app)


def test_a_killed_build_is_cleared_and_rebuilt(tmp_path: Path, wheels: Path,
                                               patterns_home: Path) -> None:
    app = make_app(tmp_path / "app", offline(wheels, "tinypkg==0.1"))
    python = Path(Environments().python_for(app))
    env = python.parent.parent
    # what a build killed before its rename leaves, and an environment whose marker is gone
    leftover = env.with_name(f".{env.name}.build-1-dead")
    leftover.mkdir()
    (env / MARKER).unlink()
    lines: list[str] = []
    assert Environments().python_for(app, lines.append) == str(python)
    assert lines[0].startswith("building environment")
    assert not leftover.exists()
    assert run_python(str(python), "import tinypkg; print(tinypkg.VALUE)") == "tiny 0.1"


def test_two_engines_building_the_same_environment_build_it_once(
        tmp_path: Path, wheels: Path) -> None:
    apps = [make_app(tmp_path / f"app{i}", offline(wheels, "tinypkg==0.1")) for i in range(2)]
    start = threading.Barrier(2)
    lines: list[str] = []
    results: list[str] = []

    def build(app: App) -> None:
        start.wait()
        results.append(Environments().python_for(app, lines.append))

    threads = [threading.Thread(target=build, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0] == results[1]
    assert sum(line.startswith("building environment") for line in lines) == 1
    assert run_python(results[0], "import tinypkg; print(tinypkg.VALUE)") == "tiny 0.1"


@pytest.mark.slow
def test_a_package_from_pypi(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app", "six==1.16.0\n")
    try:
        python = Environments().python_for(app)
    except ConfigError as exc:
        if exc.retryable:
            pytest.skip(f"the package registry is unreachable: {exc}")
        raise
    assert run_python(python, "import six, patterns; print(six.__version__)") == "1.16.0"


CLI = [sys.executable, "-m", "patterns.cli.main"]


def run_app(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "run", str(root)], capture_output=True, text=True,
                          check=False, timeout=120)


def test_patterns_run_builds_the_environment_with_progress_and_runs_nodes_in_it(
        tmp_path: Path, wheels: Path, patterns_home: Path) -> None:
    root = tmp_path / "app"
    make_app(root, offline(wheels, "tinypkg==0.2"))
    (root / "hello.py").write_text("import sys, tinypkg\nprint('value', tinypkg.VALUE)\n"
                                   "print('python', sys.executable)\n")
    first = run_app(root)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "environment | building environment for requirements.txt" in first.stdout
    assert "value tiny 0.2" in first.stdout
    assert f"python {patterns_home / 'envs'}" in " ".join(first.stdout.split())
    again = run_app(root)
    assert again.returncode == 0
    assert "environment |" not in again.stdout  # reused, not rebuilt
    assert "value tiny 0.2" in again.stdout


def test_a_bad_requirements_file_fails_the_runs_and_says_why(tmp_path: Path) -> None:
    root = tmp_path / "app"
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    make_app(root, f"--no-index\n--find-links {empty}\nnonexistent-pkg-xyz==1.0\n")
    done = run_app(root)
    assert done.returncode == 1
    out = " ".join((done.stdout + done.stderr).split())
    assert "requirements.txt: could not build the environment" in out
    assert "nonexistent-pkg-xyz" in out
    assert "Traceback" not in out
    runs = subprocess.run([*CLI, "runs", str(root)], capture_output=True, text=True,
                          check=False)
    assert "failed" in runs.stdout
