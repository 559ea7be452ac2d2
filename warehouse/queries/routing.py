"""Cascade routing: escalation rate per routing policy over time (healthy 30–50%), the cost of each
cascade step, and what the same requests would have cost sent straight to the frontier model.

Escalation rate = calls at step ≥ 1 / calls at step 0 of a policy. The frontier model of a policy is
the model most used at its highest step in the range; "all on the frontier" reprices the tokens of
the step-0 calls (one per request) at that model's base rates (`rates`).
Money is Decimal(38, 18) USD; ranges are [start, end).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse
from warehouse.queries import rates
from warehouse.queries.scope import Filters, Scope, where
from warehouse.queries.series import GRAINS


def cascade_series(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, grain: str = "hour",
    filters: Filters | None = None, tag: str = "routing:series",
) -> pl.DataFrame:
    """Per bucket and routing policy: step-0 calls, escalated calls (step ≥ 1), the escalation rate
    (NULL without step-0 calls) and the models answering step 0 (a changed cheap model shows here)."""
    if grain not in GRAINS:
        raise ValueError(f"{grain!r} is not one of {sorted(GRAINS)}")
    params: dict[str, Any] = {}
    sql = f"""
        SELECT {GRAINS[grain]} AS bucket, toString(routing_policy) AS routing_policy,
            countIf(cascade_step = 0) AS step0_calls, countIf(cascade_step > 0) AS escalated_calls,
            if(step0_calls = 0, NULL, escalated_calls / step0_calls) AS escalation_rate,
            arraySort(groupUniqArrayIf(4)(toString(model), cascade_step = 0)) AS step0_models
        FROM calls WHERE {where(scope, start, end, filters, params=params)} AND routing_policy != ''
        GROUP BY bucket, routing_policy ORDER BY bucket, routing_policy
    """
    return wh.query_df(sql, params, tag=tag)


def cascade_steps(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, filters: Filters | None = None,
    tag: str = "routing:steps",
) -> pl.DataFrame:
    """Per routing policy, step and model: calls, cost (`cost_usd`, and per call), input and output
    tokens, and the step's share of the policy's cost."""
    params: dict[str, Any] = {}
    sql = f"""
        SELECT routing_policy, cascade_step, model, provider, n_calls AS calls, step_cost AS cost_usd,
            step_cost / n_calls AS cost_per_call_usd, input_tokens, output_tokens,
            if(sum(step_cost) OVER (PARTITION BY routing_policy) = 0, NULL,
               toFloat64(step_cost) / toFloat64(sum(step_cost) OVER (PARTITION BY routing_policy))) AS cost_share
        FROM (
            SELECT toString(routing_policy) AS routing_policy, cascade_step, toString(model) AS model,
                toString(provider) AS provider, count() AS n_calls, sum(cost_usd) AS step_cost,
                sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
            FROM calls WHERE {where(scope, start, end, filters, params=params)} AND routing_policy != ''
            GROUP BY routing_policy, cascade_step, model, provider
        )
        ORDER BY routing_policy, cascade_step, cost_usd DESC
    """
    return wh.query_df(sql, params, tag=tag)


def frontier_cost(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, filters: Filters | None = None,
    tag: str = "routing:frontier",
) -> pl.DataFrame:
    """Per routing policy: requests (step-0 calls), all calls, the actual cost of every step, the
    frontier model, what the requests would have cost all on it (`all_frontier_cost_usd`, NULL when
    that model has no price) and the saving the cascade made (`saved_usd`)."""
    params: dict[str, Any] = {}
    cond = where(scope, start, end, filters, params=params) + " AND routing_policy != ''"
    sql = f"""
        WITH
        actual AS (
            SELECT toString(routing_policy) AS policy, countIf(cascade_step = 0) AS requests, count() AS all_calls,
                sum(cost_usd) AS actual_cost
            FROM calls WHERE {cond} GROUP BY policy
        ),
        frontier AS (
            SELECT policy, argMax((provider, model), (cascade_step, n)) AS pm
            FROM (
                SELECT toString(routing_policy) AS policy, cascade_step, toString(provider) AS provider,
                    toString(model) AS model, count() AS n
                FROM calls WHERE {cond} GROUP BY policy, cascade_step, provider, model
            )
            GROUP BY policy
        ),
        step0 AS (
            SELECT *, {rates.CONTEXT} AS context, toDateTime64(hour_start, 3, 'UTC') AS hour FROM (
            SELECT toString(routing_policy) AS policy, is_batch, service_tier, toStartOfHour(ts) AS hour_start,
                sum(input_tokens - cache_read_tokens - cache_write_5m_tokens - cache_write_1h_tokens) AS uncached,
                sum(cache_read_tokens) AS cache_read, sum(cache_write_5m_tokens) AS write_5m,
                sum(cache_write_1h_tokens) AS write_1h, sum(output_tokens - reasoning_tokens) AS visible,
                sum(reasoning_tokens) AS reasoning
            FROM calls WHERE {cond} AND cascade_step = 0 GROUP BY policy, is_batch, service_tier, hour_start
            )
        ),
        repriced AS (
            SELECT s.policy AS policy,
                sum(toDecimal128(s.uncached, 0) * p.rate_input
                    + toDecimal128(s.cache_read, 0) * ifNull(p.rate_cache_read, p.rate_input)
                    + toDecimal128(s.write_5m, 0) * coalesce(p.rate_cache_write_5m, p.rate_cache_write, p.rate_input)
                    + toDecimal128(s.write_1h, 0) * coalesce(p.rate_cache_write_1h, p.rate_cache_write, p.rate_input)
                    + toDecimal128(s.visible, 0) * p.rate_output
                    + toDecimal128(s.reasoning, 0) * ifNull(p.rate_output_reasoning, p.rate_output)) AS cost,
                countIf(p.rate_input IS NULL OR p.rate_output IS NULL) AS unpriced_hours
            FROM step0 AS s
            INNER JOIN frontier AS f ON f.policy = s.policy
            LEFT JOIN prices AS p ON {rates.base_cell("p", "s", provider="f.pm.1", model="f.pm.2")}
            GROUP BY s.policy
        )
        SELECT a.policy AS routing_policy, a.requests AS requests, a.all_calls AS calls,
            a.actual_cost AS actual_cost_usd, f.pm.2 AS frontier_model, f.pm.1 AS frontier_provider,
            if(r.unpriced_hours > 0, NULL, r.cost) AS all_frontier_cost_usd,
            all_frontier_cost_usd - actual_cost_usd AS saved_usd
        FROM actual AS a
        LEFT JOIN frontier AS f ON f.policy = a.policy
        LEFT JOIN repriced AS r ON r.policy = a.policy
        ORDER BY routing_policy
    """
    return wh.query_df(sql, params, tag=tag)
