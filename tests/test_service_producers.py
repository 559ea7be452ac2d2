"""Real third-party producers against the real service: LiteLLM's SDK (offline, `mock_response`)
with its own `generic_api` logger (async code only) and with ours (sync and async code), and the
OpenTelemetry SDK's OTLP/HTTP protobuf exporter."""

from __future__ import annotations

import asyncio
import gc
import os
import time

import pytest

from tests.service_support import Running, service  # noqa: F401


def test_litellm_sdk_generic_api_logger(service: Running) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: no cost-map download
    litellm = pytest.importorskip("litellm")
    from litellm.integrations.generic_api.generic_api_callback import GenericAPILogger
    from litellm.types.utils import ModelResponse

    usage = {"prompt_tokens": 2600, "completion_tokens": 400, "total_tokens": 3000,
             "prompt_tokens_details": {"cached_tokens": 2000, "cache_creation_tokens": 500},
             "completion_tokens_details": {"reasoning_tokens": 150},
             "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 500}

    async def run() -> None:
        # Configuration only, exactly as the README's proxy config.yaml does it: `callback_settings`
        # defines a generic_api callback named "llmledger", `callbacks: ["llmledger"]` enables it.
        previous = (litellm.callbacks, litellm.callback_settings)
        litellm.callback_settings = {"llmledger": {
            "callback_type": "generic_api", "endpoint": f"{service.url}/v1/litellm",
            "headers": {"Authorization": "Bearer not-needed-without-keys"},
            "event_types": ["llm_api_success", "llm_api_failure"], "log_format": "ndjson"}}
        litellm.callbacks = []
        litellm.logging_callback_manager.add_litellm_callback("llmledger")
        logger = next(c for c in litellm.callbacks if isinstance(c, GenericAPILogger))
        try:
            reply = ModelResponse(model="claude-sonnet-4-5", usage=usage, choices=[
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}])
            await litellm.acompletion(model="anthropic/claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}],
                                      mock_response=reply, user="cust-1",
                                      metadata={"tags": ["beta"], "spend_logs_metadata": {"feature": "chat"}})
            with pytest.raises(Exception):  # noqa: B017 - any mapped LiteLLM error
                await litellm.acompletion(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}],
                                          mock_response=Exception("boom"))
            for _ in range(100):  # success/failure callbacks run as tasks after the call returns
                if len(logger.log_queue) >= 2:
                    break
                await asyncio.sleep(0.05)
            await logger.flush_queue()  # the proxy does this every flush interval
        finally:
            litellm.callbacks, litellm.callback_settings = previous
            await logger.async_httpx_client.close()
            from litellm.llms.custom_httpx.async_client_cleanup import close_litellm_async_clients

            await close_litellm_async_clients()  # else LiteLLM's cached transports complain at exit

    asyncio.run(run())
    # LiteLLM's cached aiohttp transports raise in __del__ if they survive until interpreter exit
    litellm.in_memory_llm_clients_cache.cache_dict.clear()
    gc.collect()
    service.wait_flushed()
    rows = service.rows(
        "SELECT provider, model, status, input_tokens, cache_read_tokens, cache_write_5m_tokens, output_tokens, "
        "reasoning_tokens, user_id, feature, provider_reported_cost_usd > 0, cost_usd > 0 FROM calls ORDER BY status")
    assert rows == [
        ("openai", "gpt-4o", "error", 0, 0, 0, 0, 0, "", "", False, False),
        ("anthropic", "claude-sonnet-4-5", "ok", 2600, 2000, 500, 400, 150, "cust-1", "chat", True, True),
    ]


