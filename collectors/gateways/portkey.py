"""Portkey log exports (JSON lines; formats.md §5b) → calls.

`cost` is in **cents** (divided by 100 exactly). Tokens come from the logged response's `usage`
when present, else `req_units` / `res_units`. Portkey answers in OpenAI's shape; for Claude it
reports Anthropic's `input_tokens` as `prompt_tokens` with `cache_read_input_tokens` /
`cache_creation_input_tokens` beside it, so those are added to input (UNVERIFIED against a live
Portkey export — the OpenAI-shaped Anthropic usage is read this way because its `total_tokens`
sums all four). A native Anthropic usage object is read as such. A `cache_status` HIT is a
response from Portkey's cache that no provider billed: its tokens are zeroed (kept in tags).
`metadata` gives attribution (`_user` → user_id; feature, route, team, tool_name …; other keys
become tags); `trace_id` / `span_id` / `parent_span_id` give tool parentage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import polars as pl

from collectors.base import Batch, Capabilities, Cursor, Kind, Output, Window
from collectors.config import PortkeyConfig
from collectors.errors import ConfigError
from collectors.gateways.mapping import Mapper, is_anthropic, tags_json
from collectors.gateways.source import read_source, require_any
from ingest.readers import RawBatch

COLUMNS = (
    "id", "log_id", "request_id", "created_at", "request.body", "response.body", "response", "is_success", "ai_org",
    "ai_provider", "ai_model", "req_units", "res_units", "total_units", "cost", "cost_currency", "request_url",
    "request_method", "response_status_code", "response_time", "cache_status", "cache_type", "stream_mode",
    "retry_success_count", "trace_id", "span_id", "parent_span_id", "span_name", "mode", "virtual_key", "config",
    "prompt_slug", "prompt_version_id", "metadata", "runtime", "sdk_version",
)
_S = pl.String()
USAGE = pl.Struct({
    "prompt_tokens": _S, "completion_tokens": _S, "input_tokens": _S, "output_tokens": _S,
    "cache_read_input_tokens": _S, "cache_creation_input_tokens": _S,
    "prompt_tokens_details": pl.Struct({"cached_tokens": _S, "cache_write_tokens": _S}),
    "completion_tokens_details": pl.Struct({"reasoning_tokens": _S}),
    "cache_creation": pl.Struct({"ephemeral_5m_input_tokens": _S, "ephemeral_1h_input_tokens": _S}),
    "server_tool_use": pl.Struct({"web_search_requests": _S}),
})
ATTRIBUTION = {"_user": "user_id", "user": "user_id", "user_id": "user_id", "feature": "feature", "route": "route",
               "team": "team", "environment": "environment", "env": "environment", "project": "project",
               "session_id": "session_id", "tool_name": "tool_name", "prompt_version": "prompt_version"}


def _text(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.strip_chars() != "").then(expr)


def map_logs(raw: RawBatch) -> RawBatch:
    """Canonical calls of one batch of Portkey log rows."""
    src = raw.frame
    m = Mapper(src)
    meta = m.objects(src["metadata"], "metadata")
    known: dict[str, pl.Series] = {}
    for key, field in ATTRIBUTION.items():
        if key in meta.columns and field not in known:
            known[field] = meta[key]
    extra = {k: pl.lit(meta[k]) for k in meta.columns if k not in ATTRIBUTION}
    body = pl.coalesce(pl.col("response.body"), pl.col("response").str.json_path_match("$.body"))
    usage = src.select(body.str.json_path_match("$.usage").alias("_usage")).to_series()
    frame = src.with_columns(m.json_series(usage, USAGE, "response.body usage"),
                             *(pl.Series(f"_m_{k}", v) for k, v in known.items()))
    m.frame = frame

    def attr(field: str) -> pl.Expr:
        return _text(pl.col(f"_m_{field}")) if field in known else pl.lit(None, dtype=pl.String)

    u = pl.col("_usage")
    provider = pl.coalesce(_text(pl.col("ai_org")), _text(pl.col("ai_provider"))).str.to_lowercase()
    model = _text(pl.col("ai_model"))
    openai_shape = u.struct.field("prompt_tokens").is_not_null()
    native_anthropic = u.struct.field("input_tokens").is_not_null() & ~openai_shape
    prompt = m.integer(pl.coalesce(u.struct.field("prompt_tokens"), u.struct.field("input_tokens"),
                                   pl.col("req_units")), "prompt_tokens")
    reads = m.integer(pl.coalesce(u.struct.field("cache_read_input_tokens"),
                                  u.struct.field("prompt_tokens_details").struct.field("cached_tokens")),
                      "cached tokens").fill_null(0)
    writes = m.integer(pl.coalesce(u.struct.field("cache_creation_input_tokens"),  # Anthropic
                                   u.struct.field("prompt_tokens_details").struct.field("cache_write_tokens")),  # OpenAI
                       "cache_creation_input_tokens").fill_null(0)
    writes_1h = m.integer(u.struct.field("cache_creation").struct.field("ephemeral_1h_input_tokens"),
                          "ephemeral_1h_input_tokens").fill_null(0)
    anthropic_cache = native_anthropic | (is_anthropic(provider.fill_null(""), model.fill_null(""))
                                          & u.struct.field("cache_read_input_tokens").is_not_null())
    input_tokens = prompt + pl.when(anthropic_cache).then(reads + writes).otherwise(0)
    cache_status = pl.col("cache_status").str.to_uppercase()
    billed = ~cache_status.str.contains("HIT").fill_null(False)

    def tokens(expr: pl.Expr) -> pl.Expr:
        return pl.when(billed).then(expr).otherwise(0)

    cents = m.decimal(pl.col("cost"), "cost")
    usd = pl.col("cost_currency").str.to_lowercase().fill_null("usd").is_in(["usd", ""])
    success = pl.col("is_success").str.to_lowercase().is_in(["1", "true"])
    status_code = m.integer(pl.col("response_status_code"), "response_status_code")
    mapped = frame.select(
        pl.coalesce(_text(pl.col("id")), _text(pl.col("log_id")), _text(pl.col("request_id"))).alias("event_id"),
        pl.col("created_at").alias("ts"),
        attr("project").alias("project"),
        _text(pl.col("virtual_key")).alias("api_key_id"),
        *(attr(f).alias(f) for f in ("user_id", "team", "feature", "route", "environment", "session_id",
                                     "tool_name")),
        pl.coalesce(attr("prompt_version"), _text(pl.col("prompt_version_id"))).alias("prompt_version"),
        _text(pl.col("trace_id")).alias("trace_id"),
        _text(pl.col("span_id")).alias("span_id"),
        _text(pl.col("parent_span_id")).alias("parent_span_id"),
        tags_json({"portkey_mode": pl.col("mode"), "portkey_span_name": pl.col("span_name"),
                   "portkey_cache_status": pl.col("cache_status"), "portkey_retries": pl.col("retry_success_count"),
                   "portkey_prompt": pl.col("prompt_slug"),
                   "portkey_cached_prompt_tokens": pl.when(~billed).then(prompt.cast(pl.String)), **extra})
        .alias("tags"),
        provider.alias("provider"),
        model.alias("model"),
        pl.col("stream_mode").alias("stream"),
        tokens(input_tokens).alias("input_tokens"),
        tokens(reads).alias("cache_read_tokens"),
        tokens(writes - writes_1h).alias("cache_write_5m_tokens"),
        tokens(writes_1h).alias("cache_write_1h_tokens"),
        tokens(m.integer(pl.coalesce(u.struct.field("completion_tokens"), u.struct.field("output_tokens"),
                                     pl.col("res_units")), "completion_tokens")).alias("output_tokens"),
        tokens(m.integer(u.struct.field("completion_tokens_details").struct.field("reasoning_tokens"),
                         "reasoning_tokens")).alias("reasoning_tokens"),
        tokens(m.integer(u.struct.field("server_tool_use").struct.field("web_search_requests"),
                         "web_search_requests")).alias("web_searches"),
        m.integer(pl.col("response_time"), "response_time").alias("latency_ms"),
        pl.when(success).then(pl.lit("ok")).otherwise(pl.lit("error")).alias("status"),
        pl.when(status_code.is_between(100, 599)).then(status_code).alias("http_status"),
        pl.when(usd).then(cents / 100).alias("provider_reported_cost_usd"),
    )
    return m.finish(raw, mapped)


class PortkeyImport:
    """Imports a Portkey log export."""

    name: ClassVar[str] = "portkey"
    Config: ClassVar[type[PortkeyConfig]] = PortkeyConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        kind=Kind.FILE,
        outputs=frozenset({Output.CALLS}),
        incremental=False,
        backfill=False,
        summary="Portkey log export (JSON lines; cost in cents)",
    )

    def __init__(self, config: PortkeyConfig) -> None:
        self.config = config

    def collect(self, window: Window, cursor: Cursor | None) -> Iterator[Batch]:
        """Batches of calls from the file."""
        if self.config.path is None:
            raise ConfigError("portkey: no file to import", setting="path")
        for i, raw in enumerate(read_source(self.config.path, self.config.format, COLUMNS,
                                            batch_rows=self.config.batch_rows, batch_bytes=self.config.batch_bytes)):
            if i == 0:
                require_any(raw, ("created_at", "ai_model"), "a Portkey log export")
            yield Batch(Output.CALLS, records=map_logs(raw))
