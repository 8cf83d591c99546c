"""discover_python: the interface a node declares, read from its source without running it."""

from __future__ import annotations

import textwrap
from datetime import date, datetime
from pathlib import Path

import pytest

from patterns.errors import Problem
from patterns.graph import MISSING, RUNTIME_DEFAULT, NodeInterface, discover_python


def discover(tmp_path: Path, source: str) -> tuple[NodeInterface, list[Problem]]:
    path = tmp_path / "node.py"
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return discover_python(path, "node.py")


def tables(interface: NodeInterface) -> list[tuple[str, str]]:
    return [(t.port, t.mode) for t in interface.tables]


@pytest.mark.parametrize(
    "source",
    [
        'from patterns import Table\nt = Table("a")\nw = Table("b", "w")\n',
        'from patterns import Table as T\nt = T("a")\nw = T("b", mode="w")\n',
        'import patterns\nt = patterns.Table("a")\nw = patterns.Table("b", "w")\n',
        'import patterns as p\nt = p.Table("a")\nw = p.Table("b", "w")\n',
        'from patterns.sdk import Table\nt = Table("a")\nw = Table("b", "w")\n',
        'import patterns.sdk\nt = patterns.sdk.Table("a")\nw = patterns.sdk.Table("b", "w")\n',
        'from patterns import sdk\nt = sdk.Table("a")\nw = sdk.Table("b", "w")\n',
        'from patterns import *\nt = Table("a")\nw = Table("b", "w")\n',
        'def main():\n    from patterns import Table\n    Table("a")\n    Table("b", "w")\n',
    ],
)
def test_import_styles(tmp_path: Path, source: str) -> None:
    interface, problems = discover(tmp_path, source)
    assert problems == []
    assert tables(interface) == [("a", "r"), ("b", "w")]


def test_other_tables_are_not_declarations(tmp_path: Path) -> None:
    interface, problems = discover(
        tmp_path,
        """
        from sqlalchemy import Table
        import other as patterns_like
        Table("x")
        patterns_like.Table("y")
        """,
    )
    assert (interface, problems) == (NodeInterface(), [])


def test_table_arguments(tmp_path: Path) -> None:
    interface, problems = discover(
        tmp_path,
        """
        from patterns import Table
        a = Table("a", description="the a table", required=False)
        b = Table(name="b", mode="w", schema={"x": "int"})
        """,
    )
    assert problems == []
    a, b = interface.tables
    assert (a.port, a.mode, a.line, a.required, a.description) == (
        "a",
        "r",
        2,
        False,
        "the a table",
    )
    assert (b.port, b.mode, b.line, b.required) == ("b", "w", 3, True)


def test_a_table_read_and_written_is_declared_once_as_written(tmp_path: Path) -> None:
    interface, _ = discover(
        tmp_path,
        'from patterns import Table\nr = Table("t")\nw = Table("t", "w")\nr2 = Table("t")\n',
    )
    assert tables(interface) == [("t", "w")]
    assert interface.tables[0].line == 2


@pytest.mark.parametrize(
    ("call", "line"),
    [
        ("Table(name)", 3),
        ('Table(f"t{1}")', 3),
        ("Table()", 3),
        ("Parameter(name, type=int)", 3),
    ],
)
def test_names_must_be_literal(tmp_path: Path, call: str, line: int) -> None:
    _, problems = discover(
        tmp_path, f'from patterns import Table, Parameter\nname = "t"\nx = {call}\n'
    )
    assert len(problems) == 1
    assert (problems[0].file, problems[0].line, problems[0].node) == ("node.py", line, "node.py")
    assert "must be a literal string so the graph can be known before running" in (
        problems[0].message
    )


@pytest.mark.parametrize("mode", ['"rw"', "MODE", '"a"'])
def test_bad_modes(tmp_path: Path, mode: str) -> None:
    interface, problems = discover(
        tmp_path, f'from patterns import Table\nMODE = "w"\nt = Table("t", {mode})\n'
    )
    assert interface.tables == ()
    assert problems[0].line == 3 and '"r" or "w"' in problems[0].message


@pytest.mark.parametrize(
    ("type_source", "expected"),
    [
        ("str", "str"),
        ("int", "int"),
        ("float", "float"),
        ("bool", "bool"),
        ("datetime", "datetime"),
        ("date", "date"),
        ("list", "list"),
        ("list[str]", "list"),
        ("datetime.datetime", "datetime"),
        ("datetime.date", "date"),
    ],
)
def test_parameter_types(tmp_path: Path, type_source: str, expected: str) -> None:
    interface, problems = discover(
        tmp_path,
        f"""
        import datetime
        from datetime import date
        from patterns import Parameter
        p = Parameter("p", type={type_source})
        """,
    )
    assert problems == []
    (decl,) = interface.parameters
    assert (decl.name, decl.type, decl.line, decl.default) == ("p", expected, 4, MISSING)
    assert decl.required


def test_connection_parameters(tmp_path: Path) -> None:
    interface, problems = discover(
        tmp_path,
        """
        from patterns import Parameter, Connection
        stripe = Parameter("stripe", type=Connection("stripe"), description="keys")
        """,
    )
    assert problems == []
    (decl,) = interface.parameters
    assert (decl.type, decl.connection_kind, decl.description) == ("connection", "stripe", "keys")


def test_parameter_defaults(tmp_path: Path) -> None:
    interface, problems = discover(
        tmp_path,
        """
        from datetime import datetime, date
        from patterns import Parameter
        a = Parameter("a")
        b = Parameter("b", int, 100)
        c = Parameter("c", type=datetime, default="2000-01-01")
        d = Parameter("d", type=date, default="2000-01-02")
        e = Parameter("e", type=float, default=1)
        f = Parameter("f", type=datetime, default=datetime.now())
        g = Parameter("g", type=list, default="a,b")
        h = Parameter("h", type=int, default=None)
        i = Parameter("i", type=bool, default="yes")
        """,
    )
    assert problems == []
    defaults = {p.name: p.default for p in interface.parameters}
    assert defaults == {
        "a": MISSING,
        "b": 100,
        "c": datetime(2000, 1, 1),
        "d": date(2000, 1, 2),
        "e": 1.0,
        "f": RUNTIME_DEFAULT,
        "g": ["a", "b"],
        "h": None,
        "i": True,
    }
    assert [p.name for p in interface.parameters if p.required] == ["a"]


def test_bad_parameter_default_and_type(tmp_path: Path) -> None:
    _, problems = discover(
        tmp_path,
        """
        from patterns import Parameter
        a = Parameter("a", type=int, default="many")
        b = Parameter("b", type=dict)
        """,
    )
    assert [p.line for p in problems] == [2, 3]
    assert "'many'" in problems[0].message
    assert "dict" in problems[1].message


def test_state(tmp_path: Path) -> None:
    interface, _ = discover(tmp_path, "from patterns import State\nstate = State()\n")
    assert interface.uses_state
    interface, _ = discover(tmp_path, "from patterns import Table\n")
    assert not interface.uses_state


def test_syntax_error_has_its_line(tmp_path: Path) -> None:
    interface, problems = discover(tmp_path, "from patterns import Table\n\nif True\n    x = 1\n")
    assert interface == NodeInterface()
    assert (problems[0].file, problems[0].line) == ("node.py", 3)
    assert "syntax error" in problems[0].message


def test_the_node_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    interface, _ = discover(
        tmp_path,
        f"""
        from patterns import Table
        open({str(marker)!r}, "w").write("ran")
        raise SystemExit(3)
        t = Table("after")
        """,
    )
    assert not marker.exists()
    assert tables(interface) == [("after", "r")]
