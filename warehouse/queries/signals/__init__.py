"""Signal measures: one query per signal family over its window, every scope at once, plus rollup
baselines. Each returns a Polars frame of bucket totals; the rules in `alerts/rules/` turn them
into sliding windows, levels and sustain. Times are UTC; ranges are half-open [lo, hi).
The SQL lives in the `.sql` files beside this module; values are always bound server-side.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from warehouse.client import Warehouse, load_sql
from warehouse.queries import cache_ratio
from warehouse.queries.scope import Scope

_PACKAGE = "warehouse.queries.signals"


def _run(wh: Warehouse, name: str, scope: Scope, params: dict[str, Any], *, tag: str,
         expressions: dict[str, str] | None = None) -> pl.DataFrame:
    sql = load_sql(_PACKAGE, f"{name}.sql")
    for placeholder, expression in (expressions or {}).items():  # fixed SQL from our own modules
        sql = sql.replace(placeholder, expression)
    sql = sql.replace("__C_SCOPE__", scope.clause(params, column="c.project"))
    sql = sql.replace("__SCOPE__", scope.clause(params))
    return wh.query_df(sql, params, tag=f"signals:{tag}")


def cache_buckets(
    wh: Warehouse, scope: Scope, lo: datetime, hi: datetime, *, min_tokens: dict[str, int]
) -> pl.DataFrame:
    """Signals 1/1b per project/route/model/minute: the cache hit ratio's hit and base tokens and
    the calls they come from (`cache_ratio`: the product's one definition), cached, eligible and
    uncached-eligible calls. `min_tokens` maps `provider/model-prefix` to the shortest cacheable input."""
    rules = sorted(min_tokens.items(), key=lambda kv: -len(kv[0]))
    params = {"lo": lo, "hi": hi, "prefixes": [p for p, _ in rules], "min_tokens": [int(n) for _, n in rules]}
    return _run(wh, "cache_buckets", scope, params, tag="cache",
                expressions={"__HIT_TOKENS__": cache_ratio.hit_tokens(), "__BASE_TOKENS__": cache_ratio.base_tokens()})


def cache_baseline(
    wh: Warehouse, scope: Scope, days: Sequence[datetime], *, baseline_days: int
) -> pl.DataFrame:
    """Signals 1/1b baseline per project/route/model/provider and UTC day: the previous
    `baseline_days` days' cache read, write and input tokens, and cache-eligible / uncached calls at
    1024 and 2048 input tokens (rollups)."""
    if not days:
        return pl.DataFrame()
    params = {"days": list(days), "lo": min(days) - timedelta(days=baseline_days), "hi": max(days),
              "baseline_days": int(baseline_days)}
    return _run(wh, "cache_baseline", scope, params, tag="cache-baseline")


def prompt_buckets(wh: Warehouse, scope: Scope, lo: datetime, hi: datetime) -> pl.DataFrame:
    """Signal 2 per project/route/5 minutes: ok calls and their input tokens."""
    return _run(wh, "prompt_buckets", scope, {"lo": lo, "hi": hi}, tag="prompt")


def prompt_baseline(wh: Warehouse, scope: Scope, lo: datetime, hi: datetime) -> pl.DataFrame:
    """Signal 2 baseline per project/route/hour (rollup): ok calls and their input tokens."""
    return _run(wh, "prompt_baseline", scope, {"lo": lo, "hi": hi}, tag="prompt-baseline")


def tool_buckets(wh: Warehouse, scope: Scope, lo: datetime, hi: datetime) -> pl.DataFrame:
    """Signals 3/6 per project/tool/minute: runs, timeouts, LLM calls inside the tool and their cost."""
    return _run(wh, "tool_buckets", scope, {"lo": lo, "hi": hi}, tag="tools")


def tool_baseline(wh: Warehouse, scope: Scope, lo: datetime, hi: datetime) -> pl.DataFrame:
    """Signal 3 baseline per project/tool/hour (rollups): runs and LLM cost."""
    return _run(wh, "tool_baseline", scope, {"lo": lo, "hi": hi}, tag="tools-baseline")


def reasoning_calls(wh: Warehouse, scope: Scope, lo: datetime, hi: datetime, *, floor: int) -> pl.DataFrame:
    """Signal 4: calls with at least `floor` reasoning tokens."""
    return _run(wh, "reasoning_calls", scope, {"lo": lo, "hi": hi, "floor": int(floor)}, tag="reasoning")


def reasoning_baseline(
    wh: Warehouse, scope: Scope, days: Sequence[datetime], *, baseline_days: int, routes: Sequence[str]
) -> pl.DataFrame:
    """Signal 4 baseline: p99 reasoning tokens per route/model over the `baseline_days` before each day."""
    if not days or not routes:
        return pl.DataFrame()
    params = {
        "days": list(days),
        "lo": min(days) - timedelta(days=baseline_days),
        "hi": max(days),
        "baseline_days": int(baseline_days),
        "routes": list(routes),
    }
    return _run(wh, "reasoning_baseline", scope, params, tag="reasoning-baseline")


def routing_buckets(wh: Warehouse, scope: Scope, lo: datetime, hi: datetime) -> pl.DataFrame:
    """Signal 5 per project/routing policy/5 minutes: step-0 calls and escalations."""
    return _run(wh, "routing_buckets", scope, {"lo": lo, "hi": hi}, tag="routing")


def latency_windows(
    wh: Warehouse, scope: Scope, lo: datetime, hi: datetime, *, step_s: int, window_s: int,
    levels_ms: Sequence[int] = (30_000,),
) -> pl.DataFrame:
    """Signal 7 per project/route/model/provider and bucket end `at`: ok calls, mean latency and
    p99 of latency and TTFT over the `window_s` before `at` (calls read from `lo`, which the caller
    puts one window before the first instant), and `over_levels`: per level of `levels_ms`, the
    calls at least that slow."""
    params = {"lo": lo, "hi": hi, "step_s": int(step_s), "back_s": int(window_s - step_s),
              "levels": [int(v) for v in levels_ms]}
    frame = _run(wh, "latency_windows", scope, params, tag="latency")
    if frame.is_empty():
        return frame
    return frame.with_columns(
        pl.col("latency_q").list.get(0).alias("latency_p99_ms"),
        pl.col("ttft_q").list.get(0).alias("ttft_p99_ms"),
    ).drop("latency_q", "ttft_q")


def latency_baseline(
    wh: Warehouse, scope: Scope, days: Sequence[datetime], *, baseline_days: int
) -> pl.DataFrame:
    """Signal 7 baseline per project/route/model/provider and UTC day: the previous `baseline_days`
    days' ok calls, mean latency and p99 of latency and TTFT (rollup digests)."""
    if not days:
        return pl.DataFrame()
    params = {"days": list(days), "lo": min(days) - timedelta(days=baseline_days), "hi": max(days),
              "baseline_days": int(baseline_days)}
    return _run(wh, "latency_baseline", scope, params, tag="latency-baseline")


def spend_buckets(wh: Warehouse, scope: Scope, lo: datetime, hi: datetime) -> pl.DataFrame:
    """Spend spikes per project/5 minutes: cost by user_id, route and feature (`dimension`, `key`)."""
    return _run(wh, "spend_buckets", scope, {"lo": lo, "hi": hi}, tag="spend")


def spend_hourly(
    wh: Warehouse,
    scope: Scope,
    lo: datetime,
    hi: datetime,
    *,
    users: Sequence[str] = (),
    routes: Sequence[str] = (),
    features: Sequence[str] = (),
    every_key: bool = False,
) -> pl.DataFrame:
    """Whole-hour cost per project / dimension / key in [lo, hi) from the rollups: of the given
    users, routes and features, or of every key (`every_key`)."""
    params = {"lo": lo, "hi": hi, "all": bool(every_key), "users": list(users), "routes": list(routes),
              "features": list(features)}
    return _run(wh, "spend_hourly", scope, params, tag="spend-hourly")


def spend_user_routes(wh: Warehouse, scope: Scope, lo: datetime, hi: datetime, *, users: Sequence[str]) -> pl.DataFrame:
    """The given users' cost per route and 5 minutes in [lo, hi) (raw calls)."""
    return _run(wh, "spend_user_routes", scope, {"lo": lo, "hi": hi, "users": list(users)}, tag="spend-user-routes")


def spend_first_seen(
    wh: Warehouse, scope: Scope, *, users: Sequence[str], routes: Sequence[str], features: Sequence[str]
) -> pl.DataFrame:
    """The first hour each given user, route and feature had a call (rollups): their history's age."""
    params = {"users": list(users), "routes": list(routes), "features": list(features)}
    return _run(wh, "spend_first_seen", scope, params, tag="spend-first-seen")


def budget_hourly(wh: Warehouse, scope: Scope, lo: datetime, hi: datetime) -> pl.DataFrame:
    """Cost per project/team/hour (rollup) for whole hours in [lo, hi)."""
    return _run(wh, "budget_hourly", scope, {"lo": lo, "hi": hi}, tag="budget")


def budget_recent(wh: Warehouse, scope: Scope, lo: datetime, hi: datetime) -> pl.DataFrame:
    """Cost per project/team/5 minutes from raw calls."""
    return _run(wh, "budget_recent", scope, {"lo": lo, "hi": hi}, tag="budget-recent")


def history_start(wh: Warehouse, scope: Scope) -> dict[str, datetime]:
    """The first hour each project has traffic in the rollup (baselines never look before it)."""
    params: dict[str, Any] = {}
    rows = wh.query_rows(
        f"SELECT project, toDateTime64(min(calls_hourly.hour), 3, 'UTC') FROM calls_hourly "
        f"WHERE {scope.clause(params)} GROUP BY project",
        params,
        tag="signals:history",
    )
    return {str(p): (h if h.tzinfo else h.replace(tzinfo=UTC)) for p, h in rows}
