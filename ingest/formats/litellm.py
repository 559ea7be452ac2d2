"""LiteLLM's StandardLoggingPayload (formats.md §4b) → canonical call records.

`litellm_batch(payloads)` maps payload dicts as LiteLLM's `generic_api` logger posts them.
Token semantics: LiteLLM normalises usage to OpenAI's (`prompt_tokens` includes cache reads and
writes — verified on litellm 1.110 for Anthropic), with the cache split in `prompt_tokens_details`
and, for Anthropic, `cache_read_input_tokens` / `cache_creation_input_tokens`. A provider-native
usage object (Anthropic `input_tokens`, which excludes cache) is converted. A response served
from LiteLLM's own cache (`cache_hit`) used no provider tokens: its counts are zero and the hit is
tagged. `response_cost` is kept as `provider_reported_cost_usd`.

Records are validated as strictly as canonical ones: counts pass through as sent (a cache larger
than the prompt is `cache_exceeds_input`, not silently added to it), a count that is not a number
or an end before the start rejects that payload alone. Mapping is a few dict look-ups per
payload; payloads are large, so JSON parsing dominates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ingest.formats import jsonvalues
from ingest.formats.records import records_batch
from ingest.readers import ParseFailure, RawBatch
from ingest.validate import Reason

SOURCE = "litellm"

# spend_logs_metadata / requester_metadata keys that name canonical attribution fields
_ATTRIBUTION_KEYS = ("project", "feature", "route", "environment", "prompt_version", "prompt_prefix_hash",
                     "session_id", "user_id", "team", "routing_policy")


class Rejected(ValueError):
    """A payload that cannot become a call as it stands: dead-lettered with `reason`, the other
    payloads of the request kept."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _count(value: Any, where: str) -> int | None:
    """A token count as sent: None when absent, else a whole number (negative or huge ones pass,
    for validation to name); anything else rejects the payload (`invalid_type`)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not value.is_integer()):
        raise Rejected(Reason.INVALID_TYPE, f"{where} {value!r} is not a whole number")
    return int(value)


def _first(*counts: int | None) -> int:
    return next((c for c in counts if c is not None), 0)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def usage_object(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """The richest usage object a payload carries (metadata, hidden params, or the response)."""
    for candidate in (
        _dict(payload.get("metadata")).get("usage_object"),
        _dict(payload.get("hidden_params")).get("usage_object"),
        _dict(payload.get("response")).get("usage"),
    ):
        if isinstance(candidate, Mapping) and candidate:
            return candidate
    return {}


def tokens(payload: Mapping[str, Any], provider: str | None) -> dict[str, int]:
    """Canonical token counts: input includes cache reads and writes, output includes reasoning.

    The usage object wins over the payload's top-level `prompt_tokens` / `completion_tokens`
    (LiteLLM's copies of it); `token_disagreement` says when they differ. Counts are passed on as
    sent — a cache larger than the prompt, a negative or huge count — for validation to reject
    with the same reasons as a canonical record; a count that is not a number rejects the payload.
    """
    usage = usage_object(payload)
    details = _dict(usage.get("prompt_tokens_details")) or _dict(usage.get("input_tokens_details"))
    out_details = _dict(usage.get("completion_tokens_details")) or _dict(usage.get("output_tokens_details"))
    creation = _dict(details.get("cache_creation_token_details")) or _dict(usage.get("cache_creation"))
    cache_read = _first(_count(details.get("cached_tokens"), "usage cached_tokens") or None,
                        _count(usage.get("cache_read_input_tokens"), "usage cache_read_input_tokens"))
    cache_write = _first(_count(details.get("cache_write_tokens"), "usage cache_write_tokens") or None,
                         _count(details.get("cache_creation_tokens"), "usage cache_creation_tokens") or None,
                         _count(usage.get("cache_creation_input_tokens"), "usage cache_creation_input_tokens"))
    write_1h = _first(_count(creation.get("ephemeral_1h_input_tokens"), "usage ephemeral_1h_input_tokens"))
    if "prompt_tokens" in usage or not usage:
        source = usage if usage else payload
        input_tokens = _first(_count(source.get("prompt_tokens"), "prompt_tokens"))
        output_tokens = _first(_count(source.get("completion_tokens"), "completion_tokens"))
    else:  # provider-native shape
        input_tokens = _first(_count(usage.get("input_tokens"), "usage input_tokens"))
        output_tokens = _first(_count(usage.get("output_tokens"), "usage output_tokens"))
        anthropic = "input_tokens_details" not in usage and (
            (provider or "").startswith("anthropic")
            or "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage)
        if anthropic:  # Anthropic's input_tokens exclude cache reads and writes
            input_tokens += cache_read + cache_write
    reasoning = _first(_count(out_details.get("reasoning_tokens"), "usage reasoning_tokens") or None,
                       _count(out_details.get("thinking_tokens"), "usage thinking_tokens"))
    server_tools = _dict(usage.get("server_tool_use"))
    return {
        "input_tokens": input_tokens,
        "cache_read_tokens": cache_read,
        "cache_write_5m_tokens": max(cache_write - write_1h, 0),
        "cache_write_1h_tokens": min(write_1h, cache_write) if cache_write else write_1h,
        "output_tokens": output_tokens,
        "reasoning_tokens": reasoning,
        "web_searches": _first(_count(server_tools.get("web_search_requests"), "usage web_search_requests")),
    }


def token_disagreement(payload: Mapping[str, Any], counted: Mapping[str, int]) -> str | None:
    """How the payload's top-level counts differ from the usage object's (which were used), or None."""
    if not usage_object(payload):
        return None
    found = []
    for name, canonical in (("prompt_tokens", "input_tokens"), ("completion_tokens", "output_tokens")):
        value = payload.get(name)
        if value is not None and value != counted[canonical]:
            found.append(f"{name}={value!r} (usage: {counted[canonical]})")
    return "; ".join(found)[:256] or None


def _tags(payload: Mapping[str, Any], meta: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for tag in payload.get("request_tags") or ():
        tags[str(tag)] = "true"
    for key in ("user_api_key_alias", "user_api_key_team_alias", "user_api_key_user_id", "user_api_key_org_id",
                "user_api_key_project_id", "user_api_key_end_user_id"):
        if meta.get(key):
            tags[f"litellm.{key.removeprefix('user_api_key_')}"] = str(meta[key])
    for key in ("model_group", "model_id", "call_type"):
        if payload.get(key):
            tags[f"litellm.{key}"] = str(payload[key])
    if payload.get("cache_hit") is True:
        tags["litellm.cache_hit"] = "true"
    for key, value in extra.items():
        if key not in _ATTRIBUTION_KEYS and value is not None and not isinstance(value, (dict, list)):
            tags[str(key)] = str(value)
    return tags


def _status(payload: Mapping[str, Any]) -> tuple[str, str | None, int | None]:
    if payload.get("status") != "failure":
        return "ok", None, None
    info = _dict(payload.get("error_information"))
    error_class = _text(info.get("error_class"))
    code = info.get("error_code")
    http_status = int(code) if isinstance(code, (int, str)) and str(code).isdigit() and int(code) < 1000 else None
    status = "timeout" if error_class and "timeout" in error_class.lower() else "error"
    return status, error_class or "error", http_status


def _ms(start: Any, end: Any, name: str) -> int | None:
    """Milliseconds from startTime to `name` (epoch seconds); absent → None; a value that is not a
    time, or one before the start, rejects the payload as a canonical record would be."""
    if end is None or not isinstance(start, (int, float)) or isinstance(start, bool):
        return None
    if isinstance(end, bool) or not isinstance(end, (int, float)):
        raise Rejected(Reason.INVALID_TYPE, f"{name} {end!r} is not epoch seconds")
    if end < start:
        raise Rejected(Reason.INVALID_LATENCY, f"{name} {end!r} is before startTime {start!r}")
    return round((end - start) * 1000)


def litellm_record(payload: Mapping[str, Any]) -> dict[str, Any]:
    """One canonical record (as a dict; `ts` in epoch ms) from one StandardLoggingPayload."""
    meta = _dict(payload.get("metadata"))
    extra = {**_dict(meta.get("requester_metadata")), **_dict(meta.get("spend_logs_metadata"))}
    provider = _text(payload.get("custom_llm_provider"))
    start = payload.get("startTime")
    status, error_type, http_status = _status(payload)
    record: dict[str, Any] = {
        "event_id": "litellm:" + str(payload.get("litellm_call_id") or payload.get("id") or ""),
        "ts": round(start * 1000) if isinstance(start, (int, float)) else None,
        "source": SOURCE,
        "api_key_id": _text(meta.get("user_api_key_hash")),
        "user_id": _text(payload.get("end_user")) or _text(meta.get("user_api_key_end_user_id"))
        or _text(_dict(payload.get("model_parameters")).get("user")) or _text(meta.get("user_api_key_user_id")),
        "team": _text(meta.get("user_api_key_team_alias")) or _text(meta.get("user_api_key_team_id"))
        or _text(meta.get("team_alias")) or _text(meta.get("team_id")),
        "session_id": _text(payload.get("session_id")),
        "trace_id": _text(payload.get("trace_id")),
        "provider": provider,
        "model": _text(payload.get("model")),
        "stream": bool(payload.get("stream")),
        "latency_ms": _ms(start, payload.get("endTime"), "endTime"),
        "ttft_ms": _ms(start, payload.get("completionStartTime"), "completionStartTime"),
        "status": status,
        "error_type": error_type,
        "http_status": http_status,
        "service_tier": _text(_dict(payload.get("cost_breakdown")).get("service_tier")),
    }
    if record["event_id"] == "litellm:":
        record["event_id"] = None  # no id: the warehouse derives one from the content
    for key in _ATTRIBUTION_KEYS:
        if extra.get(key) not in (None, "") and not isinstance(extra[key], (dict, list)):
            record[key] = str(extra[key])
    if payload.get("cache_hit") is True:  # served by LiteLLM's cache: no provider tokens were used
        record.update(dict.fromkeys(("input_tokens", "cache_read_tokens", "cache_write_5m_tokens",
                                     "cache_write_1h_tokens", "output_tokens", "reasoning_tokens", "web_searches"), 0))
    else:
        record.update(tokens(payload, provider))
    disagreement = None if payload.get("cache_hit") is True else token_disagreement(payload, record)
    cost = payload.get("response_cost")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        record["provider_reported_cost_usd"] = repr(float(cost))
    tags = _tags(payload, meta, extra)
    if disagreement:
        tags["litellm.token_mismatch"] = disagreement
    if tags:
        record["tags"] = orjson.dumps(tags).decode()
    return record


def litellm_batch(payloads: Sequence[Any]) -> RawBatch:
    """The canonical records of a request's payloads as a batch; payload i is record i (line i + 1).
    A payload that is not an object, holds NaN / Infinity, or is `Rejected` becomes a dead letter
    alone."""
    records: list[dict[str, Any]] = []
    kept: list[int] = []
    failures: list[ParseFailure] = []
    for i, payload in enumerate(payloads):
        try:
            if not isinstance(payload, Mapping):
                raise Rejected(Reason.MALFORMED_JSON, f"expected a StandardLoggingPayload object, got "
                                                      f"{type(payload).__name__}")
            non_finite = jsonvalues.describe(payload)
            if non_finite is not None:
                raise Rejected(Reason.INVALID_TYPE, non_finite)
            records.append(litellm_record(payload))
            kept.append(i)
        except Rejected as err:
            failures.append(ParseFailure(i + 1, err.reason, err.detail, jsonvalues.dumps(payload)))
    batch = records_batch(records, [payloads[i] for i in kept])
    batch.line_numbers = [i + 1 for i in kept]
    batch.failures = failures
    return batch
