"""The canonical call record: one row per LLM call (design.md §3).

`CallIn` is the documented shape that files and the push API accept; its field list is also the
source of the hot path's Polars read schema (`READ_SCHEMA`), so the two cannot drift. Stored
columns that llmledger computes (model_raw, costs, ingested_at, …) are not part of `CallIn`.

Token semantics follow OpenAI / OpenTelemetry: `input_tokens` includes cached and cache-write
tokens; `output_tokens` includes reasoning tokens. A record may carry a provider's native
`usage` object instead of the token fields; normalisation converts it (Anthropic's
`input_tokens` excludes cache reads/writes; Gemini's candidates exclude thoughts).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    """How a call ended."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


class Deployment(StrEnum):
    """Where the model ran."""

    API = "api"
    SELF_HOSTED = "self_hosted"


class CallIn(BaseModel):
    """One LLM call as a source reports it. Only `ts` and `model` are required."""

    model_config = ConfigDict(extra="ignore", use_enum_values=True)

    # identity
    event_id: str | None = Field(None, max_length=256, description="Idempotency key: the source's id. "
                                 "Absent: derived from a hash of the record's content.")
    ts: datetime | str | int | float = Field(..., description="Request start. ISO 8601 (naive = UTC) or epoch "
                                             "seconds / ms / µs / ns; stored as UTC milliseconds.")
    source: str | None = Field(None, description="Producer of the record (file name, gateway, collector).")
    # attribution
    project: str | None = Field(None, description="Tenant / project; default 'default'.")
    api_key_id: str | None = Field(None, description="Provider or gateway API key id (never the key itself).")
    user_id: str | None = None
    team: str | None = None
    feature: str | None = None
    route: str | None = None
    environment: str | None = Field(None, description="prod / staging / dev …")
    session_id: str | None = Field(None, description="Conversation / session; multi-turn growth is tracked per session.")
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    tool_name: str | None = Field(None, description="Set when a tool (not the user-facing app) made this call.")
    prompt_version: str | None = Field(None, description="Prompt template version, for cache-collapse causes.")
    prompt_prefix_hash: str | None = Field(None, description="Hash of the cacheable prompt prefix.")
    tags: dict[str, str] | None = Field(None, description="Free-form string tags.")
    # model
    provider: str | None = Field(None, description="openai, anthropic, google, … or self_hosted; inferred from the "
                                 "model when absent.")
    model: str = Field(..., min_length=1, description="Model as sent to the provider; normalised on ingest.")
    deployment: Deployment | None = Field(None, description="api or self_hosted; inferred from the provider.")
    node: str | None = Field(None, description="Inference node (self-hosted).")
    service_tier: str | None = Field(None, description="Provider service tier: default, flex, priority, …")
    is_batch: bool | None = Field(None, description="Sent through a Batch API (discounted).")
    stream: bool | None = None
    # tokens (canonical semantics)
    input_tokens: int | None = Field(None, ge=0, description="All input tokens, cached and cache-write included.")
    cache_read_tokens: int | None = Field(None, ge=0, description="Input tokens read from the prompt cache.")
    cache_write_5m_tokens: int | None = Field(None, ge=0, description="Input tokens written to a 5-minute cache.")
    cache_write_1h_tokens: int | None = Field(None, ge=0, description="Input tokens written to a 1-hour cache.")
    output_tokens: int | None = Field(None, ge=0, description="All output tokens, reasoning included.")
    reasoning_tokens: int | None = Field(None, ge=0, description="Reasoning / thinking tokens (part of output).")
    web_searches: int | None = Field(None, ge=0, description="Server-side tool uses billed per use.")
    usage: dict[str, Any] | None = Field(None, description="Provider-native usage object (OpenAI chat/responses, "
                                         "Anthropic messages, Gemini usageMetadata), used when token fields are absent.")
    # latency
    ttft_ms: int | None = Field(None, ge=0, description="Time to first token.")
    latency_ms: int | None = Field(None, ge=0, description="End-to-end latency.")
    queue_ms: int | None = Field(None, ge=0, description="Time queued before processing, where known.")
    # outcome
    status: Status | None = Field(None, description="ok / error / timeout / cancelled; default ok.")
    error_type: str | None = None
    http_status: int | None = Field(None, ge=0, le=999)
    # routing
    routing_policy: str | None = None
    cascade_step: int | None = Field(None, ge=0, le=255, description="0 = first model tried.")
    escalated: bool | None = Field(None, description="This call exists because a cheaper step was not good enough.")
    router_score: float | None = None
    # provider's own figure
    provider_reported_cost_usd: Decimal | None = Field(None, description="Cost the source reported, kept beside ours.")


