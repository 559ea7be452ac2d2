"""Reconciliation: what providers report (usage and cost exports) against what llmledger logged.

Per UTC day, provider and the chosen dimensions (API key, model), the provider's tokens and
billed dollars sit beside the logged calls' tokens, llmledger's computed cost and the gateway's
own cost figure, with differences in $ and %. A positive `cost_diff_usd` is spend the gateway
never saw — LLM calls made outside it. Provider rows only count where the export was grouped by
every requested dimension (`grouped_by`), so a report not split by API key never masquerades as
unexplained spend of an empty key; its figures are NULL instead. Reads the `*_live` views, so a
re-fetched bucket is counted once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries.scope import Scope

DIMENSIONS = ("api_key_id", "model", "service_tier")

_SQL = """
WITH
usage AS (
    SELECT toDate(bucket_start) AS day, provider{dims},
        sum(requests) AS provider_requests,
        sum(input_tokens) AS provider_input_tokens,
        sum(cache_read_tokens) AS provider_cache_read_tokens,
        sum(cache_write_5m_tokens + cache_write_1h_tokens) AS provider_cache_write_tokens,
        sum(output_tokens) AS provider_output_tokens
    FROM provider_usage_live
    WHERE {provider_where} AND bucket_width = {{width:String}}
    GROUP BY day, provider{dims}
),
costs AS (
    SELECT toDate(bucket_start) AS day, provider{dims}, sum(cost_usd) AS provider_cost_usd
    FROM provider_costs_live
    WHERE {provider_where}
    GROUP BY day, provider{dims}
),
logged AS (
    SELECT toDate(ts) AS day, provider{dims},
        count() AS logged_calls,
        sum(input_tokens) AS logged_input_tokens,
        sum(cache_read_tokens) AS logged_cache_read_tokens,
        sum(cache_write_5m_tokens + cache_write_1h_tokens) AS logged_cache_write_tokens,
        sum(output_tokens) AS logged_output_tokens,
        sum(cost_usd) AS logged_cost_usd,
        sum(provider_reported_cost_usd) AS gateway_reported_cost_usd
    FROM calls
    WHERE {calls_where} AND deployment = 'api'
      AND provider IN (SELECT provider FROM provider_usage_live WHERE {provider_where}
                       UNION DISTINCT SELECT provider FROM provider_costs_live WHERE {provider_where})
    GROUP BY day, provider{dims}
)
SELECT day, provider{dims},
    provider_requests, logged_calls,
    provider_input_tokens, logged_input_tokens,
    toInt64(provider_input_tokens) - toInt64(logged_input_tokens) AS input_tokens_diff,
    provider_cache_read_tokens, logged_cache_read_tokens,
    provider_cache_write_tokens, logged_cache_write_tokens,
    provider_output_tokens, logged_output_tokens,
    toInt64(provider_output_tokens) - toInt64(logged_output_tokens) AS output_tokens_diff,
    100 * (toFloat64(provider_input_tokens) - ifNull(logged_input_tokens, 0)) / nullIf(provider_input_tokens, 0)
        AS input_tokens_diff_pct,
    provider_cost_usd, logged_cost_usd, gateway_reported_cost_usd,
    provider_cost_usd - ifNull(logged_cost_usd, toDecimal128(0, 18)) AS cost_diff_usd,
    100 * toFloat64(cost_diff_usd) / nullIf(toFloat64(provider_cost_usd), 0) AS cost_diff_pct
FROM usage
FULL OUTER JOIN costs USING (day, provider{dims})
FULL OUTER JOIN logged USING (day, provider{dims})
ORDER BY day, provider{dims}
SETTINGS join_use_nulls = 1
"""


def reconcile(
    wh: Warehouse,
    scope: Scope,
    start: datetime,
    end: datetime,
    *,
    by: Sequence[str] = ("model",),
    bucket_width: str = "1d",
    tag: str = "reconcile",
) -> pl.DataFrame:
    """Provider-reported vs logged tokens and cost per day, provider and `by` (⊆ api_key_id, model,
    service_tier).

    [start, end) is UTC and should fall on day boundaries. `bucket_width` picks which usage
    stream to read when several widths were collected. NULL provider figures mean the export
    was not grouped by a requested dimension; NULL logged figures mean no call was logged.
    Columns: day, provider, *by, provider_/logged_ requests, input, cache read/write and output
    tokens, token differences (absolute and %), provider_cost_usd, logged_cost_usd (llmledger's
    pricing), gateway_reported_cost_usd, cost_diff_usd (provider − logged) and cost_diff_pct.
    """
    dims = [identifier(d, DIMENSIONS) for d in dict.fromkeys(by)]
    params: dict[str, Any] = {"start": start, "end": end, "width": bucket_width, "by": list(dict.fromkeys(by))}
    provider_where = (f"{scope.clause(params)} AND bucket_start >= {{start:DateTime64(3, 'UTC')}} "
                      "AND bucket_start < {end:DateTime64(3, 'UTC')} AND hasAll(grouped_by, {by:Array(String)})")
    calls_where = f"{scope.clause(params)} AND ts >= {{start:DateTime64(3, 'UTC')}} AND ts < {{end:DateTime64(3, 'UTC')}}"
    dim_list = "".join(f", {d}" for d in dims)
    sql = _SQL.format(dims=dim_list, provider_where=provider_where, calls_where=calls_where)
    return wh.query_df(sql, params, tag=tag)


def unlogged_spend(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, tag: str = "reconcile:unlogged"
) -> pl.DataFrame:
    """Per provider over the range: billed dollars, logged dollars (llmledger's pricing), and the
    share of the bill no logged call explains (positive differences per day and model summed)."""
    daily = reconcile(wh, scope, start, end, by=("model",), tag=tag)
    return (
        daily.group_by("provider")
        .agg(
            pl.col("provider_cost_usd").sum(),
            pl.col("logged_cost_usd").sum(),
            pl.col("cost_diff_usd").filter(pl.col("cost_diff_usd") > 0).sum().alias("unlogged_cost_usd"),
        )
        .with_columns(
            (pl.col("unlogged_cost_usd").cast(pl.Float64) / pl.col("provider_cost_usd").cast(pl.Float64))
            .alias("unlogged_share")
        )
        .sort("provider")
    )
