"""OpenAI organization Usage API (completions) and Costs API → provider usage and cost buckets.

`GET /organization/usage/completions` gives token counts per bucket and group (input tokens
include cached and cache-write tokens, as in llmledger's canonical semantics);
`GET /organization/costs` gives dollars per day and group as JSON numbers, parsed from their
text as Decimal. Arrays go in brackets form (`group_by[]=model`) as the official SDK sends them.
The admin key comes from the environment variable `collectors.openai.api_key_env` names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import polars as pl

from collectors.base import Batch, Capabilities, Cursor, Kind, Output, Window
from collectors.buckets import (
    MAX_LIMIT,
    Page,
    StreamSpec,
    buckets_frame,
    collect_streams,
    grouped_columns,
    rows_frame,
)
from collectors.config import OpenAIConfig
from collectors.errors import BadResponse, ConfigError
from collectors.http import ApiClient

PROVIDER = "openai"

USAGE_SCHEMA: dict[str, pl.DataType] = {
    "bucket_start": pl.Datetime("ms", "UTC"),
    "bucket_end": pl.Datetime("ms", "UTC"),
    "provider_project_id": pl.String(),
    "user_id": pl.String(),
    "api_key_id": pl.String(),
    "model_raw": pl.String(),
    "service_tier": pl.String(),
    "is_batch": pl.Boolean(),
    "requests": pl.Int64(),
    "input_tokens": pl.Int64(),
    "cache_read_tokens": pl.Int64(),
    "cache_write_5m_tokens": pl.Int64(),
    "uncached_input_tokens": pl.Int64(),
    "output_tokens": pl.Int64(),
}

COST_SCHEMA: dict[str, pl.DataType] = {
    "bucket_start": pl.Datetime("ms", "UTC"),
    "bucket_end": pl.Datetime("ms", "UTC"),
    "provider_project_id": pl.String(),
    "api_key_id": pl.String(),
    "line_item": pl.String(),
    "amount": pl.String(),
    "currency": pl.String(),
    "quantity": pl.String(),
    "quantity_unit": pl.String(),
}

# settings group-by names → the provider table columns they fill
_USAGE_DIMENSIONS = {"project_id": ["provider_project_id"], "user_id": ["user_id"], "api_key_id": ["api_key_id"],
                     "model": ["model"], "batch": ["is_batch"], "service_tier": ["service_tier"]}
_COST_DIMENSIONS = {"project_id": ["provider_project_id"], "api_key_id": ["api_key_id"],
                    "line_item": ["line_item", "model", "token_type"]}


def _epoch(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError) as err:
        raise BadResponse(f"openai: bucket time {value!r} is not Unix seconds") from err


def _buckets(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise BadResponse("openai: expected {'object': 'page', 'data': [...]} from the usage API")
    return body["data"]


def _page(body: dict[str, Any], frame: pl.DataFrame, bounds: list[tuple[datetime, datetime]]) -> Page:
    return Page(frame, buckets_frame(bounds), bool(body.get("has_more")), body.get("next_page"))


def parse_usage_page(body: Any) -> Page:
    """Rows of a completions usage page, in provider-usage columns (model still raw)."""
    rows: list[dict[str, Any]] = []
    bounds: list[tuple[datetime, datetime]] = []
    for bucket in _buckets(body):
        start, end = _epoch(bucket.get("start_time")), _epoch(bucket.get("end_time"))
        bounds.append((start, end))
        for r in bucket.get("results") or []:
            rows.append({
                "bucket_start": start, "bucket_end": end,
                "provider_project_id": r.get("project_id"), "user_id": r.get("user_id"),
                "api_key_id": r.get("api_key_id"), "model_raw": r.get("model"),
                "service_tier": r.get("service_tier"), "is_batch": r.get("batch"),
                "requests": r.get("num_model_requests"), "input_tokens": r.get("input_tokens"),
                "cache_read_tokens": r.get("input_cached_tokens"),
                "cache_write_5m_tokens": r.get("input_cache_write_tokens"),
                "uncached_input_tokens": r.get("input_uncached_tokens"), "output_tokens": r.get("output_tokens"),
            })
    frame = rows_frame(rows, USAGE_SCHEMA).with_columns(
        pl.col("input_tokens", "output_tokens", "requests", "cache_read_tokens", "cache_write_5m_tokens").fill_null(0),
    )
    frame = frame.with_columns(
        # older API versions lack input_uncached_tokens: input minus cached minus written
        pl.col("uncached_input_tokens").fill_null(
            (pl.col("input_tokens") - pl.col("cache_read_tokens") - pl.col("cache_write_5m_tokens")).clip(0)
        ),
        pl.lit(0).alias("cache_write_1h_tokens"),
        pl.lit(0).alias("web_search_requests"),
    )
    return _page(body, frame, bounds)


def parse_cost_page(body: Any) -> Page:
    """Rows of a costs page: dollars as exact decimals; model and token type split off the line item."""
    rows: list[dict[str, Any]] = []
    bounds: list[tuple[datetime, datetime]] = []
    for bucket in _buckets(body):
        start, end = _epoch(bucket.get("start_time")), _epoch(bucket.get("end_time"))
        bounds.append((start, end))
        for r in bucket.get("results") or []:
            amount = r.get("amount") or {}
            quantity = r.get("quantity")
            rows.append({
                "bucket_start": start, "bucket_end": end,
                "provider_project_id": r.get("project_id"), "api_key_id": r.get("api_key_id"),
                "line_item": r.get("line_item"), "amount": str(amount.get("value", "0")),
                "currency": str(amount.get("currency") or "usd"),
                "quantity": None if quantity is None else str(quantity), "quantity_unit": r.get("quantity_unit"),
            })
    frame = rows_frame(rows, COST_SCHEMA)
    # line items read "<model>, <kind>" for model usage ("gpt-4o-2024-08-06, input"); others have no comma
    split = pl.col("line_item").str.splitn(", ", 2)
    has_model = pl.col("line_item").str.contains(", ", literal=True)
    amount = pl.col("amount").cast(pl.Decimal(38, 18), strict=False)
    frame = frame.with_columns(
        pl.when(has_model).then(split.struct.field("field_0")).alias("model_raw"),
        pl.when(has_model).then(split.struct.field("field_1")).alias("token_type"),
        amount.alias("amount_decimal"),
        pl.col("quantity").cast(pl.Decimal(38, 18), strict=False),
        pl.col("currency").str.to_lowercase(),
    )
    bad = frame.filter(pl.col("amount_decimal").is_null())
    if bad.height:
        raise BadResponse(f"openai: cost amount {bad['amount'][0]!r} is not a number")
    frame = frame.drop("amount").rename({"amount_decimal": "amount"}).with_columns(
        pl.when(pl.col("currency") == "usd").then(pl.col("amount")).alias("cost_usd"),
    )
    return _page(body, frame, bounds)


def _query(config: OpenAIConfig, group_by: list[str], width: str):  # noqa: ANN202 - a params builder
    def params(start: datetime, end: datetime, limit: int, page: str | None) -> list[tuple[str, Any]]:
        query: list[tuple[str, Any]] = [
            ("start_time", int(start.timestamp())), ("end_time", int(end.timestamp())),
            ("bucket_width", width), ("limit", limit),
        ]
        query += [("group_by[]", g) for g in group_by]
        if page:
            query.append(("page", page))
        return query

    return params


class OpenAIUsageCollector:
    """Pulls OpenAI's organization usage (completions) and cost buckets."""

    name: ClassVar[str] = "openai"
    Config: ClassVar[type[OpenAIConfig]] = OpenAIConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        kind=Kind.PULL,
        outputs=frozenset({Output.PROVIDER_USAGE, Output.PROVIDER_COSTS}),
        incremental=True,
        backfill=True,
        provider=PROVIDER,
        summary="OpenAI organization Usage API (completions) and Costs API buckets",
    )

    def __init__(self, config: OpenAIConfig) -> None:
        self.config = config

    def streams(self) -> list[StreamSpec]:
        """The endpoints this configuration reads."""
        c = self.config
        specs: list[StreamSpec] = []
        if c.usage:
            w = c.bucket_width
            specs.append(StreamSpec(
                f"openai:completions:{w}", "organization/usage/completions", Output.PROVIDER_USAGE, w,
                min(c.page_limit or MAX_LIMIT[w], MAX_LIMIT[w]), _query(c, c.group_by, w), parse_usage_page,
                "collectors.openai.group_by / bucket_width",
            ))
        if c.costs:
            specs.append(StreamSpec(
                "openai:costs:1d", "organization/costs", Output.PROVIDER_COSTS, "1d", min(c.page_limit or 180, 180),
                _query(c, c.cost_group_by, "1d"), parse_cost_page, "collectors.openai.cost_group_by",
            ))
        return specs

    def collect(self, window: Window, cursor: Cursor | None) -> Iterator[Batch]:
        """Read every stream from its cursor (or `window`); a failing stream does not stop the next."""
        key = os.environ.get(self.config.api_key_env, "").strip()
        if not key:
            raise ConfigError(
                f"openai: set the environment variable {self.config.api_key_env} to an OpenAI organization "
                "admin key (sk-admin-…)", setting=self.config.api_key_env,
            )
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        with ApiClient(base_url=self.config.base_url, headers=headers, config=self.config.http,
                       source="openai", key_env=self.config.api_key_env) as client:
            yield from collect_streams(client, self.streams(), window, cursor,
                                       refetch=self.config.refetch_buckets,
                                       backfill_days=self.config.backfill_days, label=self._label)

    def _label(self, frame: pl.DataFrame, spec: StreamSpec) -> pl.DataFrame:
        usage = spec.output is Output.PROVIDER_USAGE
        grouped = grouped_columns(self.config.group_by if usage else self.config.cost_group_by,
                                  _USAGE_DIMENSIONS if usage else _COST_DIMENSIONS)
        return frame.with_columns(
            pl.lit(self.config.project).alias("project"),
            pl.lit(PROVIDER).alias("provider"),
            pl.lit(spec.name).alias("stream"),
            pl.lit(spec.width).alias("bucket_width"),
            pl.lit(grouped, dtype=pl.List(pl.String)).alias("grouped_by"),
        )
