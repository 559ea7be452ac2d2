"""Rows to aggregate from the cheapest exact source: the daily rollups for whole UTC days (when the
caller does not bucket finer than a day), the hourly rollups for the other whole hours and raw calls
for the partial hours at the edges of a range — or, for a range up to a week (`FIVE_MINUTE_SPAN`)
whose dimensions and measures the five-minute tier (`FIVE_MINUTE`) keeps, every whole five-minute
bucket from that tier and raw calls for under five minutes at each edge: one rollup part to plan
instead of two or three, which costs less than the rows it reads — and raw calls around any boundary
inside the range that is not on the hour. Sums and counts come out equal to a scan of raw calls, to
the last Decimal digit; merged digests and bins are what the rollups' own states give (see
`warehouse.queries.distributions`).

`rows(...)` returns a subquery with a time column `t` (DateTime64(3, 'UTC'): the day or hour for
rollup rows (five-minute rows too) and raw calls of an edge hour, the call's own `ts` in an hour
holding a boundary the caller splits on), the requested keys (as text) and partial measures;
callers re-aggregate it (sum, min / max, sumMap, or -Merge for digests). It returns None when a
rollup cannot answer: a dimension, filter or measure it does not keep (tags, status, environment,
…) — then the caller reads raw calls as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from warehouse.client import identifier
from warehouse.queries import cache_ratio
from warehouse.queries.scope import DIMENSIONS, TAG_PREFIX, Filters, Scope, where

HOUR = timedelta(hours=1)
FIVE_MINUTES = timedelta(minutes=5)
DAY = timedelta(days=1)
DIGEST_LEVELS = "0.5, 0.9, 0.95, 0.99"  # the levels of the rollups' t-digests


@dataclass(frozen=True)
class Measure:
    """A measure as a raw aggregate and as the column of each rollup holding its partial sums, bins or
    digest states (of the raw aggregate's type: UNION ALL reads a SimpleAggregateFunction column as
    its value, so the two unite without a cast)."""

    raw: str
    hourly: str | None
    users: str | None = None
    cache: str | None = None
    prompts: str | None = None
    tokens: str | None = None
    routing: str | None = None
    nodes: str | None = None
    deployments: str | None = None
    unpriced: str | None = None
    latency: str | None = None
    five: str | None = None
    row: str | None = None  # one call's share of a summable measure (raw calls passed on unaggregated)


@dataclass(frozen=True)
class Rollup:
    """An hourly (or five-minute) rollup table, the dimensions it keeps, which `Measure` attribute reads
    it, its daily tier (the same columns per UTC day, time column `day`) and, for a rollup of some calls
    only, the raw condition those calls meet (`subset`: it serves only callers reading that subset)."""

    table: str
    dimensions: frozenset[str]
    column: str
    daily: str | None = None
    subset: str | None = None


# Dimensions each rollup keeps (group-by and filter allow-lists).
HOURLY_DIMENSIONS: frozenset[str] = frozenset(
    {"project", "route", "model", "provider", "team", "feature", "api_key_id", "tool_name", "routing_policy"}
)
USER_DIMENSIONS: frozenset[str] = frozenset({"project", "user_id", "team", "feature", "route", "model", "provider"})
USER_TOTAL_DIMENSIONS: frozenset[str] = frozenset({"project", "user_id"})  # the per-user totals (same measures)
CACHE_EDGES = (1024, 2048, 4096)  # the input-length minimums `calls_cache_hourly` counts calls at
CACHE_DIMENSIONS = frozenset({"project", "route", "model", "provider", "is_batch", "service_tier"})
PROMPT_DIMENSIONS = frozenset({"project", "route", "feature", "team", "model", "provider", "prompt_version",
                               "prompt_prefix_hash"})
TOKEN_DIMENSIONS = frozenset({"project", "route", "model", "provider", "team", "feature"})
ROUTED = "routing_policy != ''"  # the calls of cascade routing policies (`calls_routing_hourly`)
ROUTING_DIMENSIONS = frozenset({"project", "routing_policy", "cascade_step", "model", "provider", "route", "team",
                                "feature", "is_batch", "service_tier"})
SELF_HOSTED = "deployment = 'self_hosted' AND node != ''"  # the calls of `calls_node_hourly`
NODE_DIMENSIONS = frozenset({"project", "node", "route", "model", "provider", "team", "feature", "api_key_id"})
DEPLOYMENT_DIMENSIONS = frozenset({"project", "deployment", "node", "model", "provider"})
UNPRICED = "unpriced"  # the calls no price covered (`calls_unpriced_hourly`)
UNPRICED_DIMENSIONS = frozenset({"project", "deployment", "provider", "model", "model_raw"})
LATENCY_DIMENSIONS = frozenset({"project", "route", "model", "provider"})
ROLLUPS = (
    # latency by the hour: fewer digests to merge than `calls_hourly`'s (by the day, `calls_daily` serves)
    Rollup("calls_latency_hourly", LATENCY_DIMENSIONS, "latency"),
    Rollup("calls_hourly", HOURLY_DIMENSIONS, "hourly", daily="calls_daily"),
    Rollup("calls_user_totals_hourly", USER_TOTAL_DIMENSIONS, "users", daily="calls_user_totals_daily"),
    Rollup("calls_user_hourly", USER_DIMENSIONS, "users", daily="calls_user_daily"),
    Rollup("calls_cache_hourly", CACHE_DIMENSIONS, "cache"),
    Rollup("calls_prompt_hourly", PROMPT_DIMENSIONS, "prompts"),
    Rollup("calls_tokens_hourly", TOKEN_DIMENSIONS, "tokens", daily="calls_tokens_daily"),
    Rollup("calls_routing_hourly", ROUTING_DIMENSIONS, "routing", subset=ROUTED),
    Rollup("calls_node_hourly", NODE_DIMENSIONS, "nodes", subset=SELF_HOSTED),
    Rollup("calls_deployment_hourly", DEPLOYMENT_DIMENSIONS, "deployments"),  # after the wider ones
    Rollup("calls_unpriced_hourly", UNPRICED_DIMENSIONS, "unpriced", subset=UNPRICED),
)
# The five-minute tier (time column `bucket`; every call, no subset): the attribution measures per
# route / model / provider / team / feature, ~15 rows a bucket at 10M and at 100M calls a month. It
# serves whole ranges up to FIVE_MINUTE_SPAN, not the edges of longer ones: a raw read of five minutes
# costs what an hour does (`calls` is sorted by the hour, then route and model), so five-minute edges
# only add a part to plan (measured slower at 100M calls). For the same reason a per-user five-minute
# tier was left out: 8.6M rows (352 MiB) at 100M calls, and "top users, last 24 hours" no faster.
FIVE_DIMENSIONS = frozenset({"project", "route", "model", "provider", "team", "feature"})
FIVE_MINUTE = (Rollup("calls_5m", FIVE_DIMENSIONS, "five"),)
FIVE_MINUTE_SPAN = timedelta(days=7)
_UNCACHED = "cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens = 0"
_TPOT_KNOWN = "status = 'ok' AND latency_ms IS NOT NULL AND ttft_ms IS NOT NULL AND output_tokens > 1"


MEASURES: dict[str, Measure] = {
    "calls": Measure("count()", "calls", "calls", "calls",
                     prompts="calls", tokens="calls", routing="calls",
                     nodes="calls"),
    "ok_calls": Measure("countIf(status = 'ok')", "ok_calls"),
    "cost_usd": Measure("sum(cost_usd)", "cost_usd", "cost_usd",
                        routing="cost_usd"),
    "input_cost_usd": Measure("sum(input_cost_usd)", "input_cost_usd", "input_cost_usd"),
    "cache_read_cost_usd": Measure("sum(cache_read_cost_usd)", "cache_read_cost_usd",
                                   "cache_read_cost_usd",
                                   "cache_read_cost_usd"),
    "cache_write_cost_usd": Measure("sum(cache_write_cost_usd)", "cache_write_cost_usd",
                                    "cache_write_cost_usd",
                                    "cache_write_cost_usd"),
    "output_cost_usd": Measure("sum(output_cost_usd)", "output_cost_usd",
                               "output_cost_usd"),
    "tool_cost_usd": Measure("sum(tool_cost_usd)", "tool_cost_usd", "tool_cost_usd"),
    "batch_discount_usd": Measure("sum(batch_discount_usd)", "batch_discount_usd",
                                  "batch_discount_usd"),
    "input_tokens": Measure("sum(input_tokens)", "input_tokens", "input_tokens",
                            routing="input_tokens"),
    "cache_read_tokens": Measure("sum(cache_read_tokens)", "cache_read_tokens",
                                 "cache_read_tokens", "cache_read_tokens",
                                 routing="cache_read_tokens"),
    "cache_write_tokens": Measure("sum(cache_write_5m_tokens + cache_write_1h_tokens)",
                                  "cache_write_tokens", "cache_write_tokens",
                                  "cache_write_tokens"),
    "output_tokens": Measure("sum(output_tokens)", "output_tokens", "output_tokens",
                             routing="output_tokens"),
    "reasoning_tokens": Measure("sum(reasoning_tokens)", "reasoning_tokens",
                                "reasoning_tokens", routing="reasoning_tokens"),
    "errors": Measure("countIf(status != 'ok')", "errors", "errors"),
    "unpriced_calls": Measure("countIf(unpriced)", "unpriced_calls", "unpriced_calls"),
    # cascades: calls at the first step and escalations (step ≥ 1) of a routing policy
    "step0_calls": Measure("countIf(routing_policy != '' AND cascade_step = 0)", "cascade_step0_calls"),
    "step1_calls": Measure("countIf(routing_policy != '' AND cascade_step = 1)", "cascade_step1_calls"),
    # latency of ok calls: counts, sums (ms) and t-digest states of the rollups' levels
    "latency_calls": Measure("countIf(status = 'ok' AND latency_ms IS NOT NULL)", "latency_calls"),
    "latency_ms_sum": Measure("sumIf(ifNull(latency_ms, 0), status = 'ok')", "latency_ms_sum"),
    "latency_digest": Measure(f"quantilesTDigestStateIf({DIGEST_LEVELS})(assumeNotNull(latency_ms), "
                              "status = 'ok' AND latency_ms IS NOT NULL)",
                              "latency_ms_digest"),
    "ttft_calls": Measure("countIf(status = 'ok' AND ttft_ms IS NOT NULL)", "ttft_calls"),
    "ttft_ms_sum": Measure("sumIf(ifNull(ttft_ms, 0), status = 'ok')", "ttft_ms_sum"),
    "ttft_digest": Measure(f"quantilesTDigestStateIf({DIGEST_LEVELS})(assumeNotNull(ttft_ms), "
                           "status = 'ok' AND ttft_ms IS NOT NULL)",
                           "ttft_ms_digest"),
    # time per output token: (latency - TTFT) / (output tokens - 1) of ok calls with both times
    "tpot_calls": Measure(f"countIf({_TPOT_KNOWN})", "tpot_calls"),
    "tpot_digest": Measure(f"quantilesTDigestStateIf({DIGEST_LEVELS})(toFloat32((assumeNotNull(latency_ms) - "
                           f"assumeNotNull(ttft_ms)) / (output_tokens - 1)), {_TPOT_KNOWN})", "tpot_ms_digest"),
    # queue time, where the source reports it (self-hosted servers)
    "queue_calls": Measure("countIf(status = 'ok' AND queue_ms IS NOT NULL)", "queue_calls"),
    "queue_ms_sum": Measure("sumIf(ifNull(queue_ms, 0), status = 'ok')", "queue_ms_sum"),
    "queue_digest": Measure(f"quantilesTDigestStateIf({DIGEST_LEVELS})(assumeNotNull(queue_ms), "
                            "status = 'ok' AND queue_ms IS NOT NULL)", "queue_ms_digest"),
    # prompt releases: the first and last call of each version (timestamps of the calls themselves)
    "first_seen": Measure("min(ts)", None, prompts="first_seen"),
    "last_seen": Measure("max(ts)", None, prompts="last_seen"),
    # routed calls' token classes, as the frontier repricing charges them
    "uncached_input_tokens": Measure(
        "sum(input_tokens - cache_read_tokens - cache_write_5m_tokens - cache_write_1h_tokens)", None,
        routing="uncached_input_tokens"),
    "cache_write_5m_tokens": Measure("sum(cache_write_5m_tokens)", None,
                                     routing="cache_write_5m_tokens"),
    "cache_write_1h_tokens": Measure("sum(cache_write_1h_tokens)", None,
                                     routing="cache_write_1h_tokens"),
    "visible_output_tokens": Measure("sum(output_tokens - reasoning_tokens)", None,
                                     routing="visible_output_tokens"),
    # what a self-hosted call made its node do (infra cost is split by it)
    "io_tokens": Measure("sum(input_tokens + output_tokens)", None, nodes="io_tokens"),
}


# `calls_deployment_hourly` and `calls_5m` keep the attribution measures under `calls_hourly`'s names
for _name in ("calls", "errors", "unpriced_calls", "cost_usd", "input_cost_usd", "cache_read_cost_usd",
              "cache_write_cost_usd", "output_cost_usd", "tool_cost_usd", "batch_discount_usd", "input_tokens",
              "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"):
    MEASURES[_name] = replace(MEASURES[_name], deployments=MEASURES[_name].hourly, five=MEASURES[_name].hourly)
# `calls_latency_hourly`: ok calls and the latency / TTFT / TPOT / queue counts, sums and digests
for _name in ("ok_calls", "latency_calls", "latency_ms_sum", "latency_digest", "ttft_calls", "ttft_ms_sum",
              "ttft_digest", "tpot_calls", "tpot_digest", "queue_calls", "queue_ms_sum", "queue_digest"):
    MEASURES[_name] = replace(MEASURES[_name], latency=MEASURES[_name].hourly)
# `calls_unpriced_hourly`: calls, tokens, first and last call of the unpriced ones
for _name in ("calls", "input_tokens", "output_tokens", "first_seen", "last_seen"):
    MEASURES[_name] = replace(MEASURES[_name], unpriced=_name)


# the two sums of the one cache hit ratio (`cache_ratio`): hit tokens and the tokens they are a share of
MEASURES["cache_hit_tokens"] = Measure(f"sum({cache_ratio.hit_tokens()})", None, None, "cache_hit_tokens")
MEASURES["cache_base_tokens"] = Measure(f"sum({cache_ratio.base_tokens()})", None, None, "cache_base_tokens")

# One call's share of each summable measure, so a `timeless` read passes raw calls on as they are (the
# caller's sum adds them up, as it adds up rollup rows). Names that are columns of `calls` are those columns.
_ROWS = {
    "calls": "toUInt64(1)", "ok_calls": "toUInt64(status = 'ok')", "errors": "toUInt64(status != 'ok')",
    "unpriced_calls": "toUInt64(unpriced)",
    **{m: m for m in ("cost_usd", "input_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd",
                      "output_cost_usd", "tool_cost_usd", "batch_discount_usd")},
    **{m: f"toUInt64({m})" for m in ("input_tokens", "cache_read_tokens", "output_tokens", "reasoning_tokens")},
    "cache_write_tokens": "toUInt64(cache_write_5m_tokens + cache_write_1h_tokens)",
    "cache_hit_tokens": cache_ratio.hit_tokens(), "cache_base_tokens": cache_ratio.base_tokens(),
}
for _name, _row in _ROWS.items():
    MEASURES[_name] = replace(MEASURES[_name], row=_row)


def token_bin(column: str) -> str:
    """The bin of a token count in the token rollups: the count itself below 128, above it one of 128
    bins per doubling (floor(log2(v) × 128) − 768: within 0.3% of v). Written as in migration 0073."""
    return f"if({column} < 128, toUInt16({column}), toUInt16(floor(log2(greatest({column}, 128)) * 128) - 768))"


TOKEN_KINDS = {"input": "input_tokens", "output": "output_tokens", "reasoning": "reasoning_tokens"}
for _kind, _column in TOKEN_KINDS.items():  # per-call token distributions: bins → calls, max and sum
    MEASURES[f"{_kind}_bins"] = Measure(f"sumMap([{token_bin(_column)}], [toUInt64(1)])", None,
                                        tokens=f"{_kind}_bins")
    MEASURES[f"{_kind}_max"] = Measure(f"max({_column})", None, tokens=f"{_kind}_max")
    MEASURES[f"{_kind}_sum"] = Measure(f"sum({_column})", None, tokens=f"{_kind}_sum")


for _edge in CACHE_EDGES:  # ok calls long enough to cache at each minimum, uncached ones and their input
    MEASURES[f"eligible_{_edge}"] = Measure(f"countIf(status = 'ok' AND input_tokens >= {_edge})", None,
                                            None, f"eligible_{_edge}")
    MEASURES[f"uncached_{_edge}"] = Measure(
        f"countIf(status = 'ok' AND input_tokens >= {_edge} AND {_UNCACHED})", None, None,
        f"uncached_{_edge}")
    MEASURES[f"uncached_input_{_edge}"] = Measure(
        f"sumIf(input_tokens, status = 'ok' AND input_tokens >= {_edge} AND {_UNCACHED})", None, None,
        f"uncached_input_{_edge}")


def _floor(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _ceil(at: datetime) -> datetime:
    floor = _floor(at)
    return floor if floor == at else floor + HOUR


def _floor_five(at: datetime) -> datetime:
    return at.replace(minute=at.minute - at.minute % 5, second=0, microsecond=0)


def _ceil_five(at: datetime) -> datetime:
    floor = _floor_five(at)
    return floor if floor == at else floor + FIVE_MINUTES


def _floor_day(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def _ceil_day(at: datetime) -> datetime:
    floor = _floor_day(at)
    return floor if floor == at else floor + DAY


def whole_days(start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """The whole UTC days inside [start, end) as [first, last), None without one: what a daily-only
    rollup (`calls_route_scores_daily`) can serve; the rest of the range is read from raw calls."""
    first, last = _ceil_day(start), _floor_day(end)
    return (first, last) if first < last else None


def whole_hours(start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """The whole UTC hours inside [start, end) as [first, last), None without one: what an hourly
    rollup with no edge tier (`calls_reasoning_top_hourly`) can serve; the rest is read from raw calls."""
    first, last = _ceil(start), _floor(end)
    return (first, last) if first < last else None


def _rollup(dimensions: set[str], measures: Sequence[str], subset: str | None, days: bool = False) -> Rollup | None:
    """The first rollup able to serve these dimensions and measures, holding exactly the calls the
    caller reads (all, or the `subset`); with `days`, the first of those with a daily tier if any."""
    if any(d.startswith(TAG_PREFIX) for d in dimensions):
        return None
    able = [r for r in ROLLUPS if r.subset == subset and dimensions <= r.dimensions
            and all(getattr(MEASURES[m], r.column) for m in measures)]
    return next((r for r in able if r.daily), able[0]) if days and able else (able[0] if able else None)


def _five_minute(dimensions: set[str], measures: Sequence[str], subset: str | None) -> Rollup | None:
    """The first five-minute tier keeping these dimensions and measures (they hold every call: none
    serves a `subset`)."""
    if subset is not None or any(d.startswith(TAG_PREFIX) for d in dimensions):
        return None
    return next((r for r in FIVE_MINUTE if dimensions <= r.dimensions
                 and all(getattr(MEASURES[m], r.column) for m in measures)), None)


def rows(
    scope: Scope,
    start: datetime,
    end: datetime,
    filters: Filters | None,
    *,
    keys: Mapping[str, str],
    measures: Sequence[str],
    params: dict[str, Any],
    boundaries: Sequence[datetime] = (),
    days: bool = False,
    subset: str | None = None,
    timeless: bool = False,
) -> str | None:
    """The subquery described in the module docstring; `keys` maps output aliases to allow-listed
    dimensions, `boundaries` are instants inside the range the caller will split on (raw rows
    carry their exact `ts`, so only the hours holding such an instant must come from raw calls).
    `days`: the caller buckets by day or coarser (or not by time), so whole UTC days may come as
    one row at midnight from a daily tier. `subset`: the caller reads only the calls meeting this
    condition (`ROUTED`, `SELF_HOSTED`, `UNPRICED`): raw rows are filtered by it and only the rollup holding
    exactly those calls serves. `timeless`: the caller aggregates the whole range at once (no time
    bucket, no `boundaries`), so no part carries `t` and raw calls come one row per call where every
    measure is summable (`Measure.row`): each part is one flat SELECT, the least the engine plans."""
    unknown = set(measures) - set(MEASURES)
    if unknown:
        raise ValueError(f"unknown measures {sorted(unknown)}")
    if timeless and boundaries:
        raise ValueError("a timeless read cannot be split on boundaries")
    wanted = {*keys.values(), *(filters or {})}
    rollup = _rollup(wanted, measures, subset, days)
    if rollup is None:
        return None
    first, last = _ceil(start), _floor(end)
    # raw calls outside [e_first, e_last): the whole five-minute buckets of a range up to a week come
    # from the five-minute tier where it keeps what is asked, else whole hours (and days) from the rollups
    fine = _five_minute(wanted, measures, subset)
    e_first, e_last = _ceil_five(start), _floor_five(end)
    if fine is None or not e_first < e_last <= e_first + FIVE_MINUTE_SPAN:
        fine, e_first, e_last = None, first, last
    if e_first >= e_last:
        return None
    hours = fine is None  # whole hours from the hourly (and daily) rollups
    # hours that must come from raw calls: any holding a boundary (besides the partial edges)
    inside = [b for b in boundaries if start < b < end]
    raw_hours = sorted({_floor(b) for b in inside if b != _floor(b)})
    params.update(h_first=first, h_last=last, h_raw=raw_hours, e_first=e_first, e_last=e_last)
    raw_cond = where(scope, start, end, filters, params=params)
    raw_cond += (" AND (ts < {e_first:DateTime64(3, 'UTC')} OR ts >= {e_last:DateTime64(3, 'UTC')}"
                 + (" OR toStartOfHour(ts) IN {h_raw:Array(DateTime('UTC'))})" if raw_hours else ")"))
    if subset:
        raw_cond += f" AND {subset}"
    hourly_cond = where(scope, first, last, filters, params=params, ts="hour", bounds=("h_first", "h_last"))
    if raw_hours:
        hourly_cond += " AND hour NOT IN {h_raw:Array(DateTime('UTC'))}"
    # raw calls of an edge hour are summed per hour (callers bucket whole hours or coarser); those of
    # an hour holding a boundary keep their instant, so the caller can split the hour on it
    raw_t = ("if(toStartOfHour(ts) IN {h_raw:Array(DateTime('UTC'))}, ts, toDateTime64(toStartOfHour(ts), 3, 'UTC'))"
             if raw_hours else "toDateTime64(toStartOfHour(ts), 3, 'UTC')")
    parts = []

    def timed(column: str) -> str | None:
        return None if timeless else column

    if start != e_first or end != e_last or raw_hours:
        parts.append(_select(keys, measures, timed(raw_t), "calls", raw_cond, "raw"))
    if fine:
        # every whole bucket, dated by its hour like the rest
        fine_cond = where(scope, e_first, e_last, filters, params=params, ts="bucket", bounds=("e_first", "e_last"))
        if raw_hours:
            fine_cond += " AND toStartOfHour(bucket) NOT IN {h_raw:Array(DateTime('UTC'))}"
        parts.append(_select(keys, measures, timed("toStartOfHour(bucket)"), fine.table, fine_cond, fine.column))
    if not hours:
        return " UNION ALL ".join(parts)
    d_first, d_last = _ceil_day(first), _floor_day(last)
    if days and rollup.daily and d_first < d_last:
        # whole days from the daily tier, except those the caller splits inside (read by the hour)
        split = sorted({_floor_day(b) for b in inside if b != _floor_day(b)})
        params["d_split"] = split
        if first != d_first or last != d_last or split:
            parts.append(_select(keys, measures, timed("hour"), rollup.table, hourly_cond + (
                " AND (hour < {d_first:DateTime64(3, 'UTC')} OR hour >= {d_last:DateTime64(3, 'UTC')}"
                + (" OR toStartOfDay(hour) IN {d_split:Array(DateTime('UTC'))})" if split else ")")), rollup.column))
        daily_cond = where(scope, d_first, d_last, filters, params=params, ts="day", bounds=("d_first", "d_last"))
        if split:
            daily_cond += " AND day NOT IN {d_split:Array(DateTime('UTC'))}"
        parts.append(_select(keys, measures, timed("day"), rollup.daily, daily_cond, rollup.column))
    else:
        parts.append(_select(keys, measures, timed("hour"), rollup.table, hourly_cond, rollup.column))
    # every part costs the engine its own parse and plan (a few ms): parts with nothing to read are left out
    return " UNION ALL ".join(parts)


def raw_rows(
    scope: Scope,
    start: datetime,
    end: datetime,
    filters: Filters | None,
    *,
    keys: Mapping[str, str],
    measures: Sequence[str],
    params: dict[str, Any],
    subset: str | None = None,
) -> str:
    """The rows `rows` describes, all from raw calls (per call instant and key values): for reads no
    rollup can serve (`rows` returned None), so the caller's aggregation is written once."""
    unknown = set(measures) - set(MEASURES)
    if unknown:
        raise ValueError(f"unknown measures {sorted(unknown)}")
    cond = where(scope, start, end, filters, params=params) + (f" AND {subset}" if subset else "")
    return _select(keys, measures, "ts", "calls", cond, "raw")  # per instant: any grain may bucket them


