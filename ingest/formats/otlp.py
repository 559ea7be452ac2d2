"""OTLP/HTTP traces (protobuf or JSON) with GenAI spans → canonical calls and tool runs.

Inference spans (`gen_ai.operation.name` chat / text_completion / generate_content / embeddings,
or the older OpenLLMetry `llm.request.type`) become calls; `execute_tool` spans (and
OpenLLMetry `traceloop.span.kind = tool`) become tool runs. Attribute names are read newest
first: `gen_ai.provider.name` then `gen_ai.system`; `gen_ai.usage.input_tokens` then the older
`gen_ai.usage.prompt_tokens` / `llm.usage.prompt_tokens`; cache reads and writes under the v1.40
names and OpenLLMetry's `gen_ai.usage.cache_read_input_tokens` / `…cache_creation_input_tokens`;
reasoning under v1.41 `gen_ai.usage.reasoning.output_tokens` and OpenLIT's
`gen_ai.usage.reasoning_tokens`; TTFT from `gen_ai.response.time_to_first_chunk` or OpenLIT's
`gen_ai.server.time_to_first_token` (seconds). Cache writes under `gen_ai.usage.cache_write.input_tokens`
(semantic-conventions-genai), its older name `…cache_creation.input_tokens` and the legacy
`…cache_creation_input_tokens`; OpenInference's `llm.token_count.*` (prompt, completion,
prompt_details.cache_read / cache_write, completion_details.reasoning). Input tokens include cache
(spec) unless the producer is known or declared to send Anthropic's uncached-only count
(`otlp_conventions`). A span with non-hex ids or non-numeric times is rejected alone
(`Span.problem`), the rest of its request kept. An LLM span below a tool span (same request, or a tool
span seen recently — `SpanLinks`) gets the tool's name, and the tool span as `parent_span_id`.
`llmledger.*` attributes (span or resource) set attribution fields directly.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.formats.otlp_conventions import input_convention

SOURCE = "otlp"
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings", "completion", "embedding"})
TOOL_OPERATION = "execute_tool"
_ATTRIBUTION = ("project", "route", "feature", "team", "user_id", "environment", "prompt_version",
                "prompt_prefix_hash", "session_id", "routing_policy", "api_key_id")


class MalformedTraces(ValueError):
    """The body is not an OTLP ExportTraceServiceRequest (answer 400)."""


@dataclass(slots=True)
class Span:
    """The parts of an OTLP span this mapping reads (ids as lowercase hex)."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    attrs: dict[str, Any]
    resource: dict[str, Any]
    index: int = 0  # position in the request
    scope: str = ""  # instrumentation scope name (identifies the producer)
    scope_version: str = ""
    problem: str | None = None  # why this span cannot be read (it is rejected alone)


# ---- decoding ------------------------------------------------------------------------------


def _pb_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_pb_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def spans_from_protobuf(body: bytes) -> list[Span]:
    """Spans of a binary `ExportTraceServiceRequest`."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as err:
        raise MalformedTraces(f"body is not a protobuf ExportTraceServiceRequest: {err}") from None
    spans: list[Span] = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _pb_value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                problem = _pb_problem(span)
                spans.append(Span(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    name=span.name,
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    status_code=span.status.code,
                    status_message=span.status.message,
                    attrs={kv.key: _pb_value(kv.value) for kv in span.attributes},
                    resource=resource,
                    index=len(spans),
                    scope=scope_spans.scope.name,
                    scope_version=scope_spans.scope.version,
                    problem=problem,
                ))
    return spans


def _pb_problem(span: Any) -> str | None:
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return f"trace id is {len(span.trace_id)} bytes (or all zero), not 16"
    if len(span.span_id) != 8 or not any(span.span_id):
        return f"span id is {len(span.span_id)} bytes (or all zero), not 8"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return f"parent span id is {len(span.parent_span_id)} bytes, not 8"
    return None


def _json_value(value: Any) -> Any:
    if not isinstance(value, Mapping) or not value:
        return None
    key, inner = next(iter(value.items()))
    if key == "intValue":
        return int(inner)
    if key == "doubleValue":
        return float(inner)
    if key == "arrayValue":
        return [_json_value(v) for v in (inner or {}).get("values", [])]
    if key == "kvlistValue":
        return {kv.get("key"): _json_value(kv.get("value")) for kv in (inner or {}).get("values", [])}
    if key == "bytesValue":
        return base64.b64decode(inner)
    return inner


def _attrs(items: Any) -> dict[str, Any]:
    return {kv["key"]: _json_value(kv.get("value")) for kv in items or () if isinstance(kv, Mapping) and "key" in kv}


_HEX = frozenset("0123456789abcdef")


def _hex_id(value: Any, size: int, what: str, *, optional: bool = False) -> str:
    text = str(value or "").lower()
    if optional and not text:
        return ""
    if len(text) != size or not set(text) <= _HEX or set(text) == {"0"}:
        raise _BadSpan(f"{what} {str(value)[:64]!r} is not {size} hex digits (nonzero)")
    return text


def _nanos(value: Any, what: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise _BadSpan(f"{what} {str(value)[:64]!r} is not a whole number of nanoseconds")
    return int(value)


class _BadSpan(ValueError):
    """One span's ids or times cannot be read: that span is rejected, the request kept."""


