"""Cost and usage attribution over raw calls: totals, breakdowns by a dimension, cache hit
ratios and latency percentiles. Money comes back as Decimal(38, 18) columns (`*_usd`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries.scope import DIMENSIONS, Filters, Scope, where

_MEASURES = """
    count() AS calls,
    sum(cost_usd) AS cost_usd,
    sum(input_cost_usd) AS input_cost_usd,
    sum(cache_read_cost_usd) AS cache_read_cost_usd,
    sum(cache_write_cost_usd) AS cache_write_cost_usd,
    sum(output_cost_usd) AS output_cost_usd,
    sum(tool_cost_usd) AS tool_cost_usd,
    sum(batch_discount_usd) AS batch_discount_usd,
    sum(input_tokens) AS input_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_5m_tokens + cache_write_1h_tokens) AS cache_write_tokens,
    sum(output_tokens) AS output_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    countIf(status != 'ok') AS errors,
    countIf(unpriced) AS unpriced_calls
"""


def totals(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None, *, tag: str = "totals"
) -> pl.DataFrame:
    """One row of totals for the range."""
    params: dict[str, Any] = {}
    sql = f"SELECT {_MEASURES} FROM calls WHERE {where(scope, start, end, filters, params=params)}"
    return wh.query_df(sql, params, tag=tag)


def usage_by(
    wh: Warehouse,
    scope: Scope,
    dimension: str,
    start: datetime,
    end: datetime,
    filters: Filters | None = None,
    *,
    limit: int | None = None,
    tag: str = "usage_by",
) -> pl.DataFrame:
    """Measures per value of `dimension` (column `key`), most expensive first."""
    column = identifier(dimension, DIMENSIONS)
    params: dict[str, Any] = {}
    sql = (
        f"SELECT {column} AS key, {_MEASURES} FROM calls WHERE {where(scope, start, end, filters, params=params)} "
        "GROUP BY key ORDER BY cost_usd DESC, key"
    )
    if limit is not None:
        params["limit"] = int(limit)
        sql += " LIMIT {limit:UInt32}"
    return wh.query_df(sql, params, tag=tag)


def cache_hit_ratio(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None, *, tag: str = "cache"
) -> float | None:
    """cache_read / (cache_read + cache_write) tokens over the range; None when nothing was cached."""
    params: dict[str, Any] = {}
    sql = (
        "SELECT sum(cache_read_tokens), sum(cache_write_5m_tokens + cache_write_1h_tokens) FROM calls "
        f"WHERE {where(scope, start, end, filters, params=params)}"
    )
    reads, writes = wh.query_rows(sql, params, tag=tag)[0]
    total = int(reads or 0) + int(writes or 0)
    return None if total == 0 else int(reads) / total


def latency_percentiles(
    wh: Warehouse,
    scope: Scope,
    start: datetime,
    end: datetime,
    filters: Filters | None = None,
    *,
    dimension: str | None = None,
    tag: str = "latency",
) -> pl.DataFrame:
    """p50/p95/p99 and mean of end-to-end latency, TTFT and TPOT (ms), and of queue time where the
    source reports it (`queue_calls` of them), overall or per dimension."""
    params: dict[str, Any] = {}
    key = f"{identifier(dimension, DIMENSIONS)} AS key, " if dimension else ""
    group = " GROUP BY key ORDER BY key" if dimension else ""
    sql = f"""
        SELECT {key}
            count() AS calls,
            avg(latency_ms) AS latency_mean_ms,
            quantilesTDigest(0.5, 0.95, 0.99)(latency_ms) AS latency_q,
            avg(ttft_ms) AS ttft_mean_ms,
            quantilesTDigest(0.5, 0.95, 0.99)(ttft_ms) AS ttft_q,
            quantilesTDigestIf(0.5, 0.95, 0.99)(
                (latency_ms - ttft_ms) / (output_tokens - 1),
                isNotNull(ttft_ms) AND output_tokens > 1) AS tpot_q,
            countIf(isNotNull(queue_ms)) AS queue_calls,
            avgIf(queue_ms, isNotNull(queue_ms)) AS queue_mean_ms,
            quantilesTDigestIf(0.5, 0.95, 0.99)(queue_ms, isNotNull(queue_ms)) AS queue_q
        FROM calls WHERE {where(scope, start, end, filters, params=params)} AND status = 'ok'{group}
    """
    frame = wh.query_df(sql, params, tag=tag)
    return frame.with_columns(
        *(
            pl.col(f"{m}_q").list.get(i).alias(f"{m}_p{p}_ms")
            for m in ("latency", "ttft", "tpot", "queue")
            for i, p in enumerate((50, 95, 99))
        )
    ).drop("latency_q", "ttft_q", "tpot_q", "queue_q")
