"""Per-call distributions: how many tokens single calls send and receive (where prompts grow and
outputs run long), per value of a dimension, as quantiles (box plots) and log-scale histograms;
and the single calls with the most reasoning tokens (runaway reasoning).

Both read calls counted per token bin (`hybrid.token_bin`: the count itself below 128 tokens,
above it 128 bins per doubling), merged from the token rollups for whole days and hours and
computed alike from raw calls at the edges (or for dimensions the rollups do not keep), so a
rollup-served read equals a raw one. Quantiles are nearest-rank (the smallest value with at least
p% of the calls at or below it): exact below 128 tokens, within 0.3% above. Histogram bins are
powers of 2^(1/4) of the token count, exact: the token bins nest in them. Money is Decimal(38, 18)
USD; ranges are [start, end).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries import hybrid
from warehouse.queries.scope import DIMENSIONS, Filters, Scope, where

TOKEN_MEASURES: frozenset[str] = frozenset(hybrid.TOKEN_KINDS.values())
QUANTILES = (5, 25, 50, 75, 95, 99)  # percent
BINS_PER_DOUBLING = 4


def _kind(measure: str) -> str:
    """`input` / `output` / `reasoning` of an allow-listed token measure."""
    identifier(measure, TOKEN_MEASURES)
    return measure.removesuffix("_tokens")


def _value(key: str) -> str:
    """A token bin's value: the count itself below 128, else the bin's geometric middle (within
    2^(1/256) − 1 < 0.3% of every count in the bin)."""
    return f"if({key} < 128, toFloat64({key}), pow(2, ({key} + 768.5) / 128))"


def _binned(scope: Scope, start: datetime, end: datetime, filters: Filters | None, keys: dict[str, str],
            kind: str, params: dict[str, Any]) -> str:
    """Rows with the `keys` (as text), `bins` (token bin → calls), `top` (max) and `total` (sum) of
    one token kind, per key values: merged from the token rollups, or from raw calls."""
    measures = (f"{kind}_bins", f"{kind}_max", f"{kind}_sum")
    rows = (hybrid.rows(scope, start, end, filters, keys=keys, measures=measures, params=params, days=True)
            or hybrid.raw_rows(scope, start, end, filters, keys=keys, measures=measures, params=params))
    names = ", ".join(keys)
    return (f"SELECT {names}, sumMap({kind}_bins) AS bins, max({kind}_max) AS top, sum({kind}_sum) AS total "
            f"FROM ({rows}) GROUP BY {names}")


def _quantiles(binned: str, keys: str, nonzero: bool) -> str:
    """Per row of `binned`: the bins (without 0 when `nonzero`) as arrays `ks` / `cs`, `n` calls, and
    `q`: the nearest-rank values at `QUANTILES` percent. Rows left with no call are dropped."""
    lowest = 1 if nonzero else 0
    levels = ", ".join(str(p) for p in QUANTILES)
    return f"""
        SELECT {keys}, top, total, ks, n,
            arrayMap(p -> {_value("ks[arrayFirstIndex(c -> c * 100 >= p * n, cum)]")}, [{levels}]) AS q
        FROM (
            SELECT {keys}, top, total, arrayFilter(k -> k >= {lowest}, bins.1) AS ks,
                arrayFilter((c, k) -> k >= {lowest}, bins.2, bins.1) AS cs, arrayCumSum(cs) AS cum, arraySum(cs) AS n
            FROM ({binned})
        )
        WHERE n > 0
    """


def token_quantiles(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, measure: str = "input_tokens",
    dimension: str = "route", nonzero: bool = False, filters: Filters | None = None, limit: int = 30,
    tag: str = "dist:quantiles",
) -> pl.DataFrame:
    """Per value of `dimension` (the `limit` with most calls): calls, mean, max and the 5/25/50/75/95/99th
    percentiles of `measure` per call (`p5` … `p99`). `nonzero`: only calls where it is above 0."""
    identifier(dimension, DIMENSIONS)
    params: dict[str, Any] = {"limit": int(limit)}
    binned = _binned(scope, start, end, filters, {"key": dimension}, _kind(measure), params)
    names = ", ".join(f"q[{i + 1}] AS p{p}" for i, p in enumerate(QUANTILES))
    sql = f"""
        SELECT key, n AS calls, total / n AS mean, top AS max, {names}
        FROM ({_quantiles(binned, "key", nonzero)})
        ORDER BY calls DESC, key LIMIT {{limit:UInt32}}
    """
    return wh.query_df(sql, params, tag=tag)


def token_histogram(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, measure: str = "input_tokens",
    dimension: str = "route", nonzero: bool = False, filters: Filters | None = None, tag: str = "dist:histogram",
) -> pl.DataFrame:
    """Calls per log-scale bin of `measure` per value of `dimension`: columns key, bin_lo, bin_hi
    (tokens, [lo, hi)), calls. Bins are 2^(i/4) wide steps; 0 tokens is its own bin [0, 1)."""
    identifier(dimension, DIMENSIONS)
    params: dict[str, Any] = {"per": BINS_PER_DOUBLING}
    binned = _binned(scope, start, end, filters, {"key": dimension}, _kind(measure), params)
    # a token bin k ≥ 128 is floor(log2(v) × 128) − 768: its quarter-doubling bin is (k + 768) div 32
    coarse = "if(k = 0, -1, if(k < 128, toInt32(floor(log2(k) * 4)), toInt32(intDiv(k + 768, 32))))"
    sql = f"""
        SELECT key, if(bin < 0, 0, pow(2, bin / {{per:UInt8}})) AS bin_lo, pow(2, (bin + 1) / {{per:UInt8}}) AS bin_hi,
            calls
        FROM (
            SELECT key, {coarse} AS bin, sum(c) AS calls
            FROM ({binned}) ARRAY JOIN bins.1 AS k, bins.2 AS c
            WHERE k >= {1 if nonzero else 0}
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
    reasoning tokens (calls that reasoned) in the same range, and how far above it they are.

    Unfiltered, with n ≤ `TOP_PER_HOUR` and a whole hour in range, the candidates are the hourly
    tops of `calls_reasoning_top_hourly` and the raw calls of the partial hours at the edges; only
    the n chosen calls are read back. Otherwise the calls are read from raw calls above a floor taken
    from the merged bins (the lowest value the n-th largest call can have), so the scan skips the
    granules that cannot hold one."""
    params: dict[str, Any] = {"n": int(n)}
    cond = where(scope, start, end, filters, params=params)
    hours = None if filters or n > TOP_PER_HOUR else hybrid.whole_hours(start, end)
    if hours is None:
        chosen = _above_floor(scope, start, end, filters, cond, params)
    else:
        chosen = _from_hourly_tops(scope, hours, cond, params)
    p99 = _quantiles(_binned(scope, start, end, filters, {"route": "route", "model": "model"}, "reasoning", params),
                     "route, model", nonzero=True)
    sql = f"""
        SELECT c.ts AS ts, c.event_id AS event_id, c.route AS route, c.model AS model, c.provider AS provider,
            c.user_id AS user_id, c.reasoning_tokens AS reasoning_tokens, c.output_tokens AS output_tokens,
            c.cost_usd AS cost_usd, c.latency_ms AS latency_ms, b.p99 AS route_p99,
            if(b.p99 > 0, c.reasoning_tokens / b.p99, NULL) AS times_p99
        FROM (
            {chosen}
        ) AS c
        LEFT JOIN (SELECT route, model, q[6] AS p99 FROM ({p99})) AS b ON b.route = c.route AND b.model = c.model
        ORDER BY reasoning_tokens DESC, ts
    """
    return wh.query_df(sql, params, tag=tag)


TOP_PER_HOUR = 50  # calls kept per project and hour by `calls_reasoning_top_hourly`
_OUTLIER_COLUMNS = ("ts, event_id, toString(route) AS route, toString(model) AS model, "
                    "toString(provider) AS provider, user_id, reasoning_tokens, output_tokens, cost_usd, latency_ms")


def _above_floor(scope: Scope, start: datetime, end: datetime, filters: Filters | None, cond: str,
                 params: dict[str, Any]) -> str:
    """The n calls with most reasoning, read from raw calls above the floor the merged bins give."""
    overall = _binned(scope, start, end, filters, {"scope_key": "project"}, "reasoning", params)
    # the lowest bin whose bins at or above it hold n calls (0: fewer than n calls reasoned); its floor
    floor = f"""(
        SELECT if(i = 0, 1, toUInt32(greatest({_value("ks[i]")} * pow(2, -1 / 256) - 1, 1))) FROM (
            SELECT arrayLastIndex(s -> s >= {{n:UInt32}}, arrayMap((c, upto) -> s_all - upto + c, cs, cum)) AS i, ks
            FROM (
                SELECT arrayFilter(k -> k >= 1, merged.1) AS ks, arrayFilter((c, k) -> k >= 1, merged.2, merged.1) AS cs,
                    arrayCumSum(cs) AS cum, arraySum(cs) AS s_all
                FROM (SELECT sumMap(bins) AS merged FROM ({overall}))
            )
        )
    )"""
    return (f"SELECT {_OUTLIER_COLUMNS} FROM calls WHERE {cond} AND reasoning_tokens >= {floor} "
            "ORDER BY reasoning_tokens DESC, ts LIMIT {n:UInt32}")


def _from_hourly_tops(scope: Scope, hours: tuple[datetime, datetime], cond: str,
                      params: dict[str, Any]) -> str:
    """The n calls with most reasoning (unfiltered range `cond`): the n smallest (−reasoning, ts,
    event id hash) of the whole hours' tops and of the raw calls at the partial hours, then those calls
    read back (their hours and reasoning let the primary key and the `idx_reasoning` skip index prune)."""
    params.update(h_first=hours[0], h_last=hours[1])
    key = "(-toInt64(reasoning_tokens), ts, cityHash64(event_id))"
    tops = (f"SELECT arrayJoin(groupArraySortedMerge({TOP_PER_HOUR})(top)) AS c "
            f"FROM calls_reasoning_top_hourly WHERE {scope.clause(params)} AND hour >= {{h_first:DateTime64(3, 'UTC')}} "
            "AND hour < {h_last:DateTime64(3, 'UTC')}")
    edges = (f"SELECT {key} AS c FROM calls WHERE {cond} AND reasoning_tokens > 0 "
             "AND (ts < {h_first:DateTime64(3, 'UTC')} OR ts >= {h_last:DateTime64(3, 'UTC')})")
    return f"""
        WITH (
            SELECT groupArray(c) FROM (SELECT c FROM ({tops} UNION ALL {edges}) ORDER BY c LIMIT {{n:UInt32}})
        ) AS picked
        SELECT {_OUTLIER_COLUMNS} FROM calls
        WHERE {cond} AND has(arrayMap(c -> toStartOfHour(c.2), picked), toStartOfHour(ts))
            AND reasoning_tokens >= -picked[-1].1 AND has(picked, {key})
        ORDER BY reasoning_tokens DESC, ts LIMIT {{n:UInt32}}
    """