_KEYS = DIMENSIONS | frozenset().union(*(r.dimensions for r in ROLLUPS + FIVE_MINUTE))


def _select(keys: Mapping[str, str], measures: Sequence[str], column: str | None, table: str, cond: str,
            attribute: str) -> str:
    """One part of the rows: raw calls grouped by `column` (an expression of `ts`; `attribute` 'raw')
    or a rollup's rows (`column`: its time column); without `column` (a timeless read) no `t`, and raw
    calls one row per call where every measure has a per-call share."""
    named = ", ".join(f"toString({identifier(d, _KEYS)}) AS {alias}" for alias, d in keys.items())
    if attribute != "raw" or (column is None and all(MEASURES[m].row for m in measures)):
        # rollup rows are partial already: passed on as they are, the caller's aggregation merges them once
        # (and so are single calls, each its own share)
        values = [e if (e := getattr(MEASURES[m], "row" if attribute == "raw" else attribute)) == m else f"{e} AS {m}"
                  for m in measures]
        columns = ", ".join(c for c in (None if column is None else f"toDateTime64({column}, 3, 'UTC') AS t",
                                        named, *values) if c)
        return f"SELECT {columns} FROM {table} WHERE {cond}"
    # inner aliases are prefixed: an alias equal to a column (cost_usd, model) would capture that
    # column inside the other aggregates of the same SELECT
    inner_keys = "".join(f", toString({identifier(d, _KEYS)}) AS x_{alias}" for alias, d in keys.items())
    renamed = ", ".join([*(f"x_{alias} AS {alias}" for alias in keys), *(f"x_{m} AS {m}" for m in measures)])
    raw_measures = ", ".join(f"{MEASURES[m].raw} AS x_{m}" for m in measures)
    if column is None:
        group = ", ".join(f"x_{alias}" for alias in keys)
        return (f"SELECT {renamed} FROM (SELECT {raw_measures}{inner_keys} FROM calls WHERE {cond}"
                f"{f' GROUP BY {group}' if group else ''})")
    group = "".join(f", x_{alias}" for alias in keys)
    return (f"SELECT t, {renamed} FROM (SELECT {column} AS t{inner_keys}, {raw_measures} FROM calls WHERE {cond} "
            f"GROUP BY t{group})")


def summed(measures: Sequence[str]) -> str:
    """The re-aggregation of summable partial measures, each under its own name."""
    return ", ".join(f"sum({m}) AS {m}" for m in measures)


def bucket(grain_sql: str) -> str:
    """A grain's bucket expression (written over `ts`) over the `t` column of `rows`."""
    return grain_sql.replace("(ts)", "(t)")


def nan_as_null(frame: pl.DataFrame) -> pl.DataFrame:
    """Percentiles of an empty digest are NaN; a bucket without such calls has none: null, as JSON shows it."""
    return frame.with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None))
