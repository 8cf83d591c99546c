"""discover_sql: the tables and parameters of a SQL node, read from its Jinja template."""

from __future__ import annotations

from pathlib import Path

from patterns.graph import NodeInterface, discover_sql
from patterns.graph.sql_interface import OUTPUT_PORT


def discover(tmp_path: Path, source: str) -> NodeInterface:
    path = tmp_path / "query.sql"
    path.write_text(source, encoding="utf-8")
    interface, problems = discover_sql(path, "query.sql")
    assert problems == []
    return interface


def test_a_select_writes_its_output_table(tmp_path: Path) -> None:
    interface = discover(
        tmp_path,
        "select *\nfrom {{ Table('events') }} e\n"
        'join {{ Table("users") }} u on u.id = e.user_id\n'
        "where e.n > {{ Parameter('min_n', type=int, default=3) }}\n",
    )
    assert [(t.port, t.mode, t.line) for t in interface.tables] == [
        ("events", "r", 2),
        ("users", "r", 3),
        (OUTPUT_PORT, "w", 1),
    ]
    (parameter,) = interface.parameters
    assert (parameter.name, parameter.type, parameter.default, parameter.line) == (
        "min_n",
        "int",
        3,
        4,
    )


def test_an_insert_into_a_declared_table_has_no_output_port(tmp_path: Path) -> None:
    interface = discover(
        tmp_path,
        "insert into {{ Table('totals', 'w') }}\nselect count(*) from {{ Table('events') }}\n",
    )
    assert [(t.port, t.mode) for t in interface.tables] == [("totals", "w"), ("events", "r")]


def test_jinja_literals_and_set_blocks(tmp_path: Path) -> None:
    interface = discover(
        tmp_path,
        "{% set flag = Parameter('flag', type='bool', default=true) %}\n"
        "select * from {{ Table('t') | safe }} where {{ flag }}\n",
    )
    (parameter,) = interface.parameters
    assert (parameter.type, parameter.default) == ("bool", True)
    assert interface.tables[0].port == "t"


def test_unreadable_declaration_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "query.sql"
    path.write_text("select 1\nfrom {{ Table('t' }}\n", encoding="utf-8")
    _, problems = discover_sql(path, "query.sql")
    assert [(p.file, p.line) for p in problems] == [("query.sql", 2)]


def problems_of(tmp_path: Path, source: str) -> list[tuple[int | None, str]]:
    path = tmp_path / "query.sql"
    path.write_text(source, encoding="utf-8")
    _, problems = discover_sql(path, "query.sql")
    return [(p.line, p.message) for p in problems]


def test_template_problems_name_their_line(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "select 1\n{% if %}\n") == [
        (2, "template syntax error: Expected an expression, got 'end of statement block'")]
    (found,) = problems_of(tmp_path, "{% set n = 't' %}\nselect * from {{ Table(n) }}")
    assert found[0] == 2 and "literal string" in found[1]
    assert problems_of(tmp_path, "select {{ range(3) }},\n {{ x.upper() }}") == [
        (1, "range() cannot be called in a SQL template"),
        (2, "x.upper() cannot be called in a SQL template")]
    assert problems_of(tmp_path, "select 1 from {{ Table('t') }}\nwhere {{ nope }}") == [
        (2, "the template cannot be rendered: 'nope' is undefined")]
    (found,) = problems_of(tmp_path, "select {{ Parameter('p', default=[1][0]) }}")
    assert "not a literal" in found[1]
    (found,) = problems_of(tmp_path, "-- dialect: mysql\nselect 1")
    assert found[0] == 1 and "not a dialect" in found[1]


def test_tables_in_branches_and_parameter_tests_are_read(tmp_path: Path) -> None:
    interface = discover(
        tmp_path,
        "{% if Parameter('full', type=bool, default=false) %}\n"
        "select * from {{ Table('a') }}\n"
        "{% else %}\n"
        "select * from {{ Table('b') }} where n > {{ Parameter('n', type=int) }}\n"
        "{% endif %}\n",
    )
    assert [t.port for t in interface.tables] == ["a", "b", OUTPUT_PORT]
    assert [p.name for p in interface.parameters] == ["full", "n"]
