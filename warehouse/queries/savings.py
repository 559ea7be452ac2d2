"""Savings opportunities and realised savings, measured from stored calls (design.md §5).

Each function returns the evidence and a dollar figure for the range; callers scale it to a
month. Prices come from the `prices` cell each call was priced with (same join conditions as
`ingest/sql/price_calls.sql`), so negotiated discounts and context tiers carry through. Money is
Decimal(38, 18) USD; shares are floats in [0, 1]; ranges are half-open [start, end), UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse
from warehouse.queries.scope import Filters, Scope, where

# The price cell of call `c` (one row matches a priced call; none an unpriced one).
_PRICE_CELL = """
    p.provider = c.provider AND p.model = c.model
    AND p.context = multiIf(c.is_batch, 'processing=batch',
        c.service_tier IN ('default', 'flex', 'priority', 'fast'), concat('service_tier=', c.service_tier), '')
    AND c.ts >= p.valid_from AND c.ts < p.valid_to
    AND toUInt32(toUnixTimestamp64Milli(c.ts) % 86400000) >= p.tod_from_ms
    AND toUInt32(toUnixTimestamp64Milli(c.ts) % 86400000) < p.tod_to_ms
    AND toInt64(c.input_tokens) > p.input_above AND toInt64(c.input_tokens) <= p.input_upto
