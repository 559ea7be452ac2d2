"""Time series, top-N and cache hit ratios over raw calls, for dashboards and the read API.

Buckets come from an allow-listed grain (minute, 5min, hour, day, week starting Monday, all UTC);
measures from an allow-listed set; a stacking dimension keeps its `top` values by the measure
and folds the rest into `other`. At hour grain and coarser, whole hours come from the hourly
rollups where they keep what is asked, and at day and week grain whole days from the daily ones
(`hybrid`). Money columns are Decimal(38, 18).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from warehouse import latency_hours
from warehouse.client import Warehouse, identifier
from warehouse.queries import cache_ratio, hybrid
from warehouse.queries.scope import DIMENSIONS, Filters, Scope, where

GRAINS: dict[str, str] = {
    "minute": "toDateTime64(toStartOfMinute(ts), 3, 'UTC')",
    "5min": "toDateTime64(toStartOfFiveMinutes(ts), 3, 'UTC')",
    "hour": "toDateTime64(toStartOfHour(ts), 3, 'UTC')",
    "day": "toDateTime64(toStartOfDay(ts), 3, 'UTC')",
    "week": "toDateTime64(toMonday(ts), 3, 'UTC')",
}

MEASURES: dict[str, str] = {
    "cost_usd": "sum(cost_usd)",
    "calls": "count()",
    "input_tokens": "sum(input_tokens)",
    "output_tokens": "sum(output_tokens)",
    "cache_read_tokens": "sum(cache_read_tokens)",
    "cache_write_tokens": "sum(cache_write_5m_tokens + cache_write_1h_tokens)",
    "reasoning_tokens": "sum(reasoning_tokens)",
    "errors": "countIf(status != 'ok')",
    "provider_reported_cost_usd": "sum(ifNull(provider_reported_cost_usd, 0))",
}

OTHER = "other"
COARSE_GRAINS = frozenset({"hour", "day", "week"})  # what whole hours of the rollups can be bucketed into
DAY_GRAINS = frozenset({"day", "week"})  # what whole days of the daily rollups can be bucketed into


def _grain(grain: str) -> str:
    if grain not in GRAINS:
        raise ValueError(f"{grain!r} is not one of {sorted(GRAINS)}")
    return GRAINS[grain]


def _measure(measure: str) -> str:
    if measure not in MEASURES:
        raise ValueError(f"{measure!r} is not one of {sorted(MEASURES)}")
    return MEASURES[measure]


def time_series(
    wh: Warehouse,
    scope: Scope,
    start: datetime,
    end: datetime,
    *,
    grain: str = "hour",
    measure: str = "cost_usd",
    dimension: str | None = None,
    top: int = 10,
    filters: Filters | None = None,
    tag: str = "series",
) -> pl.DataFrame:
    """Columns `bucket`, (`key`), `value`: the measure per bucket, stacked by `dimension`'s top values."""
    params: dict[str, Any] = {}
    bucket, value = _grain(grain), _measure(measure)
    rows = None
    if grain in COARSE_GRAINS and measure in hybrid.MEASURES:
        rows = hybrid.rows(scope, start, end, filters, keys={"key": dimension} if dimension else {},
                           measures=[measure], params=params, days=grain in DAY_GRAINS)
    if rows is not None:
        at = hybrid.bucket(bucket)
        if dimension is None:
            sql = f"SELECT {at} AS bucket, sum({measure}) AS value FROM ({rows}) GROUP BY bucket ORDER BY bucket"
            return wh.query_df(sql, params, tag=tag)
        params["top"] = int(top)
        sql = f"""
            WITH parts AS ({rows})
            SELECT {at} AS bucket,
                   if(key IN (SELECT key FROM parts GROUP BY key ORDER BY sum({measure}) DESC, key LIMIT {{top:UInt32}}),
                      key, '{OTHER}') AS series_key,
                   sum({measure}) AS value
            FROM parts GROUP BY bucket, series_key ORDER BY bucket, value DESC, series_key
        """
        return wh.query_df(sql, params, tag=tag).rename({"series_key": "key"})
    cond = where(scope, start, end, filters, params=params)
    if dimension is None:
        sql = f"SELECT {bucket} AS bucket, {value} AS value FROM calls WHERE {cond} GROUP BY bucket ORDER BY bucket"
        return wh.query_df(sql, params, tag=tag)
    column = identifier(dimension, DIMENSIONS)
    params["top"] = int(top)
    sql = f"""
        SELECT {bucket} AS bucket,
               if({column} IN (SELECT {column} FROM calls WHERE {cond} GROUP BY {column}
                               ORDER BY {value} DESC LIMIT {{top:UInt32}}), toString({column}), '{OTHER}') AS key,
               {value} AS value
        FROM calls WHERE {cond}
        GROUP BY bucket, key ORDER BY bucket, value DESC, key
    """
    return wh.query_df(sql, params, tag=tag)


