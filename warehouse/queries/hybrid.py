"""Rows to aggregate from the cheapest exact source: the hourly rollups for whole hours, raw calls
for the partial hours at the edges of a range (and around any boundary inside it that is not on
the hour). Sums and counts come out equal to a scan of raw calls, to the last Decimal digit.

`rows(...)` returns a subquery with a time column `t` (DateTime64(3, 'UTC'): the hour for rollup
rows, the call's own `ts` for raw ones), the requested keys (as text) and partial measures; callers
re-aggregate it (sum, or -Merge for digests). It returns None when a rollup cannot answer: a
dimension, filter or measure it does not keep (tags, status, environment, …) — then the caller
reads raw calls as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from warehouse.client import identifier
from warehouse.queries import cache_ratio
from warehouse.queries.scope import TAG_PREFIX, Filters, Scope, where

HOUR = timedelta(hours=1)
DIGEST_LEVELS = "0.5, 0.9, 0.95, 0.99"  # the levels of the rollups' t-digests


@dataclass(frozen=True)
class Measure:
    """A measure as a raw aggregate and as the column (typed as the raw aggregate) of each rollup
    holding its partial sums or digest states."""

    raw: str
    hourly: str | None
    users: str | None = None
    cache: str | None = None


@dataclass(frozen=True)
class Rollup:
    """An hourly rollup table, the dimensions it keeps and which `Measure` attribute reads it."""

    table: str
    dimensions: frozenset[str]
    column: str


# Dimensions each rollup keeps (group-by and filter allow-lists).
HOURLY_DIMENSIONS: frozenset[str] = frozenset(
    {"project", "route", "model", "provider", "team", "feature", "api_key_id", "tool_name", "routing_policy"}
)
USER_DIMENSIONS: frozenset[str] = frozenset({"project", "user_id", "team", "feature", "route", "model", "provider"})
CACHE_EDGES = (1024, 2048, 4096)  # the input-length minimums `calls_cache_hourly` counts calls at
CACHE_DIMENSIONS = frozenset({"project", "route", "model", "provider", "is_batch", "service_tier"})
ROLLUPS = (
    Rollup("calls_hourly", HOURLY_DIMENSIONS, "hourly"),
    Rollup("calls_user_hourly", USER_DIMENSIONS, "users"),
    Rollup("calls_cache_hourly", CACHE_DIMENSIONS, "cache"),
)
_UNCACHED = "cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens = 0"
_TPOT_KNOWN = "status = 'ok' AND latency_ms IS NOT NULL AND ttft_ms IS NOT NULL AND output_tokens > 1"


MEASURES: dict[str, Measure] = {
    "calls": Measure("toUInt64(count())", "toUInt64(calls)", "toUInt64(calls)", "toUInt64(calls)"),
    "ok_calls": Measure("toUInt64(countIf(status = 'ok'))", "toUInt64(ok_calls)"),
    "cost_usd": Measure("sum(cost_usd)", "toDecimal128(cost_usd, 18)", "toDecimal128(cost_usd, 18)"),
    "input_cost_usd": Measure("sum(input_cost_usd)", "toDecimal128(input_cost_usd, 18)", "toDecimal128(input_cost_usd, 18)"),
    "cache_read_cost_usd": Measure("sum(cache_read_cost_usd)", "toDecimal128(cache_read_cost_usd, 18)",
                                   "toDecimal128(cache_read_cost_usd, 18)",
                                   "toDecimal128(cache_read_cost_usd, 18)"),
    "cache_write_cost_usd": Measure("sum(cache_write_cost_usd)", "toDecimal128(cache_write_cost_usd, 18)",
                                    "toDecimal128(cache_write_cost_usd, 18)",
                                    "toDecimal128(cache_write_cost_usd, 18)"),
    "output_cost_usd": Measure("sum(output_cost_usd)", "toDecimal128(output_cost_usd, 18)",
                               "toDecimal128(output_cost_usd, 18)"),
    "tool_cost_usd": Measure("sum(tool_cost_usd)", "toDecimal128(tool_cost_usd, 18)", "toDecimal128(tool_cost_usd, 18)"),
    "batch_discount_usd": Measure("sum(batch_discount_usd)", "toDecimal128(batch_discount_usd, 18)",
                                  "toDecimal128(batch_discount_usd, 18)"),
    "input_tokens": Measure("toUInt64(sum(input_tokens))", "toUInt64(input_tokens)", "toUInt64(input_tokens)"),
    "cache_read_tokens": Measure("toUInt64(sum(cache_read_tokens))", "toUInt64(cache_read_tokens)",
                                 "toUInt64(cache_read_tokens)",
                                 "toUInt64(cache_read_tokens)"),
    "cache_write_tokens": Measure("toUInt64(sum(cache_write_5m_tokens + cache_write_1h_tokens))",
                                  "toUInt64(cache_write_tokens)", "toUInt64(cache_write_tokens)",
                                  "toUInt64(cache_write_tokens)"),
    "output_tokens": Measure("toUInt64(sum(output_tokens))", "toUInt64(output_tokens)", "toUInt64(output_tokens)"),
    "reasoning_tokens": Measure("toUInt64(sum(reasoning_tokens))", "toUInt64(reasoning_tokens)",
                                "toUInt64(reasoning_tokens)"),
    "errors": Measure("toUInt64(countIf(status != 'ok'))", "toUInt64(errors)", "toUInt64(errors)"),
    "unpriced_calls": Measure("toUInt64(countIf(unpriced))", "toUInt64(unpriced_calls)", "toUInt64(unpriced_calls)"),
    # cascades: calls at the first step and escalations (step ≥ 1) of a routing policy
    "step0_calls": Measure("toUInt64(countIf(routing_policy != '' AND cascade_step = 0))", "toUInt64(cascade_step0_calls)"),
    "step1_calls": Measure("toUInt64(countIf(routing_policy != '' AND cascade_step = 1))", "toUInt64(cascade_step1_calls)"),
    # latency of ok calls: counts, sums (ms) and t-digest states of the rollups' levels
    "latency_calls": Measure("toUInt64(countIf(status = 'ok' AND latency_ms IS NOT NULL))", "toUInt64(latency_calls)"),
    "latency_ms_sum": Measure("toUInt64(sumIf(ifNull(latency_ms, 0), status = 'ok'))", "toUInt64(latency_ms_sum)"),
    "latency_digest": Measure(f"quantilesTDigestStateIf({DIGEST_LEVELS})(assumeNotNull(latency_ms), "
                              "status = 'ok' AND latency_ms IS NOT NULL)",
                              "latency_ms_digest"),
    "ttft_calls": Measure("toUInt64(countIf(status = 'ok' AND ttft_ms IS NOT NULL))", "toUInt64(ttft_calls)"),
    "ttft_ms_sum": Measure("toUInt64(sumIf(ifNull(ttft_ms, 0), status = 'ok'))", "toUInt64(ttft_ms_sum)"),
    "ttft_digest": Measure(f"quantilesTDigestStateIf({DIGEST_LEVELS})(assumeNotNull(ttft_ms), "
                           "status = 'ok' AND ttft_ms IS NOT NULL)",
                           "ttft_ms_digest"),
    # time per output token: (latency - TTFT) / (output tokens - 1) of ok calls with both times
    "tpot_calls": Measure(f"toUInt64(countIf({_TPOT_KNOWN}))", "toUInt64(tpot_calls)"),
    "tpot_digest": Measure(f"quantilesTDigestStateIf({DIGEST_LEVELS})(toFloat32((assumeNotNull(latency_ms) - "
                           f"assumeNotNull(ttft_ms)) / (output_tokens - 1)), {_TPOT_KNOWN})", "tpot_ms_digest"),
    # queue time, where the source reports it (self-hosted servers)
    "queue_calls": Measure("toUInt64(countIf(status = 'ok' AND queue_ms IS NOT NULL))", "toUInt64(queue_calls)"),
    "queue_ms_sum": Measure("toUInt64(sumIf(ifNull(queue_ms, 0), status = 'ok'))", "toUInt64(queue_ms_sum)"),
    "queue_digest": Measure(f"quantilesTDigestStateIf({DIGEST_LEVELS})(assumeNotNull(queue_ms), "
                            "status = 'ok' AND queue_ms IS NOT NULL)", "queue_ms_digest"),
}


# the two sums of the one cache hit ratio (`cache_ratio`): hit tokens and the tokens they are a share of
MEASURES["cache_hit_tokens"] = Measure(f"sum({cache_ratio.hit_tokens()})", None, None, "toUInt64(cache_hit_tokens)")
MEASURES["cache_base_tokens"] = Measure(f"sum({cache_ratio.base_tokens()})", None, None, "toUInt64(cache_base_tokens)")

for _edge in CACHE_EDGES:  # ok calls long enough to cache at each minimum, uncached ones and their input
    MEASURES[f"eligible_{_edge}"] = Measure(f"toUInt64(countIf(status = 'ok' AND input_tokens >= {_edge}))", None,
                                            None, f"toUInt64(eligible_{_edge})")
    MEASURES[f"uncached_{_edge}"] = Measure(
        f"toUInt64(countIf(status = 'ok' AND input_tokens >= {_edge} AND {_UNCACHED}))", None, None,
        f"toUInt64(uncached_{_edge})")
    MEASURES[f"uncached_input_{_edge}"] = Measure(
        f"toUInt64(sumIf(input_tokens, status = 'ok' AND input_tokens >= {_edge} AND {_UNCACHED}))", None, None,
        f"toUInt64(uncached_input_{_edge})")


def _floor(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _ceil(at: datetime) -> datetime:
    floor = _floor(at)
    return floor if floor == at else floor + HOUR


def _table(dimensions: set[str], measures: Sequence[str]) -> tuple[str, str] | None:
    """(rollup table, attribute of `Measure`) of the first rollup able to serve these dimensions
    and measures."""
    if any(d.startswith(TAG_PREFIX) for d in dimensions):
        return None
    for rollup in ROLLUPS:
        if dimensions <= rollup.dimensions and all(getattr(MEASURES[m], rollup.column) for m in measures):
            return rollup.table, rollup.column
    return None


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
) -> str | None:
    """The subquery described in the module docstring; `keys` maps output aliases to allow-listed
    dimensions, `boundaries` are instants inside the range the caller will split on (raw rows
    carry their exact `ts`, so only the hours holding such an instant must come from raw calls)."""
    unknown = set(measures) - set(MEASURES)
    if unknown:
        raise ValueError(f"unknown measures {sorted(unknown)}")
    chosen = _table({*keys.values(), *(filters or {})}, measures)
    first, last = _ceil(start), _floor(end)
    if chosen is None or first >= last:
        return None
    table, attribute = chosen
    # hours that must come from raw calls: the partial ones at the edges and any holding a boundary
    raw_hours = sorted({_floor(b) for b in boundaries if start < b < end and b != _floor(b)})
    params.update(h_first=first, h_last=last, h_raw=raw_hours)
    raw_cond = where(scope, start, end, filters, params=params)
    raw_cond += (" AND (ts < {h_first:DateTime64(3, 'UTC')} OR ts >= {h_last:DateTime64(3, 'UTC')} "
                 "OR toStartOfHour(ts) IN {h_raw:Array(DateTime('UTC'))})")
    rollup_cond = where(scope, first, last, filters, params=params, ts="hour", bounds=("h_first", "h_last"))
    rollup_cond += " AND hour NOT IN {h_raw:Array(DateTime('UTC'))}"
    allowed = frozenset().union(*(r.dimensions for r in ROLLUPS))
    # inner aliases are prefixed: an alias equal to a column (cost_usd, model) would capture that
    # column inside the other aggregates of the same SELECT
    inner_keys = "".join(f", toString({identifier(d, allowed)}) AS x_{alias}" for alias, d in keys.items())
    group = "".join(f", x_{alias}" for alias in keys)
    renamed = "".join(f", x_{alias} AS {alias}" for alias in keys) + "".join(f", x_{m} AS {m}" for m in measures)
    raw_measures = ", ".join(f"{MEASURES[m].raw} AS x_{m}" for m in measures)
    rollup_measures = ", ".join(f"{getattr(MEASURES[m], attribute)} AS x_{m}" for m in measures)
    return (
        f"SELECT t{renamed} FROM (SELECT ts AS t{inner_keys}, {raw_measures} FROM calls WHERE {raw_cond} "
        f"GROUP BY t{group}) "
        # rollup rows are partial already: passed on as they are, the caller's aggregation merges them once
        f"UNION ALL SELECT t{renamed} FROM (SELECT toDateTime64(hour, 3, 'UTC') AS t{inner_keys}, {rollup_measures} "
        f"FROM {table} WHERE {rollup_cond})"
    )


def summed(measures: Sequence[str]) -> str:
    """The re-aggregation of summable partial measures, each under its own name."""
    return ", ".join(f"sum({m}) AS {m}" for m in measures)


def bucket(grain_sql: str) -> str:
    """A grain's bucket expression (written over `ts`) over the `t` column of `rows`."""
    return grain_sql.replace("(ts)", "(t)")


def nan_as_null(frame: pl.DataFrame) -> pl.DataFrame:
    """Percentiles of an empty digest are NaN; a bucket without such calls has none: null, as JSON shows it."""
    return frame.with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None))
