"""Prompt caching: hit-ratio windows, calls long enough to cache that were not cached, what cache
reads saved and what the missing caching cost, and prompt-version changes to mark on a time axis.

Eligibility: a call (status ok) is long enough to cache when its input reaches the minimum of the
longest matching `provider/model` prefix in `min_tokens` (`DEFAULT_MIN_CACHEABLE` mirrors the
providers' documented minimums). Savings price tokens at base rates (`rates`); money is
Decimal(38, 18) USD; ranges are [start, end).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries import rates
from warehouse.queries.scope import DIMENSIONS, Filters, Scope, where
from warehouse.queries.series import GRAINS

DEFAULT_MIN_CACHEABLE: dict[str, int] = {
    "anthropic/claude-haiku": 2048, "anthropic/claude-3-haiku": 2048, "anthropic/claude-3-5-haiku": 2048,
    "anthropic/claude": 1024, "openai/": 1024,
}


class _Eligibility:
    """Whether a call is long enough to cache, evaluated cheaply: per row only `input_tokens >= t` for each distinct
    minimum t (counted into arrays by the inner aggregation); the rule (longest matching
    `provider/model` prefix) is applied once per (provider, model) group by the outer query."""

    def __init__(self, min_tokens: Mapping[str, int], params: dict[str, Any]) -> None:
        rules = sorted(min_tokens.items(), key=lambda kv: (-len(kv[0]), kv[0]))
        self.thresholds = sorted({int(n) for _, n in rules}) or [0]
        params["cache_prefixes"] = [p for p, _ in rules]
        params["cache_rule_min"] = [int(n) for _, n in rules]
        params["cache_thresholds"] = self.thresholds
        for i, t in enumerate(self.thresholds):
            params[f"cache_t{i}"] = t

    def counts(self, condition: str, alias: str) -> str:
        """Inner aggregate: an array of counts of ok calls matching `condition`, one per threshold."""
        terms = ", ".join(f"countIf(status = 'ok' AND {condition} AND input_tokens >= {{cache_t{i}:UInt32}})"
                          for i in range(len(self.thresholds)))
        return f"[{terms}] AS {alias}"

    def sums(self, value: str, condition: str, alias: str) -> str:
        """Inner aggregate: an array of sums of `value` over ok calls matching `condition`, per threshold."""
        terms = ", ".join(f"sumIf({value}, status = 'ok' AND {condition} AND input_tokens >= {{cache_t{i}:UInt32}})"
                          for i in range(len(self.thresholds)))
        return f"[{terms}] AS {alias}"

    def pick(self, counts: str) -> str:
        """Outer expression (needs `provider` and `model`): the count at the group's own minimum."""
        rule = "arrayFirstIndex(p -> startsWith(concat(provider, '/', model), p), {cache_prefixes:Array(String)})"
        return (f"if({rule} = 0, 0, {counts}[indexOf({{cache_thresholds:Array(UInt32)}}, "
                f"arrayElement({{cache_rule_min:Array(UInt32)}}, greatest({rule}, 1)))])")


_UNCACHED = "(cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens = 0)"


def _keys(by: Sequence[str]) -> list[str]:
    return [identifier(d, DIMENSIONS) for d in by]


def cache_windows(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, grain: str = "hour", by: Sequence[str] = (),
    filters: Filters | None = None, min_tokens: Mapping[str, int] = DEFAULT_MIN_CACHEABLE,
    tag: str = "cache:windows",
) -> pl.DataFrame:
    """Per bucket (and the `by` dimensions): cache read / write tokens, hit ratio read / (read + write)
    (NULL when the cache was not touched), calls, eligible calls, eligible calls that neither read
    nor wrote the cache, and their share (`not_applied_share`, NULL without eligible calls)."""
    if grain not in GRAINS:
        raise ValueError(f"{grain!r} is not one of {sorted(GRAINS)}")
    params: dict[str, Any] = {}
    keys = _keys(by)
    eligible = _Eligibility(min_tokens, params)
    # inner aliases never equal a column name: an alias would capture the column inside aggregates
    inner = "".join(f", toString({k}) AS k_{i}" for i, k in enumerate(keys))
    outer = "".join(f", k_{i} AS {k}" for i, k in enumerate(keys))
    group = "".join(f", k_{i}" for i in range(len(keys)))
    sql = f"""
        SELECT bucket{outer}, sum(read_tokens) AS cache_read_tokens, sum(write_tokens) AS cache_write_tokens,
            if(cache_read_tokens + cache_write_tokens = 0, NULL,
               cache_read_tokens / (cache_read_tokens + cache_write_tokens)) AS hit_ratio,
            sum(n_calls) AS calls, sum({eligible.pick("e")}) AS eligible_calls,
            sum({eligible.pick("u")}) AS uncached_eligible_calls,
            if(eligible_calls = 0, NULL, uncached_eligible_calls / eligible_calls) AS not_applied_share
        FROM (
            SELECT {GRAINS[grain]} AS bucket{inner}, provider, model,
                sum(cache_read_tokens) AS read_tokens,
                sum(cache_write_5m_tokens + cache_write_1h_tokens) AS write_tokens,
                count() AS n_calls, {eligible.counts("1", "e")}, {eligible.counts(_UNCACHED, "u")}
            FROM calls WHERE {where(scope, start, end, filters, params=params)}
            GROUP BY bucket{group}, provider, model
        )
        GROUP BY bucket{group}
        ORDER BY bucket{group}
    """
    return wh.query_df(sql, params, tag=tag)


