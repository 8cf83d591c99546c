"""``open_store``: one way to a store from a path or a URL, and one clear line when it
cannot be opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from patterns.errors import StoreError
from patterns.store import open_store


def test_a_path_or_a_duckdb_url_opens_the_file(tmp_path: Path) -> None:
    for where in (tmp_path / "a.duckdb", str(tmp_path / "b.duckdb"),
                  f"duckdb://{tmp_path / 'c.duckdb'}"):
        store = open_store(where)
        try:
            assert store.capabilities.backend == "duckdb"
            assert store.path is not None and store.path.exists()
        finally:
            store.close()
    reader = open_store(f"duckdb://{tmp_path / 'a.duckdb'}", read_only=True)
    assert reader.read_only
    reader.close()


def test_an_unknown_scheme_says_what_works_and_hides_the_password() -> None:
    with pytest.raises(StoreError) as info:
        open_store("mysql://app:s3cret@db.internal/prod")
    text = str(info.value)
    assert "\n" not in text and "s3cret" not in text and "app:****@db.internal" in text
    assert "postgresql://" in text and "file path" in text


def test_a_missing_store_opened_read_only_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no store at .*run the app once"):
        open_store(tmp_path / "none.duckdb", read_only=True)
