"""`patterns component add|list` as a user types them, and an app whose `uses:` resolves from
what was added (also in the OS sandbox, which must see the component's folder)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.cli.conftest import failed, ok, patterns

APPS = Path(__file__).parent.parent / "apps"
GREETING = APPS / "original_components" / "components" / "acme" / "greeting"

GRAPH = """title: Greeter
functions:
  - node_file: people.py
    id: people
  - uses: acme/greeting@v2
    id: greeter
    inputs:
      people: people
    parameter_values:
      salutation: Welcome
stores:
  - table: people
  - table: greetings
"""
PEOPLE = "from patterns import Table\nTable('people', 'w').append({'email': 'a@x', 'name': 'Ann'})\n"


def greeter_app(root: Path) -> Path:
    root.mkdir()
    (root / "graph.yml").write_text(GRAPH)
    (root / "people.py").write_text(PEOPLE)
    return root


def test_add_list_and_use_a_component(tmp_path: Path, patterns_home: Path) -> None:
    out = ok(patterns("component", "add", GREETING / "greeting.yml", "--org", "acme")).stdout
    assert "installed acme/greeting@2.0.4" in out and "uses: acme/greeting@v2" in out
    assert (patterns_home / "components/acme/greeting/2.0.4/greeting.yml").is_file()
    listed = json.loads(ok(patterns("component", "list", "--json")).stdout)
    mine = [c for c in listed if c["slug"] == "greeting"]
    assert mine and mine[0]["uses"] == "acme/greeting@v2" and mine[0]["tags"] == ["demo"]
    assert {"date-table", "file-import", "file-export", "http-json-import", "dedupe"} <= {
        c["slug"] for c in listed if c["org"] == "patterns"}
    root = greeter_app(tmp_path / "app")
    ok(patterns("run", root, "--sandbox"))
    shown = ok(patterns("table", "show", root, "greetings")).stdout
    assert "Welcome, Ann!" in shown


def test_add_twice_needs_force(tmp_path: Path, patterns_home: Path) -> None:
    ok(patterns("component", "add", GREETING, "--org", "acme"))
    failed(patterns("component", "add", GREETING, "--org", "acme"),
           "acme/greeting@2.0.4 is installed already", "--force")
    ok(patterns("component", "add", GREETING, "--org", "acme", "--force"))


def test_add_a_folder_that_is_no_component(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    failed(patterns("component", "add", tmp_path / "empty"), "holds no component manifest")


def test_run_of_an_app_using_a_missing_component_runs_the_rest_and_says_how_to_add_it(
        tmp_path: Path) -> None:
    root = greeter_app(tmp_path / "app")
    result = patterns("run", "--json", root)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    doc = json.loads(result.stdout)
    assert [r["node_id"] for r in doc["runs"]] == ["people"]  # the rest of the app runs
    (skipped,) = doc["skipped"]
    assert skipped["node"] == "greeter"
    assert "graph.yml:5 (node acme/greeting@v2): node greeter: component " \
           "`acme/greeting@v2` is not installed" in skipped["why"]
    assert "patterns component add PATH --org acme" in skipped["why"]


def test_app_folder_component_needs_no_install(tmp_path: Path) -> None:
    root = greeter_app(tmp_path / "app")
    shutil.copytree(GREETING, root / "components" / "acme" / "greeting")
    ok(patterns("run", root))
    assert "Welcome, Ann!" in ok(patterns("table", "show", root, "greetings")).stdout
