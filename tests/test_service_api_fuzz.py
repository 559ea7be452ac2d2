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
    # maintenance operations (a demo month, re-pricing, reports, jobs) do real work for as long as it
    # takes: 25 random runs each would be a load test; their inputs are covered by their own tests
    operations = [op for op in (result.ok() for result in schema.get_all_operations())
                  if not op.definition.raw.get("x-llmledger-operator")]
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


def test_read_api_with_valid_ranges_never_errors(fuzzed_service: Running) -> None:
    """Random schemathesis dates rarely form a valid range, so the read queries themselves are
    driven here with valid ranges and arbitrary everything else."""
    import httpx
    from hypothesis import strategies as st

    from warehouse.queries.scope import DIMENSIONS
    from warehouse.queries.series import GRAINS, MEASURES

    seeded = [{"event_id": f"z{i}", "ts": f"2025-11-03T1{i % 10}:00:00Z", "model": "gpt-4o", "provider": "openai",
               "team": f"t{i % 3}", "input_tokens": 100 * i, "cache_read_tokens": 10 * i, "output_tokens": i,
               "tags": {"env": "prod" if i % 2 else "dev"}} for i in range(30)]
    with httpx.Client(base_url=fuzzed_service.url, timeout=30) as http:
        assert http.post("/v1/events", json=seeded).status_code == 200
        fuzzed_service.wait_flushed()
        statuses: list[int] = []
        words = st.one_of(st.sampled_from(sorted(DIMENSIONS) + ["tag.env", "tag.", "bogus"]), st.text(max_size=12))
        value = st.one_of(st.sampled_from(["t1", "prod", "gpt-4o"]), st.text(max_size=20))

        @given(path=st.sampled_from(["/v1/totals", "/v1/usage", "/v1/timeseries", "/v1/latency", "/v1/cache", "/v1/top"]),
               day=st.integers(1, 28), days=st.integers(1, 400),
               dimension=st.one_of(st.none(), st.sampled_from(sorted(DIMENSIONS)), st.text(max_size=8)),
               grain=st.one_of(st.none(), st.sampled_from(sorted(GRAINS))),
               measure=st.one_of(st.none(), st.sampled_from(sorted(MEASURES))),
               filters=st.lists(st.tuples(words, value).map(lambda t: f"{t[0]}:{t[1]}"), max_size=3),
               n=st.one_of(st.none(), st.integers(-3, 2000)))
        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(path, day, days, dimension, grain, measure, filters, n) -> None:  # noqa: ANN001
            params: dict[str, object] = {"start": f"2025-10-{day:02d}", "end": f"2025-{10 + days // 200}-28",
                                         "filter": filters}
            accepted = {"/v1/totals": (), "/v1/usage": ("dimension", "limit"),
                        "/v1/timeseries": ("grain", "measure", "dimension", "top"), "/v1/latency": ("dimension",),
                        "/v1/cache": ("grain", "dimension"), "/v1/top": ("dimension", "measure", "n")}[path]
            for key, val in (("dimension", dimension), ("grain", grain), ("measure", measure), ("limit", n),
                             ("top", n), ("n", n)):
                if val is not None and key in accepted:
                    params[key] = val
            response = http.get(path, params=params)
            assert response.status_code < 500, (path, params, response.text[:300])
            statuses.append(response.status_code)

        check()
        assert statuses.count(200) >= 25, statuses  # the queries themselves ran, not only validation
