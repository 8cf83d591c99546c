"""The test set-up's throwaway PostgreSQL: every PostgreSQL test stands on it."""

from __future__ import annotations

import psycopg


def test_each_test_gets_its_own_empty_database(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as con:
        tables = con.execute("SELECT count(*) FROM information_schema.tables "
                             "WHERE table_schema = 'public'").fetchone()
        assert tables == (0,)
        con.execute("CREATE TABLE t (x int)")
        con.execute("INSERT INTO t VALUES (1), (2)")
        assert con.execute("SELECT sum(x) FROM t").fetchone() == (3,)
