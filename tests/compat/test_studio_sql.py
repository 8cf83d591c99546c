"""SQL made by the original Studio: braces in comments and string literals are SQL text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patterns.errors import GraphError
from patterns.graph.loader import load_app
from patterns.graph.sql_text import shield, unshield

from .conftest import CompatApp, copy_app


def test_the_studio_app_loads_and_runs(compat_app: Callable[[str], CompatApp]) -> None:
    app = compat_app("studio_sql")
    result = app.run()
    assert result.ok, [r.error for r in result.runs]
    assert app.rows("totals", order="kind") == [
        {"kind": "click", "n": 1, "note": "{{ not a template }}", "quoted": "it's {% raw text"},
        {"kind": "view", "n": 3, "note": "{{ not a template }}", "quoted": "it's {% raw text"},
    ]


def test_template_code_outside_comments_still_counts(tmp_path: Path) -> None:
    root = copy_app("studio_sql", tmp_path)
    node = load_app(root).node("totals.sql")
    assert [t.port for t in node.interface.tables] == ["events", "output_table"]
    assert [p.name for p in node.interface.parameters] == ["min_n"]


def test_errors_keep_the_line_numbers_of_the_file(tmp_path: Path) -> None:
    root = copy_app("studio_sql", tmp_path)
    sql = root / "totals.sql"
    lines = sql.read_text().splitlines()
    lines[7] = "where n >= {{ Parameter('min_n', type=int, default=2 }}"  # line 8: no ")"
    sql.write_text("\n".join(lines) + "\n")
    with pytest.raises(GraphError) as caught:
        load_app(root)
    [problem] = caught.value.problems
    assert (problem.file, problem.line) == ("totals.sql", 8)
    assert "template syntax error" in problem.message


def test_an_unclosed_block_comment_or_string_keeps_its_braces() -> None:
    text = "select 1 /* {{ never closed"
    assert "{" not in shield(text) and unshield(shield(text)) == text
    text = "select '{% open"
    assert "{" not in shield(text) and unshield(shield(text)) == text
    dollar = "select $q$ {{ x }} $q$, $$ {% $$ from {{ Table('t') }}"
    assert shield(dollar).endswith("{{ Table('t') }}") and "$q$ {{" not in shield(dollar)


def test_a_parameter_inside_quotes_stays_template_code() -> None:
    text = "where name like '{{ Parameter('q') }}%' -- {{ old }}"
    assert shield(text).startswith("where name like '{{ Parameter('q') }}%'")
    assert "{{ old }}" not in shield(text)


def test_quoted_identifiers_and_raw_blocks_are_left_alone() -> None:
    text = 'select "a--b" from {{ Table("t") }}'
    assert shield(text) == text
    raw = "select {% raw %} -- {{ kept }} {% endraw %} 1"
    assert shield(raw) == raw


@given(st.text(alphabet="{}%#-/*'\"$ab\n ", max_size=60))
def test_shielding_moves_nothing_and_puts_every_brace_back(text: str) -> None:
    shielded = shield(text)
    assert len(shielded) == len(text) and shielded.count("\n") == text.count("\n")
    assert unshield(shielded) == text
