"""Bills a FinOps user would check line by line: each case was found wrong by trying it as a user
would (CLI ingest and reprice, the push API, an import) and is pinned here with its exact Decimals,
computed independently with `genai_prices.calc_price`.

The OTLP cases of the same review (Anthropic's uncached-only input declared by the producer, and
unreadable spans rejected alone) are in `test_otlp_conventions.py`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from genai_prices import Usage, calc_price

from collectors.runner import run_collector
from ingest.pipeline import Pipeline
from ingest.pricing import load_prices
from ingest.reprice import reprice_with_settings
from llmledger.service.keys import KeyScope
from llmledger.settings import PricingSettings, Settings
from tests.conftest import migrated_database
from tests.factories import frame, make_call
from tests.service_support import Running, service_settings, start_in_thread
from warehouse.client import Warehouse

AT = datetime(2026, 11, 20, 10, tzinfo=UTC)
TS = "2026-11-20T10:00:00Z"


def price(model: str, provider: str, context: dict[str, str] | None = None, **usage: int) -> Decimal:
    """What genai-prices itself charges (input tokens inclusive of cache, as ours)."""
    return calc_price(Usage(**usage), model, provider_id=provider, genai_request_timestamp=AT,
                      price_context=context).total_price


@pytest.fixture(scope="module")
def shared(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Warehouse, Pipeline]]:
    """One migrated database with the default prices for the pipeline cases (distinct event ids)."""
    settings = Settings(home=tmp_path_factory.mktemp("bills-shared") / "home", warehouse={"path": store})
    with migrated_database(settings) as wh, Pipeline(wh, settings) as pipeline:
        yield settings, wh, pipeline


def stored(wh: Warehouse, event_id: str, columns: str = "provider, model, cost_usd, unpriced") -> tuple[Any, ...]:
    return wh.query_rows(f"SELECT {columns} FROM calls WHERE event_id = {{e:String}}", {"e": event_id})[0]


GPT4O = price("gpt-4o", "openai", input_tokens=3000, cache_read_tokens=2048, output_tokens=500)


def test_reprice_keeps_the_price_of_gateway_style_names(shared: tuple[Settings, Warehouse, Pipeline]) -> None:
    """`openai/gpt-4o` without a provider ingests priced; a reprice with no price change must not
    re-read it as model `openai/openai/gpt-4o` and zero it."""
    settings, wh, pipeline = shared
    at = "2026-10-20T10:00:00Z"  # a month of its own: the reprice's totals cover these calls only
    records = [
        {"event_id": "gw-1", "ts": at, "model": "openai/gpt-4o", "input_tokens": 3000, "cache_read_tokens": 2048,
         "output_tokens": 500},
        {"event_id": "gw-2", "ts": at, "model": "anthropic/claude-sonnet-4-5", "input_tokens": 3000,
         "cache_read_tokens": 2048, "output_tokens": 500},
    ]
    pipeline.ingest_frame(frame(records), source="gateway")
    sonnet = price("claude-sonnet-4-5", "anthropic", input_tokens=3000, cache_read_tokens=2048, output_tokens=500)
    assert GPT4O == Decimal("0.00994")
    assert stored(wh, "gw-1") == ("openai", "gpt-4o", GPT4O, False)
    _, report = reprice_with_settings(wh, settings.pricing, since=datetime(2026, 10, 1, tzinfo=UTC),
                                      until=datetime(2026, 11, 1, tzinfo=UTC))
    assert report.renamed_models == {} and report.unpriced_after == 0
    assert report.cost_after_usd == report.cost_before_usd == GPT4O + sonnet
    assert stored(wh, "gw-1") == ("openai", "gpt-4o", GPT4O, False)
    assert stored(wh, "gw-2") == ("anthropic", "claude-sonnet-4-5", sonnet, False)


def test_provider_prefixed_model_with_its_provider_is_priced(shared: tuple[Settings, Warehouse, Pipeline]) -> None:
    _, wh, pipeline = shared
    pipeline.ingest_frame(frame([{"event_id": "pp-1", "ts": TS, "provider": "openai", "model": "openai/gpt-4o",
                                  "input_tokens": 3000, "cache_read_tokens": 2048, "output_tokens": 500}]),
                          source="api")
    assert stored(wh, "pp-1", "provider, model, model_raw, cost_usd, unpriced") == \
        ("openai", "gpt-4o", "openai/gpt-4o", GPT4O, False)
    # a prefix naming another provider is part of the id (OpenRouter's catalogue), not stripped
    pipeline.ingest_frame(frame([{"event_id": "pp-2", "ts": TS, "provider": "openrouter", "model": "openai/gpt-4o",
                                  "input_tokens": 1000, "output_tokens": 100}]), source="api")
    assert stored(wh, "pp-2", "provider, model") == ("openrouter", "openai/gpt-4o")


def _helicone_row(request_id: str, prompt: int, total: int | None, body: dict[str, Any] | None) -> dict[str, Any]:
    return {"request_id": request_id, "request_created_at": "2026-11-20T10:00:00.000Z", "provider": "OPENAI",
            "request_model": "gpt-4o", "response_model": "gpt-4o", "response_status": 200, "prompt_tokens": prompt,
            "prompt_cache_read_tokens": 2048, "prompt_cache_write_tokens": 0, "completion_tokens": 500,
            "total_tokens": total, "costUSD": 0.00994, "response_body": body}


def test_helicone_openai_prompt_count_in_either_convention(shared: tuple[Settings, Warehouse, Pipeline],
                                                           tmp_path: Path) -> None:
    """The same call (3000 input, 2048 cached, 500 output) as current Helicone stores it (prompt
    minus cached: 952), with and without the response body, and as older releases stored it."""
    settings, wh, _ = shared
    body = {"usage": {"prompt_tokens": 3000, "completion_tokens": 500, "prompt_tokens_details": {"cached_tokens": 2048}}}
    rows = [
        _helicone_row("excl-body", 952, 3500, body),
        _helicone_row("excl-total", 952, 3500, None),  # 952 + 2048 + 500 = total: cache left out
        _helicone_row("excl-unknown", 952, None, None),  # nothing to tell by: the current convention
        _helicone_row("incl-total", 3000, 3500, None),  # 3000 + 500 = total: cache already in
    ]
    path = tmp_path / "helicone.json"
    path.write_text(json.dumps({"data": rows}, indent=1))
    report = run_collector("helicone", settings, wh, path=path)
    assert report.ok and (report.written, report.dead) == (4, 0)
    for request_id in ("excl-body", "excl-total", "excl-unknown", "incl-total"):
        assert stored(wh, request_id, "input_tokens, cache_read_tokens, cost_usd") == (3000, 2048, GPT4O), request_id


def test_anthropic_batch_tier_is_priced_as_batch(shared: tuple[Settings, Warehouse, Pipeline]) -> None:
    """Message Batches results carry `usage.service_tier: "batch"`; a record may say so itself."""
    _, wh, pipeline = shared
    native = {"event_id": "b-native", "ts": TS, "provider": "anthropic", "model": "claude-sonnet-4-5",
              "usage": {"input_tokens": 1000, "output_tokens": 500, "service_tier": "batch"}}
    record = {"event_id": "b-record", "ts": TS, "provider": "anthropic", "model": "claude-sonnet-4-5",
              "service_tier": "batch", "input_tokens": 1000, "output_tokens": 500}
    pipeline.ingest_frame(frame([native]), source="api")
    pipeline.ingest_frame(frame([record]), source="api")
    batch = price("claude-sonnet-4-5", "anthropic", {"processing": "batch"}, input_tokens=1000, output_tokens=500)
    assert batch == Decimal("0.00525")  # half the standard $0.0105
    for event_id in ("b-native", "b-record"):
        assert stored(wh, event_id, "is_batch, service_tier, cost_usd, batch_discount_usd") == \
            (True, "batch", batch, Decimal("0.00525"))


def test_model_discount_keeps_long_context_and_batch_prices(wh: Warehouse, settings: Settings) -> None:
    """20% off Sonnet 4.x as a discount, not a flat price: the long-context tier ($6/$22.50 per M
    above 200k input) and the batch price are kept, each 20% lower; other models are untouched."""
    pricing = PricingSettings(discounts=[{"provider": "anthropic", "model": "claude-sonnet-4*", "discount": "0.2"},
                                         {"model": "claude-sonnet-4-5", "discount": "0.3", "provider": "openai"}],
                              provider_discounts={"anthropic": "0.05"})
    load_prices(wh, pricing)
    with Pipeline(wh, settings.model_copy(update={"pricing": pricing})) as pipeline:
        pipeline.ingest_frame(frame([
            make_call(event_id="d-long", ts=TS, provider="anthropic", model="claude-sonnet-4-5",
                      input_tokens=300_000, output_tokens=1000),
            make_call(event_id="d-batch", ts=TS, provider="anthropic", model="claude-sonnet-4-5",
                      input_tokens=300_000, output_tokens=1000, is_batch=True),
            make_call(event_id="d-haiku", ts=TS, provider="anthropic", model="claude-haiku-4-5",
                      input_tokens=1000, output_tokens=100),
        ]), source="api")
    long = price("claude-sonnet-4-5", "anthropic", input_tokens=300_000, output_tokens=1000)
    batch = price("claude-sonnet-4-5", "anthropic", {"processing": "batch"}, input_tokens=300_000, output_tokens=1000)
    haiku = price("claude-haiku-4-5", "anthropic", input_tokens=1000, output_tokens=100)
    assert (long, batch) == (Decimal("1.8225"), Decimal("0.91125"))
    assert stored(wh, "d-long", "cost_usd, price_source") == (Decimal("1.458"), "genai-prices -20%")
    assert stored(wh, "d-long", "cost_usd")[0] == long * Decimal("0.8")
    assert stored(wh, "d-batch", "cost_usd")[0] == batch * Decimal("0.8") == Decimal("0.729")
    # the provider-wide 5% still applies to the models no discount entry names
    assert stored(wh, "d-haiku", "cost_usd, price_source") == (haiku * Decimal("0.95"), "genai-prices -5%")


def test_cross_project_event_id_collision_keeps_both_calls(shared: tuple[Settings, Warehouse, Pipeline]) -> None:
    _, wh, pipeline = shared
    a = make_call(event_id="pa-1", ts=TS, project="A", model="gpt-4o", input_tokens=3000, cache_read_tokens=2048,
                  output_tokens=500)
    b = make_call(event_id="pa-1", ts=TS, project="B", model="gpt-4o-mini", input_tokens=1000, output_tokens=100)
    assert pipeline.ingest_frame(frame([a]), source="api").written == 1
    assert pipeline.ingest_frame(frame([b]), source="api").written == 1
    # a resend of B's call is still a duplicate within B
    assert pipeline.ingest_frame(frame([b]), source="api").duplicates == 1
    rows = wh.query_rows("SELECT project, model, cost_usd FROM calls WHERE event_id = 'pa-1' ORDER BY project")
    assert rows == [("A", "gpt-4o", GPT4O),
                    ("B", "gpt-4o-mini", price("gpt-4o-mini", "openai", input_tokens=1000, output_tokens=100))]


def test_claude_dated_snapshot_keeps_its_name(shared: tuple[Settings, Warehouse, Pipeline]) -> None:
    _, wh, pipeline = shared
    pipeline.ingest_frame(frame([make_call(event_id="haiku-35", ts=TS, provider="anthropic",
                                           model="claude-3-5-haiku-20241022", input_tokens=1000, output_tokens=500)]),
                          source="api")
    expected = price("claude-3-5-haiku-20241022", "anthropic", input_tokens=1000, output_tokens=500)
    assert expected == Decimal("0.0028")
    assert stored(wh, "haiku-35") == ("anthropic", "claude-3-5-haiku-20241022", expected, False)


def test_overlong_attribution_is_dead_lettered_alone(shared: tuple[Settings, Warehouse, Pipeline]) -> None:
    _, wh, pipeline = shared
    records = [make_call(event_id="long-user", ts=TS, user_id="u" * 200_000),
               make_call(event_id="long-route", ts=TS, route="/r" * 600),
               make_call(event_id="fine", ts=TS, user_id="u" * 256, route="/r" * 512)]
    result = pipeline.ingest_frame(frame(records), source="api")
    assert result.written == 1
    assert sorted((r.reason, r.detail) for r in result.rejections) == [
        ("field_too_long", "route has 1200 characters; at most 1024 are kept"),
        ("field_too_long", "user_id has 200000 characters; at most 256 are kept"),
    ]
    assert wh.query_rows("SELECT event_id, cost_usd FROM calls WHERE event_id LIKE 'long-%' OR event_id = 'fine'") \
        == [("fine", price("gpt-4o", "openai", input_tokens=1000, output_tokens=200))]


# ---- through the push API ------------------------------------------------------------------------


class Service:
    """A running service and its admin token (project-bound keys are made by some tests)."""

    def __init__(self, running: Running) -> None:
        self.running = running
        _, self.token = running.state.keys.create([KeyScope.ADMIN], name="tests")

    def client(self, token: str | None = None):  # noqa: ANN201
        return self.running.client(token or self.token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.running, name)


@pytest.fixture(scope="module")
def running(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    for svc in start_in_thread(service_settings(store, tmp_path_factory.mktemp("bills") / "home")):
        yield Service(svc)


def _cost(svc: Service, event_id: str) -> tuple[Any, ...]:
    return svc.rows("SELECT input_tokens, cache_read_tokens, output_tokens, cost_usd, unpriced FROM calls "
                    "WHERE event_id = {e:String}", {"e": event_id})[0]


def test_usage_never_shows_a_partial_sum_as_the_total(running: Service) -> None:
    calls = [make_call(event_id=f"cut-{i}", ts=TS, project="cut", user_id=f"user-{i:03d}", input_tokens=1000 + i)
             for i in range(12)]
    with running.client() as http:
        assert http.post("/v1/events", json=calls).status_code == 200
        running.wait_flushed()
        query = {"start": "2026-11-20", "end": "2026-11-21", "filter": "project:cut"}
        total = http.get("/v1/totals", params=query).json()["rows"][0]
        cut = http.get("/v1/usage", params={**query, "dimension": "user_id", "limit": 5}).json()["rows"]
        spend = http.get("/v1/usage", params={**query, "dimension": "user_id", "limit": 5, "measure": "cost_usd"}).json()
        assert http.get("/v1/usage", params={**query, "dimension": "user_id", "measure": "spend"}).status_code == 422
    assert spend["columns"] == ["key", "calls", "cost_usd", "keys"]
    assert spend["rows"] == [{k: r[k] for k in spend["columns"]} for r in cut]
    assert [r["key"] for r in cut] == ["user-011", "user-010", "user-009", "user-008", "user-007", "(others)"]
    assert cut[-1]["keys"] == 7 and cut[-1]["calls"] == 7
    assert sum(Decimal(r["cost_usd"]) for r in cut) == Decimal(total["cost_usd"]) == sum(
        price("gpt-4o", "openai", input_tokens=1000 + i, output_tokens=200) for i in range(12))


def test_another_projects_event_id_is_not_a_duplicate(running: Service) -> None:
    keys = running.state.keys
    _, a = keys.create([KeyScope.INGEST], project="tenant-a")
    _, b = keys.create([KeyScope.INGEST], project="tenant-b")
    call_a = make_call(event_id="pa-1", ts=TS, project=None, input_tokens=3000, cache_read_tokens=2048,
                       output_tokens=500)
    call_b = make_call(event_id="pa-1", ts=TS, project=None, model="gpt-4o-mini", input_tokens=1000,
                       output_tokens=100)
    with running.client(a) as http_a, running.client(b) as http_b:
        assert http_a.post("/v1/events", json=[call_a]).json()["accepted"] == 1
        running.wait_flushed()
        assert http_b.post("/v1/events", json=[call_b]).json() == {
            "accepted": 1, "rejected": 0, "errors": [], "unknown_fields": [], "tool_runs": 0}
        running.wait_flushed()
    rows = running.rows("SELECT project, model, cost_usd FROM calls WHERE event_id = 'pa-1' ORDER BY project")
    assert rows == [("tenant-a", "gpt-4o", GPT4O),
                    ("tenant-b", "gpt-4o-mini", price("gpt-4o-mini", "openai", input_tokens=1000, output_tokens=100))]


LITELLM = {
    "id": "chatcmpl-x", "call_type": "acompletion", "status": "success", "custom_llm_provider": "openai",
    "model": "gpt-4o", "startTime": 1795168800.0, "endTime": 1795168801.5, "completionStartTime": 1795168800.3,
    "prompt_tokens": 3000, "completion_tokens": 500, "response_cost": 0.00994,
    "metadata": {"usage_object": {"prompt_tokens": 3000, "completion_tokens": 500,
                                  "prompt_tokens_details": {"cached_tokens": 2048}}},
}


def test_litellm_payloads_are_validated_like_canonical_records(running: Service) -> None:
    cache_over_prompt = {**LITELLM, "litellm_call_id": "ll-over", "response_cost": 0.0239,
                         "metadata": {"usage_object": {"prompt_tokens": 18_851, "completion_tokens": 500,
                                                       "prompt_tokens_details": {"cached_tokens": 1_000_000}}}}
    bad_top_level = {**LITELLM, "litellm_call_id": "ll-top", "prompt_tokens": "lots", "completion_tokens": -4}
    ends_first = {**LITELLM, "litellm_call_id": "ll-time", "endTime": 1795168799.0}
    no_usage_bad_count = {**LITELLM, "litellm_call_id": "ll-str", "metadata": {}, "prompt_tokens": "3000"}
    fine = {**LITELLM, "litellm_call_id": "ll-ok"}
    with running.client() as http:
        answer = http.post("/v1/litellm", json=[cache_over_prompt, bad_top_level, ends_first, no_usage_bad_count,
                                                fine])
    assert answer.status_code == 422
    body = answer.json()
    assert body["accepted"] == 2
    assert {(e["index"], e["reason"]) for e in body["errors"]} == {
        (0, "cache_exceeds_input"), (2, "invalid_latency"), (3, "invalid_type")}
    running.wait_flushed()
    # the usage object wins over the payload's own copies, and the disagreement is flagged
    assert _cost(running, "litellm:ll-top") == (3000, 2048, 500, GPT4O, False)
    assert running.rows("SELECT tags['litellm.token_mismatch'] FROM calls WHERE event_id = 'litellm:ll-top'") == [
        ("prompt_tokens='lots' (usage: 3000); completion_tokens=-4 (usage: 500)",)]
    assert _cost(running, "litellm:ll-ok") == (3000, 2048, 500, GPT4O, False)


def test_nan_rejects_only_its_own_record(running: Service) -> None:
    events = b"[" + b",".join([
        orjson.dumps(make_call(event_id="nan-ok-1", ts=TS)),
        b'{"event_id": "nan-bad", "ts": "2026-11-20T10:00:00Z", "model": "gpt-4o", "input_tokens": NaN}',
        orjson.dumps(make_call(event_id="nan-ok-2", ts=TS, router_score=0.5)),
        b'{"event_id": "inf-bad", "ts": "2026-11-20T10:00:00Z", "model": "gpt-4o", "router_score": -Infinity}',
    ]) + b"]"
    litellm = b"[" + orjson.dumps({**LITELLM, "litellm_call_id": "ll-nan-ok"}) + b"," + \
        orjson.dumps({**LITELLM, "litellm_call_id": "ll-nan"}).replace(b'"response_cost":0.00994',
                                                                     b'"response_cost":NaN') + b"]"
    with running.client() as http:
        canonical = http.post("/v1/events", content=events, headers={"content-type": "application/json"})
        gateway = http.post("/v1/litellm", content=litellm, headers={"content-type": "application/json"})
    assert canonical.status_code == gateway.status_code == 422
    assert canonical.json()["accepted"] == 2 and gateway.json()["accepted"] == 1
    assert [(e["index"], e["reason"], e["detail"]) for e in canonical.json()["errors"]] == [
        (1, "invalid_type", "input_tokens is NaN: NaN and Infinity are not numbers here; only this record is rejected"),
        (3, "invalid_type",
         "router_score is -Infinity: NaN and Infinity are not numbers here; only this record is rejected")]
    assert [(e["index"], e["reason"]) for e in gateway.json()["errors"]] == [(1, "invalid_type")]
    running.wait_flushed()
    price_ok = price("gpt-4o", "openai", input_tokens=1000, output_tokens=200)
    assert running.rows("SELECT event_id, cost_usd FROM calls WHERE event_id IN ('nan-ok-1', 'nan-ok-2', "
                        "'nan-bad', 'inf-bad') ORDER BY event_id") == [("nan-ok-1", price_ok), ("nan-ok-2", price_ok)]
    assert _cost(running, "litellm:ll-nan-ok") == (3000, 2048, 500, GPT4O, False)
    (kept,) = running.rows("SELECT raw FROM dead_letters WHERE source = 'litellm' AND raw LIKE '%\"ll-nan\"%'")
    assert '"response_cost": NaN' in kept[0]  # the payload is kept as it was sent