"""
_NO_CACHE = "c.cache_read_tokens = 0 AND c.cache_write_5m_tokens = 0 AND c.cache_write_1h_tokens = 0"


def cache_savings(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None, *,
    tag: str = "savings:cache",
) -> pl.DataFrame:
    """One row: `cache_read_tokens`, `cache_read_cost_usd` and `realised_usd` — what the cache reads
    would have cost as uncached input minus what they cost (models with a cache-read price)."""
    params: dict[str, Any] = {}
    cond = _filtered(scope, start, end, filters, params)
    sql = f"""
        SELECT sum(c.cache_read_tokens) AS cache_read_tokens, sum(c.cache_read_cost_usd) AS cache_read_cost_usd,
            sum(toDecimal128(c.cache_read_tokens, 0) * (ifNull(p.rate_input, 0) - ifNull(p.rate_cache_read, 0)))
                AS realised_usd
        FROM (SELECT * FROM calls WHERE {cond} AND cache_read_tokens > 0) AS c
        LEFT JOIN prices AS p ON {_PRICE_CELL}
        SETTINGS join_use_nulls = 1
    """
    return wh.query_df(sql, params, tag=tag)


def _filtered(scope: Scope, start: datetime, end: datetime, filters: Filters | None,
              params: dict[str, Any]) -> str:
    return where(scope, start, end, filters, params=params)


def uncached_prefixes(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None, *,
    min_input_tokens: int = 1024, min_calls: int = 20, min_uncached_share: float = 0.5,
    tag: str = "savings:uncached_prefix",
) -> pl.DataFrame:
    """Repeated prompt prefixes sent without caching: per route, provider, model and
    `prompt_prefix_hash`, among calls of at least `min_input_tokens` input tokens, the groups where
    at least `min_calls` calls and `min_uncached_share` of them neither read nor wrote the cache.

    The shared prefix is estimated as the smallest input of the group's uncached calls (a prefix
    is never longer than the shortest prompt that carries it). `saving_usd` is what reading that
    prefix from the cache would have saved on the uncached calls: prefix tokens × (input price −
    cache-read price) of each call's price cell, before cache-write or storage charges. Models
    without a cache-read price are left out. Columns: route, provider, model, prompt_prefix_hash,
    eligible_calls, uncached_calls, prefix_tokens, input_cost_usd, cost_usd, saving_usd.
    """
    params: dict[str, Any] = {"min_input": int(min_input_tokens), "min_calls": int(min_calls),
                              "min_share": float(min_uncached_share)}
    cond = _filtered(scope, start, end, filters, params)
    sql = f"""
        WITH groups AS (
            SELECT route, provider, model, prompt_prefix_hash,
                count() AS eligible_calls,
                countIf(cache_read_tokens = 0 AND cache_write_5m_tokens = 0 AND cache_write_1h_tokens = 0)
                    AS uncached_calls,
                minIf(input_tokens,
                      cache_read_tokens = 0 AND cache_write_5m_tokens = 0 AND cache_write_1h_tokens = 0)
                    AS prefix_tokens
            FROM calls
            WHERE {cond} AND prompt_prefix_hash != '' AND input_tokens >= {{min_input:UInt32}} AND NOT unpriced
            GROUP BY route, provider, model, prompt_prefix_hash
            HAVING uncached_calls >= {{min_calls:UInt32}} AND uncached_calls >= {{min_share:Float64}} * eligible_calls
        )
        SELECT c.route AS route, c.provider AS provider, c.model AS model, c.prompt_prefix_hash AS prompt_prefix_hash,
            any(g.eligible_calls) AS eligible_calls, any(g.uncached_calls) AS uncached_calls,
            any(g.prefix_tokens) AS prefix_tokens,
            sum(c.input_cost_usd) AS input_cost_usd, sum(c.cost_usd) AS cost_usd,
            sum(toDecimal128(g.prefix_tokens, 0) * (p.rate_input - p.rate_cache_read)) AS saving_usd
        FROM (SELECT * FROM calls
              WHERE {cond} AND prompt_prefix_hash != '' AND input_tokens >= {{min_input:UInt32}}) AS c
        INNER JOIN groups AS g
            ON g.route = c.route AND g.provider = c.provider AND g.model = c.model
            AND g.prompt_prefix_hash = c.prompt_prefix_hash
        INNER JOIN prices AS p ON {_PRICE_CELL}
        WHERE {_NO_CACHE} AND p.rate_cache_read IS NOT NULL AND p.rate_input IS NOT NULL
        GROUP BY route, provider, model, prompt_prefix_hash
        ORDER BY saving_usd DESC, route, model
    """
    return wh.query_df(sql, params, tag=tag)


def batch_candidates(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None, *,
    business_hours: tuple[int, int] = (8, 18), service_users: Sequence[str] = ("svc-*",),
    min_calls: int = 20, min_unstreamed_share: float = 0.9, min_offline_share: float = 0.8,
    tag: str = "savings:batch",
) -> pl.DataFrame:
    """Routes whose synchronous (`is_batch = false`) API calls look non-interactive: at least
    `min_unstreamed_share` not streamed, and at least `min_offline_share` either outside business
    hours (`[from, to)` UTC hour, Monday to Friday) or made by a service user (`service_users`
    globs, `*` any run of characters). Columns: route, models, calls, cost_usd, unstreamed_share,
    off_hours_share, service_user_share, users (up to 3 most frequent)."""
    params: dict[str, Any] = {
        "bh_from": int(business_hours[0]), "bh_to": int(business_hours[1]), "min_calls": int(min_calls),
        "min_unstreamed": float(min_unstreamed_share), "min_offline": float(min_offline_share),
        "service_users": [pattern.replace("%", "\\%").replace("_", "\\_").replace("*", "%")
                          for pattern in service_users],
    }
    cond = _filtered(scope, start, end, filters, params)
    off_hours = ("(toDayOfWeek(ts) >= 6 OR toHour(ts) < {bh_from:UInt8} OR toHour(ts) >= {bh_to:UInt8})")
    service = "arrayExists(pattern -> user_id LIKE pattern, {service_users:Array(String)})"
    sql = f"""
        SELECT route, arraySort(groupUniqArray(model)) AS models, count() AS calls, sum(cost_usd) AS cost_usd,
            countIf(NOT stream) / count() AS unstreamed_share,
            countIf({off_hours}) / count() AS off_hours_share,
            countIf({service}) / count() AS service_user_share,
            topK(3)(user_id) AS users
        FROM calls
        WHERE {cond} AND NOT is_batch AND deployment = 'api' AND route != '' AND NOT unpriced
        GROUP BY route
        HAVING calls >= {{min_calls:UInt32}} AND unstreamed_share >= {{min_unstreamed:Float64}}
            AND greatest(off_hours_share, service_user_share) >= {{min_offline:Float64}}
        ORDER BY cost_usd DESC, route
    """
    return wh.query_df(sql, params, tag=tag)


def cascade_escalations(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None, *,
    tag: str = "savings:cascades",
) -> pl.DataFrame:
    """Per routing policy: first-step calls (`cascade_step = 0`), escalations (later steps), the
    escalation rate (escalations / first-step calls, as the stale-routing signal counts it), the
    most used cheap and frontier models, the cost of each step and the routes. Most escalation
    cost first."""
    params: dict[str, Any] = {}
    cond = _filtered(scope, start, end, filters, params)
    sql = f"""
        SELECT routing_policy, arraySort(groupUniqArray(route)) AS routes,
            countIf(cascade_step = 0) AS first_step_calls, countIf(cascade_step > 0) AS escalations,
            if(first_step_calls = 0, NULL, escalations / first_step_calls) AS escalation_rate,
            topKIf(1)(model, cascade_step = 0)[1] AS cheap_model,
            topKIf(1)(model, cascade_step > 0)[1] AS frontier_model,
            sumIf(cost_usd, cascade_step = 0) AS first_step_cost_usd,
            sumIf(cost_usd, cascade_step > 0) AS escalation_cost_usd
        FROM calls
        WHERE {cond} AND routing_policy != '' AND tool_name = ''
        GROUP BY routing_policy
        ORDER BY escalation_cost_usd DESC, routing_policy
    """
    return wh.query_df(sql, params, tag=tag)


def reasoning_tails(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None, *,
    quantile: float = 0.95, min_calls: int = 20, tag: str = "savings:reasoning",
) -> pl.DataFrame:
    """Per route and model with reasoning: calls, the reasoning share of output tokens, the
    `quantile` of reasoning tokens per call (`budget_tokens`, the budget that would cut the tail),
    the calls above it, the largest, and `saving_usd` — the reasoning tokens above the budget at
    each call's own output price (output cost / output tokens). Largest saving first."""
    params: dict[str, Any] = {"q": float(quantile), "min_calls": int(min_calls)}
    cond = _filtered(scope, start, end, filters, params)
    sql = f"""
        WITH budgets AS (
            SELECT route, model, toUInt32(quantileExact({{q:Float64}})(reasoning_tokens)) AS budget_tokens,
                count() AS calls, sum(reasoning_tokens) / sum(output_tokens) AS reasoning_share,
                max(reasoning_tokens) AS max_reasoning_tokens
            FROM calls WHERE {cond} AND reasoning_tokens > 0 AND output_tokens > 0
            GROUP BY route, model
            HAVING calls >= {{min_calls:UInt32}}
        )
        SELECT c.route AS route, c.model AS model, any(b.calls) AS calls, any(b.reasoning_share) AS reasoning_share,
            any(b.budget_tokens) AS budget_tokens, any(b.max_reasoning_tokens) AS max_reasoning_tokens,
            countIf(c.reasoning_tokens > b.budget_tokens) AS over_budget_calls,
            sum(c.output_cost_usd) AS output_cost_usd,
            sumIf(toDecimal128(c.reasoning_tokens - b.budget_tokens, 0) * c.output_cost_usd
                  / toDecimal128(c.output_tokens, 0), c.reasoning_tokens > b.budget_tokens) AS saving_usd
        FROM (SELECT * FROM calls WHERE {cond} AND reasoning_tokens > 0 AND output_tokens > 0) AS c
        INNER JOIN budgets AS b ON b.route = c.route AND b.model = c.model
        GROUP BY route, model
        ORDER BY saving_usd DESC, route, model
    """
    return wh.query_df(sql, params, tag=tag)
