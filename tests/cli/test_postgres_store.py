"""The CLI on a PostgreSQL store: a run, the commands that read it, and bad store URLs, each
one red line naming the store (password masked) and what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.cli.conftest import failed, ok, patterns, write_app


def _as_user(url: str, user: str, password: str | None = None) -> str:
    parts = urlsplit(url)
    login = f"{user}:{password}" if password else user
    return urlunsplit(parts._replace(netloc=f"{login}@{parts.hostname}:{parts.port}"))


def test_run_and_read_a_postgresql_store_given_by_the_environment(tmp_path: Path,
                                                                   postgres_url: str) -> None:
    app = write_app(tmp_path / "app", bulk_rows=50)
    env = {"PATTERNS_STORE": postgres_url}
    ok(patterns("run", app, env=env))
    assert not (app / ".patterns" / "store.duckdb").exists()  # (no file store was made)
    listed = ok(patterns("table", "list", app, env=env)).stdout
    assert "events" in listed and "bulk" in listed
    shown = ok(patterns("table", "show", app, "bulk", "--store", postgres_url)).stdout
    assert "rows 1 to 20 of 50" in shown
    assert "gen" in ok(patterns("runs", app, "--store", postgres_url)).stdout
    # A notebook in the app's folder reads the same store (read_sql in PostgreSQL's SQL).
    notebook = ("from patterns import Table\nt = Table('bulk')\n"
                "print(t.read_sql(f'select count(*) as n from {t}'))")
    read = subprocess.run([sys.executable, "-c", notebook], cwd=app, capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=120)
    assert read.stdout.strip() == "[{'n': 50}]", read.stderr


@pytest.mark.parametrize("command", ["run", "runs", "serve"])
def test_an_unreachable_store_is_one_line_with_the_password_masked(tmp_path: Path,
                                                                    command: str) -> None:
    app = write_app(tmp_path / "app")
    url = "postgresql://someone:sekret@127.0.0.1:1/nowhere"
    line = failed(patterns(command, app, "--store", url),
                  "postgresql://someone:***@127.0.0.1:1/nowhere", "check that the server runs")
    assert "sekret" not in line and len(line.strip().splitlines()) == 1


def test_a_user_without_privileges_is_told_what_to_grant(tmp_path: Path,
                                                         postgres_url: str) -> None:
    import psycopg

    role = f"nopriv_{urlsplit(postgres_url).path.strip('/')}"[:60]
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f'DROP ROLE IF EXISTS "{role}"')
        con.execute(f'CREATE ROLE "{role}" LOGIN PASSWORD \'pw\'')
    app = write_app(tmp_path / "app")
    url = _as_user(postgres_url, role, "pw")
    line = failed(patterns("run", app, "--store", url), "may not create", "GRANT CREATE")
    assert ":pw@" not in line


def test_a_store_from_a_newer_patterns_is_refused(tmp_path: Path, postgres_url: str) -> None:
    import psycopg

    app = write_app(tmp_path / "app", bulk_rows=5)
    ok(patterns("run", app, "--store", postgres_url))
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("INSERT INTO patterns_meta.migrations VALUES (999, 'future', now())")
    for command in ("run", "runs"):
        failed(patterns(command, app, "--store", postgres_url), "newer Patterns",
               "upgrade Patterns")