def top_n(
    wh: Warehouse,
    scope: Scope,
    start: datetime,
    end: datetime,
    *,
    dimension: str,
    measure: str = "cost_usd",
    n: int = 10,
    filters: Filters | None = None,
    tag: str = "top",
) -> pl.DataFrame:
    """The `n` values of `dimension` with the largest measure: columns `key`, `value`, `calls`, `cost_usd`."""
    params: dict[str, Any] = {"n": int(n)}
    column = identifier(dimension, DIMENSIONS)
    wanted = list(dict.fromkeys([measure, "calls", "cost_usd"]))
    rows = (hybrid.rows(scope, start, end, filters, keys={"key": dimension}, measures=wanted, params=params,
                        days=True, timeless=True) if measure in hybrid.MEASURES else None)
    if rows is not None:
        # output names that are not the rows' columns (`calls` would capture the other sums), renamed
        # here rather than by one more SELECT around it: a level less for the engine to plan
        sql = (f"SELECT key, sum({measure}) AS value, sum(calls) AS n_calls, sum(cost_usd) AS total_cost "
               f"FROM ({rows}) GROUP BY key ORDER BY value DESC, key LIMIT {{n:UInt32}}")
        return wh.query_df(sql, params, tag=tag).rename({"n_calls": "calls", "total_cost": "cost_usd"})
    # inner aliases must not shadow the columns a measure sums (cost_usd, …)
    sql = (
        "SELECT key, value, n_calls AS calls, total_cost AS cost_usd FROM ("
        f"SELECT toString({column}) AS key, {_measure(measure)} AS value, count() AS n_calls, "
        f"sum(cost_usd) AS total_cost FROM calls WHERE {where(scope, start, end, filters, params=params)} "
        "GROUP BY key ORDER BY value DESC, key LIMIT {n:UInt32})"
    )
    return wh.query_df(sql, params, tag=tag)


_CACHE_SERIES = ("cache_read_tokens", "cache_write_tokens", "cache_hit_tokens", "cache_base_tokens", "calls")


def cache_hit_series(
    wh: Warehouse,
    scope: Scope,
    start: datetime,
    end: datetime,
    *,
    grain: str = "hour",
    dimension: str | None = None,
    filters: Filters | None = None,
    tag: str = "cache_series",
) -> pl.DataFrame:
    """Per bucket (and key): cache read and write tokens, the hit and base tokens of the cache
    hit ratio and the ratio itself (`cache_ratio`: read ÷ (read + write) where calls report cache
    writes, cached ÷ input of eligible calls otherwise), null where no call could hit. At hour grain
    and coarser, whole hours come from the cache rollup."""
    params: dict[str, Any] = {}
    group = ", key" if dimension else ""
    rows = None
    if grain in COARSE_GRAINS:
        rows = hybrid.rows(scope, start, end, filters, keys={"key": dimension} if dimension else {},
                           measures=_CACHE_SERIES, params=params,
                           days=grain in DAY_GRAINS)
    if rows is None:
        key = f", toString({identifier(dimension, DIMENSIONS)}) AS key" if dimension else ""
        rows = (f"SELECT ts AS t{key}, cache_read_tokens, cache_write_5m_tokens + cache_write_1h_tokens AS "
                f"cache_write_tokens, {cache_ratio.hit_tokens()} AS cache_hit_tokens, "
                f"{cache_ratio.base_tokens()} AS cache_base_tokens, toUInt64(1) AS calls "
                f"FROM calls WHERE {where(scope, start, end, filters, params=params)}")
    sql = f"""
        SELECT {hybrid.bucket(_grain(grain))} AS bucket{group},
               toUInt64(sum(cache_read_tokens)) AS read_tokens, toUInt64(sum(cache_write_tokens)) AS write_tokens,
               toUInt64(sum(cache_hit_tokens)) AS hit_tokens, toUInt64(sum(cache_base_tokens)) AS base_tokens,
               {cache_ratio.ratio("hit_tokens", "base_tokens")} AS hit_ratio,
               toUInt64(sum(calls)) AS n_calls
        FROM ({rows})
        GROUP BY bucket{group} ORDER BY bucket{group}
    """
    return wh.query_df(sql, params, tag=tag).rename(
        {"read_tokens": "cache_read_tokens", "write_tokens": "cache_write_tokens", "hit_tokens": "cache_hit_tokens",
         "base_tokens": "cache_base_tokens", "n_calls": "calls"})


