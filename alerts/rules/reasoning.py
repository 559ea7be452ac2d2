"""Signal 4: reasoning runaway — calls that reason to the cap, and outliers far above the
route/model's own p99 (from the rollup's digests over the days before the evaluation day).
Event-like: a window with no such call is OK.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl

from alerts.rules.base import TIME, Explanation, empty_observations, Family, Rule, RuleContext, scope_thresholds, sustain, time_series
from warehouse.queries import signals as q

KEYS = ["project", "route", "model"]


class ReasoningRunaway(Rule):
    """4 reasoning runaway, per route/model over a sliding hour: CRITICAL when any call used at
    least `critical` (100k) reasoning tokens; WARNING when a call used more than `warning` (10) ×
    the route/model's p99 of reasoning tokens over the previous days (and at least
    `outlier_floor_tokens`). The value is the largest reasoning count in the window. Several
    runaway calls on one route are one incident with a count (grouped by route; the quiet period
    keeps calls an hour or so apart in the same incident)."""

    method = "any call ≥ 100k; > 10× the route's own p99 (rollup digests); one incident per route"

    name = "reasoning_runaway"
    group_keys = ("project", "route")
    title = "Reasoning runaway"
    scope_keys = ("project", "route", "model")
    unit = "tokens"
    absent_means_ok = True
    next_step = "Set a reasoning budget on the route: max_output_tokens / reasoning effort, and a timeout."

    def accumulate(self, detail: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
        seen = list(detail.get("runaway_calls") or [])
        seen += [i for i in (row.get("event_ids") or []) if i not in seen]
        return {**detail, "runaway_calls": seen}

    def describe(self, row: dict[str, Any]) -> str:
        capped, outliers = int(row.get("capped_calls") or 0), int(row.get("outlier_calls") or 0)
        total = len((row.get("_incident") or {}).get("runaway_calls") or [])
        if not capped and not outliers:
            return f"{self.title}: {total} runaway call(s) in this incident, none in the last hour"
        what = (f"{capped} call(s) at ≥ {row.get('critical') or 100_000:,.0f} reasoning tokens" if capped else
                f"{outliers} call(s) far above the route's p99")
        so_far = f"; {total} runaway call(s) in this incident" if total > max(capped + outliers, 1) else ""
        return f"{self.title}: {what} in the last hour (largest {row.get('value') or 0:,.0f} tokens){so_far}"

    def explain(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        capped, outliers = int(row.get("capped_calls") or 0), int(row.get("outlier_calls") or 0)
        p99 = row.get("p99_tokens")
        parts = []
        if capped:
            parts.append(f"{capped} call(s) reasoned to ≥ {row['critical']:,.0f} tokens")
        if outliers:
            parts.append(f"{outliers} call(s) far above the route's p99 ({p99:,.0f} tokens)" if p99 else
                         f"{outliers} outlier call(s)")
        ids = row.get("event_ids") or []
        cause = "no reasoning budget on the route: " + ", ".join(parts) + (
            f" (e.g. {', '.join(ids[:3])})" if ids else "")
        return Explanation(cause, self.next_step, {"event_ids": list(ids)[:20]})


class ReasoningFamily(Family):
    """Signal 4 from the (rare) calls over the outlier floor and the rollup's p99 per day."""

    name = "reasoning"
    rules = (ReasoningRunaway(),)

    def observe(self, ctx: RuleContext, instants: list[datetime]) -> dict[str, pl.DataFrame]:
        (rule,) = self.rules
        settings = rule.settings(ctx)
        if not settings.enabled:
            return {}
        step = self.step(ctx.signals)
        window = timedelta(minutes=settings.window_min)
        floor = int(min(settings.outlier_floor_tokens, settings.critical))
        calls = q.reasoning_calls(ctx.wh, ctx.scope, min(instants) - window, max(instants), floor=floor)
        if calls.is_empty():
            return {rule.name: empty_observations(KEYS)}
        calls = calls.with_columns(pl.col("ts").cast(TIME), pl.col("ts").cast(TIME).dt.truncate("1d").alias("day"))
        days = sorted({d for d in calls["day"].to_list()} | {d for d in time_series(instants).dt.truncate("1d")})
        base = q.reasoning_baseline(ctx.wh, ctx.scope, days, baseline_days=settings.baseline_days,
                                    routes=sorted(set(calls["route"])))
        if base.is_empty():
            base = pl.DataFrame(schema={**{k: pl.String for k in KEYS}, "day": TIME, "p99_tokens": pl.Float64})
        base = base.select([*KEYS, pl.col("day").cast(TIME), pl.col("p99_tokens").cast(pl.Float64)])
        # every instant whose window (at - window, at] holds the call: the steps after ts, within the window
        first = (pl.col("ts").dt.truncate(f"{int(step.total_seconds())}s") + step)
        steps = int(window / step)
        covered = calls.with_columns(pl.int_ranges(0, steps).alias("i")).explode("i").with_columns(
            (first + pl.col("i") * step).alias("at")).filter(pl.col("at") <= pl.col("ts") + window)
        covered = covered.filter(pl.col("at").is_in(time_series(instants).implode()))
        # the p99 in force at an instant is the one of the instant's own day
        covered = covered.drop("day").with_columns(pl.col("at").dt.truncate("1d").alias("day"))
        covered = scope_thresholds(ctx, rule, covered, KEYS, ["warning", "critical", "enabled", "outlier_floor_tokens"])
        covered = covered.join(base, on=[*KEYS, "day"], how="left").with_columns(
            (pl.col("reasoning_tokens") >= pl.col("critical")).alias("capped"),
            ((pl.col("reasoning_tokens") >= pl.col("outlier_floor_tokens"))
             & (pl.col("reasoning_tokens") > pl.col("warning") * pl.col("p99_tokens"))).alias("outlier"),
        )
        judged = covered.group_by([*KEYS, "at"]).agg(
            pl.col("reasoning_tokens").max().cast(pl.Float64).alias("value"),
            pl.col("capped").sum().alias("capped_calls"),
            (pl.col("outlier") & ~pl.col("capped")).sum().alias("outlier_calls"),
            pl.col("event_id").filter(pl.col("capped") | pl.col("outlier")).alias("event_ids"),
            pl.col("p99_tokens").first(), pl.col("critical").first(), pl.col("warning").first(),
            pl.col("enabled").first(), pl.col("team").first(), pl.len().alias("volume"),
        ).with_columns(
            pl.when(~pl.col("enabled")).then(0).when(pl.col("capped_calls") > 0).then(2)
            .when(pl.col("outlier_calls") > 0).then(1).otherwise(0).alias("point_level"),
            pl.when(pl.col("capped_calls") > 0).then(pl.col("critical"))
            .otherwise(pl.col("warning") * pl.col("p99_tokens")).alias("threshold"),
        )
        out = sustain(judged, KEYS, instants=instants, step=step, sustain_for=timedelta(minutes=settings.sustain_min),
                      absent_means_ok=True)
        return {rule.name: out}
