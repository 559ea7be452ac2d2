"""Prompt caching: hit-ratio windows, calls long enough to cache that were not cached, what cache
reads saved and what the missing caching cost, and prompt-version changes to mark on a time axis.

Eligibility: a call (status ok) is long enough to cache when its input reaches the minimum of the
longest matching `provider/model` prefix in `min_tokens` (`DEFAULT_MIN_CACHEABLE` mirrors the
providers' documented minimums and the cache-not-applied signal's default). Whole hours come from
the `calls_cache_hourly` rollup when every minimum is one it counts, the rest from raw calls;
prompt-version markers come from `calls_prompt_hourly`.
Savings price tokens at base rates (`rates`); money is Decimal(38, 18) USD; ranges are [start, end).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries import cache_ratio, hybrid, rates
from warehouse.queries.scope import DIMENSIONS, Filters, Scope, where
from warehouse.queries.series import COARSE_GRAINS, GRAINS

DEFAULT_MIN_CACHEABLE: dict[str, int] = {
    "anthropic/claude-haiku": 2048, "anthropic/claude-3-haiku": 2048, "anthropic/claude-3-5-haiku": 2048,
    "anthropic/claude": 1024, "openai/": 1024,
}
_UNCACHED = "cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens = 0"
_PER_MINIMUM = ("eligible", "uncached", "uncached_input")


def _rules(min_tokens: Mapping[str, int], params: dict[str, Any]) -> list[int]:
    """Bind the eligibility rules (longest matching `provider/model` prefix first); the distinct minimums."""
    rules = sorted(min_tokens.items(), key=lambda kv: (-len(kv[0]), kv[0]))
    params["cache_prefixes"] = [p for p, _ in rules]
    params["cache_rule_min"] = [int(n) for _, n in rules]
    return sorted({int(n) for _, n in rules}) or [0]


def _pick(counts: str) -> str:
    """The element of an array of per-minimum counts at the group's own minimum (needs columns
    `provider` and `model`; 0 where no rule matches)."""
    rule = "arrayFirstIndex(p -> startsWith(concat(provider, '/', model), p), {cache_prefixes:Array(String)})"
    return (f"if({rule} = 0, 0, {counts}[indexOf({{cache_thresholds:Array(UInt32)}}, "
            f"arrayElement({{cache_rule_min:Array(UInt32)}}, greatest({rule}, 1)))])")


def _arrays(thresholds: Sequence[int]) -> str:
    """Per-minimum sums as arrays e (eligible), u (uncached) and ui (their input tokens)."""
    return ", ".join(f"[{', '.join(f'sum({m}_{e})' for e in thresholds)}] AS {alias}"
                     for m, alias in zip(_PER_MINIMUM, ("e", "u", "ui"), strict=True))


def _rows(scope: Scope, start: datetime, end: datetime, filters: Filters | None, by: Sequence[str],
          min_tokens: Mapping[str, int], params: dict[str, Any], *, hourly: bool) -> tuple[str, list[int]]:
    """Rows to aggregate — t, k_0…, provider, model, is_batch, service_tier (as text), calls, cache
    tokens and billed costs, and per minimum m: eligible_m, uncached_m, uncached_input_m — from the
    cache rollup for whole hours when it counts every minimum asked (`hourly`: the caller buckets
    by hours or coarser), else from raw calls; and the minimums the per-minimum columns follow."""
    thresholds = _rules(min_tokens, params)
    internal = {"provider": "provider", "model": "model", "is_batch": "is_batch", "service_tier": "service_tier"}
    common = ["calls", "cache_read_tokens", "cache_write_tokens", "cache_read_cost_usd", "cache_write_cost_usd",
              "cache_hit_tokens", "cache_base_tokens"]
    if hourly and set(thresholds) <= set(hybrid.CACHE_EDGES):
        edges = list(hybrid.CACHE_EDGES)
        measures = common + [f"{m}_{e}" for e in edges for m in _PER_MINIMUM]
        keys = {**{f"k_{i}": d for i, d in enumerate(by)}, **internal}
        rows = hybrid.rows(scope, start, end, filters, keys=keys, measures=measures, params=params)
        if rows is not None:
            params["cache_thresholds"] = edges
            return rows, edges
    params["cache_thresholds"] = thresholds
    per_minimum = []
    for i, e in enumerate(thresholds):
        params[f"t_{i}"] = e
        long_enough = f"status = 'ok' AND input_tokens >= {{t_{i}:UInt32}}"
        per_minimum += [f"toUInt64({long_enough}) AS eligible_{e}",
                        f"toUInt64({long_enough} AND {_UNCACHED}) AS uncached_{e}",
                        f"if({long_enough} AND {_UNCACHED}, toUInt64(input_tokens), toUInt64(0)) AS uncached_input_{e}"]
    keys_sql = "".join(f"toString({identifier(d, DIMENSIONS)}) AS k_{i}, " for i, d in enumerate(by))
    rows = (f"SELECT ts AS t, {keys_sql}toString(provider) AS provider, toString(model) AS model, "
            "toString(is_batch) AS is_batch, toString(service_tier) AS service_tier, toUInt64(1) AS calls, "
            "toUInt64(cache_read_tokens) AS cache_read_tokens, "
            "toUInt64(cache_write_5m_tokens + cache_write_1h_tokens) AS cache_write_tokens, "
            f"{cache_ratio.hit_tokens('calls')} AS cache_hit_tokens, {cache_ratio.base_tokens('calls')} AS cache_base_tokens, "
            f"cache_read_cost_usd, cache_write_cost_usd, {', '.join(per_minimum)} "
            f"FROM calls WHERE {where(scope, start, end, filters, params=params)}")
    return rows, thresholds


def _dimensions(by: Sequence[str]) -> list[str]:
    return [identifier(d, DIMENSIONS) for d in by]


def cache_windows(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, grain: str = "hour", by: Sequence[str] = (),
    filters: Filters | None = None, min_tokens: Mapping[str, int] = DEFAULT_MIN_CACHEABLE,
    tag: str = "cache:windows",
) -> pl.DataFrame:
    """Per bucket (and the `by` dimensions): cache read / write tokens, the hit and base tokens of
    the cache hit ratio and the ratio (`cache_ratio`: read ÷ (read + write) where calls report cache
    writes, cached ÷ input of eligible calls otherwise; NULL when no call could hit),
    calls, eligible calls, eligible calls that neither read nor wrote the cache, and their share
    (`not_applied_share`, NULL without eligible calls)."""
    if grain not in GRAINS:
        raise ValueError(f"{grain!r} is not one of {sorted(GRAINS)}")
    params: dict[str, Any] = {}
    names = _dimensions(by)
    rows, thresholds = _rows(scope, start, end, filters, by, min_tokens, params, hourly=grain in COARSE_GRAINS)
    inner = "".join(f", k_{i}" for i in range(len(names)))
    outer = "".join(f", k_{i} AS {k}" for i, k in enumerate(names))
    sql = f"""
        SELECT bucket{outer}, sum(read_tokens) AS cache_read_tokens, sum(write_tokens) AS cache_write_tokens,
            sum(hits) AS cache_hit_tokens, sum(base) AS cache_base_tokens,
            {cache_ratio.ratio("cache_hit_tokens", "cache_base_tokens")} AS hit_ratio,
            sum(n_calls) AS calls, sum({_pick("e")}) AS eligible_calls, sum({_pick("u")}) AS uncached_eligible_calls,
            if(eligible_calls = 0, NULL, uncached_eligible_calls / eligible_calls) AS not_applied_share
        FROM (
            SELECT {hybrid.bucket(GRAINS[grain])} AS bucket{inner}, provider, model,
                sum(cache_read_tokens) AS read_tokens, sum(cache_write_tokens) AS write_tokens, sum(calls) AS n_calls,
                sum(cache_hit_tokens) AS hits, sum(cache_base_tokens) AS base,
                {_arrays(thresholds)}
            FROM ({rows}) GROUP BY bucket{inner}, provider, model
        )
        GROUP BY bucket{inner}
        ORDER BY bucket{inner}
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
    names = _dimensions(by)
    rows, thresholds = _rows(scope, start, end, filters, by, min_tokens, params, hourly=True)
    inner = "".join(f"k_{i}, " for i in range(len(names)))
    outer = "".join(f"g.k_{i} AS {k}, " for i, k in enumerate(names))
    grouped = ", ".join(f"g.k_{i}" for i in range(len(names)))
    key_group = f"GROUP BY {grouped} ORDER BY net_saved_usd DESC, {grouped}" if names else ""
    # grouped per model, price context and hour first, so the price join touches a few thousand rows
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
            SELECT *, {rates.TEXT_CONTEXT} AS context, {_pick("e")} AS eligible, {_pick("u")} AS missed_calls,
                {_pick("ui")} AS missed_tokens
            FROM (
                SELECT {inner}provider, model, is_batch, service_tier,
                    toDateTime64(toStartOfHour(t), 3, 'UTC') AS hour,
                    sum(cache_read_tokens) AS read_tokens, sum(cache_read_cost_usd) AS read_cost,
                    sum(cache_write_tokens) AS write_tokens, sum(cache_write_cost_usd) AS write_cost,
                    {_arrays(thresholds)}
                FROM ({rows})
                GROUP BY {inner}provider, model, is_batch, service_tier, hour
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
    prompt-prefix hashes it used (up to 8: the smallest, so the answer is stable), oldest first — the
    markers of prompt releases on a time axis. Whole hours come from the prompt-version rollup."""
    identifier(by, DIMENSIONS)
    params: dict[str, Any] = {}
    keys = {"key": by, "version": "prompt_version", "prefix": "prompt_prefix_hash"}
    measures = ("calls", "first_seen", "last_seen")
    rows = (hybrid.rows(scope, start, end, filters, keys=keys, measures=measures, params=params)
            or hybrid.raw_rows(scope, start, end, filters, keys=keys, measures=measures, params=params,
                               subset="prompt_version != ''"))
    sql = f"""
        SELECT key, version, min(first_seen) AS first_call, max(last_seen) AS last_call, toUInt64(sum(calls)) AS n,
            arraySlice(arraySort(groupUniqArray(prefix)), 1, 8) AS prefixes
        FROM ({rows}) WHERE version != ''
        GROUP BY key, version ORDER BY first_call, key, version
    """
    return wh.query_df(sql, params, tag=tag).rename({
        "version": "prompt_version", "first_call": "first_seen", "last_call": "last_seen", "n": "calls",
        "prefixes": "prefix_hashes"})
