"""Probable-cause queries, run only for the scopes of an alert that fires: what attribute changed
just before a measure moved, who or what drives a cost, which sessions grow, which node queues.
Filters use the attribution allow-list (`scope.DIMENSIONS`); attributes their own allow-list.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries.scope import DIMENSIONS, Filters, Scope, where

# Attributes whose change can explain a signal, as SQL over `calls`.
ATTRIBUTES: dict[str, str] = {
    "prompt_version": "prompt_version",
    "prompt_prefix_hash": "prompt_prefix_hash",
    "sdk": "tags['sdk']",
    "model": "model",
    "model_raw": "model_raw",
    "provider": "provider",
    "node": "node",
}


def attribute_shift(
    wh: Warehouse,
    scope: Scope,
    filters: Filters,
    attribute: str,
    *,
    lo: datetime,
    split: datetime,
    hi: datetime,
    first_step_only: bool = False,
) -> pl.DataFrame:
    """Calls per value of `attribute` before and after `split` within [lo, hi), with each value's
    first appearance: `period` ('before' / 'after'), `value`, `calls`, `first_seen`."""
    if attribute not in ATTRIBUTES:
        raise ValueError(f"{attribute!r} is not one of {sorted(ATTRIBUTES)}")
    params: dict[str, Any] = {"split": split}
    step = " AND cascade_step = 0" if first_step_only else ""
    sql = f"""
        SELECT if(ts < {{split:DateTime64(3, 'UTC')}}, 'before', 'after') AS period, value, count() AS calls,
            min(ts) AS first_seen
        FROM (SELECT ts, {ATTRIBUTES[attribute]} AS value FROM calls
              WHERE {where(scope, lo, hi, filters, params=params)}{step})
        GROUP BY period, value
        ORDER BY period, calls DESC, value
    """
    return wh.query_df(sql, params, tag=f"signals:cause-{attribute}")


def top_contributors(
    wh: Warehouse,
    scope: Scope,
    filters: Filters,
    dimensions: Sequence[str],
    *,
    lo: datetime,
    hi: datetime,
    limit: int = 3,
) -> pl.DataFrame:
    """The `limit` largest (dimension values) by cost within [lo, hi): their cost, calls and share."""
    columns = ", ".join(identifier(d, DIMENSIONS) for d in dimensions)
    params: dict[str, Any] = {"limit": int(limit)}
    sql = f"""
        SELECT {columns}, sum(calls.cost_usd) AS cost_usd, count() AS n_calls,
            toFloat64(cost_usd) / nullIf(toFloat64(sum(sum(calls.cost_usd)) OVER ()), 0) AS share
        FROM calls WHERE {where(scope, lo, hi, filters, params=params)}
        GROUP BY {columns} ORDER BY cost_usd DESC LIMIT {{limit:UInt32}}
    """
    return wh.query_df(sql, params, tag="signals:cause-contributors")


def growing_sessions(
    wh: Warehouse, scope: Scope, filters: Filters, *, lo: datetime, hi: datetime, limit: int = 3
) -> pl.DataFrame:
    """Sessions whose input tokens grow fastest across turns within [lo, hi): turns, first and last
    input, growth per turn (tokens), user."""
    params: dict[str, Any] = {"limit": int(limit)}
    sql = f"""
        SELECT session_id, any(user_id) AS user_id, count() AS turns,
            argMin(input_tokens, ts) AS first_input_tokens, argMax(input_tokens, ts) AS last_input_tokens,
            (toInt64(last_input_tokens) - toInt64(first_input_tokens)) / greatest(turns - 1, 1) AS growth_per_turn
        FROM calls
        WHERE {where(scope, lo, hi, filters, params=params)} AND session_id != '' AND status = 'ok'
        GROUP BY session_id HAVING turns >= 5
        ORDER BY toInt64(last_input_tokens) - toInt64(first_input_tokens) DESC LIMIT {{limit:UInt32}}
    """
    return wh.query_df(sql, params, tag="signals:cause-sessions")


def slow_nodes(
    wh: Warehouse, scope: Scope, filters: Filters, *, lo: datetime, hi: datetime, slow_ms: int
) -> pl.DataFrame:
    """Per node (or provider when calls have no node) within [lo, hi), ok calls: calls, mean queue,
    p99 latency and the share of calls at or over `slow_ms`; slowest first."""
    params: dict[str, Any] = {"slow_ms": int(slow_ms)}
    sql = f"""
        SELECT if(node != '', node, provider) AS node, count() AS calls,
            avg(ifNull(queue_ms, 0)) AS queue_mean_ms,
            quantileTDigest(0.99)(assumeNotNull(latency_ms)) AS latency_p99_ms,
            countIf(latency_ms >= {{slow_ms:UInt32}}) / count() AS slow_share
        FROM calls
        WHERE {where(scope, lo, hi, filters, params=params)} AND status = 'ok' AND latency_ms IS NOT NULL
        GROUP BY node ORDER BY slow_share DESC, latency_p99_ms DESC
    """
    return wh.query_df(sql, params, tag="signals:cause-nodes")


def price_changes(wh: Warehouse, models: Sequence[str], *, since: datetime, until: datetime) -> pl.DataFrame:
    """Price cells of `models` that took effect in [since, until] (provider, model, first_valid_from)."""
    sql = """
        SELECT provider, model, min(prices.valid_from) AS first_valid_from FROM prices
        WHERE model IN {models:Array(String)} AND prices.valid_from >= {since:DateTime64(3, 'UTC')}
            AND prices.valid_from <= {until:DateTime64(3, 'UTC')}
        GROUP BY provider, model ORDER BY first_valid_from
    """
    return wh.query_df(sql, {"models": list(models), "since": since, "until": until}, tag="signals:cause-prices")
