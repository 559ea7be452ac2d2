"""LiteLLM's StandardLoggingPayload (formats.md §4b) → canonical call records.

`litellm_records(payloads)` maps payload dicts as LiteLLM's `generic_api` logger posts them (and
as a collector reads them from files). Token semantics: LiteLLM normalises usage to OpenAI's
(`prompt_tokens` includes cache reads and writes — verified on litellm 1.110 for Anthropic), with
the cache split in `prompt_tokens_details` and, for Anthropic, `cache_read_input_tokens` /
`cache_creation_input_tokens`. A provider-native usage object (Anthropic `input_tokens`, which
excludes cache) is converted. A response served from LiteLLM's own cache (`cache_hit`) used no
provider tokens: its counts are zero and the hit is tagged. `response_cost` is kept as
`provider_reported_cost_usd`. Mapping is a few dict look-ups per payload; payloads are large, so
JSON parsing dominates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

SOURCE = "litellm"

# spend_logs_metadata / requester_metadata keys that name canonical attribution fields
_ATTRIBUTION_KEYS = ("project", "feature", "route", "environment", "prompt_version", "prompt_prefix_hash",
                     "session_id", "user_id", "team", "routing_policy")


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


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
    """Canonical token counts: input includes cache reads and writes, output includes reasoning."""
    usage = usage_object(payload)
    details = _dict(usage.get("prompt_tokens_details")) or _dict(usage.get("input_tokens_details"))
    out_details = _dict(usage.get("completion_tokens_details")) or _dict(usage.get("output_tokens_details"))
    creation = _dict(details.get("cache_creation_token_details")) or _dict(usage.get("cache_creation"))
    cache_read = _int(details.get("cached_tokens") or usage.get("cache_read_input_tokens"))
    cache_write = _int(details.get("cache_write_tokens") or details.get("cache_creation_tokens")
                       or usage.get("cache_creation_input_tokens"))
    write_1h = _int(creation.get("ephemeral_1h_input_tokens"))
    if "prompt_tokens" in usage or not usage:
        input_tokens = _int(usage.get("prompt_tokens", payload.get("prompt_tokens")))
        output_tokens = _int(usage.get("completion_tokens", payload.get("completion_tokens")))
        if input_tokens < cache_read + cache_write:  # an exclusive count (older LiteLLM): make it inclusive
            input_tokens += cache_read + cache_write
    else:  # provider-native shape
        input_tokens = _int(usage.get("input_tokens"))
        output_tokens = _int(usage.get("output_tokens"))
        anthropic = "input_tokens_details" not in usage and (
            (provider or "").startswith("anthropic")
            or "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage)
        if anthropic:  # Anthropic's input_tokens exclude cache reads and writes
            input_tokens += cache_read + cache_write
    reasoning = _int(out_details.get("reasoning_tokens") or out_details.get("thinking_tokens"))
    server_tools = _dict(usage.get("server_tool_use"))
    return {
        "input_tokens": input_tokens,
        "cache_read_tokens": cache_read,
        "cache_write_5m_tokens": max(cache_write - write_1h, 0),
        "cache_write_1h_tokens": min(write_1h, cache_write) if cache_write else write_1h,
        "output_tokens": output_tokens,
        "reasoning_tokens": min(reasoning, output_tokens) if output_tokens else reasoning,
        "web_searches": _int(server_tools.get("web_search_requests")),
    }


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


def _ms(start: Any, end: Any) -> int | None:
    if not isinstance(start, (int, float)) or not isinstance(end, (int, float)) or end < start:
        return None
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
        "latency_ms": _ms(start, payload.get("endTime")),
        "ttft_ms": _ms(start, payload.get("completionStartTime")),
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
    cost = payload.get("response_cost")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        record["provider_reported_cost_usd"] = repr(float(cost))
    tags = _tags(payload, meta, extra)
    if tags:
        record["tags"] = orjson.dumps(tags).decode()
    return record


def litellm_records(payloads: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Canonical records for StandardLoggingPayload dicts; non-dict items map to empty records
    (which validation then rejects as missing ts/model)."""
    return [litellm_record(p) if isinstance(p, Mapping) else {} for p in payloads]
