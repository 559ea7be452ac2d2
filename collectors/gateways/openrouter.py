"""OpenRouter generation records (`GET /api/v1/generation?id=…` answers; formats.md §5c) → calls.

One record per line, bare or wrapped in `{"data": {…}}` (a JSON array of them works too).
Calls through OpenRouter are billed by OpenRouter, so `provider` is `openrouter` and the model
keeps its `vendor/model` id; the upstream provider is a tag. Tokens are the native counts
(`native_tokens_*`, else the normalised `tokens_*`), read with OpenAI semantics: cached and
reasoning tokens are parts of prompt and completion. `total_cost` is USD. `latency` is the total
in ms; TTFT is derived as `latency − generation_time` (the time before generation started) for
streamed calls. `cancelled` → status cancelled.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import polars as pl

from collectors.base import Batch, Capabilities, Cursor, Kind, Output, Window
from collectors.config import OpenRouterConfig
from collectors.errors import ConfigError
from collectors.gateways.mapping import Mapper, tags_json
from collectors.gateways.source import read_source, require_any
from ingest.readers import RawBatch

FIELDS = (
    "id", "upstream_id", "created_at", "model", "provider_name", "total_cost", "usage", "cache_discount",
    "upstream_inference_cost", "is_byok", "streamed", "cancelled", "latency", "moderation_latency", "generation_time",
    "finish_reason", "native_finish_reason", "tokens_prompt", "tokens_completion", "native_tokens_prompt",
    "native_tokens_completion", "native_tokens_reasoning", "native_tokens_cached", "num_search_results", "origin",
    "app_id", "external_user", "api_type", "router", "service_tier", "session_id", "data_region",
)
COLUMNS = (*FIELDS, "data")
_DATA = pl.Struct({f: pl.String() for f in FIELDS})


def map_generations(raw: RawBatch) -> RawBatch:
    """Canonical calls of one batch of generation records."""
    src = raw.frame
    m = Mapper(src)
    wrapped = m.json("data", _DATA).struct.unnest()
    frame = src.select(pl.coalesce(pl.col(f), pl.lit(wrapped[f])).alias(f) for f in FIELDS)
    m.frame = frame
    latency = m.integer(pl.col("latency"), "latency")
    generation = m.integer(pl.col("generation_time"), "generation_time")
    streamed = pl.col("streamed").str.to_lowercase().is_in(["true", "1"]).fill_null(False)
    cancelled = pl.col("cancelled").str.to_lowercase().is_in(["true", "1"]).fill_null(False)
    finish = pl.col("finish_reason").str.to_lowercase()
    mapped = frame.select(
        pl.col("id").alias("event_id"),
        pl.col("created_at").alias("ts"),
        pl.col("external_user").alias("user_id"),
        pl.col("session_id"),
        tags_json({"openrouter_provider": pl.col("provider_name"), "openrouter_router": pl.col("router"),
                   "openrouter_app_id": pl.col("app_id"), "openrouter_byok": pl.col("is_byok"),
                   "openrouter_finish_reason": pl.col("finish_reason"), "openrouter_api_type": pl.col("api_type"),
                   "openrouter_upstream_cost_usd": pl.col("upstream_inference_cost")}).alias("tags"),
        pl.lit("openrouter").alias("provider"),
        pl.col("model"),
        pl.col("service_tier"),
        pl.col("streamed").alias("stream"),
        m.integer(pl.coalesce(pl.col("native_tokens_prompt"), pl.col("tokens_prompt")), "native_tokens_prompt")
        .alias("input_tokens"),
        m.integer(pl.col("native_tokens_cached"), "native_tokens_cached").alias("cache_read_tokens"),
        m.integer(pl.coalesce(pl.col("native_tokens_completion"), pl.col("tokens_completion")),
                  "native_tokens_completion").alias("output_tokens"),
        m.integer(pl.col("native_tokens_reasoning"), "native_tokens_reasoning").alias("reasoning_tokens"),
        latency.alias("latency_ms"),
        pl.when(streamed & (generation <= latency)).then(latency - generation).alias("ttft_ms"),
        pl.when(cancelled).then(pl.lit("cancelled")).when(finish == "error").then(pl.lit("error"))
        .otherwise(pl.lit("ok")).alias("status"),
        m.decimal(pl.col("total_cost"), "total_cost").alias("provider_reported_cost_usd"),
    )
    return m.finish(raw, mapped)


class OpenRouterImport:
    """Imports OpenRouter generation records."""

    name: ClassVar[str] = "openrouter"
    Config: ClassVar[type[OpenRouterConfig]] = OpenRouterConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        kind=Kind.FILE,
        outputs=frozenset({Output.CALLS}),
        incremental=False,
        backfill=False,
        summary="OpenRouter generation records (GET /api/v1/generation answers, one per line)",
    )

    def __init__(self, config: OpenRouterConfig) -> None:
        self.config = config

    def collect(self, window: Window, cursor: Cursor | None) -> Iterator[Batch]:
        """Batches of calls from the file."""
        if self.config.path is None:
            raise ConfigError("openrouter: no file to import", setting="path")
        for i, raw in enumerate(read_source(self.config.path, self.config.format, COLUMNS,
                                            batch_rows=self.config.batch_rows, batch_bytes=self.config.batch_bytes)):
            if i == 0:
                require_any(raw, ("id", "data"), "OpenRouter generation records")
            yield Batch(Output.CALLS, records=map_generations(raw))
