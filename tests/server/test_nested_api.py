"""Under `patterns serve` (nodes in the sandbox), a component shows as one node in the API and
the Studio's graph (its members listed under it), triggering it runs its nodes, and what they write wakes the nodes
downstream across the boundary."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

APPS = Path(__file__).parent.parent / "apps"
SLUG = "customers-components"


def test_a_component_is_one_node_that_runs_its_members(tmp_path: Path, serve: Any) -> None:
    root = Path(shutil.copytree(APPS / "original_components", tmp_path / "app"))
    server = serve(root)
    nodes = server.get(f"/apps/{SLUG}/nodes")
    assert [n["id"] for n in nodes] == ["calendar", "importer", "dedupe", "exporter",
                                        "greeting", "summary"]
    importer = nodes[1]
    assert importer["kind"] == "component" and len(importer["members"]) == 1
    assert importer["writes"] == ["customers_raw"]
    assert {p["name"] for p in importer["parameters"]} == {"path", "format"}
    graph = server.get(f"/apps/{SLUG}/graph")  # (members too: the canvas expands a component)
    assert [n["id"] for n in graph["nodes"] if n["parent"] is None] == [n["id"] for n in nodes]
    assert [n["id"] for n in graph["nodes"] if n["parent"] == "importer"] == \
        importer["members"]
    assert server.get(f"/apps/{SLUG}/nodes/{importer['members'][0]}")["title"] == \
        "file-import / import_file"
    response = server.post(f"/apps/{SLUG}/nodes/importer/trigger")
    assert response.status_code == 202, response.text
    server.wait_for(lambda: len(server.rows(SLUG, "greetings")) == 2, what="greetings")
    customers = {r["email"]: r["name"] for r in server.rows(SLUG, "customers")}
    assert customers == {"ada@example.com": "Ada Lovelace", "bob@example.com": "Bob"}
    # (the greeting's rows can be read before the component's run record reaches the list:
    # downstream runs start on the member's commit)
    server.wait_for(lambda: (server.get(f"/apps/{SLUG}/nodes")[1]["last_run"] or {}).get(
        "status") == "succeeded", what="the component's run succeeded")
    listed = {n["id"]: n for n in server.get(f"/apps/{SLUG}/nodes")}
    assert listed["greeting"]["last_run"]["node_title"] == "greeting / greet"
