"""Cost and usage attribution: totals, breakdowns by a dimension, cache hit ratios and latency
percentiles. Whole days and hours are read from the daily and hourly rollups where they keep what
is asked (`hybrid`), the rest from raw calls; sums are exact either way. Money comes back as
Decimal(38, 18) columns (`*_usd`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries import hybrid
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


MEASURE_NAMES = ("calls", "cost_usd", "input_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd",
                 "output_cost_usd", "tool_cost_usd", "batch_discount_usd", "input_tokens", "cache_read_tokens",
                 "cache_write_tokens", "output_tokens", "reasoning_tokens", "errors", "unpriced_calls")


def totals(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None, *, tag: str = "totals"
) -> pl.DataFrame:
    """One row of totals for the range."""
    params: dict[str, Any] = {}
    rows = hybrid.rows(scope, start, end, filters, keys={}, measures=MEASURE_NAMES, params=params, days=True)
    if rows is not None:
        return wh.query_df(f"SELECT {hybrid.summed(MEASURE_NAMES)} FROM ({rows})", params, tag=tag)
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
    rows = hybrid.rows(scope, start, end, filters, keys={"key": dimension}, measures=MEASURE_NAMES, params=params,
                       days=True)
    if rows is not None:
        sql = f"SELECT key, {hybrid.summed(MEASURE_NAMES)} FROM ({rows}) GROUP BY key ORDER BY cost_usd DESC, key"
    else:
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
    measures = ("cache_read_tokens", "cache_write_tokens")
    rows = hybrid.rows(scope, start, end, filters, keys={}, measures=measures, params=params, days=True)
    if rows is not None:
        sql = f"SELECT sum(cache_read_tokens), sum(cache_write_tokens) FROM ({rows})"
    else:
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
    source reports it (`queue_calls` of them), overall or per dimension. Whole hours come from the
    hourly rollup's digests, the partial hours at the edges from raw calls."""
    params: dict[str, Any] = {}
    key = f"{identifier(dimension, DIMENSIONS)} AS key, " if dimension else ""
    group = " GROUP BY key ORDER BY key" if dimension else ""
    rows = hybrid.rows(scope, start, end, filters, keys={"key": dimension} if dimension else {},
                       measures=LATENCY_MEASURES, params=params, days=True)
    if rows is not None:
        levels = hybrid.DIGEST_LEVELS
        sql = f"""
            SELECT {"key, " if dimension else ""}calls, latency_mean_ms, ttft_mean_ms,
                n_queue AS queue_calls, queue_mean_ms,
                arrayMap(i -> latency_q4[i], [1, 3, 4]) AS latency_q, arrayMap(i -> ttft_q4[i], [1, 3, 4]) AS ttft_q,
                arrayMap(i -> tpot_q4[i], [1, 3, 4]) AS tpot_q, arrayMap(i -> queue_q4[i], [1, 3, 4]) AS queue_q
            FROM (
                SELECT {"toString(key) AS key, " if dimension else ""}sum(ok_calls) AS calls,
                    if(sum(latency_calls) = 0, NULL, sum(latency_ms_sum) / sum(latency_calls)) AS latency_mean_ms,
                    quantilesTDigestMerge({levels})(latency_digest) AS latency_q4,
                    if(sum(ttft_calls) = 0, NULL, sum(ttft_ms_sum) / sum(ttft_calls)) AS ttft_mean_ms,
                    quantilesTDigestMerge({levels})(ttft_digest) AS ttft_q4,
                    quantilesTDigestMerge({levels})(tpot_digest) AS tpot_q4,
                    sum(queue_calls) AS n_queue,
                    if(sum(queue_calls) = 0, NULL, sum(queue_ms_sum) / sum(queue_calls)) AS queue_mean_ms,
                    quantilesTDigestMerge({levels})(queue_digest) AS queue_q4
                FROM ({rows}){" GROUP BY key" if dimension else ""}
            )
            {"WHERE calls > 0 ORDER BY key" if dimension else ""}
        """
        frame = wh.query_df(sql, params, tag=tag).with_columns(
            pl.col("latency_mean_ms", "ttft_mean_ms", "queue_mean_ms").cast(pl.Float64))
    else:
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
    return hybrid.nan_as_null(frame.with_columns(
        *(
            pl.col(f"{m}_q").list.get(i, null_on_oob=True).cast(pl.Float32).alias(f"{m}_p{p}_ms")
            for m in ("latency", "ttft", "tpot", "queue")
            for i, p in enumerate((50, 95, 99))
        )
    ).drop("latency_q", "ttft_q", "tpot_q", "queue_q"))


LATENCY_MEASURES = ("ok_calls", "latency_calls", "latency_ms_sum", "latency_digest", "ttft_calls", "ttft_ms_sum",
                    "ttft_digest", "tpot_digest", "queue_calls", "queue_ms_sum", "queue_digest")
