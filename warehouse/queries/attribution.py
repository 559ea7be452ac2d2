"""Cost and usage attribution: totals, breakdowns by a dimension, cache hit ratios and latency
percentiles. Whole days and hours are read from the daily and hourly rollups where they keep what
is asked (`hybrid`), the rest from raw calls; sums are exact either way. Money comes back as
Decimal(38, 18) columns (`*_usd`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries import cache_ratio, hybrid, nodes
from warehouse.queries.scope import DIMENSIONS, Filters, Scope, where

SELF_HOSTED = "self_hosted"  # the provider (and deployment) of self-hosted models, costed by GPU time

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
    """One row of totals for the range, self-hosting included (total = API + infra):

    - `cost_usd` (and its components): what the calls cost at their token prices — API spend,
      plus any self-hosted model you price per token;
    - `infra_cost_usd`: GPU cost of the self-hosted nodes (node-hours × $/GPU-hour, split over the
      chosen calls by tokens; unfiltered, node time that served no call is included);
    - `total_cost_usd` = `cost_usd` + `infra_cost_usd`;
    - `unpriced_calls`: calls no price covers, self-hosted ones left out — those are
      `self_hosted_calls`, costed by GPU time; `uncosted_self_hosted_calls` ran in node-hours
      without GPU samples or a GPU price.
    Calls, tokens and errors count every call."""
    params: dict[str, Any] = {}
    rows = hybrid.rows(scope, start, end, filters, keys={"p": "provider"}, measures=MEASURE_NAMES, params=params,
                       days=True, timeless=True)
    if rows is not None:
        per_provider = f"SELECT p, {hybrid.summed(MEASURE_NAMES)} FROM ({rows}) GROUP BY p"
    else:
        per_provider = (f"SELECT toString(provider) AS p, {_MEASURES} FROM calls "
                        f"WHERE {where(scope, start, end, filters, params=params)} GROUP BY p")
    summed = [m for m in MEASURE_NAMES if m != "unpriced_calls"]
    params["self_hosted"] = SELF_HOSTED
    # source columns qualified (`g.calls`): an output alias of the same name would capture them
    sql = (f"SELECT {', '.join(f'sum(g.{m}) AS {m}' for m in summed)}, "
           "sumIf(g.unpriced_calls, g.p != {self_hosted:String}) AS unpriced_calls, "
           "sumIf(g.calls, g.p = {self_hosted:String}) AS self_hosted_calls "
           f"FROM ({per_provider}) AS g")
    frame = wh.query_df(sql, params, tag=tag)
    infra = nodes.infra_by(wh, scope, "deployment", start, end, filters, tag=tag)
    money = pl.Decimal(38, 18)
    infra_usd = infra["infra_cost_usd"].cast(money).sum() if infra.height else None
    return frame.with_columns(
        pl.lit(infra_usd or 0, dtype=money).alias("infra_cost_usd"),
        pl.lit(int(infra["uncosted_calls"].sum() or 0) if infra.height else 0, dtype=pl.UInt64)
        .alias("uncosted_self_hosted_calls"),
    ).with_columns((pl.col("cost_usd").cast(money) + pl.col("infra_cost_usd")).alias("total_cost_usd"))


def usage_by(
    wh: Warehouse,
    scope: Scope,
    dimension: str,
    start: datetime,
    end: datetime,
    filters: Filters | None = None,
    *,
    limit: int | None = None,
    measures: Sequence[str] | None = None,
    tag: str = "usage_by",
) -> pl.DataFrame:
    """Measures per value of `dimension` (column `key`), most expensive first; `measures` picks some
    of `MEASURE_NAMES` (see `chosen_measures`)."""
    params: dict[str, Any] = {}
    sql = _per_key(scope, dimension, start, end, filters, params, chosen_measures(measures)) + \
        " ORDER BY cost_usd DESC, key"
    if limit is not None:
        params["limit"] = int(limit)
        sql += " LIMIT {limit:UInt32}"
    return wh.query_df(sql, params, tag=tag)


def chosen_measures(measures: Sequence[str] | None) -> tuple[str, ...]:
    """The measures a breakdown computes, in `MEASURE_NAMES` order: all of them by default, else the
    ones asked for plus `calls` and `cost_usd` (the order and the `(others)` cut need them). Fewer
    measures read fewer columns: a question about spend alone sums two columns, not fifteen."""
    if measures is None:
        return MEASURE_NAMES
    unknown = sorted(set(measures) - set(MEASURE_NAMES))
    if unknown:
        raise ValueError(f"unknown measure(s) {unknown}: choose among {list(MEASURE_NAMES)}")
    wanted = {"calls", "cost_usd", *measures}
    return tuple(m for m in MEASURE_NAMES if m in wanted)


def _per_key(scope: Scope, dimension: str, start: datetime, end: datetime, filters: Filters | None,
             params: dict[str, Any], measures: Sequence[str] = MEASURE_NAMES) -> str:
    """SELECT of `measures` per value of `dimension` (`key`): whole hours from a rollup where one
    keeps them, else raw calls."""
    column = identifier(dimension, DIMENSIONS)
    rows = hybrid.rows(scope, start, end, filters, keys={"key": dimension}, measures=measures, params=params,
                       days=True, timeless=True)
    if rows is not None:
        return f"SELECT key, {hybrid.summed(measures)} FROM ({rows}) GROUP BY key"
    raw = ", ".join(f"{hybrid.MEASURES[m].raw} AS {m}" for m in measures)
    return (f"SELECT toString({column}) AS key, {raw} FROM calls "
            f"WHERE {where(scope, start, end, filters, params=params)} GROUP BY key")


OTHERS = "(others)"
# Dimensions whose values a deployment configures (teams, routes, models, …): tens, not tens of
# thousands, so a capped breakdown reads them all and cuts in Python; users, sessions, keys and tags
# are cut in the engine.
FEW_VALUES = frozenset({"project", "team", "feature", "route", "environment", "tool_name", "provider", "model",
                        "deployment", "node", "service_tier", "routing_policy", "status", "source"})


def _capped(frame: pl.DataFrame, limit: int, measures: Sequence[str]) -> pl.DataFrame:
    """`usage_by_capped`'s rows from every value's row, most expensive first: the first `limit`, then one
    `(others)` row summing the rest (column `keys`: values per row)."""
    listed = frame.head(limit).with_columns(pl.lit(1, dtype=pl.UInt64).alias("keys"))
    if frame.height <= limit:
        return listed
    others = frame.slice(limit).select(pl.lit(OTHERS).alias("key"), *(pl.col(m).sum() for m in measures),
                                       pl.len().cast(pl.UInt64).alias("keys"))
    return pl.concat([listed, others.cast(listed.schema)])  # type: ignore[arg-type]


def usage_by_capped(
    wh: Warehouse,
    scope: Scope,
    dimension: str,
    start: datetime,
    end: datetime,
    filters: Filters | None = None,
    *,
    limit: int,
    measures: Sequence[str] | None = None,
    tag: str = "usage_by",
) -> pl.DataFrame:
    """`usage_by` cut at `limit` values without losing money: the `limit` most expensive values,
    then, when there are more, one row keyed `(others)` summing every other value. Column `keys`
    counts the dimension values a row stands for, so the rows always add up to `totals`."""
    params: dict[str, Any] = {"limit": int(limit)}
    chosen = chosen_measures(measures)
    per_key = _per_key(scope, dimension, start, end, filters, params, chosen)
    if dimension in FEW_VALUES:
        # every value comes back anyway: cut here, one window and two SELECTs less for the engine to plan
        return _capped(wh.query_df(f"{per_key} ORDER BY cost_usd DESC, key", params, tag=tag), limit, chosen)
    sql = f"""
        SELECT if(listed, toString(k), {{others:String}}) AS key, {hybrid.summed(chosen)}, count() AS keys
        FROM (
            SELECT * EXCEPT key, key AS k, row_number() OVER (ORDER BY cost_usd DESC, key) <= {{limit:UInt32}} AS listed
            FROM ({per_key})
        )
        GROUP BY listed, if(listed, toString(k), {{others:String}})
        ORDER BY listed DESC, cost_usd DESC, key
    """
    params["others"] = OTHERS
    return wh.query_df(sql, params, tag=tag)


def cache_hit_ratio(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None, *, tag: str = "cache"
) -> float | None:
    """The cache hit ratio over the range as `cache_ratio` defines it (providers reporting cache writes:
    read ÷ (read + write); otherwise: cached ÷ input of eligible calls); None when no call
    could have hit the cache."""
    params: dict[str, Any] = {}
    measures = ("cache_hit_tokens", "cache_base_tokens")
    rows = hybrid.rows(scope, start, end, filters, keys={}, measures=measures, params=params, timeless=True)
    if rows is not None:
        sql = f"SELECT sum(cache_hit_tokens), sum(cache_base_tokens) FROM ({rows})"
    else:
        sql = (
            f"SELECT sum({cache_ratio.hit_tokens()}), sum({cache_ratio.base_tokens()}) FROM calls "
            f"WHERE {where(scope, start, end, filters, params=params)}"
        )
    hits, base = wh.query_rows(sql, params, tag=tag)[0]
    return None if not base else int(hits) / int(base)


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
