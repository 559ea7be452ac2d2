"""Spend spikes per user, route and feature: cost over a sliding hour against the same clock
hours on the previous days (rollups), above a floor in $. One query with GROUPING SETS gives all
three dimensions; baselines are fetched only for the scopes over their floor.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl

from alerts.rules.base import (
    TIME,
    Explanation,
    Family,
    Rule,
    RuleContext,
    empty_observations,
    first_value,
    scope_thresholds,
    sustain,
    window_sums,
)
from alerts.rules.stats import MAD_TO_SIGMA
from warehouse.queries import signals as q
from warehouse.queries.signals import causes

KEYS = ["project", "dimension", "key"]
BUCKET = timedelta(minutes=5)
HOUR = timedelta(hours=1)
BEHIND = {"user_id": ["route", "model"], "route": ["model", "user_id"], "feature": ["route", "model"]}


class SpendSpike(Rule):
    """+ spend spike, per user / route / feature over a sliding hour: WARNING when cost reaches
    `warning` (3×) and CRITICAL `critical` (10×) times the baseline — the larger, over the clock
    hours the window touches, of the median cost at that hour on the previous `baseline_days` days —
    and only above the dimension's floor in $ (`floor_usd`), so small absolute moves never page.
    Method: seasonal robust baseline per scope — the median of the same clock hour over the
    previous days the scope existed, and its robust spread σ = 1.4826 × MAD of log(cost / median)
    over those hours; the window must reach median × max(3, e^(`z_warning` σ)) to warn and
    median × max(10, e^(`z_critical` σ)) to be critical, so a scope whose normal hour-to-hour
    variation is large needs a larger move (the seed's 3×/10× stay the minimum effect size). Warm-up: a scope younger than
    `min_history_days` is a new spend source and is not judged against an empty baseline. Calls
    with no user / route / feature are no scope (never judged as "")."""

    method = "same-hour median × max(3×/10×, e^(z·MAD of log)), warm-up 3 days"

    name = "spend_spike"
    title = "Spend spike"
    scope_keys = ("project", "dimension", "key")
    unit = "x"
    absent_means_ok = True
    next_step = ("Confirm whether the spend is expected; if not, rate-limit or cap the user / route (a "
                 "per-user budget) or move the work to a cheaper model.")

    def scope_of(self, row: dict[str, Any]) -> dict[str, str]:
        return {"project": str(row["project"]), str(row["dimension"]): str(row["key"])}

    def describe(self, row: dict[str, Any]) -> str:
        cost, base, value = row.get("cost_usd"), row.get("base_cost_usd") or 0, row.get("value")
        if cost is None or value is None or value != value:
            return f"{self.title}: held by the sustain window (no spend measured at this instant)"
        if not base or value == float("inf"):
            return f"{self.title}: ${cost:,.2f} in the last hour, new spend (this hour usually costs nothing)"
        sigma = row.get("base_log_sigma")
        spread = f" (this hour normally varies ×{2.718281828 ** sigma:.1f})" if sigma else ""
        return f"{self.title}: ${cost:,.2f} in the last hour, {value:.1f}x the usual ${base:,.2f}{spread}"

    def explain(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        settings = self.settings(ctx)
        dimension = next(k for k in scope if k != "project")
        top = causes.top_contributors(ctx.wh, ctx.scope, {k: [v] for k, v in scope.items()}, BEHIND[dimension],
                                      lo=at - timedelta(minutes=settings.window_min), hi=at)
        if top.is_empty():
            return Explanation("", self.next_step)
        parts = [" / ".join(str(r[d]) for d in BEHIND[dimension]) + f" ${float(r['cost_usd']):,.2f} ({r['share']:.0%})"
                 for r in top.iter_rows(named=True)]
        return Explanation(f"driven by {', '.join(parts)}", self.next_step,
                           {"top": [{k: str(v) for k, v in r.items()} for r in top.iter_rows(named=True)]})


def _covered_features(judged: pl.DataFrame, buckets: pl.DataFrame) -> pl.DataFrame:
    """Quiet a feature's spike when one route of that feature breaches with ≥ 95% of its spend:
    the same money, told once (by the route)."""
    routes = (buckets.filter((pl.col("dimension") == "route") & (pl.col("route_feature") != ""))
              .select("project", pl.col("key").alias("route"), pl.col("route_feature").alias("key")).unique())
    breaching = judged.filter((pl.col("dimension") == "route") & (pl.col("point_level") > 0)).select(
        "project", pl.col("key").alias("route"), "at", pl.col("cost_usd").alias("route_cost"),
        pl.col("point_level").alias("route_level"))
    if routes.is_empty() or breaching.is_empty():
        return judged
    covering = breaching.join(routes, on=["project", "route"]).with_columns(pl.lit("feature").alias("dimension"))
    marked = judged.join(covering, on=["project", "dimension", "key", "at"], how="left")
    covered = (pl.col("route_cost") >= 0.95 * pl.col("cost_usd")) & (pl.col("route_level") >= pl.col("point_level"))
    return marked.with_columns(
        pl.when(covered.fill_null(False)).then(0).otherwise(pl.col("point_level")).alias("point_level"),
        pl.when(covered.fill_null(False)).then(pl.col("route")).otherwise(None).alias("covered_by_route"),
    ).drop("route_cost", "route_level", "route").unique(subset=KEYS + ["at"], keep="first")


def robust_same_hour(hourly: pl.DataFrame, judged: pl.DataFrame, first: pl.DataFrame, *, window: timedelta,
                     days: int) -> pl.DataFrame:
    """Per row of `judged` (keys, at): over the two clock hours the window touches, the one with
    the larger median cost at that hour on the previous `days` days the scope existed (zero where
    it existed but spent nothing), with 1.4826 × its MAD (`base_sigma_usd`). Null without history."""
    frame = judged.select([*KEYS, "at"]).unique().with_columns((pl.col("at") - window).dt.truncate("1h").alias("h0"))
    candidates = frame.with_columns(pl.concat_list(pl.col("h0"), pl.col("h0") + HOUR).alias("hour")).explode("hour")
    shifted = candidates.with_columns(pl.int_ranges(1, days + 1).alias("k")).explode("k").with_columns(
        (pl.col("hour") - pl.duration(days=pl.col("k"))).alias("past"))
    shifted = shifted.join(first, on=KEYS, how="inner").filter(pl.col("past") >= pl.col("first_hour").dt.truncate("1h"))
    values = hourly.select([*KEYS, pl.col("hour").alias("past"), pl.col("cost_usd").cast(pl.Float64).alias("v")])
    joined = shifted.join(values, on=[*KEYS, "past"], how="left").with_columns(pl.col("v").fill_null(0.0))
    # the scope's own variability: the spread of log(cost / that hour's median) over every past hour
    # the row looks at (a multiplicative spread: busy and quiet hours vary alike)
    joined = joined.with_columns(pl.col("v").median().over([*KEYS, "at", "hour"]).alias("m"))
    eps = 0.05 * pl.col("m") + 0.01
    joined = joined.with_columns(((pl.col("v") + eps) / (pl.col("m") + eps)).log().alias("r"))
    spread = joined.group_by([*KEYS, "at"]).agg(
        ((pl.col("r") - pl.col("r").median()).abs().median() * MAD_TO_SIGMA).alias("base_log_sigma"))
    per_hour = joined.group_by([*KEYS, "at", "hour"]).agg(pl.col("m").first())
    best = per_hour.sort("m", descending=True).group_by([*KEYS, "at"]).first()
    return best.select([*KEYS, "at", pl.col("m").alias("base_cost_usd")]).join(spread, on=[*KEYS, "at"], how="left")


class SpendFamily(Family):
    """Spend spikes from one GROUPING SETS query and rollup baselines for the candidates."""

    name = "spend"
    rules = (SpendSpike(),)

    def observe(self, ctx: RuleContext, instants: list[datetime]) -> dict[str, pl.DataFrame]:
        sliding = self.sliding(ctx, instants)
        if sliding is None:
            return {}
        rule, settings, step, window, span = sliding
        buckets = q.spend_buckets(ctx.wh, ctx.scope, span[0] - window, span[-1]).with_columns(
            pl.col("cost_usd").cast(pl.Float64), pl.col("bucket").cast(TIME))
        buckets = buckets.filter(pl.col("key") != "")  # no user / route / feature: no scope to judge
        floors = pl.DataFrame({"dimension": list(settings.floor_usd), "floor": list(settings.floor_usd.values())})
        # A window's sum peaks just after a bucket enters it, so the sums at bucket ends bound every
        # instant: only scopes whose sparse rolling sum reaches the floor can fire (a few of thousands).
        peaks = (buckets.sort("bucket").rolling(index_column="bucket", period=window - BUCKET, closed="both",
                                                group_by=KEYS)
                 .agg(pl.col("cost_usd").sum().alias("peak_usd")).group_by(KEYS).agg(pl.col("peak_usd").max()))
        over = peaks.join(floors, on="dimension", how="inner").filter(pl.col("peak_usd") >= pl.col("floor") - 1e-9)
        buckets = buckets.join(over.select(KEYS), on=KEYS, how="semi")
        sums = window_sums(buckets, KEYS, ["cost_usd", "calls"], bucket=BUCKET, window=window, at=span)
        sums = sums.join(floors, on="dimension", how="inner").filter(pl.col("cost_usd") >= pl.col("floor"))
        if sums.is_empty():
            return {rule.name: empty_observations(KEYS)}
        candidates = sums.select("dimension", "key").unique()
        keys_of = {d: candidates.filter(pl.col("dimension") == d)["key"].to_list() for d in settings.floor_usd}
        h0 = sums.select((pl.col("at") - window).dt.truncate("1h")).to_series()
        hours = sorted({h + timedelta(hours=extra) - timedelta(days=k) for h in h0.unique().to_list()
                        for extra in (0, 1) for k in range(1, settings.baseline_days + 1)})
        hourly = q.spend_baseline(ctx.wh, ctx.scope, hours, users=keys_of.get("user_id", []),
                                  routes=keys_of.get("route", []), features=keys_of.get("feature", []))
        hourly = hourly.with_columns(pl.col("hour").cast(TIME), pl.col("cost_usd").cast(pl.Float64))
        first = q.spend_first_seen(ctx.wh, ctx.scope, users=keys_of.get("user_id", []),
                                   routes=keys_of.get("route", []), features=keys_of.get("feature", []))
        first = first.with_columns(pl.col("first_hour").cast(TIME)) if not first.is_empty() else pl.DataFrame(
            schema={**{k: pl.String for k in KEYS}, "first_hour": TIME})
        base = robust_same_hour(hourly, sums, first, window=window, days=settings.baseline_days)
        judged = scope_thresholds(ctx, rule, sums, ["project", "dimension", "key"],
                                  ["warning", "critical", "enabled", "min_history_days", "z_warning", "z_critical"])
        judged = judged.join(base, on=[*KEYS, "at"], how="left").join(first, on=KEYS, how="left").with_columns(
            pl.col("calls").alias("volume"),
            ((pl.col("at") - pl.col("first_hour")) >= pl.duration(days=1) * pl.col("min_history_days"))
            .fill_null(False).alias("warmed_up"),
        ).with_columns(
            pl.when(pl.col("base_cost_usd") > 0).then(pl.col("cost_usd") / pl.col("base_cost_usd"))
            .otherwise(float("inf")).alias("value"),
            pl.max_horizontal(pl.col("warning"), (pl.col("z_warning") * pl.col("base_log_sigma")).exp())
            .mul(pl.col("base_cost_usd")).alias("warning_usd"),
            pl.max_horizontal(pl.col("critical"), (pl.col("z_critical") * pl.col("base_log_sigma")).exp())
            .mul(pl.col("base_cost_usd")).alias("critical_usd"),
        ).with_columns(
            pl.when(~pl.col("enabled") | pl.col("base_cost_usd").is_null() | ~pl.col("warmed_up")).then(0)
            .when(pl.col("cost_usd") >= pl.col("critical_usd")).then(2)
            .when(pl.col("cost_usd") >= pl.col("warning_usd")).then(1).otherwise(0).alias("point_level"),
            pl.when(pl.col("cost_usd") >= pl.col("critical_usd")).then(pl.col("critical_usd") / pl.col("base_cost_usd"))
            .otherwise(pl.col("warning_usd") / pl.col("base_cost_usd")).alias("threshold"),
            (~pl.col("warmed_up")).alias("new_source"),
        ).drop("first_hour", "min_history_days", "z_warning", "z_critical")
        judged = _covered_features(judged, buckets)
        out = sustain(judged, KEYS, instants=instants, step=step, sustain_for=timedelta(minutes=settings.sustain_min),
                      absent_means_ok=True)
        return {rule.name: out.join(first_value(buckets, KEYS, "team"), on=KEYS, how="left")}
