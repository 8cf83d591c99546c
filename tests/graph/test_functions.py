"""One functions entry: exactly one source, a valid id, an existing node file, a valid trigger."""

from __future__ import annotations

import pytest

from .conftest import ENRICH, AppFolder, simple


@pytest.mark.parametrize(
    ("entry", "has"),
    [
        ("title: lonely", "none of them"),
        ("node_file: a.py\n    webhook: t", "node_file and webhook"),
    ],
)
def test_function_needs_exactly_one_source(app: AppFolder, entry: str, has: str) -> None:
    app.write("a.py", "")
    app.graph(f"title: x\nfunctions:\n  - {entry}\nstores:\n  - table: t\n")
    problem = app.problem()
    assert problem.line == 3
    assert has in problem.message


def test_node_id_must_be_lowercase_letters_and_digits(app: AppFolder) -> None:
    simple(app, "    id: Enrich_1\n")
    problem = app.problem()
    assert (problem.line, problem.node) == (4, "enrich.py")
    assert "Enrich_1" in problem.message


def test_missing_and_unsupported_node_files(app: AppFolder) -> None:
    app.graph(
        """
        title: x
        functions:
          - node_file: nothere.py
          - node_file: notes.txt
        """
    )
    missing, unsupported = app.problems()
    assert (missing.line, missing.node) == (3, "nothere.py")
    assert "does not exist" in missing.message
    assert missing.fix is not None and "create nothere.py" in missing.fix
    assert (unsupported.line, unsupported.node) == (4, "notes.txt")
    assert ".py" in (unsupported.fix or "")


@pytest.mark.parametrize("trigger", ["manual", "*/5 * * * *", "0 3 * * mon"])
def test_valid_triggers(app: AppFolder, trigger: str) -> None:
    simple(app, f'    trigger: "{trigger}"\n')
    assert app.load().nodes[0].trigger == trigger


def test_invalid_trigger_quotes_the_value_and_an_example(app: AppFolder) -> None:
    simple(app, "    trigger: every hour\n")
    problem = app.problem()
    assert (problem.line, problem.node) == (4, "enrich.py")
    assert "'every hour'" in problem.message
    assert "*/5 * * * *" in (problem.fix or "")


def test_python_syntax_error_is_a_problem_of_the_node_file(app: AppFolder) -> None:
    simple(app, enrich="x = 1\ndef broken(:\n")
    problem = app.problem()
    assert (problem.file, problem.line, problem.node) == ("enrich.py", 2, "enrich.py")


def test_non_literal_table_name(app: AppFolder) -> None:
    simple(app, enrich=ENRICH + 'name = "x"\nother = Table(name)\n')
    problem = app.problem()
    assert (problem.file, problem.line) == ("enrich.py", 8)
    assert "literal string" in problem.message


def test_ids_are_derived_stably_when_missing(app: AppFolder) -> None:
    simple(app)
    first = app.load().nodes[0].id
    assert len(first) == 8 and first.isalnum() and first == first.lower()
    assert app.load().nodes[0].id == first
    simple(app, "    id: abc123\n")
    assert app.load().nodes[0].id == "abc123"
