"""Push ingest through the real service (uvicorn + real chDB): canonical events as JSON and
NDJSON, LiteLLM payloads in each log_format, OTLP/JSON spans with tool ancestry; cached and
reasoning tokens land with canonical semantics; bad input is refused or dead-lettered, never lost."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from tests.factories import make_call
from tests.service_support import Running, service, service_settings, start_in_thread  # noqa: F401

TOKENS = "input_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens"


def _tokens(svc: Running, event_id: str) -> tuple[int, ...]:
    return svc.rows(f"SELECT {TOKENS} FROM calls WHERE event_id = {{e:String}}", {"e": event_id})[0]


def test_events_json_and_ndjson_with_cache_and_reasoning(service: Running) -> None:
    a = make_call(event_id="j1", input_tokens=3000, cache_read_tokens=2048, output_tokens=500, reasoning_tokens=300,
                  model="o4-mini")
    b = make_call(event_id="n1", provider="anthropic", model="claude-sonnet-4-5", input_tokens=None,
                  output_tokens=None, usage={"input_tokens": 100, "cache_read_input_tokens": 2000,
                                             "cache_creation_input_tokens": 500, "output_tokens": 400,
                                             "output_tokens_details": {"thinking_tokens": 150}})
    with service.client() as http:
        r1 = http.post("/v1/events", json={"events": [a]})
        r2 = http.post("/v1/events", content=orjson.dumps(b) + b"\n", headers={"content-type": "application/x-ndjson"})
    assert r1.status_code == 200 and r1.json()["accepted"] == 1
    assert r2.status_code == 200 and r2.json()["accepted"] == 1
    service.wait_flushed()
    assert _tokens(service, "j1") == (3000, 2048, 0, 0, 500, 300)
    assert _tokens(service, "n1") == (2600, 2000, 500, 0, 400, 150)  # Anthropic input excluded cache
    assert service.rows("SELECT count() FROM calls WHERE cost_usd > 0")[0][0] == 2


def test_per_record_errors_dead_letters_and_unknown_fields(service: Running) -> None:
    records = [make_call(event_id="ok1", extra_field=1), {"model": "gpt-4o"}, 7,
               make_call(event_id="bad", cache_read_tokens=5000)]
    with service.client() as http:
        r = http.post("/v1/events", json=records)
    assert r.status_code == 422
    body = r.json()
    assert body["accepted"] == 1 and body["rejected"] == 3
    assert {(e["index"], e["reason"]) for e in body["errors"]} == {
        (1, "missing_timestamp"), (2, "malformed_json"), (3, "cache_exceeds_input")}
    assert body["unknown_fields"] == ["extra_field"]
    service.wait_flushed()
    letters = service.rows("SELECT reason, raw FROM dead_letters ORDER BY reason")
    assert [r for r, _ in letters] == ["cache_exceeds_input", "malformed_json", "missing_timestamp"]
    assert '"event_id":"bad"' in letters[0][1]  # the original record is kept
    assert service.rows("SELECT event_id FROM calls") == [("ok1",)]


def test_malformed_and_oversized_bodies(store: Path, tmp_path: Path) -> None:
    for svc in start_in_thread(service_settings(store, tmp_path / "home", max_body_bytes=4096)):
        with svc.client() as http:
            assert http.post("/v1/events", content=b"[{not json").status_code == 400
            assert "not valid JSON" in http.post("/v1/events", content=b"{oops").json()["detail"]
            assert http.post("/v1/events", content=b"").status_code == 400
            assert http.post("/v1/events", content=b'"a string"').status_code == 400
            assert http.post("/v1/traces", content=b"\xff\x00garbage",
                             headers={"content-type": "application/x-protobuf"}).status_code == 400
            assert http.post("/v1/litellm", content=b"[1,").status_code == 400
            big = orjson.dumps([make_call() for _ in range(100)])
            assert http.post("/v1/events", content=big).status_code == 413
            # a compressed body small on the wire but large inflated is refused too
            bomb = gzip.compress(b"[" + b" " * 100_000 + b"]")
            assert len(bomb) < 4096
            assert http.post("/v1/events", content=bomb, headers={"content-encoding": "gzip"}).status_code == 413
            ok = gzip.compress(orjson.dumps([make_call(event_id="gz")]))
            assert http.post("/v1/events", content=ok, headers={"content-encoding": "gzip"}).status_code == 200
            # streamed without Content-Length: the limit holds while reading
            chunks = (b"x" * 1024 for _ in range(10))
            assert http.post("/v1/events", content=chunks).status_code == 413
        svc.wait_flushed()
        assert svc.rows("SELECT count() FROM calls") == [(1,)]


def test_spool_full_answers_429_with_retry_after(store: Path, tmp_path: Path) -> None:
    settings = service_settings(store, tmp_path / "home", spool_max_bytes=1 << 20, flush_interval_s=3600,
                                flush_rows=10_000_000, retry_after_s=7)
    for svc in start_in_thread(settings):
        batch = [make_call(event_id=f"f{i}") for i in range(500)]
        statuses = []
        with svc.client() as http:
            for i in range(40):
                for record in batch:
                    record["event_id"] = f"f{i}-{record['event_id']}"
                r = http.post("/v1/events", json=batch)
                statuses.append(r.status_code)
                if r.status_code == 429:
                    assert r.headers["retry-after"] == "7"
                    assert "retry after 7s" in r.json()["detail"]
                    break
            accepted = statuses.count(200) * 500
            assert statuses[-1] == 429 and accepted > 0
            assert http.get("/health").json()["spool"]["used_bytes"] <= 1 << 20
            svc.state.push.flush()  # the flusher catches up: pushes are accepted again
            assert http.post("/v1/events", json=[make_call(event_id="after")]).status_code == 200
        svc.state.push.flush()
        assert svc.rows("SELECT count() FROM calls") == [(accepted + 1,)]


LITELLM_ANTHROPIC = {
    "id": "chatcmpl-1", "litellm_call_id": "call-1", "trace_id": "t-1", "call_type": "acompletion",
    "status": "success", "custom_llm_provider": "anthropic", "model": "claude-sonnet-4-5",
    "startTime": 1762164000.0, "endTime": 1762164002.5, "completionStartTime": 1762164000.4, "stream": True,
    "response_cost": 0.008775, "prompt_tokens": 2600, "completion_tokens": 400, "request_tags": ["beta"],
    "end_user": "cust-9",
    "metadata": {"user_api_key_hash": "88dc28", "user_api_key_team_alias": "search", "user_api_key_alias": "prod-key",
                 "spend_logs_metadata": {"feature": "summarise", "route": "/sum"},
                 "usage_object": {"prompt_tokens": 2600, "completion_tokens": 400,
                                  "prompt_tokens_details": {"cached_tokens": 2000, "cache_creation_tokens": 500},
                                  "completion_tokens_details": {"reasoning_tokens": 150},
                                  "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 500}},
    "hidden_params": {"usage_object": None}, "cache_hit": None, "messages": [{"role": "user", "content": "x"}],
}


@pytest.mark.parametrize("log_format", ["json_array", "ndjson", "single"])
def test_litellm_payload_formats(service: Running, log_format: str) -> None:
    failure = {**LITELLM_ANTHROPIC, "litellm_call_id": "call-2", "status": "failure", "model": "gpt-4o",
               "custom_llm_provider": "openai", "prompt_tokens": 0, "completion_tokens": 0, "response_cost": 0.0,
               "metadata": {"usage_object": {}}, "error_information": {"error_code": "429", "error_class": "RateLimitError"}}
    cached = {**LITELLM_ANTHROPIC, "litellm_call_id": "call-3", "cache_hit": True, "response_cost": 0.0}
    payloads = [LITELLM_ANTHROPIC, failure, cached]
    with service.client() as http:
        if log_format == "json_array":
            responses = [http.post("/v1/litellm", content=orjson.dumps(payloads))]
        elif log_format == "ndjson":
            responses = [http.post("/v1/litellm", content=b"\n".join(map(orjson.dumps, payloads)))]
        else:
            responses = [http.post("/v1/litellm", content=orjson.dumps(p)) for p in payloads]
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    service.wait_flushed()
    assert _tokens(service, "litellm:call-1") == (2600, 2000, 500, 0, 400, 150)
    row = service.rows(
        "SELECT user_id, team, feature, route, api_key_id, ttft_ms, latency_ms, stream, provider_reported_cost_usd, "
        "tags['beta'], tags['litellm.alias'] FROM calls WHERE event_id = 'litellm:call-1'")[0]
    assert row[:8] == ("cust-9", "search", "summarise", "/sum", "88dc28", 400, 2500, True)
    assert str(row[8]).rstrip("0") == "0.008775" and row[9:] == ("true", "prod-key")
    assert service.rows("SELECT status, error_type, http_status FROM calls WHERE event_id = 'litellm:call-2'") == [
        ("error", "RateLimitError", 429)]
    assert service.rows("SELECT input_tokens, cost_usd = 0, tags['litellm.cache_hit'] FROM calls "
                        "WHERE event_id = 'litellm:call-3'") == [(0, True, "true")]


def _kv(key: str, value: object) -> dict[str, object]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def _span(span_id: str, parent: str, name: str, attrs: dict[str, object], start_s: int = 1762164000,
          ms: int = 1500, code: int = 0) -> dict[str, object]:
    return {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": span_id, "parentSpanId": parent, "name": name,
            "kind": 3, "startTimeUnixNano": str(start_s * 10**9), "endTimeUnixNano": str(start_s * 10**9 + ms * 10**6),
            "attributes": [_kv(k, v) for k, v in attrs.items()], "status": {"code": code}}


def _request(*spans: dict[str, object]) -> bytes:
    return orjson.dumps({"resourceSpans": [{"resource": {"attributes": [_kv("service.name", "agent"),
                                                                         _kv("llmledger.project", "default")]},
                                            "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}]}]})


def test_otlp_json_genai_spans_tools_and_older_names(service: Running) -> None:
    tool = _span("00000000000000a1", "", "execute_tool web_search",
                 {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "web_search"}, ms=4000)
    inner = _span("00000000000000b1", "00000000000000c1", "chat claude-sonnet-4-5", {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.usage.input_tokens": 2600,
        "gen_ai.usage.cache_read.input_tokens": 2000, "gen_ai.usage.cache_creation.input_tokens": 500,
        "gen_ai.usage.output_tokens": 400, "gen_ai.usage.reasoning.output_tokens": 150,
        "gen_ai.response.time_to_first_chunk": 0.35, "llmledger.route": "/agent"})
    http_span = _span("00000000000000c1", "00000000000000a1", "POST", {"http.method": "POST"})
    old = _span("00000000000000d1", "", "openai.chat", {
        "llm.request.type": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.prompt_tokens": 1000, "gen_ai.usage.completion_tokens": 20,
        "gen_ai.usage.cache_read_input_tokens": 512}, code=2)
    exclusive = _span("00000000000000e1", "", "chat", {   # Anthropic-native count excluding cache, declared
        "llmledger.input_tokens": "uncached", "gen_ai.operation.name": "chat", "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-haiku-4-5",
        "gen_ai.usage.input_tokens": 50, "gen_ai.usage.cache_read_input_tokens": 3000, "gen_ai.usage.output_tokens": 5,
        "gen_ai.usage.reasoning_tokens": 2, "gen_ai.server.time_to_first_token": 0.2})
    no_model = _span("00000000000000f1", "", "chat", {"gen_ai.operation.name": "chat", "gen_ai.system": "openai"})
    with service.client() as http:
        # the LLM span arrives first with its HTTP parent; the tool span in a later request
        first = http.post("/v1/traces", content=_request(http_span, inner, old, exclusive, no_model),
                          headers={"content-type": "application/json"})
        second = http.post("/v1/traces", content=_request(tool), headers={"content-type": "application/json"})
    assert first.status_code == 200
    assert first.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert "missing_model" in first.json()["partialSuccess"]["errorMessage"]
    assert second.status_code == 200 and second.json() == {}
    service.wait_flushed()
    trace = "5b8efff798038103d269b633813fc60c"
    assert _tokens(service, f"otel:{trace}:00000000000000b1") == (2600, 2000, 500, 0, 400, 150)
    assert _tokens(service, f"otel:{trace}:00000000000000d1") == (1000, 512, 0, 0, 20, 0)
    assert _tokens(service, f"otel:{trace}:00000000000000e1") == (3050, 3000, 0, 0, 5, 2)
    assert service.rows(f"SELECT ttft_ms, latency_ms, route, tags['service.name'] FROM calls "
                        f"WHERE event_id = 'otel:{trace}:00000000000000b1'") == [(350, 1500, "/agent", "agent")]
    assert service.rows(f"SELECT status FROM calls WHERE event_id = 'otel:{trace}:00000000000000d1'") == [("error",)]
    assert service.rows("SELECT tool_name, duration_ms, status FROM tool_runs") == [("web_search", 4000, "ok")]


def test_otlp_tool_ancestry_from_an_earlier_request(service: Running) -> None:
    tool = _span("0000000000000aa1", "", "execute_tool sandbox",
                 {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "sandbox"})
    llm = _span("0000000000000bb1", "0000000000000aa1", "chat gpt-4o", {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1})
    with service.client() as http:
        assert http.post("/v1/traces", content=_request(tool), headers={"content-type": "application/json"}).json() == {}
        assert http.post("/v1/traces", content=_request(llm), headers={"content-type": "application/json"}).json() == {}
    service.wait_flushed()
    assert service.rows("SELECT tool_name, parent_span_id FROM calls") == [("sandbox", "0000000000000aa1")]


def test_concurrent_requests_are_coalesced_and_answered_each(service: Running) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def send(n: int) -> tuple[int, dict[str, object]]:
        records: list[object] = [make_call(event_id=f"c{n}-{i}") for i in range(n + 1)]
        records.insert(n % (n + 1), {"model": "gpt-4o", "bad": n})  # one bad record at a known index
        if n % 3 == 0:
            body = b"\n".join(map(orjson.dumps, records)) + b"\n{broken"  # NDJSON with a torn last line
            r = http.post("/v1/events", content=body, headers={"content-type": "application/x-ndjson"})
        else:
            r = http.post("/v1/events", json=records)
        return n, r.json()

    with service.client() as http, ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, range(40)))
    for n, body in answers:
        expected = [(n % (n + 1), "missing_timestamp")] + ([(n + 2, "malformed_json")] if n % 3 == 0 else [])
        assert body["accepted"] == n + 1, (n, body)
        assert [(e["index"], e["reason"]) for e in body["errors"]] == expected, (n, body)
        assert body["unknown_fields"] == ["bad"]
    service.wait_flushed()
    assert service.rows("SELECT count() FROM calls") == [(sum(n + 1 for n in range(40)),)]
    assert service.rows("SELECT count() FROM dead_letters") == [(40 + len(range(0, 40, 3)),)]
    assert service.state.push.spool.commits < 40
