"""Signal 7: the latency tail people ignore — p99 of end-to-end latency and of TTFT per
route/model/provider over a sliding hour of ok calls, while the mean looks fine. Percentiles come
from per-bucket t-digests merged by a window function in the engine.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import polars as pl

from alerts.rules.base import TIME, UNKNOWN, Explanation, Family, Rule, RuleContext, format_value, \
    scope_thresholds, sustain, time_series
from alerts.rules.stats import share_exceeds
from warehouse.queries import signals as q
from warehouse.queries.signals import causes

KEYS = ["project", "route", "model", "provider"]


class LatencyTail(Rule):
    """7 latency tail, per route/model/provider over a sliding hour of ok calls (timeouts excluded:
    they carry the client timeout): CRITICAL when end-to-end p99 ≥ `critical` (30 s) and — judged
    against the scope's own normal (the previous `baseline_days`, rollup digests) — ≥
    `long_normal_change` × its normal p99: a scope whose normal p99 is already long (reasoning)
    alerts on change, not on level. WARNING when the TTFT p99 of a streamed route exceeds its SLO ×
    `warning`: the route's `ttft_slo_routes` entry, else (`ttft_default` = baseline)
    `ttft_baseline_factor` × its own normal TTFT p99, never under the chat (1 s, `chat_routes`) /
    other (3 s) SLO. Method: p99 ≥ T means more than 1% of calls take at least T, so it is believed
    only when the one-sided exact binomial test (Clopper–Pearson, at `confidence`) of the share of
    calls at least T slow (counted at `exceedance_levels_ms`, the largest level ≤ T) clears 1% — a
    single slow call in a quiet hour is no tail (the Wilson bound is too lenient for so rare a share:
    3 slow calls of 100 pass it at 95%, while P(≥ 3 | 100 calls, 1%) = 8%). Equivalently, the p99's
    one-sided lower confidence bound — the order statistic X(n−k+1), k the test's critical count for
    n calls — is at least T (at least the level the calls are counted at, up to 15% under T): the
    count of calls above T decides, not the point estimate that two or three slow calls make of a
    thin (widened) window's p99 on a route whose tail is normally long. A p99 *estimate* needs
    ≥ `p99_min_samples` (100) calls (fewer: it would be the slowest call); a thinner hour
    (≥ `min_volume`, 50 calls) is judged first on its own calls by that test alone — which needs no
    p99 estimate — and otherwise over `wide_window_min` (3 h). A window of n < 100 calls must show a
    slow share above 1/n, not just 1%: more slow calls than the one a window that thin holds by
    chance at its slowest, so thinner windows need proportionally stronger evidence (4 slow calls
    of 55, where 1% would take 3: a user's three long requests in a quiet hour are no tail) —
    unless the provider's other scopes together (every call against its own scope's threshold, the
    same test at `confidence`) show the tail: a provider slowing down on routes that are each thin
    is corroborated by the others, one user's requests on one route are not. Both
    looks at a thin hour are made at half the error rate (Bonferroni: 1 − (1 − `confidence`) / 2), so
    together they err no more often than one. Whether the mean "looks fine" is checked against the scope's own
    normal mean (`mean_moved` × it): the alert says whether the tail hides behind a normal mean or
    the whole distribution moved. One incident per provider: its route/model scopes breaching in
    the same window are grouped."""

    method = ("p99 ≥ max(30 s, 2× own normal p99) by the p99's lower confidence bound (order statistic): exact "
              "binomial test (Clopper–Pearson) of the share of calls that slow > 1%, over ≥ 100 calls; a thinner "
              "hour (≥ 50) on its own calls against a share of 1/n (1% when its provider's other scopes together "
              "show the tail), else widened to 3 h (Bonferroni-split confidence); TTFT vs own normal")
    group_keys = ("project", "provider")
    name = "latency_tail"
    title = "Latency tail"
    scope_keys = ("project", "route", "model", "provider")
    unit = "ms"
    next_step = ("Route around the slow path: fall back to another provider or node, spread batch load "
                 "off-peak, add capacity where a queue builds; alert on p99, not the mean.")

    def describe(self, row: dict[str, Any]) -> str:
        base, mean, base_mean = row.get("base_latency_p99_ms"), row.get("latency_mean_ms"), row.get("base_latency_mean_ms")
        known = base_mean is not None and base_mean == base_mean and base_mean > 0 and mean is not None
        if known and mean >= row.get("mean_moved", 2.0) * base_mean:
            mean_text = (f"the mean moved too: {format_value(mean, 'ms')}, {mean / base_mean:.1f}x its normal "
                         f"{format_value(base_mean, 'ms')}")
        elif known:
            mean_text = (f"while the mean {format_value(mean, 'ms')} looks normal (usual {format_value(base_mean, 'ms')})"
                         ": the tail hides behind it")
        else:
            mean_text = f"with mean {format_value(mean, 'ms')}"
        normal = f" (normal p99 {format_value(base, 'ms')})" if base is not None and base == base else ""
        ttft = (f"; TTFT p99 {format_value(row.get('ttft_p99_ms'), 'ms')} (SLO {format_value(row.get('ttft_slo_ms'), 'ms')})"
                if row.get("ttft_slo_ms") is not None and row.get("ttft_p99_ms") is not None else "")
        return f"{self.title}: p99 {format_value(row.get('latency_p99_ms'), 'ms')}{normal} {mean_text}{ttft}"

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
    """Signal 7 from window-function queries over ok calls (a second, wider one only when some
    scope's window is too thin for a p99)."""

    name = "latency"
    rules = (LatencyTail(),)

    @staticmethod
    def _windows(ctx: RuleContext, span: list[datetime], step: timedelta, window: timedelta,
                 levels: list[int]) -> pl.DataFrame:
        rows = q.latency_windows(ctx.wh, ctx.scope, span[0] - window, span[-1], step_s=int(step.total_seconds()),
                                 window_s=int(window.total_seconds()), levels_ms=levels)
        if rows.is_empty():
            return rows
        return rows.with_columns(pl.col("at").cast(pl.Datetime("ms", "UTC"))).filter(
            pl.col("at").is_in(time_series(span).implode()))

    def observe(self, ctx: RuleContext, instants: list[datetime]) -> dict[str, pl.DataFrame]:
        sliding = self.sliding(ctx, instants)
        if sliding is None:
            return {}
        rule, settings, step, window, span = sliding
        levels = sorted(settings.exceedance_levels_ms)
        rows = self._windows(ctx, span, step, window, levels)
        wide = timedelta(minutes=max(settings.wide_window_min, settings.window_min))
        if wide > window and not rows.is_empty():
            # a window with too few calls for a p99 is widened (judged later rather than never)
            # — unless the thin hour's own calls already show the tail (see `LatencyTail`): both are kept
            thin = rows.filter(pl.col("calls") < settings.p99_min_samples).select([*KEYS, "at"])
            if not thin.is_empty():
                widened = self._windows(ctx, span, step, wide, levels).join(thin, on=[*KEYS, "at"], how="semi")
                rows = pl.concat([rows, widened.with_columns(pl.lit(True).alias("widened"))], how="diagonal_relaxed")
        if rows.is_empty():
            return {rule.name: sustain(rows, KEYS, instants=instants, step=step, sustain_for=step)}
        rows = rows.with_columns(pl.col("widened").fill_null(False) if "widened" in rows.columns
                                 else pl.lit(False).alias("widened"))
        # a thin hour is looked at twice (its own calls, then the widened window): each look at half
        # the error rate (Bonferroni), so the two together err no more often than one look at `confidence`
        split = 1 - (1 - settings.confidence) / 2
        rows = rows.with_columns(
            (~pl.col("widened") & (pl.col("calls") < settings.p99_min_samples)).alias("thin"),
        )
        rows = rows.with_columns(pl.col("at").dt.truncate("1d").alias("day"))
        days = sorted(set(rows["day"].to_list()))
        base = q.latency_baseline(ctx.wh, ctx.scope, days, baseline_days=settings.baseline_days)
        base_cols = ["base_calls", "base_latency_mean_ms", "base_latency_p99_ms", "base_ttft_calls", "base_ttft_p99_ms"]
        if base.is_empty():
            base = pl.DataFrame(schema={**{k: pl.String for k in KEYS}, "day": TIME,
                                        **{c: pl.Float64 for c in base_cols}})
        base = base.with_columns(pl.col("day").cast(TIME), *(pl.col(c).cast(pl.Float64) for c in base_cols))
        rows = rows.join(base, on=[*KEYS, "day"], how="left").drop("day")
        judged = scope_thresholds(ctx, rule, rows, KEYS, ["warning", "critical", "min_volume", "enabled",
                                                         "ttft_slo_chat_ms", "ttft_slo_other_ms", "chat_routes",
                                                         "p99_min_samples", "long_normal_change",
                                                         "ttft_default", "ttft_baseline_factor", "mean_moved"])
        slos = settings.ttft_slo_routes
        per_route = judged.select("route", "chat_routes").unique("route").with_columns(
            pl.struct("route", "chat_routes").map_elements(
                lambda r: any(fnmatchcase(r["route"], g) for g in r["chat_routes"]), return_dtype=pl.Boolean
            ).alias("is_chat"),
            pl.col("route").map_elements(
                lambda route: next((float(v) for g, v in slos.items() if fnmatchcase(route, g)), None),
                return_dtype=pl.Float64).alias("route_slo_ms"),
        ).select("route", "is_chat", "route_slo_ms")
        enough = pl.col("p99_min_samples").cast(pl.Float64)
        global_slo = pl.when(pl.col("is_chat")).then(pl.col("ttft_slo_chat_ms")).otherwise(
            pl.col("ttft_slo_other_ms")).cast(pl.Float64)
        learned = pl.when(pl.col("base_ttft_calls") >= enough).then(
            pl.max_horizontal(global_slo, pl.col("ttft_baseline_factor") * pl.col("base_ttft_p99_ms")))
        judged = judged.join(per_route, on="route", how="left").with_columns(
            pl.when(pl.col("route_slo_ms").is_not_null()).then(pl.col("route_slo_ms"))
            .when(pl.col("ttft_default") == "global").then(global_slo).otherwise(learned).alias("ttft_slo_ms"),
            pl.col("calls").cast(pl.Float64).alias("volume"),
            # the scope's own normal p99 is known: p99 must also be well past it (change, not level)
            ((pl.col("base_calls") >= enough) & pl.col("base_latency_p99_ms").is_not_null())
            .fill_null(False).alias("long_normal"),
        ).with_columns(
            ((pl.col("ttft_calls") >= enough) & pl.col("ttft_slo_ms").is_not_null()
             & (pl.col("ttft_p99_ms") > pl.col("ttft_slo_ms") * pl.col("warning"))).fill_null(False).alias("ttft_breach"),
            pl.when(pl.col("long_normal")).then(pl.max_horizontal(
                pl.col("critical").cast(pl.Float64), pl.col("long_normal_change") * pl.col("base_latency_p99_ms")))
            .otherwise(pl.col("critical").cast(pl.Float64)).alias("tail_threshold"),
        ).with_columns(
            # calls at least as slow as the largest level at or under the threshold (levels ~15% apart)
            pl.col("over_levels").list.get(
                (pl.sum_horizontal([(pl.col("tail_threshold") >= level).cast(pl.Int64) for level in levels]) - 1)
                .clip(0, len(levels) - 1), null_on_oob=True).cast(pl.Float64).alias("slow_calls"),
        )
        # the provider's other scopes together (their own windows, each call against its scope's
        # threshold): a tail they share is corroborated
        provider = ["project", "provider", "at"]
        pooled = judged.filter(~pl.col("widened")).group_by(provider).agg(
            pl.col("calls").sum().alias("_pooled_calls"), pl.col("slow_calls").fill_null(0).sum().alias("_pooled_slow"))
        own = pl.when(pl.col("widened")).then(0).otherwise(pl.col("calls"))
        own_slow = pl.when(pl.col("widened")).then(0).otherwise(pl.col("slow_calls").fill_null(0))
        judged = judged.join(pooled, on=provider, how="left").with_columns(
            share_exceeds(pl.col("_pooled_slow") - own_slow, pl.col("_pooled_calls") - own, 0.01, settings.confidence)
            .fill_null(False).alias("_provider_tail"),
        ).with_columns(
            # p99 ≥ T means more than 1% of calls take ≥ T: believed only when the exact binomial test
            # of that share clears 1% — one slow call among a hundred is not a tail; a window under
            # 100 calls must clear 1/n (more than its slowest call) unless its provider shares the tail
            ((pl.col("latency_p99_ms") >= pl.col("tail_threshold"))
             & pl.when(pl.col("thin") | pl.col("widened"))  # the two looks at a thin hour
             .then(pl.when(pl.col("_provider_tail"))
                   .then(share_exceeds(pl.col("slow_calls"), pl.col("calls"), 0.01, split))
                   .otherwise(share_exceeds(pl.col("slow_calls"), pl.col("calls"), 0.01, split, per_window=True)))
             .otherwise(share_exceeds(pl.col("slow_calls"), pl.col("calls"), 0.01, settings.confidence)))
            .fill_null(False).alias("tail_breach"),
        ).drop("_pooled_calls", "_pooled_slow", "_provider_tail").with_columns(
            pl.when(~pl.col("enabled") | (pl.col("volume") < pl.col("min_volume"))
                    | ((pl.col("volume") < pl.col("p99_min_samples")) & ~(pl.col("thin") & pl.col("tail_breach"))))
            .then(UNKNOWN)
            .when(pl.col("tail_breach")).then(2).when(pl.col("ttft_breach")).then(1).otherwise(0).alias("point_level"),
            pl.when(~pl.col("tail_breach") & pl.col("ttft_breach")).then(pl.col("ttft_p99_ms"))
            .otherwise(pl.col("latency_p99_ms")).alias("value"),
            pl.when(~pl.col("tail_breach") & pl.col("ttft_breach")).then(pl.col("ttft_slo_ms") * pl.col("warning"))
            .otherwise(pl.col("tail_threshold")).alias("threshold"),
        ).drop("chat_routes", "ttft_default", "route_slo_ms", "over_levels")
        # per scope and instant one judgement: the window itself when it holds enough calls; a thin
        # hour on its own calls when they show the tail; else the widened window
        judged = judged.with_columns(
            pl.when(~pl.col("widened") & ~pl.col("thin")).then(0)
            .when(pl.col("thin") & (pl.col("point_level") == 2)).then(1)
            .when(pl.col("widened")).then(2).otherwise(3).alias("_choice"),
        ).sort([*KEYS, "at", "_choice"]).unique([*KEYS, "at"], keep="first", maintain_order=True).drop("_choice")
        out = sustain(judged, KEYS, instants=instants, step=step, sustain_for=timedelta(minutes=settings.sustain_min))
        return {rule.name: out}
