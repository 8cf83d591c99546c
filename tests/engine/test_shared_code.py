"""Node files import the app's own modules: relative imports in a package, plain imports
otherwise; errors in a shared module point at that module."""

from __future__ import annotations

from typing import Any


def test_relative_imports_in_an_app_package(app_runner: Any) -> None:
    app = app_runner({
        "__init__.py": "",
        "common.py": "GREETING = 'hi'\n",
        "lib/__init__.py": "",
        "lib/helpers.py": "def shout(s):\n    return s.upper()\n",
        "node.py": """
            from patterns import Table
            from . import common
            from .lib.helpers import shout
            Table("out", "w").append({"v": shout(common.GREETING), "name": __name__})
        """,
    }, ["out"], functions=[{"node_file": "node.py", "id": "node0001"}])
    record = app.run_node("node0001")
    assert record.status == "succeeded", record.error
    assert app.rows("out")[0]["v"] == "HI" and app.rows("out")[0]["name"] == "__main__"


def test_plain_import_without_package(app_runner: Any) -> None:
    app = app_runner({
        "common.py": "VALUE = 41\n",
        "node.py": """
            from patterns import Table
            import common
            Table("out", "w").append({"v": common.VALUE + 1})
        """,
    }, ["out"], functions=[{"node_file": "node.py", "id": "node0001"}])
    assert app.run_node("node0001").status == "succeeded"
    assert app.rows("out")[0]["v"] == 42


def test_syntax_error_in_shared_module_points_at_it(app_runner: Any) -> None:
    app = app_runner({
        "__init__.py": "",
        "common.py": "x = 1\ndef broken(:\n    pass\n",
        "node.py": "from patterns import Table\nfrom . import common\nTable('out', 'w')\n",
    }, ["out"], functions=[{"node_file": "node.py", "id": "node0001"}])
    record = app.run_node("node0001")
    assert record.status == "failed"
    assert "SyntaxError" in record.error
    assert "common.py" in record.traceback and "line 2" in record.traceback
