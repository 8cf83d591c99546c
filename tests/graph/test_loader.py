"""load_app: a valid app loads whole; every problem is reported with file, line, node and fix."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from patterns.errors import ConfigError, GraphError
from patterns.graph import MISSING, load_app

from .conftest import ENRICH, AppFolder, simple


def test_simple_app_loads_with_interface_and_edges(app: AppFolder) -> None:
    simple(app)
    loaded = app.load()
    node = loaded.node("enrich.py")
    assert node.kind == "python"
    assert node.title == "enrich"
    assert node.file == (app.root / "enrich.py").resolve()
    assert node.line == 3
    assert [(t.port, t.mode) for t in node.interface.tables] == [
        ("messages", "r"),
        ("messages_enriched", "w"),
    ]
    assert node.interface.uses_state
    assert node.reads() == ("messages",)
    assert node.writes() == ("messages_enriched",)
    assert loaded.slug == "chat"
    assert loaded.settings.time_limit_seconds == 600


def test_missing_graph_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(GraphError) as caught:
        load_app(tmp_path)
    assert "patterns create app" in str(caught.value)
    assert caught.value.problems[0].file.endswith("graph.yml")


def test_graph_file_path_loads_like_its_folder(app: AppFolder) -> None:
    simple(app)
    assert load_app(app.root / "graph.yml").node("enrich.py").id == app.load().nodes[0].id


def test_yaml_syntax_error_has_its_line(app: AppFolder) -> None:
    app.graph("title: x\nfunctions:\n  - node_file: [a.py\nstores: []\n")
    problem = app.problem()
    assert problem.file == "graph.yml"
    assert problem.line == 4
    assert "YAML syntax error" in problem.message


def test_every_problem_is_reported_at_once(app: AppFolder) -> None:
    app.write("enrich.py", ENRICH + "other = Table(f'{1}')\n")
    app.graph(
        """
        title: x
        functions:
          - node_file: enrich.py
            trigger: often
            parameter_values: {limit: many}
          - node_file: gone.py
          - webhook: hooks
            colour: red
        stores:
          - table: messages
        settings:
          sql_dialect: oracle
        """
    )
    problems = app.problems()
    where = sorted((p.file, p.line) for p in problems)
    assert where == sorted(
        [
            ("graph.yml", 4),  # trigger
            ("graph.yml", 6),  # gone.py
            ("graph.yml", 7),  # hooks is not a store
            ("graph.yml", 12),  # sql_dialect
            ("enrich.py", 4),  # messages_enriched is not a store
            ("enrich.py", 7),  # f-string name
        ]
    )
    assert str(GraphError(problems)).count("\n") == len(problems) - 1
    # limit: many (line 5) makes enrich.py need configuration, colour (line 8) is a
    # warning: neither stops the app (see test_needs_configuration.py)


def test_duplicate_yaml_keys_are_problems(app: AppFolder) -> None:
    simple(app, "    trigger: manual\n    trigger: '* * * * *'\n")
    problem = app.problem()
    assert problem.line == 5 and "duplicate key 'trigger'" in problem.message


def test_node_lookup(app: AppFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    simple(app, "    id: enr1\n    title: Enrich messages\n")
    loaded = app.load()
    node = loaded.nodes[0]
    assert loaded.node("enr1") is node
    assert loaded.node("enrich.py") is node
    assert loaded.node(str(app.root / "enrich.py")) is node
    assert loaded.node("Enrich messages") is node
    monkeypatch.chdir(app.root.parent)
    assert loaded.node("app/enrich.py") is node
    with pytest.raises(ConfigError, match=r"enr1 \(enrich.py\)"):
        loaded.node("nope")
    assert loaded.store("messages").name == "messages"
    with pytest.raises(ConfigError, match="add `- table: nope`"):
        loaded.store("nope")


FULL_GRAPH = """
title: Full App
slug: full
description_file: README.md
requirements_file: requirements.txt
functions:
  - node_file: ingest.py
    id: ing001
    title: Ingest
    description_file: ingest.md
    trigger: "0 * * * *"
    outputs: {raw: events}
    parameter_values: {api_key: "${{ api_key }}", since: "2020-01-01"}
    display: {x: 10, y: 20}
    icon_url: https://example.com/i.png
    settings: {time_limit_seconds: 120}
  - node_file: daily.sql
    id: day001
    inputs: {events: events}
    outputs: {output_table: daily}
  - node_file: chart.json
    chart_input: daily
  - node_file: sub/graph.yml
    inputs: {rows: events}
  - webhook: hooks
    respond: true
    description: incoming hooks
  - uses: acme/slack-alert@v2
    inputs: {messages: daily}
    parameter_values: {channel: "#data", token: "${{ connection.slack }}"}
stores:
  - table: events
    id: st0001
    schema: {fields: [{name: x, type: Integer}]}
    display: {x: 1}
  - table: daily
  - stream: hooks
docs:
  - title: About
    markdown: "# Hello"
