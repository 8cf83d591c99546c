"""Malformed requests to every endpoint, generated from the server's own OpenAPI document
(schemathesis): the server never answers with a 5xx, and keeps answering."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import Server, write_app
from tests.server.test_server import COUNT, GRAPH, SLOW

schemathesis = pytest.importorskip("schemathesis")


@pytest.mark.slow
def test_no_request_makes_the_server_fail(tmp_path: Path) -> None:
    from hypothesis import HealthCheck, Phase, given, settings

    root = write_app(tmp_path / "hooks", GRAPH, {"count.py": COUNT, "slow.py": SLOW})
    server = Server([root], env={**os.environ, "PATTERNS_HOME": str(tmp_path / "home")})
    try:
        auth = {"Authorization": f"Bearer {server.token}"}  # (tests/server/test_web_safety.py
        # sends what has no token)
        schema = schemathesis.openapi.from_url(server.api("/openapi.json"), headers=auth)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 20, "the OpenAPI document lost endpoints"
        failures: list[str] = []
        calls: list[int] = []
        def fuzz(operation: Any) -> None:
            @given(case=operation.as_strategy())
            @settings(max_examples=30, deadline=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            def call(case: Any) -> None:
                if case.path_parameters and "app" in case.path_parameters:
                    case.path_parameters["app"] = "hooks"  # the rest stays random
                response = case.call(base_url=server.url, headers=auth, timeout=30)
                calls.append(response.status_code)
                if response.status_code >= 500:
                    failures.append(f"{operation.method.upper()} {operation.path}: "
                                    f"{response.status_code} {response.text[:200]}")

            call()

        for operation in operations:
            fuzz(operation)
        assert not failures, "\n".join(failures[:10])
        assert len(calls) >= 5 * len(operations), "the fuzzer hardly sent anything"
        assert 401 not in calls and 403 not in calls, "the fuzzer's requests were refused"
        # ...and it still answers properly after all that.
        assert server.http.get(server.api("/apps"), timeout=30).status_code == 200
    finally:
        server.stop()
