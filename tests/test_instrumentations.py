"""Real instrumentations nobody here wrote, as producers: the official OpenTelemetry OpenAI
instrumentation (`opentelemetry-instrumentation-openai-v2`), OpenInference's OpenAI
instrumentation and OpenLLMetry's Anthropic one drive the real `openai` / `anthropic` SDKs against
local stand-ins of Chat Completions and Messages (documented usage with cached, cache-write and
reasoning tokens) and export OTLP/HTTP to the service's `/v1/traces`; each stored call is priced
exactly as `genai_prices.calc_price` prices what the span reports, and attributed to the route
(resource attribute) and user (resource attribute, or per request through baggage) the app set."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from genai_prices import Usage, calc_price

from tests.service_support import Running, service  # noqa: F401

OPENAI_COLUMNS = ("provider, model, input_tokens, cache_read_tokens, cache_write_5m_tokens, output_tokens, "
                  "reasoning_tokens, route, user_id")
USAGE = {"prompt_tokens": 12000, "completion_tokens": 900, "total_tokens": 12900,
         "prompt_tokens_details": {"cached_tokens": 4096, "cache_write_tokens": 2048},
         "completion_tokens_details": {"reasoning_tokens": 300}}


def _the_call(service: Running, columns: str) -> tuple[list, Decimal, datetime]:  # noqa: F811 - not the fixture
    """The one stored call (no dead letters): the `columns` asked for, its cost and its time (UTC)."""
    service.wait_flushed()
    assert service.rows("SELECT count() FROM dead_letters") == [(0,)]
    rows = service.rows(f"SELECT {columns}, toString(cost_usd), ts FROM calls")
    assert len(rows) == 1, rows
    *values, cost, ts = rows[0]
    return values, Decimal(cost), ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


class _ChatCompletions(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1764500000,
                             "model": "gpt-5.6", "usage": USAGE, "choices": [
                                 {"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": "hi"}}]})
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_openinference_openai_instrumentation(service: Running) -> None:  # noqa: F811
    openai = pytest.importorskip("openai")
    instrumentation = pytest.importorskip("openinference.instrumentation.openai")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatCompletions)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # the app's few lines: attribution as resource attributes, spans to llmledger over OTLP/HTTP
    provider = TracerProvider(resource=Resource.create({
        "service.name": "chat-app", "llmledger.route": "/chat", "llmledger.user_id": "u-7"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{service.url}/v1/traces")))
    instrumentor = instrumentation.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key="sk-test")
        client.chat.completions.create(model="gpt-5.6", messages=[{"role": "user", "content": "x"}])
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
        server.shutdown()
    tokens, cost, ts = _the_call(service, OPENAI_COLUMNS)
    assert tokens == ["openai", "gpt-5.6-sol", 12000, 4096, 2048, 900, 300, "/chat", "u-7"]
    usage = Usage(input_tokens=12000, cache_read_tokens=4096, cache_write_tokens=2048, output_tokens=900,
                  output_reasoning_tokens=300)
    assert cost == calc_price(usage, "gpt-5.6", provider_id="openai", genai_request_timestamp=ts).total_price


MESSAGE_USAGE = {"input_tokens": 6000, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 1500,
                 "output_tokens": 400}


class _Messages(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = orjson.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                             "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
                             "stop_sequence": None, "usage": MESSAGE_USAGE})
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_openllmetry_anthropic_instrumentation(service: Running) -> None:  # noqa: F811
    anthropic = pytest.importorskip("anthropic")
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.anthropic")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Messages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    provider = TracerProvider(resource=Resource.create({
        "service.name": "support-bot", "llmledger.route": "/support", "llmledger.user_id": "u-9"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{service.url}/v1/traces")))
    instrumentor = instrumentation.AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{server.server_port}", api_key="sk-ant-test")
        client.messages.create(model="claude-haiku-4-5", max_tokens=500, messages=[{"role": "user", "content": "x"}])
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
        server.shutdown()
    tokens, cost, ts = _the_call(service, "provider, input_tokens, cache_read_tokens, cache_write_5m_tokens, "
                                          "output_tokens, route, user_id")
    # OpenLLMetry sends input = uncached + cache reads + writes (inclusive): 9500, not 6000
    assert tokens == ["anthropic", 9500, 2000, 1500, 400, "/support", "u-9"]
    usage = Usage(input_tokens=9500, cache_read_tokens=2000, cache_write_tokens=1500, output_tokens=400)
    assert cost == calc_price(usage, "claude-haiku-4-5", provider_id="anthropic", genai_request_timestamp=ts).total_price


def test_official_openai_v2_instrumentation_with_baggage(service: Running) -> None:  # noqa: F811
    """The official instrumentation (2.4b0) reports only input and output tokens — no cache reads,
    cache writes or reasoning — so its calls are priced as uncached input, exactly for what the span
    says (the README says so). Attribution per request comes through baggage."""
    openai = pytest.importorskip("openai")
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.openai_v2")
    from opentelemetry import baggage, context
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatCompletions)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    provider = TracerProvider(resource=Resource.create({"service.name": "chat-app", "llmledger.route": "/chat"}))
    provider.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))  # baggage → span attributes
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{service.url}/v1/traces")))
    instrumentor = instrumentation.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key="sk-test")
        token = context.attach(baggage.set_baggage("llmledger.user_id", "u-11"))  # per request
        try:
            client.chat.completions.create(model="gpt-5.6", messages=[{"role": "user", "content": "x"}])
        finally:
            context.detach(token)
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
        server.shutdown()
    tokens, cost, ts = _the_call(service, OPENAI_COLUMNS)
    assert tokens == ["openai", "gpt-5.6-sol", 12000, 0, 0, 900, 0, "/chat", "u-11"]
    assert cost == calc_price(Usage(input_tokens=12000, output_tokens=900), "gpt-5.6", provider_id="openai",
                              genai_request_timestamp=ts).total_price
