"""Hostile app files: each is one clear problem at its file (and line), found quickly and
with bounded memory — the pytest timeout is the bound, a file that blew up would hang it."""

from __future__ import annotations

import pytest

from patterns.errors import NodeError
from patterns.graph.limits import MAX_GRAPH_BYTES, MAX_NODE_FILE_BYTES
from patterns.graph.sql_template import Bound, Slots, render
from tests.graph.conftest import AppFolder

pytestmark = pytest.mark.timeout(60)

#: 271 bytes that expand to 9^6 values: took 114 s and 2.2 GB to validate.
ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in [("", "a"), ("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"), ("e", "f")]
)

ONE_NODE = "functions:\n  - node_file: {file}\nstores:\n  - table: out\n"


def write_bytes(app: AppFolder, rel: str, data: bytes) -> None:
    (app.root / rel).parent.mkdir(parents=True, exist_ok=True)
    (app.root / rel).write_bytes(data)


@pytest.mark.parametrize(("graph", "line", "message"), [
    (ALIAS_BOMB, 6, "expands to more than 100,000 values"),
    ("a: &a [1]\n" + "".join(f"k{i}: *a\n" for i in range(101)), 102, "more than 100 YAML aliases"),
    ("a: &a [*a]\n", 1, "refers to a value that contains it"),
    ("title: " + "[" * 5000 + "]" * 5000 + "\n", 1, "nested more than 50 deep"),
    ("title: !!int abc\n", 1, "'abc' is not a valid !!int"),
    ("title: !!float x\n", 1, "'x' is not a valid !!float"),
    ("slug: ok\ntitle: !!timestamp 2020-99-99\n", 2, "is not a valid !!timestamp"),
    ("title: !!python/object/apply:os.system [ls]\n", 1, "could not determine a constructor"),
    ("title: 1" + "0" * 5000 + "\n", 1, "is not a valid !!int"),
    ("title: ok\nslug: \x07\n", 2, "cannot hold the character #x0007"),
])
def test_hostile_yaml_is_one_problem_at_its_line(app: AppFolder, graph: str, line: int,
                                                 message: str) -> None:
    app.graph(graph)
    problem = app.problem()
    assert problem.file == "graph.yml" and problem.line == line, problem
    assert message in problem.message, problem
    assert problem.fix


def test_nul_bytes_and_bad_encodings_are_problems_not_tracebacks(app: AppFolder) -> None:
    write_bytes(app, "graph.yml", b"title: ok\nslug: a\x00b\n")
    problem = app.problem()
    assert problem.line == 2 and "NUL byte" in problem.message
    write_bytes(app, "graph.yml", b"title: caf\xe9\n")
    assert "not UTF-8" in app.problem().message
    app.graph(ONE_NODE.format(file="n.py"))
    write_bytes(app, "n.py", b"from patterns import Table\nTable('out', 'w')\x00\n")
    problem = app.problem()
    assert (problem.file, problem.line) == ("n.py", 2) and "NUL byte" in problem.message


def test_files_past_the_size_limits_are_refused_without_reading_them(app: AppFolder) -> None:
    write_bytes(app, "graph.yml", b"title: x\n" + b"#" * MAX_GRAPH_BYTES)
    assert f"larger than {MAX_GRAPH_BYTES:,} bytes" in app.problem().message
    app.graph(ONE_NODE.format(file="n.py"))
    write_bytes(app, "n.py", b"#" * (MAX_NODE_FILE_BYTES + 1))
    problem = app.problem()
    assert problem.file == "n.py" and "larger than" in problem.message


@pytest.mark.parametrize(("node_file", "message"), [
    ('"a\\0.py"', "holds a NUL byte"),
    ("a" * 5000 + ".py", "is over 1024 characters"),
    ("../outside.py", "is outside the app folder"),
    ("/etc/passwd.py", "is outside the app folder"),
    ("sub/../../outside.py", "is outside the app folder"),
])
def test_node_files_must_be_reasonable_paths_inside_the_app(app: AppFolder, node_file: str,
                                                            message: str) -> None:
    (app.root.parent / "outside.py").write_text("print('outside')\n")
    app.graph(ONE_NODE.format(file=node_file))
    problem = app.problem()
    assert problem.line == 2 and message in problem.message, problem


