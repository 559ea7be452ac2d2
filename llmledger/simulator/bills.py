"""The providers' own bills for a simulated range: the daily cost and usage exports OpenAI's and
Anthropic's admin APIs would return for the logged calls, so the demo's reconciliation has
something to reconcile. They equal the logged calls per day and model, except one story the
reconciliation is there to find: from the range's middle, on working days, a batch job outside
the gateway calls the project's busiest Anthropic model directly, and its share of that model's
bill is spend no logged call explains.

Written through the collectors' own writer (`ProviderBucketWriter`), one daily stream per
provider, costs and usage grouped by model as the collectors store them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from ingest.catalog import Catalog
from ingest.collected import Batch, Output
from ingest.provider_exports import ProviderBucketWriter
from warehouse.client import Warehouse

BILLED_PROVIDERS = ("openai", "anthropic")
UNLOGGED_SHARE = Decimal("0.08")  # the direct batch job, as a share of the model's logged spend

_DAILY = """
WITH busiest AS (
    SELECT project, argMax(model, spend) AS model FROM (
        SELECT project, model, sum(cost_usd) AS spend FROM calls
        WHERE provider = 'anthropic' AND deployment = 'api'
          AND ts >= {since:DateTime64(3, 'UTC')} AND ts < {until:DateTime64(3, 'UTC')}
        GROUP BY project, model)
    GROUP BY project
)
SELECT project, provider, model, day,
    toDecimal128(token_usd * (1 + extra), 18) AS token_usd, tool_usd,
    toUInt64(round(requests * (1 + toFloat64(extra)))) AS requests,
    toUInt64(round(input_tokens * (1 + toFloat64(extra)))) AS input_tokens,
    toUInt64(round(cache_read_tokens * (1 + toFloat64(extra)))) AS cache_read_tokens,
    toUInt64(round(cache_write_5m_tokens * (1 + toFloat64(extra)))) AS cache_write_5m_tokens,
    toUInt64(round(cache_write_1h_tokens * (1 + toFloat64(extra)))) AS cache_write_1h_tokens,
    toUInt64(round(output_tokens * (1 + toFloat64(extra)))) AS output_tokens,
    extra > 0 AS unlogged
FROM (
    SELECT c.project AS project, c.provider AS provider, c.model AS model, toDate(c.ts) AS day,
        sum(c.cost_usd - c.tool_cost_usd) AS token_usd, sum(c.tool_cost_usd) AS tool_usd, count() AS requests,
        sum(c.input_tokens) AS input_tokens, sum(c.cache_read_tokens) AS cache_read_tokens,
        sum(c.cache_write_5m_tokens) AS cache_write_5m_tokens, sum(c.cache_write_1h_tokens) AS cache_write_1h_tokens,
        sum(c.output_tokens) AS output_tokens,
        if(c.model = any(b.model) AND day >= {middle:Date} AND toDayOfWeek(day) <= 5,
           {share:Decimal(9, 4)}, toDecimal32(0, 4)) AS extra
    FROM calls AS c LEFT JOIN busiest AS b ON b.project = c.project
    WHERE c.provider IN {providers:Array(String)} AND c.deployment = 'api'
      AND c.ts >= {since:DateTime64(3, 'UTC')} AND c.ts < {until:DateTime64(3, 'UTC')}
    GROUP BY project, provider, model, day
)
ORDER BY project, provider, day, model
"""


def provider_bills(wh: Warehouse, since: datetime, until: datetime) -> pl.DataFrame:
    """Per project, provider, UTC day and model of [since, until) (whole days): what the provider
    bills (`token_usd`, `tool_usd`) and counts; `unlogged` marks the rows with the direct job."""
    first = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if first < since:
        first += timedelta(days=1)
    last = until.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    middle = first + (last - first) / 2
    params: dict[str, Any] = {"since": first, "until": last, "middle": middle.date(), "share": UNLOGGED_SHARE,
                              "providers": list(BILLED_PROVIDERS)}
    return wh.query_df(_DAILY, params, tag="demo:bills")


def seed_provider_bills(wh: Warehouse, catalog: Catalog, since: datetime, until: datetime) -> int:
    """Write the providers' daily cost and usage exports of [since, until) as their collectors
    would; returns the rows written."""
    bills = provider_bills(wh, since, until)
    if bills.height == 0:
        return 0
    days = bills.select(
        pl.col("day").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("bucket_start")).unique()
    buckets = days.with_columns((pl.col("bucket_start") + pl.duration(days=1)).alias("bucket_end")).sort("bucket_start")
    writer = ProviderBucketWriter(wh, catalog)
    written = 0
    try:
        for (project, provider), rows in bills.partition_by(["project", "provider"], as_dict=True).items():
            dated = rows.with_columns(
                pl.col("day").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("bucket_start"),
            ).with_columns(
                (pl.col("bucket_start") + pl.duration(days=1)).alias("bucket_end"),
                pl.lit("1d").alias("bucket_width"),
                pl.lit(["model"], dtype=pl.List(pl.String)).alias("grouped_by"),
                pl.col("model").alias("model_raw"),
            )
            written += writer.write(Batch(Output.PROVIDER_COSTS, frame=_costs(dated, provider),
                                          stream=f"{provider}:costs:1d", buckets=buckets), project=str(project))
            written += writer.write(Batch(Output.PROVIDER_USAGE, frame=_usage(dated, provider),
                                          stream=f"{provider}:usage:1d", buckets=buckets), project=str(project))
    finally:
        writer.close()
    return written


def _costs(rows: pl.DataFrame, provider: str) -> pl.DataFrame:
    """One line per model and day for its tokens, one per day for tool use (web search) without a
    model, as both providers' cost exports itemise them."""
    money = pl.Decimal(38, 18)
    base = ["provider", "bucket_width", "bucket_start", "bucket_end"]
    tokens = rows.select(
        *base, "grouped_by", "model_raw",
        (pl.col("model_raw") + " usage").alias("line_item"), pl.lit("tokens").alias("cost_type"),
        pl.col("token_usd").cast(money).alias("amount"), pl.col("token_usd").cast(money).alias("cost_usd"),
    )
    tools = (rows.group_by(base).agg(pl.col("tool_usd").sum(), pl.col("grouped_by").first())
             .filter(pl.col("tool_usd") > 0)
             .select(*base, "grouped_by", pl.lit("").alias("model_raw"), pl.lit("web search").alias("line_item"),
                     pl.lit("web_search").alias("cost_type"), pl.col("tool_usd").cast(money).alias("amount"),
                     pl.col("tool_usd").cast(money).alias("cost_usd")))
    return pl.concat([tokens, tools.cast(tokens.schema)]).with_columns(  # type: ignore[arg-type]
        pl.lit(provider).alias("provider"), pl.lit("usd").alias("currency"),
        pl.lit(f"{provider}:costs:1d").alias("stream"))


def _usage(rows: pl.DataFrame, provider: str) -> pl.DataFrame:
    """Tokens and requests per model and day; uncached input is input less cache reads and writes
    (the warehouse's input is inclusive of both)."""
    return rows.select(
        "provider", "bucket_width", "bucket_start", "bucket_end", "grouped_by", "model_raw", "requests",
        "input_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "output_tokens",
        (pl.col("input_tokens") - pl.col("cache_read_tokens") - pl.col("cache_write_5m_tokens")
         - pl.col("cache_write_1h_tokens")).clip(0).alias("uncached_input_tokens"),
    ).with_columns(pl.lit(f"{provider}:usage:1d").alias("stream"))
