"""patterns.testing: users' own unit tests of nodes."""

from __future__ import annotations

from pathlib import Path

from patterns.testing import run_node
from tests.conftest import write_app


def test_failure_is_reported_not_raised(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"n.py": """
        from patterns import Parameter, Table
        limit = Parameter("limit", type=int, default=1)
        rows = Table("src").read()
        Table("dst", "w").append(rows[:limit])
        raise ValueError(f"saw {len(rows)}")
    """}, ["src", "dst"])
    result = run_node(app, "n.py", inputs={"src": [{"v": 1}, {"v": 2}]}, params={"limit": 2})
    assert not result.ok
    assert result.error.startswith("ValueError: saw 2")
    assert "n.py" in result.traceback
    assert result.outputs["dst"] == []          # rolled back with the failed run
    assert not (app / ".patterns").exists()     # the app's own store is untouched
