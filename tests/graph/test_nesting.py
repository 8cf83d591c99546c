"""Components and subgraphs load as graphs inside the graph: the outer node shows as one,
its inner nodes become nodes of the app with scoped ids and private stores, and every
problem names the file, line, node and fix."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from patterns.errors import ComponentError, GraphError
from patterns.graph.components import installed, parse_uses, resolve
from patterns.graph.loader import load_app

APPS = Path(__file__).parent.parent / "apps"


def copy_app(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(APPS / name, tmp_path / name))


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def component(root: Path, slug: str, version: str, manifest: str = "graph.yml") -> Path:
    return write(root, {manifest: f"""
        title: {slug} component
        slug: {slug}
        version: {version}
        tags: [test]
        icon: star
        exposes:
          outputs: [out]
          parameters: [word]
        functions:
          - node_file: emit.py
            id: emit
        stores:
          - table: out
        """, "emit.py": f"""
        from patterns import Parameter, Table
        word = Parameter("word", type=str)
        Table("out", "w").append({{"word": word, "version": "{version}"}})
        """})


def test_subgraph_nodes_are_scoped_and_the_subgraph_shows_as_one(tmp_path: Path) -> None:
    app = load_app(copy_app("original_subgraph", tmp_path))
    sub = app.node("cleaning")
    assert sub.kind == "subgraph" and len(sub.members) == 3
    inner = [app.node(m) for m in sub.members]
    assert [n.rel_file for n in inner] == ["cleaning/dedupe.py", "cleaning/keep_large.py",
                                           "cleaning/count.sql"]
    assert all(n.parent == "cleaning" and n.title.startswith("Cleaning / ") for n in inner)
    dedupe, keep, count = inner
    # exposed input bound to the app's store by the node's `inputs`; the private one scoped
    assert dedupe.reads() == ("orders",) and dedupe.writes() == ("cleaning__deduped",)
    assert keep.reads() == ("cleaning__deduped",) and keep.writes() == ("clean_orders",)
    assert count.reads() == ("cleaning__deduped",) and count.writes() == ("counted",)
    assert "cleaning__deduped" in {s.name for s in app.stores}
    assert keep.parameter_values["min_amount"] == 5
    # the app sees the subgraph as one node wired orders -> clean_orders
    assert sub.reads() == ("orders",) and sub.writes() == ("clean_orders", "counted")
    manifest = app.to_manifest()
    edges = {(e["from_node"], e["store"], e["to_node"]) for e in manifest["edges"]}
    assert ("mkorders", "orders", "cleaning") in edges
    assert ("cleaning", "clean_orders", "report") in edges
    assert all(e["from_node"] not in sub.members for e in manifest["edges"])
    # a node inside is found by its path, as the CLI's `--node cleaning/dedupe.py`
    assert app.node("cleaning/dedupe.py").id == dedupe.id


def test_subgraph_problem_names_the_inner_file(tmp_path: Path) -> None:
    root = copy_app("original_subgraph", tmp_path)
    (root / "cleaning" / "dedupe.py").write_text("from patterns import Table\n"
                                                 "Table('nowhere', 'w')\n")
    with pytest.raises(GraphError) as caught:
        load_app(root)
    text = str(caught.value)
    assert "cleaning/dedupe.py:2" in text and "'nowhere', which is not a store" in text


def test_subgraph_port_not_exposed_is_refused(tmp_path: Path) -> None:
    root = copy_app("original_subgraph", tmp_path)
    graph = (root / "graph.yml").read_text().replace("raw_orders: orders", "raw: orders")
    (root / "graph.yml").write_text(graph)
    with pytest.raises(GraphError) as caught:
        load_app(root)
    problem = next(p for p in caught.value.problems if "exposes no input" in p.message)
    assert problem.file == "graph.yml" and problem.line == 11
    assert problem.fix == "its inputs are raw_orders"


def test_components_of_the_app_and_of_the_starter_library(tmp_path: Path) -> None:
    app = load_app(copy_app("original_components", tmp_path))
    calendar = app.node("calendar")
    assert calendar.kind == "component" and calendar.writes() == ("calendar",)
    assert [p.name for p in calendar.interface.parameters] == ["start_date", "end_date"]
    (maker,) = [app.node(m) for m in calendar.members]
    assert maker.root is not None and maker.root.name == "date_table"
    assert maker.rel_file == "make_dates.py" and maker.writes() == ("calendar",)
    greeting = app.node("greeting")
    (greet,) = [app.node(m) for m in greeting.members]
    assert greet.root == (tmp_path / "original_components/components/acme/greeting").resolve()
    assert greet.reads() == ("customers",) and greet.writes() == ("greetings",)
    assert greet.parameter_values == {"salutation": "Hello"}


def test_an_uninstalled_component_needs_configuration_naming_file_line_and_the_fix(tmp_path: Path) -> None:
    root = copy_app("original_components", tmp_path)
    graph = (root / "graph.yml").read_text().replace("patterns/dedupe@v1", "patterns/dedupe@v7")
    (root / "graph.yml").write_text(graph)
    app = load_app(root)  # the app loads: that node needs configuration, the rest runs
    (node,) = [n for n in app.nodes if not n.configured]
    (problem,) = node.needs_configuration
    assert "not installed" in problem.message
    assert problem.file == "graph.yml" and problem.line == 18
    assert problem.node == "patterns/dedupe@v7"
    assert "node dedupe" in problem.message and "patterns/dedupe@1.0.0" in problem.message
    assert "patterns component add PATH --org patterns" in problem.message


def test_parameter_the_component_does_not_expose(tmp_path: Path) -> None:
    root = copy_app("original_components", tmp_path)
    graph = (root / "graph.yml").read_text().replace("key: email", "key: email\n      keys: x")
    (root / "graph.yml").write_text(graph)
    with pytest.raises(GraphError) as caught:
        load_app(root)
    (problem,) = caught.value.problems
    assert problem.file == "graph.yml" and problem.line == 26
    assert problem.message == "patterns/dedupe@v1 has no parameter 'keys'"
    assert problem.fix == "did you mean 'key'?"


def test_newest_version_with_the_major_asked_for(tmp_path: Path, patterns_home: Path) -> None:
    base = patterns_home / "components" / "acme" / "shout"
    for version in ("2.0.4", "2.1.0", "3.0.0", "10.0.1"):
        component(base / version, "shout", version)
    assert resolve("acme/shout@v2").version == "2.1.0"
    assert resolve("acme/shout@v2.0").version == "2.0.4"
    assert resolve("acme/shout").version == "10.0.1"
    assert resolve("acme/shout@3.0.0").version == "3.0.0"
    # installed under one org only: found under that org whatever org is named
    assert resolve("patterns/shout@v3").org == "acme"
    with pytest.raises(ComponentError, match=r"installed versions of shout: acme/shout@10\.0\.1"):
        resolve("acme/shout@v4")
    with pytest.raises(ComponentError, match="is not a component reference"):
        parse_uses("a/b/c@v1")


def test_single_manifest_file_layout_of_the_original(patterns_home: Path) -> None:
    folder = component(patterns_home / "components" / "patterns" / "shout" / "1.2.0", "shout",
                       "1.2.0", manifest="shout.yml")
    found = resolve("patterns/shout@v1")
    assert found.manifest == folder / "shout.yml" and found.org == "patterns"
    assert any(c.slug == "date-table" and c.source.startswith("package ") for c in installed())


def test_subgraph_without_exposes_shares_its_stores(tmp_path: Path) -> None:
    root = copy_app("original_subgraph", tmp_path)
    inner = root / "cleaning" / "graph.yml"
    text = inner.read_text()
    inner.write_text("title: Cleaning\n" + text[text.index("functions:"):])
    graph = (root / "graph.yml").read_text()
    (root / "graph.yml").write_text(graph.replace("stores:\n", "stores:\n  - table: deduped\n"))
    app = load_app(root)
    sub = app.node("cleaning")
    assert sub.inputs == {"raw_orders": "orders"}  # the node's mapping still applies
    assert set(sub.outputs.values()) == {"deduped", "clean_orders", "counted"}
    dedupe = app.node("cleaning/dedupe.py")
    assert dedupe.reads() == ("orders",) and dedupe.writes() == ("deduped",)


def test_a_graph_that_contains_itself_is_refused(tmp_path: Path) -> None:
    root = write(tmp_path / "loop", {
        "graph.yml": "title: loop\nfunctions:\n  - node_file: sub/graph.yml\n",
        "sub/graph.yml": "title: sub\nfunctions:\n  - node_file: inner/graph.yml\n",
        "sub/inner/graph.yml": "title: inner\nfunctions:\n  - node_file: graph.yml\n"})
    with pytest.raises(GraphError) as caught:
        load_app(root)
    (problem,) = caught.value.problems
    assert problem.file == "sub/inner/graph.yml" and problem.line == 3
    assert "contains itself" in problem.message