def latency_series(
    wh: Warehouse,
    scope: Scope,
    start: datetime,
    end: datetime,
    *,
    grain: str = "hour",
    dimension: str | None = None,
    filters: Filters | None = None,
    tag: str = "latency_series",
) -> pl.DataFrame:
    """Per bucket (and key) of successful calls: calls, mean / p50 / p95 / p99 of end-to-end latency
    and TTFT, and p99 of queue time where it is known (ms). At hour grain and coarser the digests
    of whole hours come from the hourly rollup, the partial hours from raw calls."""
    params: dict[str, Any] = {}
    key = f", toString({identifier(dimension, DIMENSIONS)}) AS key" if dimension else ""
    group = ", key" if dimension else ""
    rows = None
    if grain in COARSE_GRAINS:
        rows = hybrid.rows(scope, start, end, filters, keys={"key": dimension} if dimension else {},
                           measures=LATENCY_MEASURES, params=params, days=grain in DAY_GRAINS)
    if rows is not None:
        levels = hybrid.DIGEST_LEVELS
        # closed hours already merged (`warehouse.latency_hours`) are read as they were finished;
        # the others (the current hour, late calls, partial edge hours) merge their digests here
        finished = (latency_hours.fresh_hours(scope, dimension, params)
                    if grain == "hour" and not any((filters or {}).values()) else None)
        live = "" if finished is None else f" WHERE t NOT IN ({finished[1]})"
        sql = f"""
            SELECT bucket{group}, calls, latency_mean_ms,
                latency_q[1] AS latency_p50_ms, latency_q[3] AS latency_p95_ms, latency_q[4] AS latency_p99_ms,
                ttft_mean_ms, ttft_q[1] AS ttft_p50_ms, ttft_q[3] AS ttft_p95_ms, ttft_q[4] AS ttft_p99_ms,
                if(n_queue = 0, NULL, queue_q[4]) AS queue_p99_ms
            FROM (
                SELECT {hybrid.bucket(_grain(grain))} AS bucket{group}, sum(ok_calls) AS calls,
                    if(sum(latency_calls) = 0, NULL, sum(latency_ms_sum) / sum(latency_calls)) AS latency_mean_ms,
                    quantilesTDigestMerge({levels})(latency_digest) AS latency_q,
                    if(sum(ttft_calls) = 0, NULL, sum(ttft_ms_sum) / sum(ttft_calls)) AS ttft_mean_ms,
                    quantilesTDigestMerge({levels})(ttft_digest) AS ttft_q,
                    sum(queue_calls) AS n_queue,
                    quantilesTDigestMerge({levels})(queue_digest) AS queue_q
                FROM ({rows}){live} GROUP BY bucket{group}
                {"" if finished is None else _finished_hours(finished[0], group)}
            )
            WHERE calls > 0
            ORDER BY bucket{group}
        """
        return hybrid.nan_as_null(wh.query_df(sql, params, tag=tag).with_columns(
            pl.col("latency_mean_ms", "ttft_mean_ms").cast(pl.Float64)))
    sql = f"""
        SELECT bucket{group}, calls, latency_mean_ms, latency_q[1] AS latency_p50_ms, latency_q[2] AS latency_p95_ms,
            latency_q[3] AS latency_p99_ms, ttft_mean_ms, ttft_q[1] AS ttft_p50_ms, ttft_q[2] AS ttft_p95_ms,
            ttft_q[3] AS ttft_p99_ms, queue_p99_ms
        FROM (
            SELECT {_grain(grain)} AS bucket{key}, count() AS calls,
                avg(latency_ms) AS latency_mean_ms, quantilesTDigest(0.5, 0.95, 0.99)(latency_ms) AS latency_q,
                avg(ttft_ms) AS ttft_mean_ms, quantilesTDigest(0.5, 0.95, 0.99)(ttft_ms) AS ttft_q,
                quantileTDigestIf(0.99)(queue_ms, isNotNull(queue_ms)) AS queue_p99_ms
            FROM calls WHERE {where(scope, start, end, filters, params=params)} AND status = 'ok'
            GROUP BY bucket{group}
        )
        ORDER BY bucket{group}
    """
    return hybrid.nan_as_null(wh.query_df(sql, params, tag=tag))


def _finished_hours(rows: str, group: str) -> str:
    """The rows of `latency_series`'s inner SELECT for the hours finished (`rows`: the condition of
    `latency_hours.fresh_hours`), one per hour and key: the job writes an hour's current rows again
    when another scope of the hour changed, and both copies stay until they are merged."""
    return f"""UNION ALL
        SELECT toDateTime64(hour, 3, 'UTC') AS bucket{", key" if group else ""}, calls,
            if(latency_calls = 0, NULL, latency_ms_sum / latency_calls) AS latency_mean_ms, latency_q,
            if(ttft_calls = 0, NULL, ttft_ms_sum / ttft_calls) AS ttft_mean_ms, ttft_q, queue_calls AS n_queue, queue_q
        FROM {latency_hours.TABLE} WHERE {rows}
        LIMIT 1 BY hour, key"""


LATENCY_MEASURES = ("ok_calls", "latency_calls", "latency_ms_sum", "latency_digest", "ttft_calls", "ttft_ms_sum",
                    "ttft_digest", "queue_calls", "queue_digest")