def test_opentelemetry_sdk_exporter_protobuf(service: Running) -> None:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    exporter = OTLPSpanExporter(endpoint=f"{service.url}/v1/traces")  # protobuf over HTTP
    provider = TracerProvider(resource=Resource.create({"service.name": "agent", "llmledger.feature": "research"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    tracer = provider.get_tracer("test")
    t0 = 1762164000 * 10**9
    tool = tracer.start_span("execute_tool search", kind=SpanKind.INTERNAL, start_time=t0, attributes={
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"})
    with trace.use_span(tool, end_on_exit=False):
        llm = tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, start_time=t0 + 10**7, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 3000,
            "gen_ai.usage.cache_read.input_tokens": 2048, "gen_ai.usage.output_tokens": 500,
            "gen_ai.usage.reasoning.output_tokens": 0, "gen_ai.response.time_to_first_chunk": 0.25,
            "gen_ai.conversation.id": "conv-1"})
        llm.end(end_time=t0 + 1510 * 10**6)
    tool.end(end_time=t0 + 2000 * 10**6)
    failed = tracer.start_span("chat o4-mini", kind=SpanKind.CLIENT, start_time=t0, attributes={
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "o4-mini",
        "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 900,
        "gen_ai.usage.reasoning.output_tokens": 800, "error.type": "timeout"})
    failed.set_status(Status(StatusCode.ERROR, "deadline"))
    failed.end(end_time=t0 + 30 * 10**9)
    provider.shutdown()
    service.wait_flushed()
    assert service.rows("SELECT count() FROM dead_letters") == [(0,)]
    rows = service.rows(
        "SELECT model, input_tokens, cache_read_tokens, output_tokens, reasoning_tokens, ttft_ms, status, tool_name, "
        "session_id, feature, latency_ms FROM calls ORDER BY model")
    assert rows == [
        ("gpt-4o", 3000, 2048, 500, 0, 250, "ok", "search", "conv-1", "research", 1500),
        ("o4-mini", 100, 0, 900, 800, None, "timeout", "", "", "research", 30000),
    ]
    assert service.rows("SELECT tool_name, status, duration_ms FROM tool_runs") == [("search", "ok", 2000)]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_litellm_sdk_with_our_logger_in_sync_and_async_code(service: Running, mode: str) -> None:  # noqa: F811
    """LiteLLM's generic_api logger cannot be registered outside an event loop; ours works in both,
    and the call it sends (cache reads, cache writes, reasoning) is priced exactly as calc_price."""
    from datetime import UTC
    from decimal import Decimal

    from genai_prices import Usage, calc_price

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    litellm = pytest.importorskip("litellm")
    from litellm.types.utils import ModelResponse

    from llmledger.integrations.litellm import LlmledgerLogger

    usage = {"prompt_tokens": 12000, "completion_tokens": 900, "total_tokens": 12900,
             "prompt_tokens_details": {"cached_tokens": 4096, "cache_write_tokens": 2048},
             "completion_tokens_details": {"reasoning_tokens": 300}}
    reply = ModelResponse(model="gpt-5.6", usage=usage, choices=[
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}])
    logger = LlmledgerLogger(f"{service.url}/v1/litellm", api_key="not-needed-without-keys", flush_interval_s=60)
    previous = litellm.callbacks
    litellm.callbacks = [logger]
    try:
        call = {"model": "openai/gpt-5.6", "messages": [{"role": "user", "content": "x"}], "mock_response": reply,
                "metadata": {"spend_logs_metadata": {"route": "/chat"}}}
        if mode == "sync":
            litellm.completion(**call)  # plain synchronous code: no event loop anywhere
            for _ in range(200):  # LiteLLM runs success callbacks after the call returns
                if logger.received:
                    break
                time.sleep(0.05)
        else:
            async def app() -> None:  # an async app: its loop lives on after the call
                from litellm.llms.custom_httpx.async_client_cleanup import close_litellm_async_clients

                await litellm.acompletion(**call)
                for _ in range(200):
                    if logger.received:
                        break
                    await asyncio.sleep(0.05)
                await close_litellm_async_clients()

            asyncio.run(app())
            litellm.in_memory_llm_clients_cache.cache_dict.clear()  # else their __del__ complains at exit
            gc.collect()
        assert logger.received == 1 and logger.flush() and logger.sent == 1
    finally:
        litellm.callbacks = previous
        logger.close()
    service.wait_flushed()
    rows = service.rows("SELECT provider, input_tokens, cache_read_tokens, cache_write_5m_tokens, output_tokens, "
                        "reasoning_tokens, route, toString(cost_usd), ts FROM calls")
    assert len(rows) == 1, rows
    *tokens, cost, ts = rows[0]
    assert tokens == ["openai", 12000, 4096, 2048, 900, 300, "/chat"]
    expected = calc_price(Usage(input_tokens=12000, cache_read_tokens=4096, cache_write_tokens=2048,
                                output_tokens=900, output_reasoning_tokens=300), "gpt-5.6", provider_id="openai",
                          genai_request_timestamp=ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts).total_price
    assert Decimal(cost) == expected