def cache_savings(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, by: Sequence[str] = (),
    filters: Filters | None = None, min_tokens: Mapping[str, int] = DEFAULT_MIN_CACHEABLE,
    tag: str = "cache:savings",
) -> pl.DataFrame:
    """Per value of the `by` dimensions (one row without): cache read tokens and what they cost
    (`cache_read_cost_usd`, as billed) against what they would have cost at the full input price
    (`cache_read_full_price_usd`) — the difference is `saved_usd`; cache write tokens and the premium
    paid for writing over plain input (`write_premium_usd`); `net_saved_usd` = saved − premium; and
    the calls long enough to cache that used no cache at all, their input tokens and `missed_usd`, an
    upper bound of what caching them would have saved (all their input at the cache-read price).
    Calls of unpriced models count with zero money."""
    params: dict[str, Any] = {}
    keys = _keys(by)
    eligible = _Eligibility(min_tokens, params)
    select = "".join(f"toString({k}) AS k_{i}, " for i, k in enumerate(keys))
    outer = "".join(f"g.k_{i} AS {k}, " for i, k in enumerate(keys))
    group = "".join(f"k_{i}, " for i in range(len(keys)))
    names = ", ".join(f"g.k_{i}" for i in range(len(keys)))
    key_group = f"GROUP BY {names} ORDER BY net_saved_usd DESC, {names}" if keys else ""
    sql = f"""
        SELECT {outer}
            sum(g.read_tokens) AS cache_read_tokens,
            sum(g.read_cost) AS cache_read_cost_usd,
            sum(toDecimal128(g.read_tokens, 0) * ifNull(p.rate_input, 0)) AS cache_read_full_price_usd,
            cache_read_full_price_usd - cache_read_cost_usd AS saved_usd,
            sum(g.write_tokens) AS cache_write_tokens,
            sum(g.write_cost) - sum(toDecimal128(g.write_tokens, 0) * ifNull(p.rate_input, 0)) AS write_premium_usd,
            saved_usd - write_premium_usd AS net_saved_usd,
            sum(g.eligible) AS eligible_calls,
            sum(g.missed_calls) AS uncached_eligible_calls,
            sum(g.missed_tokens) AS uncached_eligible_input_tokens,
            sum(toDecimal128(g.missed_tokens, 0)
                * greatest(ifNull(p.rate_input, 0) - ifNull(p.rate_cache_read, ifNull(p.rate_input, 0)), 0))
                AS missed_usd
        FROM (
            SELECT *, {rates.CONTEXT} AS context, toDateTime64(hour_start, 3, 'UTC') AS hour,
                {eligible.pick("e")} AS eligible, {eligible.pick("u")} AS missed_calls,
                {eligible.pick("ut")} AS missed_tokens
            FROM (
            SELECT {select}provider, model, is_batch, service_tier, toStartOfHour(ts) AS hour_start,
                sum(cache_read_tokens) AS read_tokens, sum(cache_read_cost_usd) AS read_cost,
                sum(cache_write_5m_tokens + cache_write_1h_tokens) AS write_tokens,
                sum(cache_write_cost_usd) AS write_cost,
                {eligible.counts("1", "e")}, {eligible.counts(_UNCACHED, "u")},
                {eligible.sums("input_tokens", _UNCACHED, "ut")}
            FROM calls WHERE {where(scope, start, end, filters, params=params)}
            GROUP BY {group}provider, model, is_batch, service_tier, hour_start
            )
        ) AS g
        LEFT JOIN prices AS p ON {rates.base_cell("p", "g", provider="g.provider", model="g.model")}
        {key_group}
    """
    return wh.query_df(sql, params, tag=tag)


def prompt_versions(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, by: str = "route",
    filters: Filters | None = None, tag: str = "cache:prompt_versions",
) -> pl.DataFrame:
    """Each prompt version seen per value of `by`: first and last call in the range, calls and the
    prompt-prefix hashes it used, oldest first — the markers of prompt releases on a time axis."""
    column = identifier(by, DIMENSIONS)
    params: dict[str, Any] = {}
    sql = f"""
        SELECT toString({column}) AS key, toString(prompt_version) AS prompt_version,
            min(ts) AS first_seen, max(ts) AS last_seen, count() AS calls,
            arraySort(groupUniqArray(8)(prompt_prefix_hash)) AS prefix_hashes
        FROM calls WHERE {where(scope, start, end, filters, params=params)} AND prompt_version != ''
        GROUP BY key, prompt_version ORDER BY first_seen, key, prompt_version
    """
    return wh.query_df(sql, params, tag=tag)
