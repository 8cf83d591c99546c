"""Item 13: the docs example ``from sklearn.linear_model import LinearRegression`` runs
with no requirements file (the default node environment, built once with uv from the
configured index, cached); an import that fails says what to add to the requirements file.

The build downloads scikit-learn, scipy and friends once; it is cached across test sessions
in a shared folder (``$TMPDIR/patterns-test-envs``, keyed by this checkout's paths)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from patterns.engine.default_env import needs_default
from tests.conftest import AppRunner

FIT = {"graph.yml": """
    title: Linear fit
    functions:
      - node_file: make_points.py
      - node_file: fit.py
    stores:
      - table: points
      - table: fit
""", "make_points.py": """
    from patterns import Table
    Table("points", "w").append([{"x": x, "y": 2 * x + 1} for x in range(10)])
""", "fit.py": """
    from sklearn.linear_model import LinearRegression
    import numpy as np
    from patterns import Table

    rows = Table("points").read()
    X = np.array([[r["x"]] for r in rows])
    y = np.array([r["y"] for r in rows])
    model = LinearRegression().fit(X, y)
    Table("fit", "w").append({"slope": float(model.coef_[0]),
                              "intercept": float(model.intercept_)})
"""}


@pytest.fixture
def shared_envs(monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = Path(tempfile.gettempdir()) / "patterns-test-envs"
    monkeypatch.setenv("PATTERNS_ENVS", str(folder))
    return folder


@pytest.mark.timeout(1800)
def test_sklearn_example_runs_without_requirements_file(
        original_app: Callable[[dict[str, str]], AppRunner], shared_envs: Path) -> None:
    app = original_app(FIT)
    assert needs_default(app.root / "fit.py") and not needs_default(app.root / "make_points.py")
    result = app.run()
    assert [r.status for r in result.runs] == ["succeeded", "succeeded"], \
        [r.error for r in result.runs]
    [fit] = app.rows("fit")
    assert fit["slope"] == pytest.approx(2.0) and fit["intercept"] == pytest.approx(1.0)
    ready = list(shared_envs.glob("*/patterns-env.json"))
    assert ready, "the default environment is kept in the shared folder"
    # cached: a second run does not build again
    started = time.monotonic()
    record = app.run_node("fit")
    assert record.status == "succeeded", record.error
    assert time.monotonic() - started < 60
    assert list(shared_envs.glob("*/patterns-env.json")) == ready


def test_a_failed_import_names_the_package_and_the_line_to_add(
        original_app: Callable[[dict[str, str]], AppRunner]) -> None:
    app = original_app({"graph.yml": """
        title: Missing packages
        functions:
          - node_file: boost.py
          - node_file: vision.py
    """, "boost.py": "import lightgbm_patterns_test\n",
        "vision.py": "x = 1\nimport cv2\n"})
    record = app.run_node("boost")
    assert record.status == "failed"
    assert "No module named 'lightgbm_patterns_test'" in record.error
    assert "the line `lightgbm-patterns-test`" in record.error
    assert "requirements_file: requirements.txt" in record.error
    assert "boost.py, line 1" in record.error
    record = app.run_node("vision")
    assert "the package opencv-python is not installed" in record.error
    assert "vision.py, line 2" in record.error


def test_with_a_requirements_file_the_hint_names_it(
        original_app: Callable[[dict[str, str]], AppRunner]) -> None:
    app = original_app({"graph.yml": """
        title: Own requirements
        requirements_file: deps.txt
        functions:
          - node_file: node.py
    """, "deps.txt": "# nothing yet\n", "node.py": "import PIL\n"})
    record = app.run_node("node")
    assert record.status == "failed"
    assert "add the line `Pillow` to deps.txt" in record.error
