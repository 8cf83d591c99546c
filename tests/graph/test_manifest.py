"""Property: a generated valid app loads, and graph.yml -> manifest -> graph.yml -> manifest is stable.

Also: the edges of the manifest are exactly those the nodes' tables and port mappings imply,
and writing the derived ids into graph.yml changes no id.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from patterns.graph import ensure_ids, load_app

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
TRIGGERS = st.sampled_from([None, "manual", "*/5 * * * *", "0 3 * * *"])


@st.composite
def apps(draw: st.DrawFn) -> dict[str, Any]:
    """A valid app: stores, python nodes reading/writing them (some through port mappings)."""
    stores = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
    nodes = []
    for index in range(draw(st.integers(0, 4))):
        reads = draw(st.lists(st.sampled_from(stores), max_size=3, unique=True))
        writes = draw(
            st.lists(
                st.sampled_from([s for s in stores if s not in reads] or stores),
                max_size=2,
                unique=True,
            )
        )
        writes = [w for w in writes if w not in reads]
        mapped = draw(st.booleans())
        node: dict[str, Any] = {
            "file": f"node{index}.py",
            "reads": reads,
            "writes": writes,
            "mapped": mapped,
            "id": draw(st.none() | st.just(f"n{index}x")),
            "trigger": draw(TRIGGERS),
            "limit": draw(st.none() | st.integers(-1000, 1000)),
        }
        nodes.append(node)
    webhooks = draw(st.lists(st.sampled_from(stores), max_size=2, unique=True))
    app_settings = {
        "time_limit_seconds": draw(st.integers(1, 10_000)),
        "retries": {"count": draw(st.integers(0, 5)), "backoff_seconds": draw(st.integers(0, 60))},
        "sql_dialect": draw(st.sampled_from(["postgres", "duckdb"])),
        "keep_versions": draw(st.integers(1, 10)),
    }
    return {"stores": stores, "nodes": nodes, "webhooks": webhooks, "settings": app_settings}


def write_app(root: Path, app: dict[str, Any]) -> None:
    functions: list[dict[str, Any]] = []
    for node in app["nodes"]:
        port = (lambda s: f"p_{s}") if node["mapped"] else (lambda s: s)
        lines = ["from patterns import Table, Parameter", 'limit = Parameter("limit", type=int)']
        lines += [f'Table("{port(s)}")' for s in node["reads"]]
        lines += [f'Table("{port(s)}", "w")' for s in node["writes"]]
        (root / node["file"]).write_text("\n".join(lines) + "\n")
        entry: dict[str, Any] = {"node_file": node["file"]}
        if node["id"]:
            entry["id"] = node["id"]
        if node["trigger"]:
            entry["trigger"] = node["trigger"]
        if node["mapped"]:
            entry["inputs"] = {port(s): s for s in node["reads"]}
            entry["outputs"] = {port(s): s for s in node["writes"]}
        entry["parameter_values"] = {"limit": node["limit"] if node["limit"] is not None else 1}
        functions.append(entry)
    functions += [{"webhook": table} for table in app["webhooks"]]
    graph = {
        "title": "Generated",
        "functions": functions,
        "stores": [{"table": s} for s in app["stores"]],
        "settings": app["settings"],
    }
    (root / "graph.yml").write_text(yaml.safe_dump(graph, sort_keys=False))


def graph_from_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """graph.yml as the devkit would write it back from a manifest."""
    functions = []
    for node in manifest["nodes"]:
        source = {"node_file": node["file"]} if node["file"] else {"webhook": node["webhook_table"]}
        entry = {**source, "id": node["id"], "title": node["title"]}
        for key in ("trigger", "inputs", "outputs", "parameter_values"):
            if node[key]:
                entry[key] = node[key]
        functions.append(entry)
    s = manifest["settings"]
    return {
        "title": manifest["title"],
        "slug": manifest["slug"],
        "functions": functions,
        "stores": [{"table": store["name"]} for store in manifest["stores"]],
        "settings": {
            "time_limit_seconds": s["time_limit_seconds"],
            "checkpoint_seconds": s["checkpoint_seconds"],
            "retries": {
                "count": s["retries_count"],
                "backoff_seconds": s["retries_backoff_seconds"],
            },
            "sql_dialect": s["sql_dialect"],
            "keep_versions": s["keep_versions"],
            "timezone": s["timezone"],
        },
    }


def comparable(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest without what depends on the exact text (lines, raw entries)."""
    text = json.dumps(manifest)
    document: dict[str, Any] = json.loads(text)
    for node in document["nodes"]:
        del node["line"], node["raw"]
    for store in document["stores"]:
        del store["line"]
    return document


@settings(max_examples=60, deadline=None)
@given(apps())
def test_graph_manifest_round_trip(app: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_app(root, app)
        first = load_app(root).to_manifest()

        expected_edges = {
            (writer["file"], store, reader["file"])
            for writer in app["nodes"]
            for store in writer["writes"]
            for reader in app["nodes"]
            if store in reader["reads"]
        } | {
            (f"webhook {table}", table, reader["file"])
            for table in app["webhooks"]
            for reader in app["nodes"]
            if table in reader["reads"]
        }
        label = {n["id"]: n["file"] or f"webhook {n['webhook_table']}" for n in first["nodes"]}
        edges = {(label[e["from_node"]], e["store"], label[e["to_node"]]) for e in first["edges"]}
        assert edges == expected_edges

        (root / "graph.yml").write_text(yaml.safe_dump(graph_from_manifest(first)))
        second = load_app(root).to_manifest()
        assert comparable(second) == comparable(first)

        ensure_ids(root)
        assert [n["id"] for n in load_app(root).to_manifest()["nodes"]] == [
            n["id"] for n in first["nodes"]
        ]
