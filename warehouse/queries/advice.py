"""Reads for the router threshold advisor: a route's measured traffic (requests, models, token mix),
its logged router scores with what each request costs on the cheap and the frontier model, and the
pricing of replayed queries — all through `ingest/sql/price_calls.sql`, the pipeline's own pricing
join, so the advice's money is the price table's exact Decimal(38, 18) USD. Ranges are [start, end).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse, load_sql
from warehouse.queries import hybrid
from warehouse.queries.scope import Scope, where

TOKEN_CLASSES = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens",
                 "cache_write_1h_tokens", "reasoning_tokens")
_COST_COLUMNS = ("input_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd", "output_cost_usd",
                 "tool_cost_usd", "cost_usd", "batch_discount_usd")


def _priced(source: str) -> str:
    return load_sql("ingest.sql", "price_calls.sql").replace("__SOURCE__", source)


def route_traffic(wh: Warehouse, scope: Scope, route: str, start: datetime, end: datetime, *,
                  tag: str = "advisor:traffic") -> pl.DataFrame:
    """Per routing policy (`''` without a cascade), step, provider and model of `route`: calls, the
    projects, summed token classes, and (step 0) calls carrying a router score. Whole UTC days come
    from `calls_route_scores_daily`, the partial days at the edges from raw calls."""
    params: dict[str, Any] = {}
    filters = {"route": [route]}
    keys = "routing_policy, cascade_step, provider, model, project"
    raw_sums = ", ".join(f"sum({c}) AS {c}" for c in TOKEN_CLASSES)
    raw = (f"SELECT {keys}, count() AS calls, countIf(router_score IS NOT NULL) AS scored_calls, {raw_sums} "
           f"FROM calls WHERE {{cond}} AND tool_name = '' GROUP BY {keys}")
    days = hybrid.whole_days(start, end)
    if days is None:
        parts = [raw.format(cond=where(scope, start, end, filters, params=params))]
    else:
        parts = _tiered(scope, start, end, days, filters, params, raw, (
            f"SELECT {keys}, sum(calls) AS calls, sum(scored_calls) AS scored_calls, {raw_sums} "
            f"FROM calls_route_scores_daily WHERE {{cond}} AND NOT is_tool GROUP BY {keys}"))
    sums = ", ".join(f"sum({c}) AS {c}" for c in TOKEN_CLASSES)
    return wh.query_df(f"""
        SELECT toString(routing_policy) AS policy, cascade_step, toString(provider) AS provider,
            toString(model) AS model, sum(calls) AS calls, sum(scored_calls) AS scored_calls,
            arraySort(groupUniqArray(toString(project))) AS projects, {sums}
        FROM ({" UNION ALL ".join(parts)})
        GROUP BY policy, cascade_step, provider, model ORDER BY policy, cascade_step, calls DESC
    """, params, tag=tag)


def _tiered(scope: Scope, start: datetime, end: datetime, days: tuple[datetime, datetime], filters: dict[str, list[str]],
            params: dict[str, Any], raw: str, daily: str) -> list[str]:
    """`raw` (over raw calls) for the partial days at the edges of [start, end) and `daily` (over
    `calls_route_scores_daily`) for the whole days `days`; each has a `{cond}` placeholder."""
    params.update(d_first=days[0], d_last=days[1])
    parts = [daily.format(cond=where(scope, days[0], days[1], filters, params=params, ts="day",
                                     bounds=("d_first", "d_last")))]
    if start < days[0] or days[1] < end:
        cond = where(scope, start, end, filters, params=params)
        parts.append(raw.format(cond=cond + " AND (ts < {d_first:DateTime64(3, 'UTC')} "
                                             "OR ts >= {d_last:DateTime64(3, 'UTC')})"))
    return parts


# the price context of a group (as ingest's pricing join derives it from is_batch and service_tier)
_CONTEXT = ("multiIf(is_batch, 'processing=batch', service_tier IN ('default', 'flex', 'priority', 'fast'), "
            "concat('service_tier=', service_tier), '')")
# a group's cost on its one price cell: `price_calls.sql` applied to summed token classes (linear
# in the tokens once the cell is fixed, so equal to the sum of the calls' own costs)
_GROUP_COST = """
    n_in * ifNull(p.rate_input, 0) + n_cr * ifNull(p.rate_cache_read, 0)
    + n_cw * ifNull(p.rate_cache_write, 0) + n_cw5 * ifNull(p.rate_cache_write_5m, 0)
    + n_cw1h * ifNull(p.rate_cache_write_1h, 0)
    + n_out * ifNull(p.rate_output, 0) + n_rs * ifNull(p.rate_output_reasoning, 0)
    + toDecimal128(g.web_searches, 0) * ifNull(p.rate_web_search, 0)
    + if(p.price_source = '', 0, toDecimal128(g.n, 0) * ifNull(p.rate_request, 0))"""


def live_scores(wh: Warehouse, scope: Scope, route: str, policy: str, start: datetime, end: datetime, *,
                cheap: tuple[str, str], frontier: tuple[str, str], tag: str = "advisor:live") -> pl.DataFrame:
    """The logged `router_score` of the policy's step-0 calls on `route`, grouped by score (4
    decimals): `n`, and the requests' cost with their own tokens, context and time priced on the
    cheap and on the frontier (provider, model) — `cheap_cost_usd`, `frontier_cost_usd` — plus
    `unpriced_cheap` / `unpriced_frontier` counts of requests without a price cell.

    Whole UTC days come from `calls_route_scores_daily`, partial days from raw calls; the calls of
    one price context and score are priced together on the one price cell holding all of them (its
    validity covers [start, end), no time-of-day window, its input tier holds the group's smallest
    and largest input): pricing is linear in the tokens, so that equals the sum of the calls' own
    costs, to the last digit. Where some group has no such single cell, every call is priced on its own instead (`_live_scores_raw`)."""
    days = hybrid.whole_days(start, end)
    if days is None:
        return _live_scores_raw(wh, scope, route, policy, start, end, cheap=cheap, frontier=frontier, tag=tag)
    params: dict[str, Any] = {"policy": policy, "cp": cheap[0], "cm": cheap[1], "fp": frontier[0], "fm": frontier[1]}
    keys = "is_batch, service_tier, score"
    raw_sums = ", ".join(f"sum({c}) AS x_{c}" for c in TOKEN_CLASSES)  # UNION ALL matches parts by position
    sums = ", ".join(f"sum({c}) AS {c}" for c in TOKEN_CLASSES)
    raw = (f"SELECT is_batch, service_tier, round(toFloat64(router_score), 4) AS score, "
           f"count() AS n, {raw_sums}, sum(web_searches) AS x_web_searches, min(input_tokens) AS input_min, "
           f"max(input_tokens) AS input_max FROM calls WHERE {{cond}} AND routing_policy = {{{{policy:String}}}} "
           f"AND cascade_step = 0 AND router_score IS NOT NULL GROUP BY {keys}")
    daily = (f"SELECT {keys}, sum(calls) AS n, {sums}, sum(web_searches) AS web_searches, min(input_min) AS input_min, "
             f"max(input_max) AS input_max FROM calls_route_scores_daily WHERE {{cond}} "
             f"AND routing_policy = {{{{policy:String}}}} AND cascade_step = 0 AND score >= 0 GROUP BY {keys}")
    parts = _tiered(scope, start, end, days, {"route": [route]}, params, raw, daily)
    params.update(r_start=start, r_end=end)
    frame = wh.query_df(f"""
        WITH
            toDecimal128(if(isNotNull(p.rate_cache_write_1h), g.cache_write_1h_tokens, 0), 0) AS n_cw1h,
            toDecimal128(if(isNotNull(p.rate_cache_write_5m), g.cache_write_5m_tokens, 0), 0) AS n_cw5,
            toDecimal128(if(isNotNull(p.rate_cache_write),
                toInt64(g.cache_write_5m_tokens) + g.cache_write_1h_tokens - n_cw1h - n_cw5, 0), 0) AS n_cw,
            toDecimal128(if(isNotNull(p.rate_cache_read), g.cache_read_tokens, 0), 0) AS n_cr,
            toDecimal128(toInt64(g.input_tokens), 0) - n_cr - n_cw - n_cw1h - n_cw5 AS n_in,
            toDecimal128(if(isNotNull(p.rate_output_reasoning), g.reasoning_tokens, 0), 0) AS n_rs,
            toDecimal128(toInt64(g.output_tokens), 0) - n_rs AS n_out
        SELECT score, sumIf(requests, side = 'cheap') AS n,
            sumIf(cost, side = 'cheap') AS cheap_cost_usd, sumIf(cost, side = 'frontier') AS frontier_cost_usd,
            sumIf(requests, side = 'cheap' AND unpriced) AS unpriced_cheap,
            sumIf(requests, side = 'frontier' AND unpriced) AS unpriced_frontier,
            countIf(NOT (cells = 1 AND (unpriced OR uniform))) AS inexact
        FROM (
            SELECT g.score AS score, g.side AS side, any(g.n) AS requests, count() AS cells,
                any(p.price_source) = '' AS unpriced, any({_GROUP_COST}) AS cost,
                any(p.valid_from <= {{r_start:DateTime64(3, 'UTC')}} AND {{r_end:DateTime64(3, 'UTC')}} <= p.valid_to
                    AND p.tod_from_ms = 0
                    AND p.tod_to_ms = 86400000 AND p.input_above < g.input_min
                    AND g.input_max <= p.input_upto) AS uniform
            FROM (
                SELECT *, side, {_CONTEXT} AS context,
                    if(side = 'cheap', {{cp:String}}, {{fp:String}}) AS provider,
                    if(side = 'cheap', {{cm:String}}, {{fm:String}}) AS model
                FROM (SELECT {keys}, sum(n) AS n, {sums}, sum(web_searches) AS web_searches,
                          min(input_min) AS input_min, max(input_max) AS input_max
                      FROM ({" UNION ALL ".join(parts)}) GROUP BY {keys})
                ARRAY JOIN ['cheap', 'frontier'] AS side
            ) AS g
            LEFT JOIN prices AS p
                ON p.provider = g.provider AND p.model = g.model AND p.context = g.context
                AND p.valid_from < {{r_end:DateTime64(3, 'UTC')}} AND p.valid_to > {{r_start:DateTime64(3, 'UTC')}}
                AND p.input_above < toInt64(g.input_max) AND p.input_upto >= toInt64(g.input_min)
            GROUP BY g.is_batch, g.service_tier, g.score, g.side
        )
        GROUP BY score ORDER BY score
    """, params, tag=tag)
    if frame["inexact"].sum():
        return _live_scores_raw(wh, scope, route, policy, start, end, cheap=cheap, frontier=frontier, tag=tag)
    return frame.drop("inexact")


def _live_scores_raw(wh: Warehouse, scope: Scope, route: str, policy: str, start: datetime, end: datetime, *,
                     cheap: tuple[str, str], frontier: tuple[str, str], tag: str) -> pl.DataFrame:
    """`live_scores` with every call priced on its own by the pipeline's pricing join."""
    params: dict[str, Any] = {"policy": policy, "cp": cheap[0], "cm": cheap[1], "fp": frontier[0], "fm": frontier[1]}
    cond = where(scope, start, end, {"route": [route]}, params=params)
    base = (f"FROM calls WHERE {cond} AND routing_policy = {{policy:String}} AND cascade_step = 0 "
            f"AND router_score IS NOT NULL")
    source = (f"(SELECT * REPLACE ({{cp:String}} AS provider, {{cm:String}} AS model), 'cheap' AS side {base} "
              f"UNION ALL SELECT * REPLACE ({{fp:String}} AS provider, {{fm:String}} AS model), 'frontier' AS side {base})")
    return wh.query_df(f"""
        SELECT round(toFloat64(router_score), 4) AS score, countIf(side = 'cheap') AS n,
            sumIf(cost_usd, side = 'cheap') AS cheap_cost_usd, sumIf(cost_usd, side = 'frontier') AS frontier_cost_usd,
            countIf(side = 'cheap' AND unpriced) AS unpriced_cheap, countIf(side = 'frontier' AND unpriced) AS unpriced_frontier
        FROM ({_priced(source)}) GROUP BY score ORDER BY score
    """, params, tag=tag)


