"""Helicone request exports (`POST /v1/request/query` answers, JSON lines, or the UI's CSV) → calls.

Semantics: for Claude Helicone stores the provider's own prompt count, which excludes cache reads
and writes (its Anthropic processor reports `input_tokens` there and the cache counts beside it),
and llmledger adds them. For OpenAI-style providers two conventions exist, told apart per row from
the data: current Helicone stores `prompt_tokens` *minus* cached tokens (its `openaiBodyProcessor`),
older releases the provider's inclusive count. The inclusive count is taken, in order, from the
stored response body (`response_body.usage.prompt_tokens`, the provider's own), from the row's
`total_tokens` (stored prompt + cache reads + completion = total means the cache was left out;
stored prompt + completion = total means it is in), and otherwise the current convention is
assumed (cache reads added). `delay_ms` is end-to-end latency and
`time_to_first_token` TTFT, both ms; `costUSD` is dollars. Custom properties
(`Helicone-Property-*`) and session headers give attribution: feature, route, team,
environment, tool / trace / span ids; the session id becomes `session_id`; other keys are tags.
Reasoning tokens are read from the stored response body's usage when the export includes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import polars as pl

from collectors.base import Batch, Capabilities, Cursor, Kind, Output, Window
from collectors.config import HeliconeConfig
from collectors.errors import ConfigError
from collectors.gateways.mapping import Mapper, is_anthropic, tags_json
from collectors.gateways.source import read_source, require_any
from ingest.readers import RawBatch

COLUMNS = (
    "request_id", "request_created_at", "request_path", "request_user_id", "request_properties", "properties",
    "request_model", "model_override", "response_id", "response_created_at", "response_status", "response_model",
    "provider", "delay_ms", "time_to_first_token", "total_tokens", "prompt_tokens", "prompt_cache_write_tokens",
    "prompt_cache_read_tokens", "completion_tokens", "reasoning_tokens", "costUSD", "cost", "country_code",
    "helicone_user", "prompt_id", "target_url", "model", "response_body",
)
ATTRIBUTION = {
    "feature": "feature", "route": "route", "team": "team", "environment": "environment", "env": "environment",
    "project": "project", "user": "user_id", "user_id": "user_id", "tool": "tool_name", "tool_name": "tool_name",
    "trace_id": "trace_id", "span_id": "span_id", "parent_span_id": "parent_span_id",
    "prompt_version": "prompt_version", "helicone_session_id": "session_id", "session_id": "session_id",
}


def _text(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.strip_chars() != "").then(expr)


def map_requests(raw: RawBatch) -> RawBatch:
    """Canonical calls of one batch of Helicone request rows."""
    src = raw.frame
    m = Mapper(src)
    properties = src.select(pl.coalesce("request_properties", "properties")).to_series()
    props = m.objects(properties, "request_properties", strip=("helicone-property-",))
    known: dict[str, pl.Series] = {}
    for key, field in ATTRIBUTION.items():
        if key in props.columns and field not in known:
            known[field] = props[key]
    extra = {k: pl.lit(props[k]) for k in props.columns if k not in ATTRIBUTION}
    frame = src.with_columns(*(pl.Series(f"_p_{k}", v) for k, v in known.items()))
    m.frame = frame

    def prop(field: str) -> pl.Expr:
        return _text(pl.col(f"_p_{field}")) if field in known else pl.lit(None, dtype=pl.String)

    model = pl.coalesce(_text(pl.col("model_override")), _text(pl.col("response_model")),
                        _text(pl.col("request_model")), _text(pl.col("model")))
    provider = pl.col("provider").str.to_lowercase()
    prompt = m.integer(pl.col("prompt_tokens"), "prompt_tokens").fill_null(0)
    reads = m.integer(pl.col("prompt_cache_read_tokens"), "prompt_cache_read_tokens").fill_null(0)
    writes = m.integer(pl.col("prompt_cache_write_tokens"), "prompt_cache_write_tokens").fill_null(0)
    completion = m.integer(pl.col("completion_tokens"), "completion_tokens")
    total = m.integer(pl.col("total_tokens"), "total_tokens")
    body = pl.col("response_body")
    body_prompt = m.integer(body.str.json_path_match("$.usage.prompt_tokens"), "response_body.usage.prompt_tokens")
    output = completion.fill_null(0)
    inclusive = (  # OpenAI-style rows: does the stored prompt count already hold the cached tokens?
        pl.when(reads == 0).then(True)
        .when(total == prompt + reads + output).then(False)
        .when(total == prompt + output).then(True)
        .otherwise(False)  # undecidable: current Helicone leaves the cache out
    )
    openai_input = pl.coalesce(body_prompt, pl.when(inclusive).then(prompt).otherwise(prompt + reads))
    reasoning = m.integer(pl.coalesce(
        _text(pl.col("reasoning_tokens")),
        body.str.json_path_match("$.usage.completion_tokens_details.reasoning_tokens"),
        body.str.json_path_match("$.usage.output_tokens_details.reasoning_tokens"),
    ), "reasoning_tokens")
    status = m.integer(pl.col("response_status"), "response_status")
    mapped = frame.select(
        pl.col("request_id").alias("event_id"),
        pl.col("request_created_at").alias("ts"),
        prop("project").alias("project"),
        pl.coalesce(_text(pl.col("request_user_id")), prop("user_id")).alias("user_id"),
        *(prop(f).alias(f) for f in ("team", "feature", "route", "environment", "session_id", "trace_id", "span_id",
                                     "parent_span_id", "tool_name", "prompt_version")),
        tags_json({"helicone_path": pl.col("request_path"), "helicone_country": pl.col("country_code"),
                   "helicone_prompt_id": pl.col("prompt_id"), **extra}).alias("tags"),
        provider.alias("provider"),
        model.alias("model"),
        # Claude: the provider's input_tokens, cache counted beside it; others: see the docstring
        pl.when(is_anthropic(provider.fill_null(""), model.fill_null(""))).then(prompt + reads + writes)
        .otherwise(openai_input).alias("input_tokens"),
        reads.alias("cache_read_tokens"),
        writes.alias("cache_write_5m_tokens"),
        completion.alias("output_tokens"),
        reasoning.alias("reasoning_tokens"),
        m.integer(pl.col("time_to_first_token"), "time_to_first_token").alias("ttft_ms"),
        m.integer(pl.col("delay_ms"), "delay_ms").alias("latency_ms"),
        pl.when(status.is_between(200, 299)).then(pl.lit("ok"))
        .when(status.is_in([408, 504])).then(pl.lit("timeout")).otherwise(pl.lit("error")).alias("status"),
        pl.when(status.is_between(100, 599)).then(status).alias("http_status"),
        m.decimal(pl.coalesce(_text(pl.col("costUSD")), _text(pl.col("cost"))), "costUSD")
        .alias("provider_reported_cost_usd"),
    )
    return m.finish(raw, mapped)


class HeliconeImport:
    """Imports a Helicone request export."""

    name: ClassVar[str] = "helicone"
    Config: ClassVar[type[HeliconeConfig]] = HeliconeConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        kind=Kind.FILE,
        outputs=frozenset({Output.CALLS}),
        incremental=False,
        backfill=False,
        summary="Helicone request export (JSON, JSON lines, CSV)",
    )

    def __init__(self, config: HeliconeConfig) -> None:
        self.config = config

    def collect(self, window: Window, cursor: Cursor | None) -> Iterator[Batch]:
        """Batches of calls from the file."""
        if self.config.path is None:
            raise ConfigError("helicone: no file to import", setting="path")
        for i, raw in enumerate(read_source(self.config.path, self.config.format, COLUMNS,
                                            batch_rows=self.config.batch_rows, batch_bytes=self.config.batch_bytes)):
            if i == 0:
                require_any(raw, ("request_id", "request_created_at"), "a Helicone request export")
            yield Batch(Output.CALLS, records=map_requests(raw))
