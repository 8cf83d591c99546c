"""Opening a PostgreSQL store: migrations, and a clear line for each way it cannot open."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from patterns.errors import StoreError
from patterns.store.postgres import PostgresStore
from patterns.store.postgres.migrations import LATEST, MIGRATIONS
from patterns.store.postgres.store import PgView
from tests.store.postgres.conftest import append, commit, rows


def _with(url: str, **parts: str) -> str:
    split = urlsplit(url)
    netloc = parts.get("netloc", split.netloc)
    return urlunsplit(split._replace(netloc=netloc, path=parts.get("path", split.path)))


def test_reopening_keeps_everything_and_migrates_once(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    assert store.capabilities.backend == "postgresql"
    assert store.capabilities.dialect == "postgres"
    assert store.capabilities.concurrent_processes
    commit(store, "t", append({"x": [1]}))
    store.close()
    again = PostgresStore(postgres_url)
    try:
        assert [r["x"] for r in rows(again, "t")] == [1]
        with again.read() as view:
            assert isinstance(view, PgView)
            done = view.cur.execute("SELECT version FROM patterns_meta.migrations "
                                    "ORDER BY version").fetchall()
            # The table's view is in public, for psql and SQL nodes.
            assert view.cur.execute('SELECT x FROM public."t"').fetchall() == [(1,)]
        assert [v for (v,) in done] == [m[0] for m in MIGRATIONS]
        assert again.view_name("t") == 'public."t"'
    finally:
        again.close()


def test_a_store_from_a_newer_patterns_is_refused(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("INSERT INTO patterns_meta.migrations VALUES (%s, 'future', now())",
                    [LATEST + 1])
    with pytest.raises(StoreError, match=f"newer Patterns.*migration {LATEST + 1}.*upgrade"):
        PostgresStore(postgres_url)


def test_an_unreachable_server_names_the_url_without_its_password(postgres_url: str) -> None:
    from patterns.store.pg_server import free_port

    url = _with(postgres_url, netloc=f"someone:s3cret@127.0.0.1:{free_port()}")
    with pytest.raises(StoreError) as caught:
        PostgresStore(url)
    message = str(caught.value)
    assert "s3cret" not in message and "someone:***@127.0.0.1" in message
    assert "check that the server runs" in message and "\n" not in message


def test_a_missing_database_or_user_says_what_to_do(postgres_url: str) -> None:
    with pytest.raises(StoreError, match="database 'no_such_db' does not exist; create it"):
        PostgresStore(_with(postgres_url, path="/no_such_db"))
    host = urlsplit(postgres_url).netloc.split("@")[-1]
    with pytest.raises(StoreError, match="user in the URL does not exist"):
        PostgresStore(_with(postgres_url, netloc=f"nobody:pw@{host}"))
    with pytest.raises(StoreError, match="not a PostgreSQL URL"):
        PostgresStore("mysql://x@localhost/db")


def test_a_user_without_create_privileges_is_told_what_to_grant(postgres_url: str) -> None:
    reader = f"reader_{uuid.uuid4().hex[:8]}"  # (roles belong to the whole server)
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f"CREATE ROLE {reader} LOGIN")
    host = urlsplit(postgres_url).netloc.split("@")[-1]
    url = _with(postgres_url, netloc=f"{reader}@{host}")
    with pytest.raises(StoreError, match=r"may not create.*GRANT CREATE ON DATABASE") as caught:
        PostgresStore(url)
    assert "\n" not in str(caught.value)
    with psycopg.connect(postgres_url, autocommit=True) as con:  # nothing half-made
        assert con.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE "
                           "'patterns_%'").fetchone() == (0,)
        con.execute(f"GRANT CREATE ON DATABASE {urlsplit(postgres_url).path[1:]} TO {reader}")
    with pytest.raises(StoreError, match=r"GRANT CREATE ON SCHEMA public"):
        PostgresStore(url)
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f"GRANT CREATE ON SCHEMA public TO {reader}")
    store = PostgresStore(url)
    commit(store, "t", append({"x": [1]}))
    assert [r["x"] for r in rows(store, "t")] == [1]
    store.close()


def test_wrong_credentials_say_so_and_hide_the_password(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as con:
        superuser = con.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                                ).fetchone()
        if not superuser or not superuser[0]:
            pytest.skip("needs a superuser to make one role ask for a password")
        con.execute("DROP ROLE IF EXISTS pwuser")
        con.execute("CREATE ROLE pwuser LOGIN PASSWORD 'right-one'")
        hba = Path(con.execute("SHOW hba_file").fetchone()[0])  # type: ignore[index]
        if not hba.exists():
            pytest.skip("the server's pg_hba.conf is not on this machine")
        rules = hba.read_text()
        if "pwuser" not in rules:  # (this role only: every other connection stays as it was)
            hba.write_text("host all pwuser 127.0.0.1/32 scram-sha-256\n" + rules)
            con.execute("SELECT pg_reload_conf()")
    host = urlsplit(postgres_url).netloc.split("@")[-1]
    deadline = time.monotonic() + 10
    while True:  # (the server reloads its rules in a moment)
        try:
            PostgresStore(_with(postgres_url, netloc=f"pwuser:wrong-one@{host}")).close()
        except StoreError as exc:
            if "credentials" in str(exc) or time.monotonic() > deadline:
                message = str(exc)
                break
        time.sleep(0.1)
    assert "refused the user's credentials" in message and "wrong-one" not in message
    assert "pwuser:***@" in message