def price_queries(wh: Warehouse, queries: pl.DataFrame, *, at: datetime, tag: str = "advisor:price") -> pl.DataFrame:
    """Price hypothetical standard-context calls made at `at`: `queries` has `qid`, `provider`,
    `model` and the `TOKEN_CLASSES` (missing classes are 0). Returns `qid`, `cost_usd`, `unpriced`."""
    frame = queries.with_columns(pl.lit(0).alias(c) for c in TOKEN_CLASSES if c not in queries.columns)
    params: dict[str, Any] = {"at": at, "qid": frame["qid"].cast(pl.UInt32).to_list(),
                              "provider": frame["provider"].to_list(), "model": frame["model"].to_list()}
    for c in TOKEN_CLASSES:
        params[c] = frame[c].cast(pl.UInt64).to_list()
    zeros = ", ".join(f"toDecimal128(0, 18) AS {c}" for c in _COST_COLUMNS)
    tokens = ", ".join(f"toUInt64(q.{i + 4}) AS {c}" for i, c in enumerate(TOKEN_CLASSES))
    arrays = ", ".join(f"{{{c}:Array(UInt64)}}" for c in TOKEN_CLASSES)
    source = f"""(
        SELECT q.1 AS qid, toString(q.2) AS provider, toString(q.3) AS model, false AS is_batch, '' AS service_tier,
            {{at:DateTime64(3, 'UTC')}} AS ts, {tokens}, toUInt32(0) AS web_searches, {zeros},
            '' AS price_source, false AS unpriced
        FROM (SELECT arrayJoin(arrayZip({{qid:Array(UInt32)}}, {{provider:Array(String)}}, {{model:Array(String)}}, {arrays})) AS q)
    )"""
    return wh.query_df(f"SELECT qid, cost_usd, unpriced FROM ({_priced(source)}) ORDER BY qid", params, tag=tag)


def priced_providers(wh: Warehouse, model: str, *, tag: str = "advisor:providers") -> Sequence[str]:
    """Providers the price table has `model` under."""
    rows = wh.query_rows("SELECT DISTINCT toString(provider) FROM prices WHERE model = {m:String} ORDER BY 1",
                         {"m": model}, tag=tag)
    return [r[0] for r in rows]