dashboards:
  - title: Main
    items: [{node: chart.json}]
exposes:
  inputs: [events]
schemas:
  Event: {fields: []}
settings:
  time_limit_seconds: 300
  checkpoint_seconds: 10
  retries: {count: 2, backoff_seconds: 5}
  sql_dialect: postgres
  keep_versions: 3
  timezone: Europe/Paris
  response_timeout_seconds: 20
  max_body_bytes: 1000000
  webhook_query: true
"""


def full_app(app: AppFolder) -> AppFolder:
    app.graph(FULL_GRAPH)
    app.write(
        "ingest.py",
        """
        from datetime import datetime
        import patterns as p

        raw = p.Table("raw", "w")
        key = p.Parameter("api_key")
        since = p.Parameter("since", type=datetime)
        """,
    )
    app.write("daily.sql", 'select day, count(*) from {{ Table("events") }} group by 1\n')
    app.write("chart.json", '{"mark": "bar"}\n')
    app.write("sub/graph.yml", "title: sub\n")
    app.write("components/acme/slack-alert/graph.yml", """
        slug: slack-alert
        version: 2.1.0
        exposes: {inputs: [messages], parameters: [channel, token]}
        functions:
          - node_file: alert.py
        """)
    app.write("components/acme/slack-alert/alert.py", """
        from patterns import Parameter, Table
        messages = Table("messages")
        channel = Parameter("channel")
        token = Parameter("token")
        """)
    return app


def test_every_key_of_the_format_loads(app: AppFolder) -> None:
    loaded = full_app(app).load()
    assert (loaded.title, loaded.slug) == ("Full App", "full")
    assert (loaded.description_file, loaded.requirements_file) == ("README.md", "requirements.txt")
    kinds = [n.kind for n in loaded.nodes]
    assert kinds == ["python", "sql", "chart", "subgraph", "webhook", "component", "python"]
    assert loaded.docs[0]["title"] == "About"
    assert loaded.dashboards[0]["items"] == [{"node": "chart.json"}]
    assert loaded.exposes == {"inputs": ["events"]}
    assert loaded.schemas == {"Event": {"fields": []}}
    assert [s.name for s in loaded.stores] == ["events", "daily", "hooks"]
    assert loaded.store("events").schema == {"fields": [{"name": "x", "type": "Integer"}]}
    assert loaded.settings.timezone == "Europe/Paris"
    assert loaded.settings.extra == {
        "response_timeout_seconds": 20,
        "max_body_bytes": 1000000,
        "webhook_query": True,
    }
    ingest = loaded.node("ing001")
    assert ingest.raw["icon_url"] == "https://example.com/i.png"
    assert ingest.raw["display"] == {"x": 10, "y": 20}
    assert ingest.settings.time_limit_seconds == 120
    assert ingest.settings.checkpoint_seconds == 10
    component = loaded.nodes[5]
    assert component.raw["uses"] == "acme/slack-alert@v2"
    assert component.title == "slack-alert"
    assert component.reads() == ("daily",)
    assert loaded.nodes[4].webhook_table == "hooks" and loaded.nodes[4].writes() == ("hooks",)


def test_graph_relations(app: AppFolder) -> None:
    loaded = full_app(app).load()
    ingest, daily, chart, sub, _hook, alert, alert_node = loaded.nodes
    assert alert.members == (alert_node.id,) and alert_node.parent == alert.id
    assert daily.reads() == ("events",) and daily.writes() == ("daily",)
    assert chart.reads() == ("daily",)
    assert [n.id for n in loaded.writers_of("events")] == ["ing001"]
    assert loaded.readers_of("events") == (daily, sub)
    assert loaded.downstream(ingest) == (daily, sub)
    assert loaded.downstream(daily) == (chart, alert, alert_node)
    edges = loaded.to_manifest()["edges"]
    assert {"from_node": "ing001", "store": "events", "to_node": "day001"} in edges
    assert len(edges) == 4


def test_legacy_stream_store_loads_as_a_table(app: AppFolder) -> None:
    app.graph("title: x\nstores:\n  - stream: events\n    id: s1\n")
    store = app.load().store("events")
    assert (store.name, store.id, store.line) == ("events", "s1", 3)


def test_defaults_for_title_and_slug(tmp_path: Path) -> None:
    folder = AppFolder(tmp_path / "My Pipeline")
    folder.graph("functions: []\n")
    loaded = folder.load()
    assert (loaded.title, loaded.slug) == ("My Pipeline", "my-pipeline")


def test_a_loaded_app_is_hashable_and_picklable(app: AppFolder) -> None:
    loaded = full_app(app).load()
    assert len(set(loaded.nodes)) == len(loaded.nodes)
    copied = pickle.loads(pickle.dumps(loaded))
    assert copied == loaded
    decl = copied.node("ing001").interface.parameter("api_key")
    assert decl is not None and decl.default is MISSING
    json.dumps(loaded.to_manifest())
