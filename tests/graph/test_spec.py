"""graph.yml keys and value types: unknown keys get a suggestion, settings are checked."""

from __future__ import annotations

from .conftest import AppFolder, simple


def test_unknown_function_key_is_a_warning_that_suggests_the_close_one(app: AppFolder) -> None:
    simple(app, '    trigers: "*/5 * * * *"\n')
    [warning] = app.warnings()
    assert (warning.file, warning.line, warning.node) == ("graph.yml", 4, "enrich.py")
    assert warning.message == "unknown key 'trigers' in function 'enrich.py' is ignored"
    assert warning.fix == "did you mean 'trigger'? (remove it if it is not a typo)"


def test_unknown_top_level_key_is_ignored_with_a_warning(app: AppFolder) -> None:
    simple(app)
    app.graph("title: x\nzzz: 1\n")
    [warning] = app.warnings()
    assert warning.line == 2 and "'zzz'" in warning.message
    assert warning.fix == "remove it (the original format ignored it too)"


def test_keys_of_the_original_format_load_silently(app: AppFolder) -> None:
    simple(app, "    tags: [crm]\n    version: 2.0.4\n    icon: star\n")
    text = (app.root / "graph.yml").read_text()
    app.graph("tags: [a, b]\nversion: 3\nicon: db\nicon_url: https://x.test/i.png\n" + text)
    assert app.warnings() == []
    assert app.load().nodes[0].id


def test_unknown_keys_in_store_and_settings(app: AppFolder) -> None:
    app.graph(
        """
        title: x
        stores:
          - table: a
            shema: {}
        settings:
          time_limit: 5
          retries: {count: 1, backof_seconds: 2}
        """
    )
    problems = app.problems()
    assert [(p.line, p.fix) for p in problems] == [
        (6, "did you mean 'time_limit_seconds'?"),
        (7, "did you mean 'backoff_seconds'?"),
    ]


def test_wrong_value_type(app: AppFolder) -> None:
    simple(app, "    inputs:\n      - messages\n")
    problem = app.problem()
    assert (problem.line, problem.node) == (4, "enrich.py")
    assert "'inputs'" in problem.message and "must be a mapping" in problem.message


def test_functions_must_be_a_list(app: AppFolder) -> None:
    app.graph("title: x\nfunctions:\n  node_file: a.py\n")
    problem = app.problem()
    assert problem.line == 2
    assert "must be a list" in problem.message


def test_settings_problems(app: AppFolder) -> None:
    simple(app)
    text = (app.root / "graph.yml").read_text()
    app.graph(
        text
        + "settings:\n"
        + "  time_limit_seconds: -5\n"
        + "  checkpoint_seconds: soon\n"
        + "  sql_dialect: mysql\n"
        + "  timezone: Mars/Olympus\n"
        + "  keep_versions: true\n"
    )
    problems = app.problems()
    assert [p.line for p in problems] == [9, 10, 11, 12, 13]
    assert "greater than 0" in problems[0].message
    assert "'postgres' or 'duckdb'" in problems[2].message
    assert "Mars/Olympus" in problems[3].message


def test_node_settings_override_app_settings(app: AppFolder) -> None:
    simple(app, "    settings:\n      time_limit_seconds: 60\n      retries: 2\n")
    text = (app.root / "graph.yml").read_text()
    app.graph(
        text
        + "settings:\n  retries: {count: 1, backoff_seconds: 3}\n  sql_dialect: duckdb\n"
        + "  webhook_headers: [X-Sig]\n"
    )
    loaded = app.load()
    node = loaded.nodes[0]
    assert loaded.settings.retries_count == 1 and loaded.settings.extra == {
        "webhook_headers": ["X-Sig"]
    }
    assert node.settings.time_limit_seconds == 60
    assert node.settings.retries_count == 2
    assert node.settings.retries_backoff_seconds == 3
    assert node.settings.sql_dialect == "duckdb"
    assert node.settings.extra == {"webhook_headers": ["X-Sig"]}
