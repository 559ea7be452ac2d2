"""LiteLLM `LiteLLM_SpendLogs` exports (CSV from Postgres, or JSON / JSON lines) → calls.

Semantics (formats.md §4a): `prompt_tokens` is LiteLLM's OpenAI-style total, cache reads
included; current releases add Anthropic cache writes too (`prompt_includes_cache_writes`, on by
default; older ones added only reads, and their writes are added here). Cache and reasoning
counts come from `metadata.additional_usage_values` (or `usage_object`); the TTL split of cache
writes from `cache_creation_token_details` when present (else all count as 5-minute writes).
`cache_hit` is text: a hit is a response served from LiteLLM's own cache, which no provider billed,
so its tokens are zeroed (kept in tags). `spend` is USD, kept beside llmledger's price. MCP tool
invocations (`mcp_namespaced_tool_name`) are tool runs, not LLM calls. Attribution comes from
`end_user` / `user`, the key's team, and `metadata.spend_logs_metadata` (feature, route,
environment, trace/span ids, tool_name …; other keys become tags). Files of LiteLLM's
StandardLoggingPayload are a different format, handled by the service's push endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import polars as pl

from collectors.base import Batch, Capabilities, Cursor, Kind, Output, Window
from collectors.config import LiteLLMSpendLogsConfig
from collectors.errors import ConfigError
from collectors.gateways.mapping import Mapper, is_anthropic, tags_json
from collectors.gateways.source import read_source, require_any
from ingest.readers import RawBatch

COLUMNS = (
    "request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens", "completion_tokens",
    "startTime", "endTime", "request_duration_ms", "completionStartTime", "model", "model_id", "model_group",
    "custom_llm_provider", "api_base", "user", "metadata", "cache_hit", "cache_key", "request_tags", "team_id",
    "organization_id", "end_user", "requester_ip_address", "session_id", "status", "mcp_namespaced_tool_name",
    "agent_id",
)

_S = pl.String()
_TTL = pl.Struct({"ephemeral_5m_input_tokens": _S, "ephemeral_1h_input_tokens": _S})
_USAGE = pl.Struct({
    "cache_read_input_tokens": _S,
    "cache_creation_input_tokens": _S,
    "prompt_tokens_details": pl.Struct({"cached_tokens": _S, "cache_creation_tokens": _S, "cache_write_tokens": _S,
                                        "cache_creation_token_details": _TTL}),
    "completion_tokens_details": pl.Struct({"reasoning_tokens": _S}),
    "cache_creation": _TTL,
    "server_tool_use": pl.Struct({"web_search_requests": _S}),
})
METADATA = pl.Struct({
    "user_api_key_alias": _S, "user_api_key_team_id": _S, "user_api_key_team_alias": _S,
    "user_api_key_user_id": _S, "user_api_key_end_user_id": _S, "status": _S,
    "additional_usage_values": _USAGE, "usage_object": _USAGE,
    "error_information": pl.Struct({"error_code": _S, "error_class": _S}),
})
# keys of metadata.spend_logs_metadata that are canonical fields; the others become tags
ATTRIBUTION = ("project", "user_id", "team", "feature", "route", "environment", "session_id", "trace_id", "span_id",
               "parent_span_id", "tool_name", "prompt_version", "prompt_prefix_hash")


def _text(expr: pl.Expr) -> pl.Expr:
    """Empty text as null."""
    return pl.when(expr.str.strip_chars() != "").then(expr)


def _usage(meta: pl.Expr, *path: str) -> pl.Expr:
    """A usage extra from additional_usage_values, else from usage_object."""
    values = []
    for root in ("additional_usage_values", "usage_object"):
        expr = meta.struct.field(root)
        for part in path:
            expr = expr.struct.field(part)
        values.append(expr)
    return pl.coalesce(values)


def map_spend_logs(raw: RawBatch, config: LiteLLMSpendLogsConfig) -> tuple[RawBatch, pl.DataFrame]:
    """(calls batch, tool runs frame) of one batch of spend-log rows."""
    src = raw.frame
    m = Mapper(src)
    meta = pl.col("_meta")
    spend_meta = m.objects(src["metadata"].str.json_path_match("$.spend_logs_metadata"),
                           "metadata.spend_logs_metadata")
    known = {k: spend_meta[k] for k in ATTRIBUTION if k in spend_meta.columns}
    extra_tags = {k: pl.lit(spend_meta[k]) for k in spend_meta.columns if k not in ATTRIBUTION}
    start = m.timestamp("startTime", required=True)
    frame = src.with_columns(
        m.json("metadata", METADATA).alias("_meta"),
        start.alias("_start"),
        (m.timestamp("endTime") - start).dt.total_milliseconds().alias("_duration"),
        (m.timestamp("completionStartTime") - start).dt.total_milliseconds().alias("_ttft"),
        *(pl.Series(f"_slm_{k}", v) for k, v in known.items()),
    )
    m.frame = frame  # problems below are expressions over this frame

    def attr(key: str) -> pl.Expr:
        return _text(pl.col(f"_slm_{key}")) if key in known else pl.lit(None, dtype=pl.String)

    cache_hit = pl.col("cache_hit").str.strip_chars().str.to_lowercase().is_in(["true", "1", "yes"]).fill_null(False)
    prompt = m.integer(pl.col("prompt_tokens"), "prompt_tokens")
    completion = m.integer(pl.col("completion_tokens"), "completion_tokens")
    reads = m.integer(pl.coalesce(_usage(meta, "cache_read_input_tokens"),
                                  _usage(meta, "prompt_tokens_details", "cached_tokens")), "cache_read_input_tokens")
    writes = m.integer(pl.coalesce(_usage(meta, "cache_creation_input_tokens"),
                                   _usage(meta, "prompt_tokens_details", "cache_creation_tokens"),
                                   _usage(meta, "prompt_tokens_details", "cache_write_tokens")),  # OpenAI, 2026
                       "cache_creation_input_tokens")
    writes_1h = m.integer(pl.coalesce(
        _usage(meta, "prompt_tokens_details", "cache_creation_token_details", "ephemeral_1h_input_tokens"),
        _usage(meta, "cache_creation", "ephemeral_1h_input_tokens")), "ephemeral_1h_input_tokens")
    reasoning = m.integer(_usage(meta, "completion_tokens_details", "reasoning_tokens"), "reasoning_tokens")
    searches = m.integer(_usage(meta, "server_tool_use", "web_search_requests"), "web_search_requests")
    model = pl.coalesce(_text(pl.col("model")), _text(pl.col("model_group")))
    missing_writes = is_anthropic(pl.col("custom_llm_provider").fill_null(""), model.fill_null("")) & pl.lit(
        not config.prompt_includes_cache_writes)
    billed = ~cache_hit  # a response from LiteLLM's own cache reached no provider

    def tokens(expr: pl.Expr) -> pl.Expr:
        return pl.when(billed).then(expr.fill_null(0)).otherwise(0)

    status = pl.coalesce(_text(pl.col("status")), meta.struct.field("status")).str.to_lowercase()
    error_code = meta.struct.field("error_information").struct.field("error_code")
    mapped = frame.select(
        pl.col("request_id").alias("event_id"),
        pl.col("_start").alias("ts"),
        attr("project").alias("project"),
        _text(pl.col("api_key")).alias("api_key_id"),
        pl.coalesce(_text(pl.col("end_user")), attr("user_id"), _text(pl.col("user")),
                    meta.struct.field("user_api_key_user_id")).alias("user_id"),
        pl.coalesce(attr("team"), meta.struct.field("user_api_key_team_alias"), _text(pl.col("team_id")),
                    meta.struct.field("user_api_key_team_id")).alias("team"),
        *(attr(k).alias(k) for k in ("feature", "route", "environment", "trace_id", "span_id", "parent_span_id",
                                     "tool_name", "prompt_version", "prompt_prefix_hash")),
        pl.coalesce(_text(pl.col("session_id")), attr("session_id")).alias("session_id"),
        tags_json({
            "litellm_key_alias": meta.struct.field("user_api_key_alias"),
            "litellm_model_group": pl.col("model_group"),
            "litellm_call_type": pl.col("call_type"),
            "litellm_request_tags": pl.col("request_tags").str.replace_all(r'[\[\]"]', "").str.strip_chars(),
            "litellm_cache_hit": pl.when(cache_hit).then(pl.lit("true")),
            "litellm_cached_prompt_tokens": pl.when(cache_hit).then(prompt.cast(pl.String)),
            "litellm_cached_completion_tokens": pl.when(cache_hit).then(completion.cast(pl.String)),
            "organization_id": pl.col("organization_id"),
            "agent_id": pl.col("agent_id"),
            **extra_tags,
        }).alias("tags"),
        _text(pl.col("custom_llm_provider")).alias("provider"),
        model.alias("model"),
        tokens(prompt + pl.when(missing_writes).then(writes.fill_null(0)).otherwise(0)).alias("input_tokens"),
        tokens(reads).alias("cache_read_tokens"),
        tokens(writes - writes_1h.fill_null(0)).alias("cache_write_5m_tokens"),
        tokens(writes_1h).alias("cache_write_1h_tokens"),
        tokens(completion).alias("output_tokens"),
        tokens(reasoning).alias("reasoning_tokens"),
        tokens(searches).alias("web_searches"),
        pl.coalesce(m.integer(pl.col("request_duration_ms"), "request_duration_ms"), pl.col("_duration"))
        .alias("latency_ms"),
        pl.col("_ttft").alias("ttft_ms"),
        pl.when(status == "success").then(pl.lit("ok")).when(status == "failure").then(pl.lit("error"))
        .otherwise(status).alias("status"),
        meta.struct.field("error_information").struct.field("error_class").alias("error_type"),
        pl.when(error_code.str.contains(r"^\d{3}$")).then(error_code.cast(pl.Int64, strict=False)).alias("http_status"),
        m.decimal(pl.col("spend"), "spend").alias("provider_reported_cost_usd"),
    )
    # MCP tool invocations with a readable start time are tool runs; the rest stay calls (and are
    # dead-lettered by validation if they are not readable calls either)
    tool = (_text(pl.col("mcp_namespaced_tool_name")).is_not_null() | pl.col("call_type").str.contains("mcp"))
    is_tool = src.select((tool.fill_null(False) & pl.lit(start).is_not_null()).alias("t")).to_series()
    tools = mapped.filter(is_tool).select(
        "event_id", "ts", pl.lit(config.source or "litellm-spend-logs").alias("source"),
        pl.col("project").fill_null("default"),
        pl.coalesce(pl.col("tool_name"), pl.lit(src.filter(is_tool)["mcp_namespaced_tool_name"])).alias("tool_name"),
        "route", "user_id", "session_id", "trace_id", "span_id", "parent_span_id",
        pl.col("latency_ms").alias("duration_ms"), "status", "error_type",
    )
    return m.finish(raw, mapped, exclude=is_tool), tools


class LiteLLMSpendLogsImport:
    """Imports a `LiteLLM_SpendLogs` export."""

    name: ClassVar[str] = "litellm-spend-logs"
    Config: ClassVar[type[LiteLLMSpendLogsConfig]] = LiteLLMSpendLogsConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        kind=Kind.FILE,
        outputs=frozenset({Output.CALLS, Output.TOOL_RUNS}),
        incremental=False,
        backfill=False,
        summary="LiteLLM_SpendLogs table export (CSV, JSON, JSON lines)",
    )

    def __init__(self, config: LiteLLMSpendLogsConfig) -> None:
        self.config = config

    def collect(self, window: Window, cursor: Cursor | None) -> Iterator[Batch]:
        """Batches of calls (and MCP tool runs) from the file."""
        if self.config.path is None:
            raise ConfigError("litellm-spend-logs: no file to import", setting="path")
        for i, raw in enumerate(read_source(self.config.path, self.config.format, COLUMNS,
                                            batch_rows=self.config.batch_rows, batch_bytes=self.config.batch_bytes)):
            if i == 0:
                require_any(raw, ("request_id", "startTime"), "a LiteLLM_SpendLogs export")
            calls, tools = map_spend_logs(raw, self.config)
            if tools.height:
                yield Batch(Output.TOOL_RUNS, frame=tools)
            yield Batch(Output.CALLS, records=calls)
