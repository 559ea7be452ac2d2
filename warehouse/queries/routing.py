"""Cascade routing: escalation rate per routing policy over time (healthy 30–50%), the cost of each
cascade step, and what the same requests would have cost sent straight to the frontier model.

Escalation rate = calls at step 1 / calls at step 0 of a policy (the stale-routing signal's
definition; a third step is a second escalation, not counted again). The frontier model of a
policy is the model most used at its escalation step (step 1) in the range; "all on the frontier"
reprices the tokens of the step-0 calls (one per request) at that model's base rates (`rates`).
Whole hours come from the rollups (`calls_routing_hourly` for steps and token classes).
Money is Decimal(38, 18) USD; ranges are [start, end).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse
from warehouse.queries import hybrid, rates
from warehouse.queries.scope import Filters, Scope
from warehouse.queries.series import COARSE_GRAINS, DAY_GRAINS, GRAINS


def cascade_series(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, grain: str = "hour",
    filters: Filters | None = None, tag: str = "routing:series",
) -> pl.DataFrame:
    """Per bucket and routing policy: step-0 calls, escalated calls (step 1), the escalation rate
    (NULL without step-0 calls) and the models answering step 0 (a changed cheap model shows here).
    At hour grain and coarser, whole hours (days at day and week grain) come from the rollups."""
    if grain not in GRAINS:
        raise ValueError(f"{grain!r} is not one of {sorted(GRAINS)}")
    params: dict[str, Any] = {}
    rows = None
    if grain in COARSE_GRAINS:
        rows = hybrid.rows(scope, start, end, filters, keys={"policy": "routing_policy", "step_model": "model"},
                           measures=("step0_calls", "step1_calls"), params=params, days=grain in DAY_GRAINS)
    if rows is None:
        rows = hybrid.raw_rows(scope, start, end, filters, keys={"policy": "routing_policy", "step_model": "model"},
                               measures=("step0_calls", "step1_calls"), params=params, subset=hybrid.ROUTED)
    sql = f"""
        SELECT {hybrid.bucket(GRAINS[grain])} AS bucket, policy AS routing_policy,
            sum(step0_calls) AS step0, sum(step1_calls) AS step1,
            if(step0 = 0, NULL, step1 / step0) AS escalation_rate,
            arraySort(groupUniqArrayIf(4)(step_model, step0_calls > 0)) AS step0_models
        FROM ({rows}) WHERE policy != ''
        GROUP BY bucket, routing_policy ORDER BY bucket, routing_policy
    """
    return wh.query_df(sql, params, tag=tag).rename({"step0": "step0_calls", "step1": "escalated_calls"})


def cascade_steps(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, filters: Filters | None = None,
    tag: str = "routing:steps",
) -> pl.DataFrame:
    """Per routing policy, step and model: calls, cost (`cost_usd`, and per call), input and output
    tokens, and the step's share of the policy's cost."""
    params: dict[str, Any] = {}
    keys = {"policy": "routing_policy", "step": "cascade_step", "m": "model", "p": "provider"}
    measures = ("calls", "cost_usd", "input_tokens", "output_tokens")
    rows = (hybrid.rows(scope, start, end, filters, keys=keys, measures=measures, params=params, subset=hybrid.ROUTED)
            or hybrid.raw_rows(scope, start, end, filters, keys=keys, measures=measures, params=params,
                               subset=hybrid.ROUTED))
    sql = f"""
        SELECT routing_policy, cascade_step, model, provider, n_calls AS calls, step_cost AS cost_usd,
            step_cost / n_calls AS cost_per_call_usd, in_tokens AS input_tokens, out_tokens AS output_tokens,
            if(sum(step_cost) OVER (PARTITION BY routing_policy) = 0, NULL,
               toFloat64(step_cost) / toFloat64(sum(step_cost) OVER (PARTITION BY routing_policy))) AS cost_share
        FROM (
            SELECT policy AS routing_policy, toUInt8(step) AS cascade_step, m AS model, p AS provider,
                toUInt64(sum(calls)) AS n_calls, sum(cost_usd) AS step_cost, toUInt64(sum(input_tokens)) AS in_tokens,
                toUInt64(sum(output_tokens)) AS out_tokens
            FROM ({rows}) WHERE policy != ''
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
    # two statements, not one: ClickHouse would evaluate a shared CTE once per reference. The
    # policies' calls, cost and escalations come from the daily and hourly rollups for whole days and hours.
    keys = {"policy": "routing_policy", "p": "provider", "m": "model"}
    measures = ("calls", "cost_usd", "step0_calls", "step1_calls")
    rows = (hybrid.rows(scope, start, end, filters, keys=keys, measures=measures, params=params, days=True)
            or hybrid.raw_rows(scope, start, end, filters, keys=keys, measures=measures, params=params,
                               subset=hybrid.ROUTED))
    actual = wh.query_df(f"""
        SELECT policy AS routing_policy, sum(step0) AS requests, sum(n) AS calls, sum(cost) AS actual_cost_usd,
            argMax((p, m), (step1 > 0, step1, step0)) AS pm, pm.2 AS frontier_model, pm.1 AS frontier_provider
        FROM (
            SELECT policy, p, m, sum(calls) AS n, sum(cost_usd) AS cost, sum(step0_calls) AS step0,
                sum(step1_calls) AS step1
            FROM ({rows}) WHERE policy != '' GROUP BY policy, p, m
        )
        GROUP BY policy ORDER BY policy
    """, params, tag=tag).drop("pm")
    money = pl.Decimal(38, 18)
    if actual.is_empty():
        return actual.with_columns(pl.lit(None, dtype=money).alias("all_frontier_cost_usd"),
                                   pl.lit(None, dtype=money).alias("saved_usd"))
    params.update(f_policies=actual["routing_policy"].to_list(), f_providers=actual["frontier_provider"].to_list(),
                  f_models=actual["frontier_model"].to_list())
    # the step-0 calls' token classes per hour and price context, from the routing rollup for whole hours
    keys = {"policy": "routing_policy", "step": "cascade_step", "is_batch": "is_batch", "service_tier": "service_tier"}
    tokens = ("uncached_input_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens",
              "visible_output_tokens", "reasoning_tokens")
    steps = (hybrid.rows(scope, start, end, filters, keys=keys, measures=tokens, params=params, subset=hybrid.ROUTED)
             or hybrid.raw_rows(scope, start, end, filters, keys=keys, measures=tokens, params=params,
                                subset=hybrid.ROUTED))
    repriced = wh.query_df(f"""
        SELECT s.policy AS routing_policy,
            sum(toDecimal128(s.uncached, 0) * p.rate_input
                + toDecimal128(s.cache_read, 0) * ifNull(p.rate_cache_read, p.rate_input)
                + toDecimal128(s.write_5m, 0) * coalesce(p.rate_cache_write_5m, p.rate_cache_write, p.rate_input)
                + toDecimal128(s.write_1h, 0) * coalesce(p.rate_cache_write_1h, p.rate_cache_write, p.rate_input)
                + toDecimal128(s.visible, 0) * p.rate_output
                + toDecimal128(s.reasoning, 0) * ifNull(p.rate_output_reasoning, p.rate_output)) AS cost,
            countIf(p.rate_input IS NULL OR p.rate_output IS NULL) AS unpriced_hours
        FROM (
            SELECT *, {rates.TEXT_CONTEXT} AS context, toDateTime64(hour_start, 3, 'UTC') AS hour,
                {{f_providers:Array(String)}}[indexOf({{f_policies:Array(String)}}, policy)] AS f_provider,
                {{f_models:Array(String)}}[indexOf({{f_policies:Array(String)}}, policy)] AS f_model
            FROM (
                SELECT policy, is_batch, service_tier, toStartOfHour(t) AS hour_start,
                    sum(uncached_input_tokens) AS uncached, sum(cache_read_tokens) AS cache_read,
                    sum(cache_write_5m_tokens) AS write_5m, sum(cache_write_1h_tokens) AS write_1h,
                    sum(visible_output_tokens) AS visible, sum(reasoning_tokens) AS reasoning
                FROM ({steps}) WHERE policy != '' AND step = '0' GROUP BY policy, is_batch, service_tier, hour_start
            )
        ) AS s
        LEFT JOIN prices AS p ON {rates.base_cell("p", "s", provider="s.f_provider", model="s.f_model")}
        GROUP BY s.policy
    """, params, tag=tag)
    out = actual.join(repriced, on="routing_policy", how="left").with_columns(
        pl.when(pl.col("unpriced_hours") == 0).then(pl.col("cost")).otherwise(None).cast(money)
        .alias("all_frontier_cost_usd"))
    return out.with_columns((pl.col("all_frontier_cost_usd") - pl.col("actual_cost_usd")).alias("saved_usd")).select(
        "routing_policy", "requests", "calls", "actual_cost_usd", "frontier_model", "frontier_provider",
        "all_frontier_cost_usd", "saved_usd")
