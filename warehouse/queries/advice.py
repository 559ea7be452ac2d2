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
    projects, summed token classes, and (step 0) calls carrying a router score."""
    params: dict[str, Any] = {}
    cond = where(scope, start, end, {"route": [route]}, params=params)
    sums = ", ".join(f"sum({c}) AS {c}" for c in TOKEN_CLASSES)
    return wh.query_df(f"""
        SELECT toString(routing_policy) AS policy, cascade_step, toString(provider) AS provider,
            toString(model) AS model, count() AS calls, countIf(router_score IS NOT NULL) AS scored_calls,
            arraySort(groupUniqArray(toString(project))) AS projects, {sums}
        FROM calls WHERE {cond} AND tool_name = ''
        GROUP BY policy, cascade_step, provider, model ORDER BY policy, cascade_step, calls DESC
    """, params, tag=tag)


def live_scores(wh: Warehouse, scope: Scope, route: str, policy: str, start: datetime, end: datetime, *,
                cheap: tuple[str, str], frontier: tuple[str, str], tag: str = "advisor:live") -> pl.DataFrame:
    """The logged `router_score` of the policy's step-0 calls on `route`, grouped by score (4
    decimals): `n`, and the requests' cost with their own tokens, context and time priced on the
    cheap and on the frontier (provider, model) — `cheap_cost_usd`, `frontier_cost_usd` — plus
    `unpriced_cheap` / `unpriced_frontier` counts of requests without a price cell."""
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
