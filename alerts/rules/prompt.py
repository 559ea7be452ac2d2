"""Signal 2: prompt accumulation — input tokens per call and per hour against the route's baseline.

Baselines come from the hourly rollup and depend only on the hour the window starts in, so one
evaluation and a backfill of the same instant agree: per call, the median hourly per-call input
over the previous days; per hour, the median of the same clock hours on the previous days.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl

from alerts.rules.base import (
    TIME,
    UNKNOWN,
    Explanation,
    Family,
    Rule,
    RuleContext,
    first_value,
    scope_thresholds,
    sustain,
    window_sums,
)
from alerts.rules.stats import z_of
from warehouse.queries import signals as q
from warehouse.queries.signals import causes

KEYS = ["project", "route"]
BUCKET = timedelta(minutes=5)
HOUR = timedelta(hours=1)


def same_hour_baseline(hourly: pl.DataFrame, judged: pl.DataFrame, keys: list[str], column: str, *,
                       window: timedelta, days: int, history_start: datetime) -> pl.DataFrame:
    """Per row of `judged` (keys, at): the larger, over the two clock hours the window touches, of
    the median of `column` at that hour on each of the previous `days` days (zero where a day with
    history has no row). Null when no previous day has history."""
    frame = judged.select([*keys, "at"]).unique().with_columns(
        (pl.col("at") - window).dt.truncate("1h").alias("h0"))
    candidates = frame.with_columns(pl.concat_list(pl.col("h0"), pl.col("h0") + HOUR).alias("hour")).explode("hour")
    shifted = candidates.with_columns(pl.int_ranges(1, days + 1).alias("k")).explode("k").with_columns(
        (pl.col("hour") - pl.duration(days=pl.col("k"))).alias("past"))
    shifted = shifted.filter(pl.col("past") >= history_start)
    values = hourly.select([*keys, pl.col("hour").alias("past"), pl.col(column).cast(pl.Float64).alias("v")])
    joined = shifted.join(values, on=[*keys, "past"], how="left").with_columns(pl.col("v").fill_null(0.0))
    per_hour = joined.group_by([*keys, "at", "hour"]).agg(pl.col("v").median().alias("m"))
    return per_hour.group_by([*keys, "at"]).agg(pl.col("m").max().alias(f"base_{column}"))


def trailing_median(hourly: pl.DataFrame, judged: pl.DataFrame, keys: list[str], ratio: pl.Expr, *,
                    window: timedelta, days: int, keep: pl.Expr, name: str) -> pl.DataFrame:
    """Per row of `judged` (keys, at): the median of `ratio` over the hours in
    [end - days, end) that satisfy `keep`, where end is the hour the row's window starts in."""
    frame = judged.select([*keys, "at"]).unique().with_columns((pl.col("at") - window).dt.truncate("1h").alias("end"))
    ends = frame.select([*keys, "end"]).unique()
    values = hourly.filter(keep).select([*keys, "hour", ratio.alias("r")])
    joined = ends.join(values, on=keys, how="inner").filter(
        (pl.col("hour") < pl.col("end")) & (pl.col("hour") >= pl.col("end") - pl.duration(days=days)))
    medians = joined.group_by([*keys, "end"]).agg(pl.col("r").median().alias(name))
    return frame.join(medians, on=[*keys, "end"], how="left").drop("end")


