"""Across nodes: unique ids and files, every table bound to a store, mapped ports declared."""

from __future__ import annotations

from .conftest import ENRICH, AppFolder, simple


def test_duplicate_ids_stores_and_node_files(app: AppFolder) -> None:
    app.write("a.py", "")
    app.write("b.py", "")
    app.graph(
        """
        title: x
        functions:
          - node_file: a.py
            id: abc123
          - node_file: b.py
            id: abc123
          - node_file: a.py
        stores:
          - table: t
          - table: t
        """
    )
    problems = app.problems()
    messages = {p.line: p.message for p in problems}
    assert "duplicate node id 'abc123'" in messages[6]
    assert "node_file 'a.py' is listed twice" in messages[7]
    assert "duplicate store 't'" in messages[10]
    assert len(problems) == 3


def test_table_that_is_not_a_store_points_at_the_declaration(app: AppFolder) -> None:
    app.write("enrich.py", ENRICH)
    app.graph("title: x\nfunctions:\n  - node_file: enrich.py\nstores:\n  - table: messages\n")
    problem = app.problem()
    assert (problem.file, problem.line, problem.node) == ("enrich.py", 4, "enrich.py")
    assert problem.message == (
        "node enrich.py writes table 'messages_enriched', which is not a store"
    )
    assert problem.fix is not None
    assert problem.fix.startswith("add `- table: messages_enriched` under `stores:`")


def test_mapped_port_to_missing_store_points_at_the_mapping(app: AppFolder) -> None:
    simple(app, "    inputs:\n      messages: chats\n")
    problem = app.problem()
    assert (problem.file, problem.line) == ("graph.yml", 5)
    assert problem.message == "node enrich.py reads table 'chats', which is not a store"
    assert problem.fix == "add `- table: chats` under `stores:`"


def test_port_mapping_binds_a_port_to_another_store(app: AppFolder) -> None:
    simple(app, "    inputs:\n      messages: chats\n")
    app.write("graph.yml", (app.root / "graph.yml").read_text() + "  - table: chats\n")
    node = app.load().node("enrich.py")
    assert node.store_for("messages") == "chats"
    assert node.reads() == ("chats",)


def test_mapping_an_undeclared_port(app: AppFolder) -> None:
    simple(app, "    outputs:\n      enriched: messages_enriched\n")
    problem = app.problem()
    assert (problem.line, problem.node) == (5, "enrich.py")
    assert "port 'enriched'" in problem.message
