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
from alerts.rules.stats import score_test_volume, wilson_lower
from warehouse.queries import signals as q
from warehouse.queries.signals import causes

KEYS = ["project", "routing_policy"]
BUCKET = timedelta(minutes=5)


class StaleRouting(Rule):
    """5 stale routing: escalations (step-1 calls) / first-step calls of a routing policy over a
    sliding hour; healthy 30–50%, WARNING > 50%, CRITICAL ≥ 70%. Method: the Wilson lower bound
    (one-sided) of the escalation share is compared with the thresholds, not the point estimate: at
    `confidence` (99%) for the WARNING, just past the healthy range; at `critical_confidence` (95%)
    for the CRITICAL, far past it. Each level must hold for the whole sustain period (every
    five-minute look of it): a thin policy's bound is wide, so a share at WARNING level (60–65%)
    crosses the 95% bound at 70% in one look of many; a busy policy's bound is narrow either way.
    Volume guard derived from the test, not a fixed number: a window is judged from the fewest
    first-step calls at which a window escalating at the CRITICAL share is past the WARNING's bound
    (the score test the Wilson bound inverts, power `power` = ½: n > z²·w(1−w)/(c−w)², 34 at the
    defaults; `min_volume` overrides it) — fewer, and a policy at 70% cannot be told from a healthy
    one more often than not. An hour with fewer is widened five minutes at a time (up to
    `wide_window_min`) until it holds them, so a thin policy (a dozen to a few dozen first-step calls
    an hour) is judged later rather than never; a guard larger than the test needs widens the hour
    back into the calls before a rollout and dilutes it (40 held a thin policy's CRITICAL 86 min
    after the crossing, past its 75-minute limit)."""

    method = ("Wilson lower bound > threshold (99% warning, 95% critical), each level held for the sustain period, "
              "over the first-step calls the warning's score test needs to tell the critical share from healthy "
              "(power ½; 34 at the defaults; a thin hour widened until it holds them, up to 3 h)")

    name = "stale_routing"
    title = "Stale routing"
    scope_keys = ("project", "routing_policy")
    unit = "share"
    next_step = ("Retrain or recalibrate the router for the current cheap model (and its price); ship router "
                 "updates together with cheap-model upgrades.")

    def volume_guard(self, settings: Any) -> int | None:
        """`min_volume` where set, else the fewest first-step calls the warning's test needs to tell the
        critical share from the healthy range (`guard_expr`)."""
        return int(pl.select(guard_expr(pl.lit(settings.warning), pl.lit(settings.critical),
                                        pl.lit(settings.min_volume), settings.confidence, settings.power)).item())

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


def guard_expr(warning: pl.Expr, critical: pl.Expr, min_volume: pl.Expr, confidence: float, power: float) -> pl.Expr:
    """The first-step calls a window needs: `min_volume` where set, else derived from the test — the
    score test of "share > warning" at `confidence` with `power` against the CRITICAL share (an
    override whose CRITICAL is not past its WARNING: against a share of 1)."""
    low, high = pl.min_horizontal(warning, critical), pl.max_horizontal(warning, critical)
    derived = pl.coalesce(score_test_volume(low, high, confidence, power),
                          score_test_volume(low, pl.lit(1.0), confidence, power))
    return pl.coalesce(min_volume.cast(pl.Int64), derived, pl.lit(0))


def volume_guards(ctx: RuleContext, rule: Rule, settings: Any, scopes: pl.DataFrame) -> pl.DataFrame:
    """Per policy, its window's volume guard (`guard`, see `guard_expr`) from its own thresholds."""
    scopes = scope_thresholds(ctx, rule, scopes, KEYS, ["warning", "critical", "min_volume"])
    return scopes.select(*KEYS, guard_expr(pl.col("warning"), pl.col("critical"), pl.col("min_volume"),
                                           settings.confidence, settings.power).alias("guard"))


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
        # the volume guard each policy's window needs (its own thresholds where overridden)
        guards = volume_guards(ctx, rule, settings, buckets.select(KEYS).unique())
        # an hour with too few first-step calls is widened until it holds them (judged later, not never)
        sums = widened_sums(buckets, KEYS, ["step0_calls", "step1_calls"], volume="step0_calls",
                            need=pl.col("guard"), bucket=BUCKET, windows=windows, at=span, per_scope=guards)
        judged = scope_thresholds(ctx, rule, sums.join(guards, on=KEYS, how="left"), KEYS,
                                  ["warning", "critical", "enabled"])
        judged = judged.with_columns(
            (pl.col("step1_calls") / pl.col("step0_calls")).alias("value"), pl.col("step0_calls").alias("volume"),
            wilson_lower(pl.min_horizontal("step1_calls", "step0_calls"), pl.col("step0_calls"),
                         settings.confidence).alias("lower_bound"),
            wilson_lower(pl.min_horizontal("step1_calls", "step0_calls"), pl.col("step0_calls"),
                         settings.critical_confidence).alias("critical_bound"),
        ).with_columns(
            pl.when(~pl.col("enabled") | (pl.col("volume") < pl.col("guard")) | pl.col("value").is_nan())
            .then(UNKNOWN).when(pl.col("critical_bound") >= pl.col("critical")).then(2)
            .when(pl.col("lower_bound") > pl.col("warning")).then(1).otherwise(0).alias("point_level"),
            pl.when(pl.col("value") >= pl.col("critical")).then(pl.col("critical")).otherwise(pl.col("warning"))
            .alias("threshold"),
        ).drop("critical_bound", "guard")
        # the CRITICAL, too, must hold for the whole sustain period (every look of it)
        held = int(timedelta(minutes=settings.sustain_min) / step) + 1
        out = sustain(judged, KEYS, instants=instants, step=step, sustain_for=timedelta(minutes=settings.sustain_min),
                      level_held=held)
        info = first_value(buckets, KEYS, "team").join(first_value(buckets, KEYS, "route"), on=KEYS, how="full",
                                                       coalesce=True)
        return {rule.name: out.join(info, on=KEYS, how="left")}
