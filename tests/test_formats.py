"""Format adapters without the service: LiteLLM token semantics per usage shape, OTLP decoding."""

from __future__ import annotations

import pytest

from ingest.formats.litellm import litellm_record
from ingest.formats.otlp import MalformedTraces, SpanLinks, map_spans, spans_from_json, spans_from_protobuf

TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "output_tokens",
          "reasoning_tokens")


@pytest.mark.parametrize("usage,expected", [
    pytest.param({"prompt_tokens": 2600, "completion_tokens": 400, "cache_read_input_tokens": 2000,
                  "cache_creation_input_tokens": 500, "prompt_tokens_details": {"cached_tokens": 2000}},
                 (2600, 2000, 500, 0, 400, 0), id="litellm-normalised: prompt includes cache"),
    pytest.param({"input_tokens": 100, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 500,
                  "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 300},
                  "output_tokens": 400, "output_tokens_details": {"thinking_tokens": 100}},
                 (2600, 2000, 200, 300, 400, 100), id="anthropic-native: input excludes cache"),
    pytest.param({"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024}, "output_tokens": 300,
                  "output_tokens_details": {"reasoning_tokens": 128}},
                 (1200, 1024, 0, 0, 300, 128), id="openai-responses: cache is a subset"),
    pytest.param({"prompt_tokens": 600, "completion_tokens": 10, "cache_read_input_tokens": 2000,
                  "cache_creation_input_tokens": 0},
                 (600, 2000, 0, 0, 10, 0), id="a prompt count below its cache passes as sent, for validation"),
])
def test_litellm_usage_shapes(usage: dict[str, object], expected: tuple[int, ...]) -> None:
    record = litellm_record({"litellm_call_id": "c", "startTime": 1.7e9, "model": "m",
                             "custom_llm_provider": "anthropic", "metadata": {"usage_object": usage}})
    assert tuple(record[k] for k in TOKENS) == expected


def test_otlp_decoding_errors() -> None:
    with pytest.raises(MalformedTraces):
        spans_from_json(b"{")
    # a span whose times (or ids) cannot be read is marked, not fatal to the request
    (bad,) = spans_from_json(b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}')
    assert bad.problem is not None and map_spans([bad], SpanLinks()).rejected == [bad]
    with pytest.raises(MalformedTraces):
        spans_from_protobuf(b"\xff\xff\xff")
    assert map_spans(spans_from_json(b"{}"), SpanLinks()).calls == []


def test_span_links_are_bounded() -> None:
    links = SpanLinks(capacity=3)
    for i in range(5):
        links.remember(f"s{i}", "", None)
    assert links.get("s0") is None and links.get("s4") == ("", None)
