"""Attribution over the hourly rollups: the fast path for dashboards, reports and baselines.

Sums and counts equal the same computation over raw `calls` exactly (Decimal to the last digit),
for whole UTC hours: `start` and `end` must fall on the hour. `user_id` is served by
`calls_user_hourly` (calls, errors, cost and tokens only); every other dimension by `calls_hourly`.
Latency percentiles come from t-digests (approximate; status = 'ok' calls, as in `attribution`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries.scope import Filters, Scope

# Dimensions of each rollup (group-by and filter allow-lists).
HOURLY_DIMENSIONS: frozenset[str] = frozenset(
    {"project", "route", "model", "provider", "team", "feature", "api_key_id", "tool_name", "routing_policy"}
)
USER_DIMENSIONS: frozenset[str] = frozenset({"project", "user_id", "team", "feature", "route", "model", "provider"})

_HOURLY_MEASURES = """
    sum(calls) AS calls,
    sum(cost_usd) AS cost_usd,
    sum(input_cost_usd) AS input_cost_usd,
    sum(cache_read_cost_usd) AS cache_read_cost_usd,
    sum(cache_write_cost_usd) AS cache_write_cost_usd,
    sum(output_cost_usd) AS output_cost_usd,
    sum(tool_cost_usd) AS tool_cost_usd,
    sum(batch_discount_usd) AS batch_discount_usd,
    sum(input_tokens) AS input_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(output_tokens) AS output_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(errors) AS errors,
    sum(unpriced_calls) AS unpriced_calls
"""
_USER_MEASURES = """
    sum(calls) AS calls,
    sum(cost_usd) AS cost_usd,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(errors) AS errors
"""


def _check_hours(start: datetime, end: datetime) -> None:
    for name, at in (("start", start), ("end", end)):
        if (at.minute, at.second, at.microsecond) != (0, 0, 0):
            raise ValueError(f"rollups are hourly: {name} must be a whole UTC hour, got {at.isoformat()}")


def _table_for(dimensions: set[str]) -> tuple[str, str, frozenset[str]]:
    """(table, measures, allowed dimensions) of the rollup that can serve these dimensions."""
    if "user_id" in dimensions:
        return "calls_user_hourly", _USER_MEASURES, USER_DIMENSIONS
    return "calls_hourly", _HOURLY_MEASURES, HOURLY_DIMENSIONS


def _where(
    scope: Scope, start: datetime, end: datetime, filters: Filters | None, allowed: frozenset[str],
    params: dict[str, Any],
) -> str:
    _check_hours(start, end)
    params["start"] = start
    params["end"] = end
    parts = [scope.clause(params), "hour >= {start:DateTime('UTC')}", "hour < {end:DateTime('UTC')}"]
    for i, (dimension, values) in enumerate(sorted((filters or {}).items())):
        if not values:
            continue
        name = f"filter_{i}"
        params[name] = [str(v) for v in values]
        parts.append(f"{identifier(dimension, allowed)} IN {{{name}:Array(String)}}")
    return " AND ".join(parts)


def rollup_totals(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None,
    *, tag: str = "rollup_totals",
) -> pl.DataFrame:
    """One row of totals for the whole hours in [start, end) (same columns as `attribution.totals`,
    less nothing; with a `user_id` filter, the user rollup's columns)."""
    table, measures, allowed = _table_for(set(filters or {}))
    params: dict[str, Any] = {}
    sql = f"SELECT {measures} FROM {table} WHERE {_where(scope, start, end, filters, allowed, params)}"
    return wh.query_df(sql, params, tag=tag)


def rollup_usage_by(
    wh: Warehouse,
    scope: Scope,
    dimension: str,
    start: datetime,
    end: datetime,
    filters: Filters | None = None,
    *,
    limit: int | None = None,
    tag: str = "rollup_usage_by",
) -> pl.DataFrame:
    """Measures per value of `dimension` (column `key`), most expensive first, for whole hours."""
    table, measures, allowed = _table_for({dimension, *(filters or {})})
    column = identifier(dimension, allowed)
    params: dict[str, Any] = {}
    sql = (
        f"SELECT {column} AS key, {measures} FROM {table} "
        f"WHERE {_where(scope, start, end, filters, allowed, params)} GROUP BY key ORDER BY cost_usd DESC, key"
    )
    if limit is not None:
        params["limit"] = int(limit)
        sql += " LIMIT {limit:UInt32}"
    return wh.query_df(sql, params, tag=tag)


def rollup_series(
    wh: Warehouse,
    scope: Scope,
    start: datetime,
    end: datetime,
    filters: Filters | None = None,
    *,
    dimension: str | None = None,
    tag: str = "rollup_series",
) -> pl.DataFrame:
    """Hourly measures (`hour`, optional `key`), ordered by hour: the data behind cost-over-time charts."""
    table, measures, allowed = _table_for({*(filters or {}), *([dimension] if dimension else [])})
    params: dict[str, Any] = {}
    key = f"{identifier(dimension, allowed)} AS key, " if dimension else ""
    group = "hour, key" if dimension else "hour"
    sql = (
        f"SELECT toDateTime64({table}.hour, 3, 'UTC') AS hour, {key}{measures} FROM {table} WHERE {_where(scope, start, end, filters, allowed, params)} "
        f"GROUP BY {group} ORDER BY {group}"
    )
    return wh.query_df(sql, params, tag=tag)


def rollup_latency(
    wh: Warehouse,
    scope: Scope,
    start: datetime,
    end: datetime,
    filters: Filters | None = None,
    *,
    dimension: str | None = None,
    tag: str = "rollup_latency",
) -> pl.DataFrame:
    """Mean and p50/p90/p95/p99 of latency and TTFT (ms) of ok calls, from the hourly digests.
    (`latency_calls` in the means is the output alias, i.e. the summed count, by design.)"""
    if dimension == "user_id" or "user_id" in (filters or {}):
        raise ValueError("latency digests are not kept per user")
    params: dict[str, Any] = {}
    key = f"{identifier(dimension, HOURLY_DIMENSIONS)} AS key, " if dimension else ""
    group = " GROUP BY key ORDER BY key" if dimension else ""
    sql = f"""
        SELECT {key}
            sum(latency_calls) AS latency_calls,
            sum(latency_ms_sum) / nullIf(latency_calls, 0) AS latency_mean_ms,
            quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_ms_digest) AS latency_q,
            sum(ttft_calls) AS ttft_calls,
            sum(ttft_ms_sum) / nullIf(ttft_calls, 0) AS ttft_mean_ms,
            quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(ttft_ms_digest) AS ttft_q
        FROM calls_hourly WHERE {_where(scope, start, end, filters, HOURLY_DIMENSIONS, params)}{group}
    """
    frame = wh.query_df(sql, params, tag=tag)
    return frame.with_columns(
        *(
            pl.col(f"{m}_q").list.get(i).alias(f"{m}_p{p}_ms")
            for m in ("latency", "ttft")
            for i, p in enumerate((50, 90, 95, 99))
        )
    ).drop("latency_q", "ttft_q")