def _json_span(span: Mapping[str, Any], resource: dict[str, Any], scope: Mapping[str, Any], index: int) -> Span:
    status = span.get("status") or {}
    common = {"name": str(span.get("name") or ""), "status_message": str(status.get("message") or ""),
              "resource": resource, "index": index, "scope": str(scope.get("name") or ""),
              "scope_version": str(scope.get("version") or "")}
    try:
        return Span(trace_id=_hex_id(span.get("traceId"), 32, "traceId"),
                    span_id=_hex_id(span.get("spanId"), 16, "spanId"),
                    parent_span_id=_hex_id(span.get("parentSpanId"), 16, "parentSpanId", optional=True),
                    start_ns=_nanos(span.get("startTimeUnixNano"), "startTimeUnixNano"),
                    end_ns=_nanos(span.get("endTimeUnixNano"), "endTimeUnixNano"),
                    status_code=int(status.get("code") or 0), attrs=_attrs(span.get("attributes")), **common)
    except (_BadSpan, TypeError, ValueError, AttributeError, KeyError) as err:
        return Span(trace_id=str(span.get("traceId") or "")[:64], span_id=str(span.get("spanId") or "")[:64],
                    parent_span_id="", start_ns=0, end_ns=0, status_code=0, attrs={}, problem=str(err), **common)


def spans_from_json(body: bytes) -> list[Span]:
    """Spans of an OTLP/JSON `ExportTraceServiceRequest` (ids as hex strings, per the spec); a span
    whose ids or times cannot be read comes back with `problem` set."""
    try:
        request = orjson.loads(body)
        spans: list[Span] = []
        for resource_spans in request.get("resourceSpans") or ():
            resource = _attrs((resource_spans.get("resource") or {}).get("attributes"))
            for scope_spans in resource_spans.get("scopeSpans") or ():
                scope = scope_spans.get("scope") or {}
                for span in scope_spans.get("spans") or ():
                    if not isinstance(span, Mapping):
                        raise TypeError(f"a span is a {type(span).__name__}, not an object")
                    spans.append(_json_span(span, resource, scope, len(spans)))
    except orjson.JSONDecodeError as err:
        raise MalformedTraces(f"body is not valid JSON: {err}") from None
    except (AttributeError, TypeError, ValueError, KeyError) as err:
        raise MalformedTraces(f"body is not an OTLP/JSON ExportTraceServiceRequest: {err}") from None
    return spans


# ---- links between spans ---------------------------------------------------------------------


