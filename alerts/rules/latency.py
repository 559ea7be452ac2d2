"""Signal 7: the latency tail people ignore — p99 of end-to-end latency and of TTFT per
route/model/provider over a sliding hour of ok calls, while the mean looks fine. Percentiles come
from per-bucket t-digests merged by a window function in the engine.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import polars as pl

from alerts.rules.base import UNKNOWN, Explanation, Family, Rule, RuleContext, format_value, \
    scope_thresholds, sustain, time_series
from warehouse.queries import signals as q
from warehouse.queries.signals import causes

KEYS = ["project", "route", "model", "provider"]


class LatencyTail(Rule):
    """7 latency tail, per route/model/provider over a sliding hour of ok calls (timeouts excluded:
    they carry the client timeout): CRITICAL when end-to-end p99 ≥ `critical` (30 s); WARNING when
    TTFT p99 exceeds the route's SLO (1 s on chat routes — `chat_routes` globs —, 3 s elsewhere)
    × `warning`. The mean is reported beside it: that it looks fine is why the tail goes unseen."""

    name = "latency_tail"
    title = "Latency tail"
    scope_keys = ("project", "route", "model", "provider")
    unit = "ms"
    next_step = ("Route around the slow path: fall back to another provider or node, spread batch load "
                 "off-peak, add capacity where a queue builds; alert on p99, not the mean.")

    def describe(self, row: dict[str, Any]) -> str:
        return (f"{self.title}: p99 {format_value(row.get('latency_p99_ms'), 'ms')} with mean "
                f"{format_value(row.get('latency_mean_ms'), 'ms')}; TTFT p99 {format_value(row.get('ttft_p99_ms'), 'ms')} "
                f"(SLO {format_value(row.get('ttft_slo_ms'), 'ms')})")

    def explain(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        settings = self.settings(ctx)
        nodes = causes.slow_nodes(ctx.wh, ctx.scope, {k: [v] for k, v in scope.items()},
                                  lo=at - timedelta(minutes=settings.window_min), hi=at,
                                  slow_ms=int(min(settings.critical, 30_000)))
        if nodes.is_empty():
            return Explanation("", self.next_step)
        top = nodes.row(0, named=True)
        others = nodes.filter(pl.col("node") != top["node"])
        if top["queue_mean_ms"] > 1_000 and (others.is_empty() or top["queue_mean_ms"] > 3 * max(others["queue_mean_ms"].max(), 1)):
            cause = (f"queue on node {top['node']}: mean queue {top['queue_mean_ms'] / 1000:.1f} s, "
                     f"{top['slow_share']:.0%} of its calls over {settings.critical / 1000:.0f} s")
        else:
            cause = (f"slowest on {top['node']}: p99 {top['latency_p99_ms'] / 1000:.1f} s, "
                     f"{top['slow_share']:.0%} of calls over {settings.critical / 1000:.0f} s")
        return Explanation(cause, self.next_step, {"nodes": nodes.head(5).to_dicts()})


class LatencyFamily(Family):
    """Signal 7 from one window-function query over ok calls."""

    name = "latency"
    rules = (LatencyTail(),)

    def observe(self, ctx: RuleContext, instants: list[datetime]) -> dict[str, pl.DataFrame]:
        sliding = self.sliding(ctx, instants)
        if sliding is None:
            return {}
        rule, settings, step, window, span = sliding
        rows = q.latency_windows(ctx.wh, ctx.scope, span[0] - window, span[-1],
                                 step_s=int(step.total_seconds()), window_s=int(window.total_seconds()))
        if rows.is_empty():
            return {rule.name: sustain(rows, KEYS, instants=instants, step=step, sustain_for=step)}
        rows = rows.with_columns(pl.col("at").cast(pl.Datetime("ms", "UTC"))).filter(
            pl.col("at").is_in(time_series(span).implode()))
        judged = scope_thresholds(ctx, rule, rows, KEYS, ["warning", "critical", "min_volume", "enabled",
                                                         "ttft_slo_chat_ms", "ttft_slo_other_ms", "chat_routes"])
        chat = judged.select("route", "chat_routes").unique("route").with_columns(
            pl.struct("route", "chat_routes").map_elements(
                lambda r: any(fnmatchcase(r["route"], g) for g in r["chat_routes"]), return_dtype=pl.Boolean
            ).alias("is_chat")).select("route", "is_chat")
        judged = judged.join(chat, on="route", how="left").with_columns(
            pl.when(pl.col("is_chat")).then(pl.col("ttft_slo_chat_ms")).otherwise(pl.col("ttft_slo_other_ms"))
            .cast(pl.Float64).alias("ttft_slo_ms"),
            pl.col("calls").cast(pl.Float64).alias("volume"),
        ).with_columns(
            ((pl.col("ttft_calls") >= pl.col("min_volume"))
             & (pl.col("ttft_p99_ms") > pl.col("ttft_slo_ms") * pl.col("warning"))).alias("ttft_breach"),
            (pl.col("latency_p99_ms") >= pl.col("critical")).alias("tail_breach"),
        ).with_columns(
            pl.when(~pl.col("enabled") | (pl.col("volume") < pl.col("min_volume"))).then(UNKNOWN)
            .when(pl.col("tail_breach")).then(2).when(pl.col("ttft_breach")).then(1).otherwise(0).alias("point_level"),
            pl.when(~pl.col("tail_breach") & pl.col("ttft_breach")).then(pl.col("ttft_p99_ms"))
            .otherwise(pl.col("latency_p99_ms")).alias("value"),
            pl.when(~pl.col("tail_breach") & pl.col("ttft_breach")).then(pl.col("ttft_slo_ms") * pl.col("warning"))
            .otherwise(pl.col("critical")).alias("threshold"),
        ).drop("chat_routes")
        out = sustain(judged, KEYS, instants=instants, step=step, sustain_for=timedelta(minutes=settings.sustain_min))
        return {rule.name: out}
