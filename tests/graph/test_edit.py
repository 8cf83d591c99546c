"""Editing graph.yml: the devkit's changes keep the user's comments, order and ids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from patterns.errors import ConfigError
from patterns.graph import (
    add_node,
    add_store,
    add_webhook,
    create_app,
    ensure_ids,
    load_app,
)

ID = re.compile(r"^[a-z0-9]{8}$")

COMMENTED = """\
# My pipeline: keep this comment
title: Chat   # the title
functions:
  - node_file: enrich.py   # enriches messages
    id: enr001
# trailing comment after functions

stores:
  - table: messages  # raw messages
# settings are below
settings:
  sql_dialect: duckdb
"""


def write_app(root: Path, graph: str, *files: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "graph.yml").write_text(graph, encoding="utf-8")
    for name in files:
        (root / name).write_text("", encoding="utf-8")
    return root


def test_create_app_makes_a_loadable_app(tmp_path: Path) -> None:
    graph_file = create_app(tmp_path / "chat", title="Chat: the app")
    assert graph_file == tmp_path / "chat" / "graph.yml"
    text = graph_file.read_text()
    assert "# settings:" in text
    app = load_app(graph_file)
    assert (app.title, app.slug, app.nodes, app.stores) == ("Chat: the app", "chat-the-app", (), ())
    assert load_app(create_app(tmp_path / "plain")).title == "plain"


def test_create_app_refuses_an_existing_app(tmp_path: Path) -> None:
    create_app(tmp_path / "a")
    with pytest.raises(ConfigError, match="already exists"):
        create_app(tmp_path / "a")


def test_a_new_app_grows_with_the_devkit(tmp_path: Path) -> None:
    root = tmp_path / "app"
    create_app(root, "App")
    (root / "enrich.py").write_text(
        'from patterns import Table\nt = Table("messages")\nw = Table("out", "w")\n'
    )
    node_id = add_node(root, "enrich.py", trigger="*/5 * * * *")
    add_store(root, "messages")
    add_store(root, "out")
    hook_id = add_webhook(root, "messages")
    text = (root / "graph.yml").read_text()
    assert text.index("- node_file: enrich.py") < text.index("# settings:")
    assert text.index("- table: out") < text.index("# settings:")
    app = load_app(root)
    assert [n.id for n in app.nodes] == [node_id, hook_id]
    assert ID.match(node_id) and ID.match(hook_id)
    assert app.nodes[0].trigger == "*/5 * * * *"
    assert [s.name for s in app.stores] == ["messages", "out"]
    assert app.downstream(app.nodes[1]) == (app.nodes[0],)


def test_edits_keep_comments_order_and_indentation(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app", COMMENTED, "enrich.py", "summary.py")
    node_id = add_node(root, "summary.py")
    add_store(root, "summaries")
    text = (root / "graph.yml").read_text()
    for comment in [
        "# My pipeline: keep this comment",
        "title: Chat   # the title",
        "  - node_file: enrich.py   # enriches messages",
        "  - table: messages  # raw messages",
    ]:
        assert comment in text
    assert text.index(f"  - node_file: summary.py\n    id: {node_id}") < text.index(
        "# trailing comment after functions"
    )
    assert text.index("  - table: summaries") < text.index("# settings are below")
    assert text.index("# settings are below") < text.index("settings:\n  sql_dialect: duckdb")


def test_edits_follow_a_file_with_unindented_lists(tmp_path: Path) -> None:
    root = write_app(
        tmp_path / "app", "title: x\nfunctions:\n- node_file: a.py\n  id: aaa111\n", "a.py"
    )
    add_node(root, "b.py", id="bbb222")
    assert (root / "graph.yml").read_text().endswith("- node_file: b.py\n  id: bbb222\n")


def test_add_node_errors(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app", COMMENTED, "enrich.py")
    before = (root / "graph.yml").read_text()
    with pytest.raises(ConfigError, match="already a node"):
        add_node(root, "enrich.py")
    with pytest.raises(ConfigError, match=r"\.py or \.sql"):
        add_node(root, "notes.txt")
    with pytest.raises(ConfigError, match="already used"):
        add_node(root, "other.py", id="enr001")
    with pytest.raises(ConfigError, match="lowercase"):
        add_node(root, "other.py", id="Other")
    with pytest.raises(ConfigError, match="cron"):
        add_node(root, "other.py", trigger="often")
    with pytest.raises(ConfigError, match="patterns create app"):
        add_node(tmp_path / "nowhere", "a.py")
    assert (root / "graph.yml").read_text() == before


def test_add_store_and_webhook_errors(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app", COMMENTED, "enrich.py")
    with pytest.raises(ConfigError, match="already exists"):
        add_store(root, "messages")
    add_webhook(root, "messages")
    with pytest.raises(ConfigError, match="already has a webhook"):
        add_webhook(root, "messages")
    assert (root / "graph.yml").read_text().count("- table: messages") == 1


def test_ensure_ids_writes_the_ids_the_loader_derives(tmp_path: Path) -> None:
    graph = """\
title: x
functions:
  - node_file: a.py   # first
    trigger: manual
  - node_file: b.py
    id: bbb222
  - webhook: hooks
  - uses: acme/alert@v1
  - uses: acme/alert@v1
stores:
  - table: hooks
"""
    root = write_app(tmp_path / "app", graph, "a.py", "b.py")
    alert = root / "components" / "acme" / "alert"
    alert.mkdir(parents=True)
    (alert / "graph.yml").write_text("slug: alert\nversion: 1.0.0\nfunctions: []\n")
    before = [n.id for n in load_app(root).nodes]
    added = ensure_ids(root)
    assert len(added) == 4 and all(ID.match(i) for i in added)
    text = (root / "graph.yml").read_text()
    assert f"  - node_file: a.py   # first\n    id: {added[0]}\n    trigger: manual" in text
    assert [n.id for n in load_app(root).nodes] == before
    assert ensure_ids(root) == []
