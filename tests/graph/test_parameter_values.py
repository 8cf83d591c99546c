"""Parameter values from graph.yml and --param overrides: given, typed, well-formed."""

from __future__ import annotations

from patterns.graph import MISSING

from .conftest import ENRICH, AppFolder, simple

REQUIRED = ENRICH.replace("default=100", "").replace(", )", ")")


def test_required_parameter_without_value(app: AppFolder) -> None:
    simple(app, enrich=REQUIRED)
    problem = app.needs()
    assert (problem.file, problem.line, problem.node) == ("graph.yml", 3, "enrich.py")
    assert "'limit'" in problem.message
    assert problem.fix == (
        "add `parameter_values: {limit: ...}` to the function in graph.yml "
        "or pass `--param limit=VALUE`"
    )


def test_required_parameter_given_by_values_or_overrides(app: AppFolder) -> None:
    simple(app, "    parameter_values:\n      limit: 7\n", enrich=REQUIRED)
    assert app.load().nodes[0].parameter_values == {"limit": 7}
    assert app.load({"limit": "9"}).nodes[0].parameter_values == {"limit": "9"}
    node_id = app.load().nodes[0].id
    assert app.load({f"{node_id}.limit": "11", "limit": "9"}).nodes[0].parameter_values == {
        "limit": "11"
    }
    decl = app.load().nodes[0].interface.parameter("limit")
    assert decl is not None and decl.default is MISSING and decl.required


def test_parameter_values_of_the_wrong_type(app: AppFolder) -> None:
    simple(app, "    parameter_values:\n      limit: lots\n")
    problem = app.needs()
    assert (problem.file, problem.line, problem.node) == ("graph.yml", 5, "enrich.py")
    assert "'limit'" in problem.message and "'lots'" in problem.message


def test_override_of_the_wrong_type(app: AppFolder) -> None:
    simple(app)
    problem = app.problem({"limit": "many"})  # the command line's mistake: an error
    assert (problem.file, problem.line, problem.node) == ("--param", None, "enrich.py")
    assert "'many'" in problem.message


def test_overrides_naming_nothing(app: AppFolder) -> None:
    simple(app)
    problems = app.problems({"limt": "1", "nosuchid.limit": "2"})
    assert [p.file for p in problems] == ["--param", "--param"]
    text = " ".join(p.message + " " + (p.fix or "") for p in problems)
    assert "did you mean 'limit'?" in text and "nosuchid" in text


def test_references_are_checked_for_syntax_only(app: AppFolder) -> None:
    simple(app, '    parameter_values:\n      limit: "${{ secret_limit }}"\n')
    assert app.load().nodes[0].parameter_values["limit"] == "${{ secret_limit }}"
    simple(app, '    parameter_values:\n      limit: "${{ secret limit }}"\n')
    problem = app.needs()
    assert problem.line == 5 and "malformed reference" in problem.message


def test_parameter_value_for_an_undeclared_parameter(app: AppFolder) -> None:
    simple(app, "    parameter_values:\n      limt: 3\n")
    problem = app.needs()
    assert (problem.line, problem.node) == (5, "enrich.py")
    assert problem.fix == "did you mean 'limit'?"
