"""Without a terminal, a question the CLI would ask names the flag that skips it (and changes
nothing); in a terminal it is asked. `create secret` takes the value from stdin or a file, so
it stays out of the shell's history."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import failed, ok, patterns
from tests.cli.terminal import Terminal


def test_a_question_without_a_terminal_names_the_flag(fresh_app: Path) -> None:
    before = json.loads(ok(patterns("table", "list", "--json", cwd=fresh_app)).stdout)
    for args, flag in ((("table", "reset", "events"), "-y"),
                       (("table", "delete", "events", "--where", "n > 1"), "-y"),
                       (("state", "reset", "gen.py"), "-y"),
                       (("stream", "reset", "consume.py", "source"), "-y"),
                       (("delete",), "--force")):
        error = failed(patterns(*args, cwd=fresh_app), "no terminal", f"give {flag} ")
        assert "nothing was changed" in error, args
    assert json.loads(ok(patterns("table", "list", "--json", cwd=fresh_app)).stdout) == before
    assert (fresh_app / ".patterns").is_dir()
    ok(patterns("table", "reset", "events", "-y", cwd=fresh_app))  # -y: done, unasked


def test_in_a_terminal_the_question_is_asked(fresh_app: Path) -> None:
    term = Terminal("table", "reset", "events", cwd=fresh_app)
    term.expect("Reset table events (5 row(s) in version 1)? Readers will see an empty table "
                "[y/N]:")
    term.send("y\n")
    term.expect("is now version 2")
    assert term.wait() == 0
    assert "-y" not in term.seen


def test_create_secret_from_stdin_and_from_a_file(tmp_path: Path) -> None:
    env = {"PATTERNS_HOME": str(tmp_path / "home")}
    out = ok(patterns("create", "secret", "piped", "--stdin", input="v@lue-1\n", env=env))
    assert "secret piped saved" in out.stdout and "v@lue-1" not in out.stdout + out.stderr
    (tmp_path / "token.txt").write_text('{"key": "fr0m-file"}\n')
    ok(patterns("create", "secret", "connection.db", "--from-file", tmp_path / "token.txt",
                env=env))
    assert ok(patterns("list", "secrets", env=env)).stdout.split() == ["connection.db", "piped"]

    # the values are the ones given (a node reads them), without the trailing newline
    root = tmp_path / "app"
    root.mkdir()
    (root / "graph.yml").write_text(
        "functions:\n  - node_file: show.py\n    id: show0001\n    parameter_values:\n"
        "      token: ${{ piped }}\n      db: ${{ connection.db }}\nstores:\n  - table: seen\n")
    (root / "show.py").write_text(
        "from patterns import Connection, Parameter, Table\n"
        "token = Parameter('token', type=str)\n"
        "db = Parameter('db', type=Connection('db'))\n"
        "Table('seen', 'w').append({'token': token, 'key': db['key']})\n")
    ok(patterns("run", cwd=root, env=env))
    row = json.loads(ok(patterns("table", "show", "seen", "--format", "jsonl", cwd=root,
                                 env=env)).stdout)
    assert (row["token"], row["key"]) == ("v@lue-1", "fr0m-file")

    failed(patterns("create", "secret", "empty", "--stdin", input="", env=env), "is empty")
    failed(patterns("create", "secret", "twice", "x", "--stdin", input="y", env=env),
           "one way, not VALUE and --stdin")
    error = failed(patterns("create", "secret", "asked", input="", env=env), "no terminal")
    assert "--stdin" in error and "--from-file" in error
    assert "asked" not in ok(patterns("list", "secrets", env=env)).stdout.split()