def _polars_type(name: str) -> pl.DataType:
    """The type the JSON reader uses for a CallIn field (strings for what is parsed later)."""
    if name in _READ_AS_TEXT:
        return pl.String()
    annotation = str(CallIn.model_fields[name].annotation)
    if "bool" in annotation:
        return pl.Boolean()
    if "int" in annotation:
        return pl.Int64()
    if "float" in annotation:
        return pl.Float64()
    return pl.String()


# Parsed after reading: ts (ISO text or epoch numbers), tags (a JSON object kept as text for the
# warehouse to decode), costs (exact decimal text), status/deployment (validated as text).
_READ_AS_TEXT = {"ts", "tags", "provider_reported_cost_usd", "status", "deployment"}

_COUNT = pl.Int64()
USAGE_SCHEMA = pl.Struct(
    {
        # OpenAI chat completions
        "prompt_tokens": _COUNT,
        "completion_tokens": _COUNT,
        "prompt_tokens_details": pl.Struct({"cached_tokens": _COUNT, "cache_write_tokens": _COUNT}),
        "completion_tokens_details": pl.Struct({"reasoning_tokens": _COUNT}),
        # OpenAI responses and Anthropic messages share input_tokens / output_tokens
        "input_tokens": _COUNT,
        "output_tokens": _COUNT,
        "input_tokens_details": pl.Struct({"cached_tokens": _COUNT, "cache_write_tokens": _COUNT}),
        "output_tokens_details": pl.Struct({"reasoning_tokens": _COUNT, "thinking_tokens": _COUNT}),
        # Anthropic messages
        "cache_read_input_tokens": _COUNT,
        "cache_creation_input_tokens": _COUNT,
        "cache_creation": pl.Struct({"ephemeral_5m_input_tokens": _COUNT, "ephemeral_1h_input_tokens": _COUNT}),
        "server_tool_use": pl.Struct({"web_search_requests": _COUNT}),
        "service_tier": pl.String(),  # Anthropic: standard / priority / batch (Message Batches results)
        # Gemini usageMetadata (camelCase on the wire)
        "promptTokenCount": _COUNT,
        "cachedContentTokenCount": _COUNT,
        "candidatesTokenCount": _COUNT,
        "thoughtsTokenCount": _COUNT,
        "toolUsePromptTokenCount": _COUNT,
    }
)

READ_SCHEMA: dict[str, pl.DataType] = {
    name: (USAGE_SCHEMA if name == "usage" else _polars_type(name)) for name in CallIn.model_fields
}

TOKEN_FIELDS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "web_searches",
)

# The longest value (in characters) each text field may have; a record with a longer one is
# dead-lettered `field_too_long` (nothing is truncated: a truncated id or label would silently
# merge different users, sessions or routes). Tags are measured as their JSON object.
ID_MAX_CHARS = 256
FIELD_MAX_CHARS: dict[str, int] = {
    **dict.fromkeys(("event_id", "project", "api_key_id", "user_id", "session_id", "trace_id", "span_id",
                     "parent_span_id", "prompt_prefix_hash"), ID_MAX_CHARS),
    **dict.fromkeys(("source", "team", "feature", "environment", "tool_name", "prompt_version", "provider",
                     "model_raw", "node", "service_tier", "routing_policy", "error_type"), 256),
    "route": 1024,
    "tags": 8192,
}

# Stored columns of `calls` that the pipeline computes rather than reads.
COMPUTED_COLUMNS = (
    "model_raw",
    "ingested_at",
    "batch_id",
    "cost_usd",
    "input_cost_usd",
    "cache_read_cost_usd",
    "cache_write_cost_usd",
    "output_cost_usd",
    "tool_cost_usd",
    "batch_discount_usd",
    "price_source",
    "unpriced",
)
