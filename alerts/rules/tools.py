"""Signals 3 and 6, per tool: LLM cost per tool invocation against the tool's own baseline, and
tool / sandbox runs ending in timeout. One query of minute buckets joins calls with `tool_runs`
(by `tool_name`, or by `parent_span_id` = the run's span); the baseline comes from the rollups.
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
    onset_of,
    scope_thresholds,
    sustain,
    window_sums,
)
from alerts.rules.cache import describe_shift
from alerts.rules.prompt import trailing_median
from alerts.rules.stats import wilson_lower
from warehouse.queries import signals as q

KEYS = ["project", "tool_name"]
BUCKET = timedelta(minutes=1)


class LlmCallsInTools(Rule):
    """3 LLM calls inside tools: LLM cost of the calls a tool makes per run of the tool, over a
    sliding hour, against the tool's baseline (median hourly cost per run over previous days, hours
    with ≥ `baseline_min_runs` runs); WARNING ≥ 10×, CRITICAL ≥ 25×. A tool whose baseline has no
    LLM cost fires WARNING once it spends `new_cost_per_run_usd` per run."""

    method = "cost per run over ≥ 20 runs vs the tool's median hourly cost per run (7 days, hours with ≥ 20 runs)"
    name = "llm_calls_in_tools"
    title = "LLM calls inside tools"
    scope_keys = ("project", "tool_name")
    unit = "x"
    next_step = "Put a per-tool budget cap and alert on it; review the tool's last release (model, calls per run)."

    def describe(self, row: dict[str, Any]) -> str:
        return (f"{self.title}: ${row.get('cost_per_run', 0):.4f} of LLM calls per run, {row['value']:.1f}x the "
                f"tool's baseline (${row.get('base_cost_per_run') or 0:.4f})")

    def explain(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        settings = self.settings(ctx)
        changed_by = onset_of(row, timedelta(minutes=settings.window_min),
                              at - timedelta(minutes=settings.window_min + settings.sustain_min))
        phrases, detail = describe_shift(ctx, {k: [v] for k, v in scope.items()}, ["model"], at=at,
                                         changed_by=changed_by)
        per_run = row.get("llm_calls", 0) / max(row.get("volume") or 1, 1)
        cause = f"{scope['tool_name']} now makes {per_run:.1f} LLM calls per run"
        if phrases:
            cause += "; " + "; ".join(phrases)
        return Explanation(cause, self.next_step, {**detail, "llm_calls_per_run": round(per_run, 2)})


class SandboxRunaway(Rule):
    """6 sandbox runaway: share of a tool's runs ending in timeout over a sliding 15 minutes;
    WARNING ≥ 5% and CRITICAL ≥ 20%, each only with at least `min_timeouts` timeouts.
    Method: the Wilson lower bound (one-sided) of the timeout share is compared with the
    thresholds, not the point estimate: at `confidence` (99%) for the WARNING, at
    `critical_confidence` (95%) for the CRITICAL, many times a tool's normal share."""

    method = "Wilson lower bound ≥ threshold (99% warning, 95% critical)"

    name = "sandbox_runaway"
    title = "Sandbox runaway"
    scope_keys = ("project", "tool_name")
    unit = "share"
    next_step = ("Enforce a timeout and a compute cap per run and kill runaway sandboxes; look at the generated "
                 "code of the timed-out runs (infinite loops).")

    def explain(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        timeouts, runs = int(row.get("timeouts") or 0), int(row.get("volume") or 0)
        return Explanation(f"{timeouts} of {runs} {scope['tool_name']} runs in the window ended at the timeout: "
                           "generated code that never finishes", self.next_step)


class ToolFamily(Family):
    """Signals 3 and 6 from one scan of tool runs and tool-made calls."""

    name = "tools"
    rules = (LlmCallsInTools(), SandboxRunaway())

    def observe(self, ctx: RuleContext, instants: list[datetime]) -> dict[str, pl.DataFrame]:
        llm_rule, box_rule = self.rules
        llm, box = llm_rule.settings(ctx), box_rule.settings(ctx)
        step, longest, span = self.reach(ctx, instants, [llm, box])
        buckets = q.tool_buckets(ctx.wh, ctx.scope, span[0] - longest, span[-1])
        routes = first_value(buckets, KEYS, "route")  # tool runs carry the route that ran them, not a team
        out: dict[str, pl.DataFrame] = {}
        if llm.enabled:
            window = timedelta(minutes=llm.window_min)
            sums = window_sums(buckets, KEYS, ["runs", "llm_calls", "llm_cost_usd"], bucket=BUCKET, window=window,
                               at=span)
            base_lo = (span[0] - window).replace(minute=0, second=0, microsecond=0) - timedelta(days=llm.baseline_days)
            hourly = q.tool_baseline(ctx.wh, ctx.scope, base_lo, span[-1] + timedelta(hours=1)).with_columns(
                pl.col("hour").cast(TIME), pl.col("llm_cost_usd").cast(pl.Float64))
            base = trailing_median(hourly, sums, KEYS, pl.col("llm_cost_usd") / pl.col("runs"), window=window,
                                   days=llm.baseline_days, keep=pl.col("runs") >= llm.baseline_min_runs,
                                   name="base_cost_per_run")
            judged = scope_thresholds(ctx, llm_rule, sums, KEYS,
                                      ["warning", "critical", "min_volume", "enabled", "new_cost_per_run_usd"])
            judged = judged.join(base, on=[*KEYS, "at"], how="left").with_columns(
                (pl.col("llm_cost_usd") / pl.col("runs")).alias("cost_per_run"), pl.col("runs").alias("volume"),
            ).with_columns(
                pl.when(pl.col("base_cost_per_run") > 0).then(pl.col("cost_per_run") / pl.col("base_cost_per_run"))
                .when(pl.col("cost_per_run") > 0).then(float("inf")).otherwise(0.0).alias("value"),
            ).with_columns(
                pl.when(~pl.col("enabled") | (pl.col("volume") < pl.col("min_volume"))
                        | pl.col("base_cost_per_run").is_null()).then(UNKNOWN)
                .when(pl.col("base_cost_per_run") == 0).then(
                    pl.when(pl.col("cost_per_run") >= pl.col("new_cost_per_run_usd")).then(1).otherwise(0))
                .when(pl.col("value") >= pl.col("critical")).then(2)
                .when(pl.col("value") >= pl.col("warning")).then(1).otherwise(0).alias("point_level"),
                pl.when(pl.col("value") >= pl.col("critical")).then(pl.col("critical")).otherwise(pl.col("warning"))
                .alias("threshold"),
            )
            out[llm_rule.name] = sustain(judged, KEYS, instants=instants, step=step,
                                         sustain_for=timedelta(minutes=llm.sustain_min))
        if box.enabled:
            sums = window_sums(buckets, KEYS, ["runs", "timeouts"], bucket=BUCKET,
                               window=timedelta(minutes=box.window_min), at=span)
            judged = scope_thresholds(ctx, box_rule, sums, KEYS,
                                      ["warning", "critical", "min_volume", "enabled", "min_timeouts"])
            judged = judged.with_columns(
                (pl.col("timeouts") / pl.col("runs")).alias("value"), pl.col("runs").alias("volume"),
                wilson_lower(pl.col("timeouts"), pl.col("runs"), box.confidence).alias("lower_bound"),
                wilson_lower(pl.col("timeouts"), pl.col("runs"), box.critical_confidence).alias("critical_bound"),
            ).with_columns(
                pl.when(~pl.col("enabled") | (pl.col("volume") < pl.col("min_volume"))).then(UNKNOWN)
                .when((pl.col("critical_bound") >= pl.col("critical")) & (pl.col("timeouts") >= pl.col("min_timeouts"))).then(2)
                .when((pl.col("lower_bound") >= pl.col("warning")) & (pl.col("timeouts") >= pl.col("min_timeouts"))).then(1)
                .otherwise(0).alias("point_level"),
                pl.when(pl.col("value") >= pl.col("critical")).then(pl.col("critical")).otherwise(pl.col("warning"))
                .alias("threshold"),
            ).drop("critical_bound")
            out[box_rule.name] = sustain(judged, KEYS, instants=instants, step=step,
                                         sustain_for=timedelta(minutes=box.sustain_min))
        return {name: frame.join(routes, on=KEYS, how="left").with_columns(pl.lit("").alias("team"))
                for name, frame in out.items()}
