"""Fuzzing the loader: random and structure-aware mutations of a valid graph.yml, its Python
node file and its SQL template. Loading either succeeds or raises a GraphError whose every
problem names a file and says something; no other exception ever escapes."""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patterns.errors import GraphError
from patterns.graph.loader import load_app

pytestmark = pytest.mark.timeout(600)

GRAPH: dict[str, Any] = {
    "title": "Fuzzed app",
    "settings": {"time_limit_seconds": 60, "retries": {"count": 1, "backoff_seconds": 1}},
    "functions": [
        {"node_file": "enrich.py", "id": "enrich01", "trigger": "*/5 * * * *",
         "inputs": {"messages": "messages"}, "parameter_values": {"limit": 5}},
        {"node_file": "report.sql", "id": "report01"},
        {"webhook": "messages", "id": "hook0001", "settings": {"max_body_bytes": 1000}},
    ],
    "stores": [{"table": "messages"}, {"table": "enriched"}, {"table": "output_table"}],
}

PYTHON = textwrap.dedent("""
    from patterns import Table, Parameter, State
    messages = Table("messages")
    enriched = Table("enriched", "w")
    limit = Parameter("limit", type=int, default=100)
    state = State()
    for record in messages.as_stream().consume_records():
        enriched.append({"text": record["text"][:limit]})
""")

SQL = "select * from {{ Table('enriched') }} where n < {{ Parameter('n', type=int, default=3) }}\n"

#: What YAML, Python and Jinja make of a text: the characters that change structure most.
TOKENS = ["&a ", "*a", "<<: *a", "!!int ", "!!str ", "!!binary ", "!!python/name:os.system",
          ": ", "- ", "[", "]", "{", "}", ",", "#", "'", '"', "\n", "\t", "  ", "\x00", "\ud800",
          "{{", "}}", "{%", "%}", "for x in [1]*99999999", "(", ")", "\\", "…", "\ufeff",
          "node_file: ", "../", "/etc/passwd", "Table(", "Parameter(", "1e400", "~"]

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                    st.sampled_from(["a.py", "x.sql", "../up.py", "graph.yml", "manual", "",
                                     "* * * * *", "enrich.py", "messages"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


def load_files(files: dict[str, str | bytes]) -> None:
    """Write the app and load it; only a GraphError with real problems may come out."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "app"
        root.mkdir()
        for name, content in files.items():
            data = content if isinstance(content, bytes) else \
                content.encode("utf-8", "surrogatepass")
            (root / name).write_bytes(data)
        try:
            load_app(root)
        except GraphError as error:
            assert error.problems
            for problem in error.problems:
                assert problem.file and problem.message.strip(), problem
                assert "Traceback" not in problem.message


def files_with(graph: str | bytes | None = None, python: str | bytes | None = None,
               sql: str | bytes | None = None) -> dict[str, str | bytes]:
    dumped = yaml.safe_dump(GRAPH, sort_keys=False)
    return {"graph.yml": dumped if graph is None else graph,
            "enrich.py": PYTHON if python is None else python,
            "report.sql": SQL if sql is None else sql}


@st.composite
def mutated_text(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few tokens inserted, characters deleted or lines duplicated."""
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "duplicate", "random"]))
        if action == "insert":
            text = text[:at] + draw(st.sampled_from(TOKENS)) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)):]
        elif action == "duplicate":
            line_start = text.rfind("\n", 0, at) + 1
            line_end = text.find("\n", at)
            line = text[line_start:line_end if line_end >= 0 else len(text)]
            text = text[:line_start] + line * draw(st.integers(2, 50)) + text[line_start:]
        else:
            text = text[:at] + draw(st.text(max_size=10)) + text[at:]
    return text


@st.composite
def mutated_graph(draw: st.DrawFn) -> Any:
    """GRAPH with values replaced, keys removed or added, at random paths."""
    doc: Any = yaml.safe_load(yaml.safe_dump(GRAPH))
    for _ in range(draw(st.integers(1, 4))):
        node = doc
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node, key=str) if isinstance(node, dict)
                                       else list(range(len(node)))))
            child = node[key]
            if not isinstance(child, (dict, list)) or not child:
                break
            node = child
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node, key=str)))
            action = draw(st.sampled_from(["replace", "remove", "add"]))
            if action == "replace":
                node[key] = draw(VALUES)
            elif action == "remove":
                del node[key]
            else:
                node[draw(st.text(max_size=12))] = draw(VALUES)
        elif isinstance(node, list) and node:
            node[draw(st.integers(0, len(node) - 1))] = draw(VALUES)
    return doc


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_as_graph_yml(data: bytes) -> None:
    load_files(files_with(graph=data))


@FUZZ
@given(mutated_graph())
def test_structure_aware_mutations_of_graph_yml(doc: Any) -> None:
    load_files(files_with(graph=yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)))


@FUZZ
@given(mutated_text(yaml.safe_dump(GRAPH, sort_keys=False)))
def test_textual_mutations_of_graph_yml(text: str) -> None:
    load_files(files_with(graph=text))


@FUZZ
@given(mutated_text(PYTHON))
def test_mutations_of_a_python_node_file(source: str) -> None:
    load_files(files_with(python=source))


@FUZZ
@given(mutated_text(SQL))
def test_mutations_of_a_sql_template(source: str) -> None:
    load_files(files_with(sql=source))


@FUZZ
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_random_bytes_as_node_files(python: bytes, sql: bytes) -> None:
    load_files(files_with(python=python, sql=sql))
