"""Schemathesis against the live service's OpenAPI schema: no generated request (valid or not,
on any endpoint) may get a 5xx. Bounded in examples so it stays a few seconds per endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.service_support import Running, service_settings, start_in_thread


@pytest.fixture(scope="module")
def fuzzed_service(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    yield from start_in_thread(service_settings(store, home, max_body_bytes=256 * 1024))


def test_no_server_errors(fuzzed_service: Running) -> None:
    # Driven with Hypothesis directly: schemathesis' pytest plug-in does not run under pytest 9.
    schema = schemathesis.openapi.from_url(f"{fuzzed_service.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case) -> None:  # noqa: ANN001
            response = case.call(base_url=fuzzed_service.url, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path} {case.query} -> {response.status_code} {response.text[:300]}")

        check()
    assert not failures, "\n".join(failures[:20])