def test_a_symlink_out_of_the_app_is_outside_it(app: AppFolder) -> None:
    (app.root.parent / "outside.py").write_text("print('outside')\n")
    app.root.mkdir(parents=True, exist_ok=True)
    (app.root / "link.py").symlink_to(app.root.parent / "outside.py")
    app.graph(ONE_NODE.format(file="link.py"))
    assert "is outside the app folder" in app.problem().message


@pytest.mark.parametrize("source", [
    "x = " + "(" * 300_000 + ")" * 300_000 + "\n",
    "x = " + "-" * 1_000_000 + "1\n",
    "x = " + "[" * 100_000 + "]" * 100_000 + "\n",
    "import patterns\nx = patterns" + ".a" * 100_000 + ".Table('out')\n",
    "x = 1" + " + 1" * 200_000 + "\n",
])
def test_deeply_nested_python_is_a_problem(app: AppFolder, source: str) -> None:
    app.graph(ONE_NODE.format(file="n.py"))
    app.write("n.py", source)
    problem = app.problem()
    assert problem.file == "n.py" and problem.node == "n.py"
    assert "nested" in problem.message or "syntax error" in problem.message, problem


@pytest.mark.parametrize(("template", "message"), [
    ("select {{ 'a' * 3000000000 }}", "over the limit of 10,000,000"),
    ("{% for i in [1]*100000000 %}x{% endfor %}", "over the limit of 10,000,000"),
    ("{% for a in [1]*1000 %}{% for b in [1]*1000 %}{% for c in [1]*1000 %}{% endfor %}"
     "{% endfor %}{% endfor %}select 1", "loops ran over 1,000,000 times"),
    ("{% set x = 'a' * 1000000 %}" + "{% set x = x ~ x %}" * 30 + "select 1",
     "~ concatenation would make a value"),
    ("select {{ 9 ** 99999999 }}", "integer of about"),
    ("select {{ '%1000000000s' % 1 }}", "pads to a width"),
    ("select {{ ('x' * 1000000)|replace('', 'yyyyyyyyyyyy') }}", "replace filter"),
    ("select {{ (['a'] * 100000)|join('x' * 1000) }}", "join filter"),
    ("select {{ 'a'|center(1000000000) }}", "No filter named 'center'"),
    ("select {{ " + "(" * 100_000 + "1" + ")" * 100_000 + " }}", "nested too deeply"),
    ("select {{ " + "(" * 250 + "1" + ")" * 250 + " }}", "nested too deeply"),
    ("{{ range(10) }}", "cannot be called in a SQL template"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "cannot be called in a SQL template"),
    ("select {{ ''.__class__ }}", "unsafe"),
])
def test_hostile_sql_templates_are_refused_quickly(app: AppFolder, template: str,
                                                  message: str) -> None:
    app.graph(ONE_NODE.format(file="n.sql"))
    app.write("n.sql", template)
    problems = app.problems()
    assert any(p.file == "n.sql" and message in p.message for p in problems), problems


def test_the_engine_renders_with_the_same_limits() -> None:
    slots = Slots()

    def table(name: str, *args: object, **kwargs: object) -> str:
        return f'main."{name}"'

    def parameter(name: str, *args: object, **kwargs: object) -> Bound:
        return slots.bind(name, 3)

    with pytest.raises(NodeError, match=r"n.sql:2: .*over the limit of 10,000,000"):
        render("select\n{{ 'a' * 3000000000 }}", "n.sql", table, parameter, slots)
    with pytest.raises(NodeError, match="renders over 10,000,000 characters"):
        render("{% set x = 'a' * 9000000 %}{{ x }}{{ x }}", "n.sql", table, parameter, slots)
    # Ordinary templates are untouched: loops, ~, filters, Table() and Parameter() inside.
    rendered = render("select {% for c in ['a', 'b'] %}{{ c ~ '1' }}{{ ', ' if not loop.last }}"
                      "{% endfor %} from {{ Table('t') }} where n < {{ Parameter('p') }}"
                      "{{ ' -- ' ~ (['x', 'y']|join('-'))|upper }}",
                      "n.sql", table, parameter, slots)
    assert rendered.text == 'select a1, b1 from main."t" where n < $1 -- X-Y'
