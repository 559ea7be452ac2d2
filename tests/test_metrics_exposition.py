"""`GET /metrics` on the real service: scraped with prometheus-client's own parser, its traffic
figures equal the read API's for the same calls; the cardinality cap folds the quietest label sets
into one '(other)' set; a project-bound key sees only its project and no service-wide health."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import make_call
from tests.service_support import Running, service_settings, start_in_thread

RANGE = {"start": "2025-11-03T00:00:00Z", "end": "2025-11-04T00:00:00Z"}


@pytest.fixture
def capped(store: Path, tmp_path: Path) -> Iterator[Running]:
    settings = service_settings(store, tmp_path / "home")
    settings.metrics.max_series = 2
    settings.metrics.cache_s = 0
    yield from start_in_thread(settings)


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def _seed(svc: Running) -> None:
    calls = [
        make_call(team="search", model="gpt-4o", input_tokens=1000, cache_read_tokens=500, cache_write_5m_tokens=100,
                  output_tokens=100, latency_ms=400, ttft_ms=200),
        make_call(team="search", model="gpt-4o", input_tokens=2000, output_tokens=300, latency_ms=2500, ttft_ms=900),
        make_call(team="search", model="gpt-4o-mini", input_tokens=2000, output_tokens=50, latency_ms=700),
        make_call(team="ads", model="claude-sonnet-4-5", provider="anthropic", input_tokens=3000,
                  cache_read_tokens=2000, output_tokens=300, reasoning_tokens=100, ts="2025-11-03T11:45:00Z"),
        make_call(team="ads", model="gpt-4o", status="error", input_tokens=10, output_tokens=0, latency_ms=None,
                  ttft_ms=None),
    ]
    with svc.client() as http:
        assert http.post("/v1/events", json=calls).status_code == 200
        assert http.post("/v1/events", json=[{"model": "x"}]).status_code == 422
    svc.wait_flushed()


def test_metrics_match_the_read_api(capped: Running) -> None:
    svc = capped
    svc.state.settings.metrics.max_series = 100
    _seed(svc)
    with svc.client() as http:
        scrape = http.get("/metrics")
        assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
        samples = _samples(scrape.text)
        by_model = {r["key"]: r for r in http.get("/v1/usage", params={**RANGE, "dimension": "model"}).json()["rows"]}
        totals = http.get("/v1/totals", params=RANGE).json()["rows"][0]
        latency = {r["key"]: r for r in http.get("/v1/latency", params={**RANGE, "dimension": "model"}).json()["rows"]}

    cost: dict[str, float] = {}
    for labels, value in samples["llmledger_gen_ai_cost_usd_total"]:
        cost[labels["model"]] = cost.get(labels["model"], 0.0) + value
    assert set(cost) == set(by_model)
    for model, row in by_model.items():
        assert cost[model] == pytest.approx(float(Decimal(row["cost_usd"])), rel=1e-12, abs=0)
    assert sum(cost.values()) == pytest.approx(float(Decimal(totals["cost_usd"])), rel=1e-12)

    calls = {(labels["status"]): 0.0 for labels, _ in samples["llmledger_gen_ai_calls_total"]}
    for labels, value in samples["llmledger_gen_ai_calls_total"]:
        calls[labels["status"]] += value
    assert sum(calls.values()) == totals["calls"] and calls["error"] == totals["errors"] == 1

    tokens: dict[str, float] = {}
    for labels, value in samples["gen_ai_client_inference_usage_tokens_total"]:
        tokens[labels["gen_ai_token_type"]] = tokens.get(labels["gen_ai_token_type"], 0.0) + value
    assert tokens == {"input": totals["input_tokens"], "cache_read": totals["cache_read_tokens"],
                      "cache_write": totals["cache_write_tokens"], "output": totals["output_tokens"],
                      "reasoning": totals["reasoning_tokens"]}

    # histogram: the count of gpt-4o's successful calls and their cumulative buckets (0.5 s, 2.5 s)
    counts = [v for labels, v in samples["gen_ai_client_inference_duration_seconds_count"]
              if labels["model"] == "gpt-4o"]
    assert sum(counts) == latency["gpt-4o"]["calls"] == 2
    buckets = {labels["le"]: v for labels, v in samples["gen_ai_client_inference_duration_seconds_bucket"]
               if labels["model"] == "gpt-4o"}
    assert buckets["0.25"] == 0 and buckets["0.5"] == 1 and buckets["2.5"] == 2 and buckets["+Inf"] == 2
    sums = [v for labels, v in samples["gen_ai_client_inference_duration_seconds_sum"] if labels["model"] == "gpt-4o"]
    assert sum(sums) == pytest.approx(2.9)

    # service health: ingest counts by endpoint and reason, spool, lease
    events = {(lb["endpoint"], lb["outcome"], lb["reason"]): v for lb, v in samples["llmledger_ingest_events_total"]}
    assert events[("events", "accepted", "")] == 5 and events[("events", "rejected", "missing_timestamp")] == 1
    assert samples["llmledger_spool_max_bytes"][0][1] == svc.settings.service.spool_max_bytes
    assert any(lb["tag"] == "metrics:traffic" for lb, _ in samples["llmledger_warehouse_query_duration_seconds_count"])
    assert "llmledger_scheduler_lease_holder" in samples and "llmledger_flush_lag_seconds" in samples


def test_cardinality_cap_folds_the_rest_into_other(capped: Running) -> None:
    calls = [make_call(route=f"/r{i}", input_tokens=100 * (i + 1), output_tokens=10) for i in range(5)
             for _ in range(5 - i)]  # /r0 busiest (5 calls) … /r4 quietest (1 call)
    with capped.client() as http:
        assert http.post("/v1/events", json=calls).status_code == 200
        capped.wait_flushed()
        samples = _samples(http.get("/metrics").text)
    routes = {labels["route"]: v for labels, v in samples["llmledger_gen_ai_calls_total"]}
    assert routes == {"/r0": 5, "/r1": 4, "(other)": 3 + 2 + 1}
    other = [labels for labels, _ in samples["llmledger_gen_ai_cost_usd_total"] if labels["route"] == "(other)"]
    assert len(other) == 1 and set(other[0].values()) == {"(other)"}
    assert len(samples["llmledger_gen_ai_cost_usd_total"]) == 3


def test_metrics_need_a_read_key_and_respect_the_project(capped: Running) -> None:
    _seed(capped)
    with capped.client() as http:
        admin = http.post("/v1/keys", json={"scopes": ["admin"]}).json()["token"]
    with capped.client(admin) as http:
        read = http.post("/v1/keys", json={"scopes": ["read"], "project": "elsewhere"}).json()["token"]
        ingest = http.post("/v1/keys", json={"scopes": ["ingest"]}).json()["token"]
        assert http.get("/metrics").status_code == 200
    with capped.client() as http:
        assert http.get("/metrics").status_code == 401
    with capped.client(ingest) as http:
        assert http.get("/metrics").status_code == 403
    with capped.client(read) as http:
        scoped = _samples(http.get("/metrics").text)
    assert scoped.get("llmledger_gen_ai_calls_total", []) == []
    assert "llmledger_spool_bytes" not in scoped and "llmledger_ingest_events_total" not in scoped
    capped.state.settings.metrics.public = True  # the dedicated setting: a trusted scraper, no key
    with capped.client() as http:
        public = _samples(http.get("/metrics").text)
    assert sum(v for _, v in public["llmledger_gen_ai_calls_total"]) == 5 and "llmledger_spool_bytes" in public
