"""OTLP GenAI spans per convention (semantic-conventions-genai names, legacy names, OpenInference),
each with cached, cache-write and reasoning tokens, priced exactly as `genai_prices.calc_price`;
the Anthropic input convention decided by producer (scope / attribute / setting), never by size;
unreadable spans rejected alone with `partialSuccess`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from genai_prices import Usage, calc_price
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llmledger.settings import OtlpSettings
from tests.service_support import Running, service_settings, start_in_thread

TRACE = "5b8efff798038103d269b633813fc60c"
T0 = 1764500000  # 2025-11-30T10:53:20Z, pinned
TS = datetime.fromtimestamp(T0, UTC)


@pytest.fixture
def svc(store: Path, tmp_path: Path) -> Iterator[Running]:
    settings = service_settings(store, tmp_path / "home").model_copy(
        update={"otlp": OtlpSettings(input_conventions={"acme.anthropic.wrapper": "uncached"})})
    yield from start_in_thread(settings)


def _kv(key: str, value: object) -> dict[str, object]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def _span(span_id: str, attrs: dict[str, object], **over: object) -> dict[str, object]:
    span = {"traceId": TRACE, "spanId": span_id, "name": "chat", "kind": 3,
            "startTimeUnixNano": str(T0 * 10**9), "endTimeUnixNano": str(T0 * 10**9 + 2 * 10**9),
            "attributes": [_kv(k, v) for k, v in attrs.items()]}
    span.update(over)
    return span


def _request(scope: str, *spans: dict[str, object], resource: dict[str, object] | None = None) -> bytes:
    return orjson.dumps({"resourceSpans": [{
        "resource": {"attributes": [_kv(k, v) for k, v in {"service.name": "app", **(resource or {})}.items()]},
        "scopeSpans": [{"scope": {"name": scope, "version": "1.0"}, "spans": list(spans)}]}]})


def _post(svc: Running, body: bytes) -> dict[str, object]:
    with svc.client() as http:
        r = http.post("/v1/traces", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()


def _stored(svc: Running, span_id: str) -> tuple[tuple[int, ...], Decimal]:
    row = svc.rows("SELECT input_tokens, cache_read_tokens, cache_write_5m_tokens, output_tokens, reasoning_tokens, "
                   "toString(cost_usd) FROM calls WHERE event_id = {e:String}", {"e": f"otel:{TRACE}:{span_id}"})
    assert row, f"span {span_id} was not stored"
    return tuple(row[0][:5]), Decimal(row[0][5])


def _price(model: str, provider: str, inp: int, read: int, write: int, out: int, reasoning: int) -> Decimal:
    usage = Usage(input_tokens=inp, cache_read_tokens=read, cache_write_tokens=write, output_tokens=out,
                  output_reasoning_tokens=reasoning)
    return calc_price(usage, model, provider_id=provider, genai_request_timestamp=TS).total_price


ANTHROPIC = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
             "gen_ai.request.model": "claude-haiku-4-5", "gen_ai.usage.output_tokens": 400,
             "gen_ai.usage.reasoning.output_tokens": 100}
# the call of issue 13 defect 4: uncached 6000 >= cache 2000 + 1500 (a size heuristic leaves it alone)
UNCACHED = {**ANTHROPIC, "gen_ai.usage.input_tokens": 6000, "gen_ai.usage.cache_read.input_tokens": 2000,
            "gen_ai.usage.cache_write.input_tokens": 1500}
INCLUSIVE = {**UNCACHED, "gen_ai.usage.input_tokens": 9500}
EXPECTED = (9500, 2000, 1500, 400, 100)


@pytest.mark.parametrize("scope,attrs,resource", [
    pytest.param("opentelemetry.instrumentation.anthropic", INCLUSIVE, None, id="openllmetry: inclusive by scope"),
    pytest.param("acme.anthropic.wrapper", UNCACHED, None, id="uncached by the [otlp] setting for its scope"),
    pytest.param("hand.written", UNCACHED, {"llmledger.input_tokens": "uncached"}, id="uncached by resource attr"),
    pytest.param("hand.written", {**INCLUSIVE, "gen_ai.usage.cache_write.input_tokens": None,
                                  "gen_ai.usage.cache_creation.input_tokens": 1500}, None,
                 id="older name cache_creation.input_tokens"),
    pytest.param("hand.written", {**{k: v for k, v in INCLUSIVE.items() if "cache" not in k},
                                  "gen_ai.usage.cache_read_input_tokens": 2000,
                                  "gen_ai.usage.cache_creation_input_tokens": 1500}, None, id="legacy _input_tokens"),
])
def test_anthropic_input_convention_by_producer(svc: Running, scope: str, attrs: dict[str, object],
                                                resource: dict[str, object] | None) -> None:
    attrs = {k: v for k, v in attrs.items() if v is not None}
    assert _post(svc, _request(scope, _span("00000000000000a1", attrs), resource=resource)) == {}
    svc.wait_flushed()
    tokens, cost = _stored(svc, "00000000000000a1")
    assert tokens == EXPECTED
    assert cost == _price("claude-haiku-4-5", "anthropic", 9500, 2000, 1500, 400, 100)
    # 20.7% more than the under-billed reading of the uncached count as inclusive
    assert cost > _price("claude-haiku-4-5", "anthropic", 6000, 2000, 1500, 400, 100)


def test_unknown_producer_is_read_per_spec_not_by_size(svc: Running) -> None:
    # an unknown scope is inclusive (the spec): an inconsistent span is dead-lettered, not guessed at
    small = {**UNCACHED, "gen_ai.usage.input_tokens": 50}
    reply = _post(svc, _request("hand.written", _span("00000000000000b1", small)))
    assert reply["partialSuccess"]["rejectedSpans"] == "1"
    assert "cache_exceeds_input" in reply["partialSuccess"]["errorMessage"]


def test_openinference_names_and_openai_cache_writes(svc: Running) -> None:
    span = _span("00000000000000c1", {
        "openinference.span.kind": "LLM", "llm.provider": "openai", "llm.model_name": "gpt-5.6",
        "llm.token_count.prompt": 12000, "llm.token_count.prompt_details.cache_read": 4096,
        "llm.token_count.prompt_details.cache_write": 2048, "llm.token_count.completion": 900,
        "llm.token_count.completion_details.reasoning": 300, "session.id": "s-1", "user.id": "u-1"})
    semconv = _span("00000000000000c2", {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-5.6",
        "gen_ai.usage.input_tokens": 12000, "gen_ai.usage.cache_read.input_tokens": 4096,
        "gen_ai.usage.cache_write.input_tokens": 2048, "gen_ai.usage.output_tokens": 900,
        "gen_ai.usage.reasoning.output_tokens": 300, "gen_ai.response.time_to_first_chunk": 0.42})
    assert _post(svc, _request("openinference.instrumentation.openai", span, semconv)) == {}
    svc.wait_flushed()
    expected = _price("gpt-5.6", "openai", 12000, 4096, 2048, 900, 300)
    for span_id in ("00000000000000c1", "00000000000000c2"):
        tokens, cost = _stored(svc, span_id)
        assert tokens == (12000, 4096, 2048, 900, 300)
        assert cost == expected
    assert svc.rows("SELECT user_id, session_id FROM calls WHERE span_id = '00000000000000c1'") == [("u-1", "s-1")]
    assert svc.rows("SELECT ttft_ms FROM calls WHERE span_id = '00000000000000c2'") == [(420,)]


def test_bad_spans_rejected_alone_json(svc: Running) -> None:
    good = _span("00000000000000d1", INCLUSIVE)
    bad_id = _span("zz", INCLUSIVE, traceId="not-hex")
    bad_time = _span("00000000000000d3", INCLUSIVE, startTimeUnixNano="soon")
    reply = _post(svc, _request("opentelemetry.instrumentation.anthropic", bad_id, good, bad_time))
    assert reply["partialSuccess"]["rejectedSpans"] == "2"
    assert "invalid_span" in reply["partialSuccess"]["errorMessage"]
    svc.wait_flushed()
    tokens, cost = _stored(svc, "00000000000000d1")
    assert tokens == EXPECTED and cost == _price("claude-haiku-4-5", "anthropic", 9500, 2000, 1500, 400, 100)
    assert svc.rows("SELECT count() FROM calls") == [(1,)]
    assert svc.rows("SELECT count() FROM calls WHERE event_id LIKE '%not-hex%'") == [(0,)]
    letters = svc.rows("SELECT reason, detail FROM dead_letters ORDER BY detail")
    assert [r for r, _ in letters] == ["invalid_span", "invalid_span"]
    assert "startTimeUnixNano" in letters[1][1] and "traceId" in letters[0][1]


def test_bad_spans_rejected_alone_protobuf(svc: Running) -> None:
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    scope_spans.scope.name = "opentelemetry.instrumentation.anthropic"
    for trace_id in (bytes.fromhex(TRACE), b"\x01\x02"):  # the second is 2 bytes, not 16
        span = scope_spans.spans.add(trace_id=trace_id, span_id=bytes.fromhex("00000000000000e1"), name="chat",
                                     start_time_unix_nano=T0 * 10**9, end_time_unix_nano=T0 * 10**9 + 10**9)
        for key, value in INCLUSIVE.items():
            attr = span.attributes.add(key=key)
            if isinstance(value, int):
                attr.value.int_value = value
            else:
                attr.value.string_value = value
    with svc.client() as http:
        r = http.post("/v1/traces", content=request.SerializeToString(),
                      headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 200
    answer = ExportTraceServiceResponse.FromString(r.content)
    assert answer.partial_success.rejected_spans == 1 and "trace id" in answer.partial_success.error_message
    svc.wait_flushed()
    assert _stored(svc, "00000000000000e1")[0] == EXPECTED
