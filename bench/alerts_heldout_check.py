"""Proof from the data that the held-out traffic (`bench.alerts_heldout`) is what it says it is.

For every scenario it prints the calls per route and day; for every injected incident the
documented statistic of its signal before, at and after the crossing (point value, the Wilson
bound that design.md §5 judges ratios by, the sample); and it scans every scope of every project
with the documented definitions (thresholds, windows, sustain periods, volume guards, Wilson bounds
for ratios, p99 only over ≥ 100 calls and against the scope's own normal where that is already
long, spend against the same clock hours of the previous 7 days over the $ floor). A quiet project
must hold no such episode, and an incident project none that its incidents do not explain (same
window rule as the harness: start − 5 min … end + 1 h, the incident's signal or one in `also`).
Listed apart, as the normal variation a sound rule must not page on rather than incidents: spend
crossings of a fixed 3× on bursty or launching traffic or over no baseline (issue classes 4, 9, 11),
and chance clusters of a ratio whose 95% bound clears in a few of the thousands of windows but
whose 99.9% bound never does (issue class 1: random cache misses, base timeouts).

Finally it ingests one scenario through the real pipeline into an embedded warehouse and shows
that nothing is rejected or dead-lettered, and that the pipeline's costs equal the generator's
list-price costs (which the budget and spend crossings were measured with).

Usage: python -m bench.alerts_heldout_check [--days 21] [--warmup-days 7] [--ingest ho-insights | --no-ingest]
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bench import alerts_heldout as ho
from bench.alert_cases import Incident, Scenario

SLACK = timedelta(minutes=5)
STRICT_Z = 3.09  # one-sided 99.9%
AFTER = timedelta(hours=1)


@dataclass
class Episode:
    """A stretch where a documented definition holds for its sustain period."""

    signal: str
    scope: str
    start: datetime
    end: datetime
    peak: str
    aside: str = ""  # why this is not an incident (listed apart), e.g. a chance cluster


# ---------------------------------------------------------------------------------------------
# helpers


def runs_of(mask: np.ndarray, lo: int, hi: int, sustain: int, step: int = 1) -> list[tuple[int, int]]:
    """(first, last) minutes of the stretches in [lo, hi) where mask holds at every `step`-minute
    evaluation point for at least the sustain period."""
    points = np.arange(lo - lo % step + step - 1, hi, step)
    ok = mask[points]
    out, start = [], None
    need = sustain // step + 1
    for i, v in enumerate(np.append(ok, False)):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if i - start >= need:
                out.append((int(points[start]), int(points[i - 1])))
            start = None
    return out


def episodes(signal: str, scope: str, mask: np.ndarray, value: np.ndarray, lo: int, hi: int, sustain: int,
             fmt: str = "{:.2f}", step: int = 1, worst=np.nanmax, strict: np.ndarray | None = None) -> list[Episode]:
    """Stretches where `mask` holds for the sustain period. With `strict` (the same condition at
    99.9% confidence), a stretch where it never holds is a chance cluster: among the thousands of
    overlapping windows a month holds, a 95% bound is cleared now and then by sampling alone."""
    out = []
    for a, b in runs_of(mask, lo, hi, sustain, step):
        with np.errstate(all="ignore"):
            peak = worst(value[a:b + 1])
        chance = strict is not None and not strict[a:b + 1].any()
        out.append(Episode(signal, scope, ho.at_minute(a), ho.at_minute(b), fmt.format(peak),
                           "chance cluster: the 99.9% bound never clears" if chance else ""))
    return out


def rolling_hourly_median(total: np.ndarray, count: np.ndarray, min_count: int, days: int = 7) -> np.ndarray:
    """Per minute: the median over the previous `days` days of clock-hour total/count (hours with ≥
    min_count), taken at each hour's start."""
    hours = total.size // 60
    t = total[: hours * 60].reshape(hours, 60).sum(axis=1)
    c = count[: hours * 60].reshape(hours, 60).sum(axis=1)
    with np.errstate(all="ignore"):
        per = np.where(c >= min_count, t / c, np.nan)
    out = np.full(hours, np.nan)
    for h in range(hours):
        past = per[max(0, h - days * 24): h]
        past = past[~np.isnan(past)]
        if past.size >= 6:
            out[h] = np.median(past)
    return np.repeat(out, 60)[: total.size]