@dataclass
class SpanLinks:
    """Recent spans' parents and tool names, so an LLM span can find a tool ancestor that arrived
    in an earlier request. Bounded (LRU); one per service process."""

    capacity: int = 100_000
    _spans: OrderedDict[str, tuple[str, str | None]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def remember(self, span_id: str, parent_span_id: str, tool_name: str | None) -> None:
        """Record a span's parent and (for a tool span) its tool name."""
        with self._lock:
            self._spans[span_id] = (parent_span_id, tool_name)
            self._spans.move_to_end(span_id)
            while len(self._spans) > self.capacity:
                self._spans.popitem(last=False)

    def get(self, span_id: str) -> tuple[str, str | None] | None:
        """(parent span id, tool name or None) of a remembered span."""
        with self._lock:
            return self._spans.get(span_id)


def _tool_name(span: Span) -> str | None:
    a = span.attrs
    if a.get("gen_ai.operation.name") == TOOL_OPERATION:
        return str(a.get("gen_ai.tool.name") or span.name.removeprefix("execute_tool ").strip() or "unknown")
    if a.get("traceloop.span.kind") == "tool":
        return str(a.get("traceloop.entity.name") or span.name or "unknown")
    return None


def _tool_ancestor(span: Span, local: Mapping[str, tuple[str, str | None]], links: SpanLinks) -> tuple[str, str] | None:
    parent, seen = span.parent_span_id, 0
    while parent and seen < 64:
        entry = local.get(parent) or links.get(parent)
        if entry is None:
            return None
        grandparent, tool = entry
        if tool is not None:
            return parent, tool
        parent, seen = grandparent, seen + 1
    return None


# ---- mapping ---------------------------------------------------------------------------------


def _first(attrs: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = attrs.get(name)
        if value is not None and value != "":
            return value
    return None


def _count(attrs: Mapping[str, Any], *names: str) -> int | None:
    value = _first(attrs, *names)
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _is_llm(span: Span) -> bool:
    a = span.attrs
    if a.get("openinference.span.kind") is not None:
        return str(a["openinference.span.kind"]).upper() in ("LLM", "EMBEDDING")
    operation = a.get("gen_ai.operation.name") or a.get("llm.request.type")
    if operation is not None:
        return str(operation) in LLM_OPERATIONS
    return any(k in a for k in ("gen_ai.provider.name", "gen_ai.system")) and "gen_ai.request.model" in a


def _attribution(span: Span) -> dict[str, Any]:
    merged = {**span.resource, **span.attrs}
    return {key: str(merged[f"llmledger.{key}"]) for key in _ATTRIBUTION if merged.get(f"llmledger.{key}") not in (None, "")}


def _tags(span: Span) -> dict[str, str]:
    tags = {k.removeprefix("llmledger.tag."): str(v) for k, v in {**span.resource, **span.attrs}.items()
            if k.startswith("llmledger.tag.") and v is not None}
    service = span.resource.get("service.name")
    if service:
        tags["service.name"] = str(service)
    return tags


INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens", "llm.token_count.prompt")
OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.usage.completion_tokens",
          "llm.token_count.completion")
CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
              "llm.token_count.prompt_details.cache_read")
CACHE_WRITE = ("gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.cache_creation.input_tokens",
               "gen_ai.usage.cache_creation_input_tokens", "gen_ai.usage.cache_write_input_tokens",
               "llm.token_count.prompt_details.cache_write")
REASONING = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens", "llm.usage.reasoning_tokens",
             "llm.token_count.completion_details.reasoning")


