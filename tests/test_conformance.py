"""Token conformance per source and per convention: one call with cached, cache-write and reasoning
tokens in each source's own shape (OpenAI Chat Completions and Responses with the 2026
`cache_write_tokens`, Anthropic Messages with the 5-minute / 1-hour split, LiteLLM's payload, the
gateway imports), stored as canonical tokens and priced exactly as `genai_prices.calc_price`
prices them, to the last digit. Provider exports (OpenAI's Usage API with `input_cache_write_tokens`
/ `input_uncached_tokens` grouped by `service_tier`; Anthropic's analytics API) reconcile token for
token against the logged call. OTLP conventions and the real instrumentations are the same check in
tests/test_otlp_conventions.py and tests/test_instrumentations.py."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from genai_prices import Usage, calc_price

from collectors.runner import run_collector
from ingest.formats.litellm import litellm_batch
from ingest.formats.records import records_batch
from ingest.pipeline import Pipeline
from llmledger.settings import Settings
from tests.factories import frame, make_call, write_jsonl
from warehouse.client import Warehouse

TS = datetime(2025, 11, 3, 10, 0, tzinfo=UTC)
ISO = "2025-11-03T10:00:00.000Z"
# (input incl. cache, cache read, 5m write, 1h write, output incl. reasoning, reasoning)
OPENAI = (12000, 4096, 2048, 0, 900, 300)
ANTHROPIC = (12000, 4096, 1024, 1024, 900, 300)


def _priced(model: str, provider: str, tokens: tuple[int, ...], **context: str) -> Decimal:
    inp, read, w5, w1, out, reasoning = tokens
    usage = Usage(input_tokens=inp, cache_read_tokens=read, cache_write_tokens=w5 + w1, cache_write_1h_tokens=w1,
                  output_tokens=out, output_reasoning_tokens=reasoning)
    return calc_price(usage, model, provider_id=provider, genai_request_timestamp=TS,
                      price_context=context or None).total_price


def _stored(wh: Warehouse, event_id: str) -> tuple[tuple[int, ...], Decimal]:
    rows = wh.query_rows(
        "SELECT input_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens, "
        "reasoning_tokens, toString(cost_usd), unpriced FROM calls WHERE event_id = {e:String}", {"e": event_id})
    assert len(rows) == 1, f"{event_id}: {rows} (dead letters: {wh.query_rows('SELECT reason, detail FROM dead_letters')})"
    *tokens, cost, unpriced = rows[0]
    assert not unpriced
    return tuple(tokens), Decimal(cost)


def _check(wh: Warehouse, event_id: str, model: str, provider: str, tokens: tuple[int, ...]) -> None:
    stored, cost = _stored(wh, event_id)
    assert stored == tokens
    assert cost == _priced(model, provider, tokens)


# ---- push API record shapes (canonical fields and provider-native usage objects) ------------------

NATIVE = [
    pytest.param("openai", "gpt-5.6", {"input_tokens": 12000, "cache_read_tokens": 4096, "cache_write_5m_tokens": 2048,
                                       "output_tokens": 900, "reasoning_tokens": 300}, OPENAI, id="canonical fields"),
    pytest.param("openai", "gpt-5.6", {"usage": {
        "prompt_tokens": 12000, "completion_tokens": 900, "total_tokens": 12900,
        "prompt_tokens_details": {"cached_tokens": 4096, "cache_write_tokens": 2048},
        "completion_tokens_details": {"reasoning_tokens": 300}}}, OPENAI, id="openai chat completions usage"),
    pytest.param("openai", "gpt-5.6", {"usage": {
        "input_tokens": 12000, "input_tokens_details": {"cached_tokens": 4096, "cache_write_tokens": 2048},
        "output_tokens": 900, "output_tokens_details": {"reasoning_tokens": 300}, "total_tokens": 12900}},
        OPENAI, id="openai responses usage"),
    pytest.param("anthropic", "claude-sonnet-4-5", {"usage": {
        "input_tokens": 5856, "cache_read_input_tokens": 4096, "cache_creation_input_tokens": 2048,
        "cache_creation": {"ephemeral_5m_input_tokens": 1024, "ephemeral_1h_input_tokens": 1024},
        "output_tokens": 900, "output_tokens_details": {"thinking_tokens": 300}}}, ANTHROPIC,
        id="anthropic messages usage (input excludes cache)"),
    pytest.param("google", "gemini-2.5-pro", {"usage": {
        "promptTokenCount": 11000, "cachedContentTokenCount": 4096, "toolUsePromptTokenCount": 1000,
        "candidatesTokenCount": 600, "thoughtsTokenCount": 300}}, (12000, 4096, 0, 0, 900, 300),
        id="gemini usageMetadata (no cache-write count; thoughts added to candidates)"),
]


@pytest.mark.parametrize("provider,model,fields,expected", NATIVE)
def test_push_record_shapes(pipeline: Pipeline, wh: Warehouse, tmp_path: Path, provider: str, model: str,
                            fields: dict[str, Any], expected: tuple[int, ...]) -> None:
    call = make_call(provider=provider, model=model, ts=ISO, **{"input_tokens": None, "output_tokens": None, **fields})
    summary = pipeline.ingest_file(write_jsonl(tmp_path / "c.jsonl", [call]))
    assert summary.written == 1, summary
    _check(wh, call["event_id"], model, provider, expected)


# ---- LiteLLM's StandardLoggingPayload (proxy callbacks and our SDK logger → /v1/litellm) ----------

def _litellm_payload(call_id: str, provider: str, model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "litellm_call_id": call_id, "call_type": "acompletion", "startTime": TS.timestamp(),
            "endTime": TS.timestamp() + 2, "model": model, "custom_llm_provider": provider, "status": "success",
            "prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens"),
            "metadata": {"usage_object": usage}, "response_cost": 0.01}


LITELLM = [
    pytest.param("openai", "gpt-5.6", {
        "prompt_tokens": 12000, "completion_tokens": 900, "total_tokens": 12900,
        "prompt_tokens_details": {"cached_tokens": 4096, "cache_write_tokens": 2048},
        "completion_tokens_details": {"reasoning_tokens": 300}}, OPENAI, id="litellm openai"),
    pytest.param("anthropic", "claude-sonnet-4-5", {
        "prompt_tokens": 12000, "completion_tokens": 900, "total_tokens": 12900,
        "cache_read_input_tokens": 4096, "cache_creation_input_tokens": 2048,
        "prompt_tokens_details": {"cached_tokens": 4096, "cache_creation_tokens": 2048,
                                  "cache_creation_token_details": {"ephemeral_5m_input_tokens": 1024,
                                                                   "ephemeral_1h_input_tokens": 1024}},
        "completion_tokens_details": {"reasoning_tokens": 300}}, ANTHROPIC, id="litellm anthropic"),
]


@pytest.mark.parametrize("provider,model,usage,expected", LITELLM)
def test_litellm_payload(pipeline: Pipeline, wh: Warehouse, provider: str, model: str, usage: dict[str, Any],
                         expected: tuple[int, ...]) -> None:
    payloads = [_litellm_payload("c-1", provider, model, usage)]
    result = pipeline.ingest_batch(litellm_batch(payloads), source="litellm")
    assert result.written == 1, result
    _check(wh, "litellm:c-1", model, provider, expected)


# ---- gateway imports -------------------------------------------------------------------------------

def test_litellm_spend_logs(settings: Settings, wh: Warehouse, tmp_path: Path) -> None:
    def row(request_id: str, provider: str, model: str, details: dict[str, Any]) -> dict[str, Any]:
        return {"request_id": request_id, "call_type": "acompletion", "api_key": "k", "spend": 0.01,
                "prompt_tokens": 12000, "completion_tokens": 900, "total_tokens": 12900, "startTime": ISO,
                "endTime": "2025-11-03T10:00:02.000Z", "model": model, "custom_llm_provider": provider,
                "metadata": {"status": "success", "additional_usage_values": details}, "cache_hit": "False",
                "status": "success"}

    rows = [
        row("sl-oa", "openai", "gpt-5.6", {"prompt_tokens_details": {"cached_tokens": 4096, "cache_write_tokens": 2048},
                                           "completion_tokens_details": {"reasoning_tokens": 300}}),
        row("sl-an", "anthropic", "claude-sonnet-4-5", {
            "cache_read_input_tokens": 4096, "cache_creation_input_tokens": 2048,
            "prompt_tokens_details": {"cached_tokens": 4096, "cache_creation_token_details": {
                "ephemeral_5m_input_tokens": 1024, "ephemeral_1h_input_tokens": 1024}},
            "completion_tokens_details": {"reasoning_tokens": 300}}),
    ]
    path = tmp_path / "spend_logs.json"
    path.write_bytes(orjson.dumps(rows))
    report = run_collector("litellm-spend-logs", settings, wh, path=path)
    assert report.ok and report.dead == 0, report
    _check(wh, "sl-oa", "gpt-5.6", "openai", OPENAI)
    _check(wh, "sl-an", "claude-sonnet-4-5", "anthropic", ANTHROPIC)


def test_portkey(settings: Settings, wh: Warehouse, tmp_path: Path) -> None:
    def row(log_id: str, org: str, model: str, usage: dict[str, Any]) -> dict[str, Any]:
        return {"id": log_id, "created_at": ISO, "ai_org": org, "ai_model": model, "response.body": {"usage": usage},
                "cost": 1.0, "cost_currency": "USD", "response_time": 2000, "is_success": 1,
                "response_status_code": 200, "cache_status": "MISS"}

    rows = [
        row("pk-oa", "openai", "gpt-5.6", {"prompt_tokens": 12000, "completion_tokens": 900, "prompt_tokens_details": {
            "cached_tokens": 4096, "cache_write_tokens": 2048}, "completion_tokens_details": {"reasoning_tokens": 300}}),
        # Portkey's OpenAI-shaped Anthropic usage: prompt_tokens = Anthropic's uncached input_tokens
        row("pk-an", "anthropic", "claude-sonnet-4-5", {
            "prompt_tokens": 5856, "completion_tokens": 900, "cache_read_input_tokens": 4096,
            "cache_creation_input_tokens": 2048, "cache_creation": {"ephemeral_5m_input_tokens": 1024,
                                                                    "ephemeral_1h_input_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 300}}),
    ]
    path = tmp_path / "logs.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    report = run_collector("portkey", settings, wh, path=path)
    assert report.ok and report.dead == 0, report
    _check(wh, "pk-oa", "gpt-5.6", "openai", OPENAI)
    _check(wh, "pk-an", "claude-sonnet-4-5", "anthropic", ANTHROPIC)


def test_openrouter_has_no_cache_write_field(settings: Settings, wh: Warehouse, tmp_path: Path) -> None:
    # generation records carry native_tokens_cached and _reasoning, no cache-write count
    record = {"data": {"id": "gen-x", "created_at": "2025-11-03T10:00:00+00:00", "model": "openai/gpt-4o",
                       "total_cost": 0.01, "streamed": False, "cancelled": False, "latency": 2000,
                       "generation_time": 1800, "finish_reason": "stop", "native_tokens_prompt": 12000,
                       "native_tokens_completion": 900, "native_tokens_reasoning": 300, "native_tokens_cached": 4096}}
    path = tmp_path / "generations.jsonl"
    path.write_bytes(orjson.dumps(record))
    assert run_collector("openrouter", settings, wh, path=path).ok
    stored, cost = _stored(wh, "gen-x")
    assert stored == (12000, 4096, 0, 0, 900, 300)
    # priced from genai-prices' OpenRouter catalogue (which lists no cache-read price for this model)
    assert cost == _priced("openai/gpt-4o", "openrouter", stored)


def test_mapped_file(settings: Settings, wh: Warehouse, tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(
        '[source]\nname = "acme"\ninput_includes_cache = false\n[columns]\nevent_id = "id"\nts = "at"\n'
        'model = "llm"\nprovider = "vendor"\ninput_tokens = "in"\ncache_read_tokens = "hit"\n'
        'cache_write_5m_tokens = "w5"\ncache_write_1h_tokens = "w1"\noutput_tokens = "out"\n'
        'reasoning_tokens = "think"\n')
    (tmp_path / "m.csv").write_text(f"id,at,llm,vendor,in,hit,w5,w1,out,think\n"
                                    f"mp-1,{ISO},claude-sonnet-4-5,anthropic,5856,4096,1024,1024,900,300\n")
    report = run_collector("mapped", settings, wh, path=tmp_path / "m.csv", mapping=tmp_path / "m.toml")
    assert report.ok and report.dead == 0, report
    _check(wh, "mp-1", "claude-sonnet-4-5", "anthropic", ANTHROPIC)


# ---- provider exports against the logged call ---------------------------------------------------------

def test_openai_usage_api_cache_writes_by_service_tier_reconcile(settings: Settings, wh: Warehouse,
                                                                 pipeline: Pipeline,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The Usage API's input_cache_write_tokens / input_uncached_tokens, grouped by service_tier,
    equal the logged flex call's tokens; the logged call's cost is calc_price's at the flex tier."""
    from collectors.config import CollectorsSettings, OpenAIConfig
    from tests.servers import OPENAI_KEY, ProviderServer
    from warehouse.queries.reconciliation import reconcile
    from warehouse.queries.scope import Scope

    day = int(datetime(2025, 11, 3, tzinfo=UTC).timestamp())
    result = {"object": "organization.usage.completions.result", "input_tokens": 12000, "output_tokens": 900,
              "num_model_requests": 1, "input_cached_tokens": 4096, "input_cache_write_tokens": 2048,
              "input_uncached_tokens": 5856, "project_id": None, "user_id": None, "api_key_id": "key_1",
              "model": "gpt-5.6", "batch": False, "service_tier": "flex"}
    server = ProviderServer({"/v1/organization/usage/completions": [
        {"object": "bucket", "start_time": day, "end_time": day + 86400, "results": [result]}]}).start()
    monkeypatch.setenv("OPENAI_ADMIN_KEY", OPENAI_KEY)
    try:
        config = OpenAIConfig(enabled=True, base_url=f"{server.url}/v1", costs=False, refetch_buckets=0)
        assert "service_tier" in config.group_by  # the Usage API groups by service tier now
        s = settings.model_copy(update={"collectors": CollectorsSettings(openai=config)})
        report = run_collector("openai", s, wh, since=datetime(2025, 11, 3, tzinfo=UTC),
                               until=datetime(2025, 11, 4, tzinfo=UTC))
        assert report.ok, report.error
    finally:
        server.stop()
    assert wh.query_rows("SELECT service_tier, uncached_input_tokens, cache_write_5m_tokens FROM provider_usage_live"
                         ) == [("flex", 5856, 2048)]
    call = make_call(ts=ISO, model="gpt-5.6", service_tier="flex", api_key_id="key_1", input_tokens=12000,
                     cache_read_tokens=4096, cache_write_5m_tokens=2048, output_tokens=900, reasoning_tokens=300)
    assert pipeline.ingest_frame(frame([call]), source="t").written == 1
    stored, cost = _stored(wh, call["event_id"])
    assert cost == _priced("gpt-5.6", "openai", OPENAI, service_tier="flex")
    rows = reconcile(wh, Scope.all(), datetime(2025, 11, 3, tzinfo=UTC), datetime(2025, 11, 4, tzinfo=UTC),
                     by=("api_key_id", "model", "service_tier"))
    assert rows.height == 1, rows
    row = rows.row(0, named=True)
    assert (row["service_tier"], row["provider_requests"], row["logged_calls"]) == ("flex", 1, 1)
    for kind in ("input", "cache_read", "cache_write", "output"):
        assert row[f"provider_{kind}_tokens"] == row[f"logged_{kind}_tokens"], kind
    assert row["logged_usd"] == cost