class PromptAccumulation(Rule):
    """2 prompt accumulation, per route over a sliding hour of ok calls: WARNING when input tokens
    per call reach `warning` (2×) times the route's baseline (median hourly per-call input over the
    previous days); CRITICAL when, in addition, input tokens for the hour reach `critical` (2×)
    times the same clock hours on previous days — the history is really costing more. The hour is
    counted at no less than the route's usual volume for that clock hour (per call × the larger of
    the window's calls and the same hours' median calls): the per-call growth is the cause, volume
    only evidence — bursty traffic that falls while each call triples must not hide it. Method: the
    per-call mean is judged by its one-sided lower confidence bound (`confidence`; standard error
    from the window's own sum of squares), over ≥ `min_volume` calls."""

    method = "lower confidence bound of input per call ≥ 2× own baseline; hour at ≥ its usual volume ≥ 2× same hours"

    name = "prompt_accumulation"
    title = "Prompt accumulation"
    scope_keys = ("project", "route")
    unit = "x"
    next_step = ("Bound the conversation history: a sliding window or a running summary instead of re-sending "
                 "every turn; cap input tokens per session.")

    def describe(self, row: dict[str, Any]) -> str:
        return (f"{self.title}: input per call {row['value']:.1f}x the baseline "
                f"({row.get('per_call', 0):,.0f} vs {row.get('base_per_call', 0):,.0f} tokens), per hour "
                f"{row.get('hour_ratio', 0):.1f}x")

    def explain(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        settings = self.settings(ctx)
        sessions = causes.growing_sessions(ctx.wh, ctx.scope, {k: [v] for k, v in scope.items()},
                                           lo=at - timedelta(minutes=settings.window_min), hi=at)
        if sessions.is_empty() or sessions["growth_per_turn"][0] <= 0:
            return Explanation("input per call grew without a session growing across turns: larger documents "
                               "or a longer system prompt", self.next_step)
        parts = [f"{s['session_id']} ({s['user_id']}: {s['first_input_tokens']:,} → {s['last_input_tokens']:,} tokens "
                 f"over {s['turns']} turns, +{s['growth_per_turn']:,.0f}/turn)" for s in sessions.iter_rows(named=True)]
        return Explanation("sessions re-sending their whole, growing history: " + "; ".join(parts), self.next_step,
                           {"sessions": sessions["session_id"].to_list()})


class PromptFamily(Family):
    """Signal 2 from 5-minute buckets of the window and the hourly rollup."""

    name = "prompt"
    rules = (PromptAccumulation(),)

    def observe(self, ctx: RuleContext, instants: list[datetime]) -> dict[str, pl.DataFrame]:
        sliding = self.sliding(ctx, instants)
        if sliding is None:
            return {}
        rule, settings, step, window, span = sliding
        buckets = q.prompt_buckets(ctx.wh, ctx.scope, span[0] - window, span[-1])
        sums = window_sums(buckets, KEYS, ["ok_calls", "input_tokens", "input_squares"], bucket=BUCKET, window=window,
                           at=span)
        if sums.is_empty():
            return {rule.name: sums}
        base_lo = (span[0] - window).replace(minute=0, second=0, microsecond=0) - timedelta(days=settings.baseline_days)
        hourly = q.prompt_baseline(ctx.wh, ctx.scope, base_lo, span[-1] + HOUR).with_columns(pl.col("hour").cast(TIME))
        history_start = hourly["hour"].min() if not hourly.is_empty() else span[-1]
        per_call = trailing_median(
            hourly, sums, KEYS, pl.col("input_tokens") / pl.col("ok_calls"), window=window,
            days=settings.baseline_days, keep=pl.col("ok_calls") >= settings.baseline_min_calls, name="base_per_call")
        per_hour = same_hour_baseline(hourly, sums, KEYS, "input_tokens", window=window,
                                      days=settings.baseline_days, history_start=history_start)
        calls_per_hour = same_hour_baseline(hourly, sums, KEYS, "ok_calls", window=window,
                                            days=settings.baseline_days, history_start=history_start)
        judged = scope_thresholds(ctx, rule, sums, KEYS, ["warning", "critical", "min_volume", "enabled"])
        scale = 60 / settings.window_min
        judged = (
            judged.join(per_call, on=[*KEYS, "at"], how="left").join(per_hour, on=[*KEYS, "at"], how="left")
            .join(calls_per_hour, on=[*KEYS, "at"], how="left")
            .with_columns(
                (pl.col("input_tokens") / pl.col("ok_calls")).alias("per_call"),
                pl.col("ok_calls").alias("volume"),
            )
            .with_columns(
                # the mean's standard error from the calls' own spread: a few huge documents in a quiet
                # hour move the mean, not its lower bound
                ((pl.col("input_squares") / pl.col("ok_calls") - pl.col("per_call") ** 2).clip(lower_bound=0)
                 / pl.col("ok_calls")).sqrt().alias("per_call_se"),
            )
            .with_columns(
                (pl.col("per_call") / pl.col("base_per_call")).alias("value"),
                ((pl.col("per_call") - z_of(settings.confidence) * pl.col("per_call_se")) / pl.col("base_per_call"))
                .alias("lower_bound"),
                # the hour's input at no less than the route's usual volume for it: a route whose
                # traffic falls while each call grows 3x still costs 3x per call; volume that rises
                # is counted as it is
                (pl.col("per_call") * pl.max_horizontal(pl.col("ok_calls") * scale, pl.col("base_ok_calls").fill_null(0))
                 / pl.col("base_input_tokens")).alias("hour_ratio"),
                pl.col("warning").alias("threshold"),
            )
            .with_columns(
                pl.when(~pl.col("enabled") | (pl.col("volume") < pl.col("min_volume")) | pl.col("value").is_null()
                        | pl.col("value").is_nan())
                .then(UNKNOWN)
                .when((pl.col("lower_bound") >= pl.col("warning")) & (pl.col("hour_ratio") >= pl.col("critical")))
                .then(2)
                .when(pl.col("lower_bound") >= pl.col("warning")).then(1).otherwise(0).alias("point_level"))
            .drop("input_squares", "per_call_se", "base_ok_calls")
        )
        out = sustain(judged, KEYS, instants=instants, step=step, sustain_for=timedelta(minutes=settings.sustain_min))
        return {rule.name: out.join(first_value(buckets, KEYS, "team"), on=KEYS, how="left")}