def call_record(span: Span, tool: tuple[str, str] | None, conventions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A canonical record (dict, `ts` in epoch ms) for an inference span; `conventions` is the
    `[otlp] input_conventions` setting (scope name -> inclusive / uncached)."""
    a, r = span.attrs, span.resource
    provider = _first(a, "gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
    input_tokens = _count(a, *INPUT)
    cache_read = _count(a, *CACHE_READ) or 0
    cache_write = _count(a, *CACHE_WRITE) or 0
    convention, declared = input_convention(span.scope, a, r, conventions or {})
    if input_tokens is not None and convention == "uncached" and (declared or str(provider).startswith("anthropic")):
        input_tokens += cache_read + cache_write  # Anthropic's uncached-only count: make it inclusive
    ttft_s = _first(a, "gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token")
    error = span.status_code == 2 or a.get("error.type") is not None
    error_type = _first(a, "error.type") or (span.status_message if error else None)
    cost = _first(a, "gen_ai.usage.cost")
    stream = _first(a, "gen_ai.request.stream", "gen_ai.request.is_stream", "llm.is_streaming")
    record: dict[str, Any] = {
        "event_id": f"otel:{span.trace_id}:{span.span_id}",
        "ts": span.start_ns // 1_000_000,
        "source": SOURCE,
        "provider": provider,
        "model": _first(a, "gen_ai.response.model", "gen_ai.request.model", "llm.model_name"),
        "input_tokens": input_tokens,
        "cache_read_tokens": cache_read,
        "cache_write_5m_tokens": cache_write,
        "output_tokens": _count(a, *OUTPUT),
        "reasoning_tokens": _count(a, *REASONING),
        "latency_ms": max(span.end_ns - span.start_ns, 0) // 1_000_000 if span.end_ns else None,
        "ttft_ms": round(float(ttft_s) * 1000) if isinstance(ttft_s, (int, float)) else None,
        "status": ("timeout" if "timeout" in str(error_type).lower() else "error") if error else "ok",
        "error_type": str(error_type) if error_type else None,
        "user_id": _first(a, "user.id", "enduser.id", "gen_ai.request.user", "llm.user"),
        "session_id": _first(a, "gen_ai.conversation.id", "session.id"),
        "environment": _first({**r, **a}, "deployment.environment.name", "deployment.environment", "gen_ai.environment"),
        "service_tier": _first(a, "gen_ai.response.service_tier", "gen_ai.openai.response.service_tier",
                               "openai.response.service_tier"),
        "stream": bool(stream) if stream is not None else None,
        "trace_id": span.trace_id or None,
        "span_id": span.span_id or None,
        "parent_span_id": (tool[0] if tool else span.parent_span_id) or None,
        "tool_name": tool[1] if tool else None,
        "provider_reported_cost_usd": repr(float(cost)) if isinstance(cost, (int, float)) else None,
    }
    record.update(_attribution(span))
    tags = _tags(span)
    if tags:
        record["tags"] = orjson.dumps(tags).decode()
    for key in ("user_id", "session_id", "environment", "service_tier", "provider", "model", "error_type"):
        if record.get(key) is not None:
            record[key] = str(record[key])
    return record


def tool_run(span: Span, tool_name: str) -> dict[str, Any]:
    """A `tool_runs` row (dict) for a tool span."""
    error_type = span.attrs.get("error.type") or (span.status_message if span.status_code == 2 else None)
    failed = span.status_code == 2 or error_type is not None
    attribution = _attribution(span)
    return {
        "event_id": f"otel:{span.trace_id}:{span.span_id}",
        "ts_ms": span.start_ns // 1_000_000,
        "source": SOURCE,
        "project": attribution.get("project"),
        "tool_name": tool_name,
        "route": attribution.get("route", ""),
        "user_id": attribution.get("user_id", str(span.attrs.get("user.id") or "")),
        "session_id": str(_first(span.attrs, "gen_ai.conversation.id", "session.id") or ""),
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "duration_ms": max(span.end_ns - span.start_ns, 0) // 1_000_000,
        "status": ("timeout" if "timeout" in str(error_type).lower() else "error") if failed else "ok",
        "error_type": str(error_type or ""),
    }


@dataclass
class MappedSpans:
    """What a request's spans became."""

    calls: list[dict[str, Any]]
    call_spans: list[Span]  # parallel to calls: the span each came from
    tool_runs: list[dict[str, Any]]
    ignored: int  # spans that are neither inference nor tool spans
    rejected: list[Span] = field(default_factory=list)  # spans that cannot be read (`problem` says why)


def map_spans(spans: Iterable[Span], links: SpanLinks, conventions: Mapping[str, str] | None = None) -> MappedSpans:
    """Calls and tool runs of one request's readable spans; remembers them in `links`."""
    spans = list(spans)
    rejected = [s for s in spans if s.problem is not None]
    spans = [s for s in spans if s.problem is None]
    local: dict[str, tuple[str, str | None]] = {}
    tools: dict[str, str] = {}
    for span in spans:
        name = _tool_name(span)
        local[span.span_id] = (span.parent_span_id, name)
        if name is not None:
            tools[span.span_id] = name
    calls: list[dict[str, Any]] = []
    call_spans: list[Span] = []
    runs: list[dict[str, Any]] = []
    ignored = 0
    for span in spans:
        if span.span_id in tools:
            runs.append(tool_run(span, tools[span.span_id]))
        elif _is_llm(span):
            calls.append(call_record(span, _tool_ancestor(span, local, links), conventions))
            call_spans.append(span)
        else:
            ignored += 1
    for span_id, (parent, name) in local.items():
        links.remember(span_id, parent, name)
    return MappedSpans(calls, call_spans, runs, ignored, rejected)
