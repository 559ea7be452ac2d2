"""Per-call distributions: how many tokens single calls send and receive (where prompts grow and
outputs run long), per value of a dimension, as quantiles (box plots) and log-scale histograms;
and the single calls with the most reasoning tokens (runaway reasoning).

Quantiles are exact (`quantilesExact…` is cheap at these cardinalities); histogram bins are powers
of 2^(1/4) of the token count. Money is Decimal(38, 18) USD; ranges are [start, end).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries.scope import DIMENSIONS, Filters, Scope, where

TOKEN_MEASURES: frozenset[str] = frozenset({"input_tokens", "output_tokens", "reasoning_tokens"})
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
BINS_PER_DOUBLING = 4


def _measure(measure: str) -> str:
    return identifier(measure, TOKEN_MEASURES)


def token_quantiles(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, measure: str = "input_tokens",
    dimension: str = "route", nonzero: bool = False, filters: Filters | None = None, limit: int = 30,
    tag: str = "dist:quantiles",
) -> pl.DataFrame:
    """Per value of `dimension` (the `limit` with most calls): calls, mean, max and the 5/25/50/75/95/99th
    percentiles of `measure` per call (`p5` … `p99`). `nonzero`: only calls where it is above 0."""
    column, value = identifier(dimension, DIMENSIONS), _measure(measure)
    params: dict[str, Any] = {"limit": int(limit)}
    cond = where(scope, start, end, filters, params=params) + (f" AND {value} > 0" if nonzero else "")
    qs = ", ".join(str(q) for q in QUANTILES)
    names = ", ".join(f"q[{i + 1}] AS p{round(q * 100)}" for i, q in enumerate(QUANTILES))
    sql = f"""
        SELECT key, calls, mean, max, {names} FROM (
            SELECT toString({column}) AS key, count() AS calls, avg({value}) AS mean, max({value}) AS max,
                quantilesExactInclusive({qs})({value}) AS q
            FROM calls WHERE {cond}
            GROUP BY key ORDER BY calls DESC, key LIMIT {{limit:UInt32}}
        )
    """
    return wh.query_df(sql, params, tag=tag)


def token_histogram(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, measure: str = "input_tokens",
    dimension: str = "route", nonzero: bool = False, filters: Filters | None = None, tag: str = "dist:histogram",
) -> pl.DataFrame:
    """Calls per log-scale bin of `measure` per value of `dimension`: columns key, bin_lo, bin_hi
    (tokens, [lo, hi)), calls. Bins are 2^(i/4) wide steps; 0 tokens is its own bin [0, 1)."""
    column, value = identifier(dimension, DIMENSIONS), _measure(measure)
    params: dict[str, Any] = {"per": BINS_PER_DOUBLING}
    cond = where(scope, start, end, filters, params=params) + (f" AND {value} > 0" if nonzero else "")
    sql = f"""
        SELECT key, if(bin < 0, 0, pow(2, bin / {{per:UInt8}})) AS bin_lo, pow(2, (bin + 1) / {{per:UInt8}}) AS bin_hi,
            calls
        FROM (
            SELECT toString({column}) AS key,
                if({value} = 0, -1, toInt32(floor(log2({value}) * {{per:UInt8}}))) AS bin, count() AS calls
            FROM calls WHERE {cond}
            GROUP BY key, bin
        )
        ORDER BY key, bin_lo
    """
    return wh.query_df(sql, params, tag=tag)


def reasoning_outliers(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, filters: Filters | None = None, n: int = 20,
    tag: str = "dist:reasoning_outliers",
) -> pl.DataFrame:
    """The `n` single calls with the most reasoning tokens, with their route's and model's p99 of
    reasoning tokens (calls that reasoned) in the same range, and how far above it they are."""
    params: dict[str, Any] = {"n": int(n)}
    cond = where(scope, start, end, filters, params=params)
    sql = f"""
        SELECT c.ts AS ts, c.event_id AS event_id, c.route AS route, c.model AS model, c.provider AS provider,
            c.user_id AS user_id, c.reasoning_tokens AS reasoning_tokens, c.output_tokens AS output_tokens,
            c.cost_usd AS cost_usd, c.latency_ms AS latency_ms, b.p99 AS route_p99,
            if(b.p99 > 0, c.reasoning_tokens / b.p99, NULL) AS times_p99
        FROM (
            SELECT ts, event_id, toString(route) AS route, toString(model) AS model, toString(provider) AS provider,
                user_id, reasoning_tokens, output_tokens, cost_usd, latency_ms
            FROM calls WHERE {cond} AND reasoning_tokens > 0
            ORDER BY reasoning_tokens DESC, ts LIMIT {{n:UInt32}}
        ) AS c
        LEFT JOIN (
            SELECT toString(route) AS route, toString(model) AS model,
                quantileExactInclusive(0.99)(reasoning_tokens) AS p99
            FROM calls WHERE {cond} AND reasoning_tokens > 0
            GROUP BY route, model
        ) AS b ON b.route = c.route AND b.model = c.model
        ORDER BY reasoning_tokens DESC, ts
    """
    return wh.query_df(sql, params, tag=tag)