def window_sorted(m: np.ndarray, t: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Index bounds [a, b) of the values whose minute is in (t − w, t], m sorted."""
    return np.searchsorted(m, t - w + 1), np.searchsorted(m, t, side="right")


# ---------------------------------------------------------------------------------------------
# scans: every scope, every documented definition


def scan(s: Scenario, calls: pl.DataFrame, ctx: ho.Ctx) -> list[Episode]:
    lo, hi, M = ctx.warmup * 1_440, ctx.minutes, ctx.minutes
    out: list[Episode] = []
    api = calls.filter(pl.col("provider") != "self_hosted")
    for (route, model), _ in api.group_by("route", "model"):
        cond = (pl.col("route") == route) & (pl.col("model") == model)
        hit = ho.stat_cache_hit(calls, M, cond)
        upper, strict = ho.wilson(hit.value, hit.n)[1], ho.wilson(hit.value, hit.n, STRICT_Z)[1]
        out += episodes("cache_hit_collapse", f"route={route} model={model}",
                        (upper < ho.CACHE_HIT["warning"]) & (hit.n >= 20), hit.value, lo, hi, 5, worst=np.nanmin,
                        strict=(strict < ho.CACHE_HIT["warning"]) & (hit.n >= 20))
        if ho.cache_eligible_min(model):
            na = ho.stat_not_applied(calls, M, cond)
            lower, strict = ho.wilson(na.value, na.n)[0], ho.wilson(na.value, na.n, STRICT_Z)[0]
            out += episodes("cache_not_applied", f"route={route} model={model}",
                            (lower > ho.NOT_APPLIED["warning"]) & (na.n >= 10), na.value, lo, hi, 5,
                            strict=(strict > ho.NOT_APPLIED["warning"]) & (na.n >= 10))
    for route in calls["route"].unique().drop_nulls().to_list():
        ok = calls.filter((pl.col("route") == route) & (pl.col("status") == "ok"))
        sums = ho.minute_sums(ok, {"tok": pl.col("input_tokens").sum(), "n": pl.len()}, M)
        base = rolling_hourly_median(sums["tok"], sums["n"], 100)
        wt, wn = ho.window(sums["tok"], 60), ho.window(sums["n"], 60)
        with np.errstate(all="ignore"):
            per_call = wt / wn / base
        out += episodes("prompt_accumulation", f"route={route}", (per_call >= ho.ACCUMULATION) & (wn >= 100),
                        per_call, lo, hi, 15, step=5)
    runs = s.tool_runs
    if runs.height:
        for tool in runs["tool_name"].unique().to_list():
            st, timeouts = ho.stat_sandbox(runs, M, tool)
            lower, strict = ho.wilson(st.value, st.n)[0], ho.wilson(st.value, st.n, STRICT_Z)[0]
            enough = (st.n >= 10) & (timeouts >= 3)
            out += episodes("sandbox_runaway", f"tool_name={tool}", (lower >= ho.SANDBOX["warning"]) & enough,
                            st.value, lo, hi, 5, strict=(strict >= ho.SANDBOX["warning"]) & enough)
            cost = ho.minute_sums(calls.filter(pl.col("tool_name") == tool), {"c": pl.col("cost_est").sum()}, M)["c"]
            if cost.sum() > 0:
                n = ho.minute_sums(runs.filter(pl.col("tool_name") == tool), {"n": pl.len()}, M)["n"]
                base = rolling_hourly_median(cost, n, 20)
                wn = ho.window(n, 60)
                with np.errstate(all="ignore"):
                    ratio = ho.window(cost, 60) / wn / base
                out += episodes("llm_calls_in_tools", f"tool_name={tool}", (ratio >= ho.TOOL_COST["warning"]) & (wn >= 20),
                                ratio, lo, hi, 15)
    for policy in calls["routing_policy"].unique().drop_nulls().to_list():
        esc = ho.stat_escalation(calls, M, policy)
        lower, strict = ho.wilson(esc.value, esc.n)[0], ho.wilson(esc.value, esc.n, STRICT_Z)[0]
        out += episodes("stale_routing", f"routing_policy={policy}", (lower > ho.ESCALATION["warning"]) & (esc.n >= 200),
                        esc.value, lo, hi, 10, step=5, strict=(strict > ho.ESCALATION["warning"]) & (esc.n >= 200))
    out += scan_reasoning(calls, ctx)
    out += scan_latency(calls, ctx)
    out += scan_spend(calls, ctx)
    out += scan_budgets(s, calls, ctx)
    return out


def scan_reasoning(calls: pl.DataFrame, ctx: ho.Ctx) -> list[Episode]:
    """Any call ≥ 100k reasoning tokens; outliers > 10× the route/model's p99 of the previous 7 days
    (and ≥ 10k)."""
    out = []
    since = ho.START + timedelta(days=ctx.warmup)
    heavy = calls.filter((pl.col("reasoning_tokens") >= 10_000) & (pl.col("ts") >= since))
    for row in heavy.iter_rows(named=True):
        if row["reasoning_tokens"] >= ho.REASONING_TOKENS:
            out.append(Episode("reasoning_runaway", f"route={row['route']} model={row['model']}", row["ts"], row["ts"],
                               f"{row['reasoning_tokens']:,} tokens"))
            continue
        past = calls.filter((pl.col("route") == row["route"]) & (pl.col("model") == row["model"])
                            & pl.col("ts").is_between(row["ts"] - timedelta(days=7), row["ts"], "left")
                            & (pl.col("status") == "ok"))["reasoning_tokens"]
        if past.len() >= 100 and row["reasoning_tokens"] > 10 * float(np.percentile(past.to_numpy(), 99)):
            out.append(Episode("reasoning_runaway", f"route={row['route']} model={row['model']}", row["ts"], row["ts"],
                               f"{row['reasoning_tokens']:,} tokens (outlier)"))
    return out


def scan_latency(calls: pl.DataFrame, ctx: ho.Ctx) -> list[Episode]:
    """p99 of latency (ok calls, ≥ 100 in 60 min, every 5 min, sustained 10 min) ≥ 30 s where the
    scope's normal p99 (previous 7 days) is under 30 s, else ≥ 2× its normal; TTFT p99 of streamed
    calls over max(SLO, 2× the route's normal)."""
    out = []
    ok = calls.filter(pl.col("status") == "ok").with_columns(ho.minute_of(pl.col("ts")).alias("m"))
    points = np.arange(ctx.warmup * 1_440 + 4, ctx.minutes, 5)
    for (route, model), f in ok.group_by("route", "model"):
        f = f.sort("m")
        for column in ("latency_ms", "ttft_ms"):
            g = f.filter(pl.col(column).is_not_null())
            if g.height < 100:
                continue
            m, v = g["m"].to_numpy(), g[column].to_numpy().astype(float)
            p99 = np.full(ctx.minutes, np.nan)
            for day in range(ctx.warmup, ctx.days):
                past = v[(m >= (day - 7) * 1_440) & (m < day * 1_440)]
                if past.size < 100:
                    continue
                normal = np.percentile(past, 99)
                if column == "latency_ms":
                    threshold = ho.LATENCY_P99_MS if normal < ho.LATENCY_P99_MS else 2 * normal
                else:
                    threshold = max(ho.TTFT_SLO_MS["chat" if "chat" in route else "other"], 2 * normal)
                over = np.concatenate([[0], np.cumsum(v >= threshold)])
                t = points[(points >= day * 1_440) & (points < (day + 1) * 1_440)]
                a, b = window_sorted(m, t, 60)
                n, k = b - a, over[b] - over[a]
                for i in np.flatnonzero((n >= 100) & (k >= 0.005 * n)):
                    q = np.percentile(v[a[i]:b[i]], 99)
                    if q >= threshold:
                        p99[t[i]] = q
            label = "latency p99" if column == "latency_ms" else "TTFT p99"
            out += episodes("latency_tail", f"route={route} model={model} ({label})", ~np.isnan(p99), p99,
                            ctx.warmup * 1_440, ctx.minutes, 10, fmt="{:,.0f} ms", step=5)
    return out


def scan_spend(calls: pl.DataFrame, ctx: ho.Ctx) -> list[Episode]:
    """Spend per user / route / feature over 60 min vs the same window's median on the previous 7
    days, over the $ floor, for scopes with ≥ 3 days of history, sustained 15 min. Crossings that a
    variability-aware threshold (max(3×, e^(3·1.4826·MAD of the log ratio over the scope's previous 7
    days))) does not confirm, or whose same-hour baseline is under 1% of the floor (no
    baseline: design §5 never compares a scope with zero), are set aside."""
    out = []
    lo, M = ctx.warmup * 1_440, ctx.minutes
    for dim in ("user_id", "route", "feature"):
        floor = ho.SPEND_FLOOR_USD[dim]
        hourly = (
            calls.filter(pl.col(dim).is_not_null())
            .group_by(dim, pl.col("ts").dt.truncate("1h"))
            .agg(pl.col("cost_est").sum())
        )
        candidates = hourly.filter(pl.col("cost_est") >= floor / 2.5)[dim].unique().to_list()
        for value in candidates:
            f = calls.filter(pl.col(dim) == value)
            cost, multiple = ho.stat_spend(calls, M, pl.col(dim) == value)
            born = int((f["ts"].min() - ho.START).total_seconds() // 60)
            mature = np.arange(M) >= born + 3 * 1_440
            mask = (multiple >= ho.SPEND["warning"]) & (cost >= floor) & mature
            if not mask[lo:].any():
                continue
            sigma = np.full(M, np.nan)
            with np.errstate(all="ignore"):
                logr = np.log(multiple)
            for day in range(ctx.warmup, ctx.days):
                past = logr[max(0, (day - 7) * 1_440): day * 1_440: 60]
                past = past[np.isfinite(past)]
                if past.size >= 24:
                    sigma[day * 1_440:(day + 1) * 1_440] = 1.4826 * np.median(np.abs(past - np.median(past)))
            with np.errstate(all="ignore"):
                baseline = cost / multiple
            robust = (mask & (multiple >= np.maximum(ho.SPEND["warning"], np.exp(3 * sigma)))
                      & (baseline >= floor / 100))  # design §5: a scope is never compared with (next to) zero
            for e in episodes("spend_spike", f"{dim}={value}", mask, multiple, lo, M, 15, fmt="{:.1f}×", step=5):
                a = int((e.start - ho.START).total_seconds() // 60) - 1
                b = int((e.end - ho.START).total_seconds() // 60) - 1
                if not robust[a:b + 1].any():
                    e.aside = (f"fixed 3× over no baseline (usually ${np.nanmin(baseline[a:b + 1]):.2f} an hour)"
                               if np.nanmax(baseline[a:b + 1]) < floor / 100 else "fixed 3× within its usual variation")
                out.append(e)
    return out


def scan_budgets(s: Scenario, calls: pl.DataFrame, ctx: ho.Ctx) -> list[Episode]:
    """Month-to-date spend ≥ 50% of a budget, or a month-end forecast (MTD + the last 7 days' daily
    rate × days left) ≥ 100%."""
    out = []
    M = ctx.minutes
    for budget in s.budgets:
        cond = pl.lit(True)
        for key in ("team", "project"):
            if key in budget:
                cond = cond & (pl.col(key) == budget[key])
        limit = float(budget["monthly_usd"])
        mtd = ho.month_to_date(calls, M, cond)
        daily = ho.window(ho.minute_sums(calls.filter(cond), {"c": pl.col("cost_est").sum()}, M)["c"], 7 * 1_440) / 7
        stamps = [ho.at_minute(t) for t in range(0, M, 60)]
        left = np.repeat(
            [
                (
                    (
                        datetime(x.year + (x.month == 12), x.month % 12 + 1, 1, tzinfo=x.tzinfo) - x
                    ).total_seconds()
                    / 86_400
                )
                for x in stamps
            ],
            60,
        )[:M]
        forecast = (mtd + daily * left) / limit
        scope = ", ".join(f"{k}={v}" for k, v in budget.items() if k != "monthly_usd")
        out += episodes("budget", f"{scope} (spent)", mtd / limit >= 0.5, mtd / limit, ctx.warmup * 1_440, M, 0,
                        fmt="{:.0%} spent")
        out += episodes("budget", f"{scope} (forecast)", forecast >= 1.0, forecast, ctx.warmup * 1_440, M, 0,
                        fmt="{:.0%} forecast")
    return out


def explained(e: Episode, incidents: list[Incident]) -> bool:
    return any(i.start - SLACK <= e.start <= i.end + AFTER and (e.signal == i.signal or e.signal in i.also)
               for i in incidents)


# ---------------------------------------------------------------------------------------------
# incident tables


def incident_table(i: Incident, s: Scenario, calls: pl.DataFrame, ctx: ho.Ctx) -> list[str]:
    M = ctx.minutes
    c = int((i.crosses_at - ho.START).total_seconds() // 60) - 1
    m0 = int((i.start - ho.START).total_seconds() // 60)
    m1 = int((i.end - ho.START).total_seconds() // 60)
    offsets = [("start − 30 min", m0 - 30), ("start", m0), ("crossing − 10 min", c - 10), ("crossing", c),
               ("crossing + 10 min", c + 10), ("crossing + 30 min", c + 30), ("crossing + 60 min", c + 60),
               ("end", m1), ("end + 60 min", m1 + 60)]
    key, value = next(iter(i.scope.items()))
    cond = pl.col(key) == value
    lines = []
    if i.signal == "reasoning_runaway":
        big = calls.filter(cond & (pl.col("reasoning_tokens") >= ho.REASONING_TOKENS))
        past = calls.filter(cond & (pl.col("ts") < i.start) & (pl.col("ts") >= i.start - timedelta(days=7)))[
            "reasoning_tokens"
        ]
        lines.append(
            f"    route p99 of reasoning tokens over the 7 days before: {np.percentile(past.to_numpy(), 99):,.0f}; "
            f"largest before: {past.max():,}"
        )
        lines += [f"    {r['ts']:%Y-%m-%d %H:%M:%S}  {r['model']}  reasoning {r['reasoning_tokens']:,}  latency "
                  f"{r['latency_ms'] / 1_000:,.0f} s" for r in big.sort("ts").iter_rows(named=True)]
        return lines
    if i.signal in ("cache_hit_collapse", "cache_not_applied", "stale_routing", "sandbox_runaway"):
        if i.signal == "cache_hit_collapse":
            st = ho.stat_cache_hit(calls, M, cond)
            bound, label = ho.wilson(st.value, st.n)[1], "Wilson upper"
            t = ho.CACHE_HIT
        elif i.signal == "cache_not_applied":
            st = ho.stat_not_applied(calls, M, cond)
            bound, label = ho.wilson(st.value, st.n)[0], "Wilson lower"
            t = ho.NOT_APPLIED
        elif i.signal == "stale_routing":
            st = ho.stat_escalation(calls, M, value)
            bound, label = ho.wilson(st.value, st.n)[0], "Wilson lower"
            t = ho.ESCALATION
        else:
            st, _ = ho.stat_sandbox(s.tool_runs, M, value)
            bound, label = ho.wilson(st.value, st.n)[0], "Wilson lower"
            t = ho.SANDBOX
        lines.append(f"    thresholds warning {t['warning']:.2f} / critical {t['critical']:.2f}")
        for name, m in offsets:
            if 0 <= m < M:
                lines.append(f"    {name:<18} {ho.at_minute(m):%m-%d %H:%M}  value {st.value[m]:6.3f}  {label} "
                             f"{max(bound[m], 0.0):6.3f}  n {st.n[m]:5.0f}")
        return lines
    if i.signal == "prompt_accumulation":
        per_call, per_hour = ho.stat_input(calls, M, value, m0)
        lines.append(
            f"    thresholds: per call ≥ {ho.ACCUMULATION}× (warning), "
            f"and per hour ≥ {ho.ACCUMULATION}× (critical)"
        )
        for name, m in offsets:
            lines.append(f"    {name:<18} {ho.at_minute(m):%m-%d %H:%M}  per call {per_call.value[m]:5.2f}×  "
                         f"per hour {per_hour.value[m]:5.2f}×  ok calls {per_call.n[m]:5.0f}")
        return lines
    if i.signal == "llm_calls_in_tools":
        st = ho.stat_tool_cost(calls, s.tool_runs, M, value, m0)
        lines.append(
            f"    thresholds warning {ho.TOOL_COST['warning']}× / critical {ho.TOOL_COST['critical']}× "
            "the tool's baseline cost per run"
        )
        peak = np.nanmax(st.value[m0:m1])
        for name, m in offsets:
            lines.append(
                f"    {name:<18} {ho.at_minute(m):%m-%d %H:%M}  cost per run {st.value[m]:6.1f}×  runs {st.n[m]:5.0f}"
            )
        lines.append(f"    peak during the incident {peak:.1f}×")
        return lines
    if i.signal == "latency_tail":
        column = "ttft_ms" if "TTFT" in i.kind else "latency_ms"
        extra = pl.col("stream") if column == "ttft_ms" else pl.lit(True)
        series = ho.p99_series(calls, column, m0 - 30, m1 + 61, cond & extra)
        if column == "ttft_ms":
            normal = ho.ttft_normal(calls, value, m0)
            lines.append(
                f"    normal TTFT p99 {normal['normal_p99']:,.0f} ms → threshold {normal['threshold']:,.0f} ms "
                f"(2× normal, never under the {ho.TTFT_SLO_MS['chat']:,} ms chat SLO)"
            )
        else:
            lines.append(f"    threshold p99 ≥ {ho.LATENCY_P99_MS:,} ms over ≥ 100 ok calls in 60 min")
        for name, m in offsets:
            if m in series:
                p, mean, n = series[m]
                lines.append(
                    f"    {name:<18} {ho.at_minute(m):%m-%d %H:%M}  p99 {p:9,.0f} ms  mean {mean:7,.0f} ms  n {n}"
                )
        return lines
    if i.signal == "spend_spike":
        cost, multiple = ho.stat_spend(calls, M, cond)
        lines.append(
            f"    thresholds warning {ho.SPEND['warning']}× / critical {ho.SPEND['critical']}× "
            f"the same hour's median of the previous 7 days, over ${ho.SPEND_FLOOR_USD.get(key, 10):.0f}"
        )
        for name, m in offsets:
            lines.append(
                f"    {name:<18} {ho.at_minute(m):%m-%d %H:%M}  60-min spend ${cost[m]:8.2f}  {multiple[m]:7.1f}×"
            )
        return lines
    if i.signal == "budget":
        budget = next(b for b in s.budgets if b.get(key) == value)
        mtd = ho.month_to_date(calls, M, cond & (pl.col("project") == s.project))
        lines.append(f"    monthly budget ${budget['monthly_usd']}")
        for name, m in offsets:
            lines.append(f"    {name:<18} {ho.at_minute(m):%m-%d %H:%M}  month to date ${mtd[m]:9.2f}  "
                         f"{mtd[m] / float(budget['monthly_usd']):6.1%}")
        return lines
    return lines


# ---------------------------------------------------------------------------------------------
# ingest through the real pipeline


def ingest(s: Scenario, calls: pl.DataFrame) -> list[str]:
    """Ingest one scenario into a fresh embedded warehouse; compare costs; count rejections."""
    from ingest.pipeline import Pipeline
    from ingest.tool_runs import ToolRunWriter
    from llmledger.settings import Settings
    from warehouse.client import Warehouse
    from warehouse.migrate import migrate

    problems = []
    with tempfile.TemporaryDirectory(prefix="heldout-") as tmp:
        store = Path(tmp)
        settings = Settings(home=store / "home", warehouse={"path": store / "warehouse"})
        with Warehouse.embedded(store / "warehouse", "heldout_check") as wh:
            migrate(wh)
            began = time.perf_counter()
            with Pipeline(wh, settings) as pipeline:
                result = pipeline.ingest_frame(s.calls, source="heldout-check")
            written_runs = ToolRunWriter(wh).write(s.tool_runs) if s.tool_runs.height else 0
            seconds = time.perf_counter() - began
            dead = int(wh.scalar("SELECT count() FROM dead_letters"))
            stored = int(wh.scalar("SELECT count() FROM calls"))
            unpriced = int(wh.scalar("SELECT count() FROM calls WHERE unpriced AND deployment = 'api'"))
            costs = wh.query_df("SELECT event_id, toFloat64(cost_usd) AS cost_usd FROM calls")
        print(
            f"  {s.project}: {s.calls.height:,} calls → {result.written:,} written, "
            f"{len(result.rejections)} rejected, "
            f"{result.duplicates} duplicates, {dead} dead letters, {unpriced} API calls unpriced; "
            f"{written_runs:,} of {s.tool_runs.height:,} tool runs written ({seconds:.0f} s)"
        )
        if result.unknown_fields:
            print(f"  unknown fields: {sorted(result.unknown_fields)}")
        joined = costs.join(calls.select("event_id", "cost_est"), on="event_id")
        total, est = joined["cost_usd"].sum(), joined["cost_est"].sum()
        worst = joined.with_columns((pl.col("cost_usd") - pl.col("cost_est")).abs().alias("d"))["d"].max()
        print(f"  cost: pipeline ${total:,.2f} vs generator ${est:,.2f} ({(est - total) / total:+.4%}); largest "
              f"per-call difference ${worst:.6f}")
        if result.rejections or dead or stored != s.calls.height or unpriced or written_runs != s.tool_runs.height:
            problems.append(f"{s.project}: rejections, dead letters, unpriced or missing rows")
        if abs(est - total) > 0.001 * total:
            problems.append(f"{s.project}: generator costs differ from the pipeline's by more than 0.1%")
    return problems


# ---------------------------------------------------------------------------------------------


def route_days(calls: pl.DataFrame, days: int) -> str:
    table = calls.group_by("route", ((pl.col("ts") - ho.START).dt.total_days()).alias("day")).len().pivot(
        "day", index="route", values="len", sort_columns=True).fill_null(0).sort("route")
    header = "    " + "route".ljust(16) + "".join(f"{d:>7}" for d in range(days))
    body = ["    " + row[0].ljust(16) + "".join(f"{(row[k] if k < len(row) else 0):>7}" for k in range(1, days + 1))
            for row in table.select(["route"] + [str(d) for d in range(days) if str(d) in table.columns]).rows()]
    return "\n".join([header] + body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--warmup-days", type=int, default=7)
    parser.add_argument(
        "--ingest",
        nargs="*",
        default=["ho-insights", "ho-research"],
        help="the scenarios to ingest through the real pipeline (default: the budget one and one with tools)",
    )
    parser.add_argument("--no-ingest", action="store_true")
    parser.add_argument("--only", nargs="*", help="check only these projects (and skip the ingest unless named)")
    args = parser.parse_args()
    ctx = ho.Ctx(args.days, args.warmup_days)
    began = time.perf_counter()
    pairs = ho.scenarios_with_costs(args.days, args.warmup_days, only=args.only)
    print(f"generated {sum(s.calls.height for s, _ in pairs):,} calls and "
          f"{sum(s.tool_runs.height for s, _ in pairs):,} tool runs in {time.perf_counter() - began:.0f} s "
          f"({args.days} days from {ho.START:%Y-%m-%d}, warm-up {args.warmup_days} days)")
    problems: list[str] = []
    aside_total: dict[str, int] = {}
    for s, calls in pairs:
        kind = "quiet" if s.quiet else f"{len(s.incidents)} incidents"
        print(f"\n## {s.project} ({kind}): {s.calls.height:,} calls, {s.tool_runs.height:,} tool runs, "
              f"${calls['cost_est'].sum():,.0f} at list prices" + (f", budgets {s.budgets}" if s.budgets else ""))
        print("  calls per route and day:")
        print(route_days(calls, args.days))
        for i in s.incidents:
            print(f"\n  incident: {i.kind}\n    signal {i.signal}, scope {i.scope}, severity {i.severity}, "
                  f"{i.start:%m-%d %H:%M} → {i.end:%m-%d %H:%M}, crosses at {i.crosses_at:%m-%d %H:%M}"
                  + (f", also {list(i.also)}" if i.also else ""))
            print("\n".join(incident_table(i, s, calls, ctx)))
        found = scan(s, calls, ctx)
        aside = [e for e in found if e.aside and not explained(e, s.incidents)]
        real = [e for e in found if not e.aside]
        bad = [e for e in real if not explained(e, s.incidents)]
        for i in s.incidents:
            if not any(e.signal == i.signal and explained(e, [i]) for e in real):
                bad_msg = f"{s.project}: the scan does not find the injected {i.signal} incident"
                problems.append(bad_msg)
                print(f"  !! {bad_msg}")
        print(
            f"\n  documented-definition episodes: {len(real)} "
            f"({len(real) - len(bad)} explained by an injected incident)"
        )
        for e in real:
            flag = "   " if explained(e, s.incidents) else "!! "
            print(f"  {flag}{e.signal:<20} {e.scope:<55} {e.start:%m-%d %H:%M} → {e.end:%m-%d %H:%M}  {e.peak}")
        if aside:
            print(f"  normal variation a sound rule must not page on (set aside): {len(aside)}")
            for e in aside:
                key = f"{e.signal}: {e.aside.split(' (')[0]}"
                aside_total[key] = aside_total.get(key, 0) + 1
                print(f"     {e.signal:<20} {e.scope:<45} {e.start:%m-%d %H:%M} → {e.end:%m-%d %H:%M}  {e.peak}  {e.aside}")
        if bad:
            problems.append(f"{s.project}: {len(bad)} episodes no injected incident explains")
    print("\nset aside over all projects (normal variation a sound rule must not page on):")
    for key, count in sorted(aside_total.items()):
        print(f"  {count:4d}  {key}")
    chosen = [(s, c) for s, c in pairs if s.project in args.ingest and not args.no_ingest]
    if chosen:
        print("\n## ingest through the real pipeline")
        for s, calls in chosen:
            problems += ingest(s, calls)
    if problems:
        print("\nPROBLEMS:\n" + "\n".join(f"  - {p}" for p in problems))
        sys.exit(1)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
