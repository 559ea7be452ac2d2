"""Signal 5: stale routing — a cascade's escalation rate (step-1 / step-0 calls) per routing
policy over a sliding hour. The probable cause is the cheap (step-0) model or its price changing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl

from alerts.rules.base import (
    UNKNOWN,
    Explanation,
    Family,
    Rule,
    RuleContext,
    first_value,
    onset_of,
    scope_thresholds,
    sustain,
    widened_sums,
)
from alerts.rules.cache import describe_shift
from alerts.rules.stats import wilson_lower
from warehouse.queries import signals as q
from warehouse.queries.signals import causes

KEYS = ["project", "routing_policy"]
BUCKET = timedelta(minutes=5)


class StaleRouting(Rule):
    """5 stale routing: escalations (step-1 calls) / first-step calls of a routing policy over a
    sliding hour; healthy 30–50%, WARNING > 50%, CRITICAL ≥ 70%; judged over ≥ `min_volume` step-0
    calls: an hour with fewer is widened five minutes at a time (up to `wide_window_min`) until it
    holds them, so a thin policy (a dozen to a few dozen first-step calls an hour) is judged later
    rather than never, on as many calls as a busy hour's.
    Method: the Wilson lower bound (one-sided) of the escalation share is compared with the
    thresholds, not the point estimate: at `confidence` (99%) for the WARNING, just past the healthy
    range; at `critical_confidence` (95%) for the CRITICAL, far past it. Each level must hold for the
    whole sustain period (every five-minute look of it): a thin policy's bound is wide, so a share
    at WARNING level (60–65%) crosses the 95% bound at 70% in one look of many — at ~40–85 first-step
    calls an hour ~0.04–0.1 times a day at 60% if single looks escalated, 2–5× less when the
    CRITICAL must hold three looks; a busy policy's bound is narrow enough either way."""

    method = ("Wilson lower bound > threshold (99% warning, 95% critical) over ≥ 40 first-step calls (a thin hour "
              "widened until it holds them, up to 3 h), each level held for the sustain period")

    name = "stale_routing"
    title = "Stale routing"
    scope_keys = ("project", "routing_policy")
    unit = "share"
    next_step = ("Retrain or recalibrate the router for the current cheap model (and its price); ship router "
                 "updates together with cheap-model upgrades.")

    def explain(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        settings = self.settings(ctx)
        window = int(row.get("window_min") or settings.window_min)  # a thin scope's widened window
        changed_by = onset_of(row, timedelta(minutes=window), at - timedelta(minutes=window + settings.sustain_min))
        phrases, detail = describe_shift(ctx, {k: [v] for k, v in scope.items()}, ["model"], at=at,
                                         changed_by=changed_by, first_step_only=True)
        models = [d["after"] for d in detail.values()] + [d["before"] for d in detail.values() if d["before"]]
        prices = causes.price_changes(ctx.wh, models, since=at - timedelta(days=7), until=at) if models else pl.DataFrame()
        parts = [p.replace("model changed", "cheap (step-0) model changed") for p in phrases]
        parts += [f"price of {r['provider']}/{r['model']} changed at {r['first_valid_from']:%Y-%m-%d %H:%M} UTC"
                  for r in prices.iter_rows(named=True)]
        cause = ("; ".join(parts) + ": the router still scores with the old model's capability / price") if parts else (
            "no change of the cheap model or its price in the hour before: traffic got harder, or the router drifted")
        return Explanation(cause, self.next_step, detail)


def wide_windows(settings: Any) -> list[timedelta]:
    """The rule's window, then one bucket (5 minutes) more at a time up to `wide_window_min`."""
    widest = max(settings.wide_window_min, settings.window_min)
    step = int(BUCKET / timedelta(minutes=1))
    return [timedelta(minutes=m) for m in sorted({*range(settings.window_min, widest + 1, step), widest})]


class RoutingFamily(Family):
    """Signal 5 from 5-minute buckets of cascade calls."""

    name = "routing"
    rules = (StaleRouting(),)

    def observe(self, ctx: RuleContext, instants: list[datetime]) -> dict[str, pl.DataFrame]:
        sliding = self.sliding(ctx, instants)
        if sliding is None:
            return {}
        rule, settings, step, window, span = sliding
        windows = wide_windows(settings)
        buckets = q.routing_buckets(ctx.wh, ctx.scope, span[0] - max(windows), span[-1])
        # an hour with too few first-step calls is widened until it holds them (judged later, not never)
        sums = widened_sums(buckets, KEYS, ["step0_calls", "step1_calls"], volume="step0_calls",
                            need=pl.lit(settings.min_volume), bucket=BUCKET, windows=windows, at=span)
        judged = scope_thresholds(ctx, rule, sums, KEYS, ["warning", "critical", "min_volume", "enabled"])
        judged = judged.with_columns(
            (pl.col("step1_calls") / pl.col("step0_calls")).alias("value"), pl.col("step0_calls").alias("volume"),
            wilson_lower(pl.min_horizontal("step1_calls", "step0_calls"), pl.col("step0_calls"),
                         settings.confidence).alias("lower_bound"),
            wilson_lower(pl.min_horizontal("step1_calls", "step0_calls"), pl.col("step0_calls"),
                         settings.critical_confidence).alias("critical_bound"),
        ).with_columns(
            pl.when(~pl.col("enabled") | (pl.col("volume") < pl.col("min_volume")) | pl.col("value").is_nan())
            .then(UNKNOWN).when(pl.col("critical_bound") >= pl.col("critical")).then(2)
            .when(pl.col("lower_bound") > pl.col("warning")).then(1).otherwise(0).alias("point_level"),
            pl.when(pl.col("value") >= pl.col("critical")).then(pl.col("critical")).otherwise(pl.col("warning"))
            .alias("threshold"),
        ).drop("critical_bound")
        # the CRITICAL, too, must hold for the whole sustain period (every look of it)
        held = int(timedelta(minutes=settings.sustain_min) / step) + 1
        out = sustain(judged, KEYS, instants=instants, step=step, sustain_for=timedelta(minutes=settings.sustain_min),
                      level_held=held)
        info = first_value(buckets, KEYS, "team").join(first_value(buckets, KEYS, "route"), on=KEYS, how="full",
                                                       coalesce=True)
        return {rule.name: out.join(info, on=KEYS, how="left")}
