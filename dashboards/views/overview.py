"""Overview: total spend (API calls + self-hosted GPU time, the split beside every headline) today,
this week and month to date with the month-end forecast and budgets; calls, cost per call, cache
savings, errors; the self-hosted finding; spend over time (GPU time as its own bar); top movers;
open alerts (each a link to its incident); when the money goes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import polars as pl
import streamlit as st

from common import formatting as fmt
from dashboards import controls, figures, layout, tables
from dashboards.client import Spend, View, spend_of

MOVER_PERIODS = {"1": "day", "7": "7 days", "30": "30 days"}
GPUS = "self-hosted GPUs"

api = layout.api_for("overview")
view = controls.view(api)
st.title("Overview")


def split(spend: Spend) -> str:
    """The note under a total: its API and GPU parts."""
    return f"{fmt.money(spend.api_usd)} API + {fmt.money(spend.infra_usd)} GPUs" if spend.infra_usd else "all API"


def infra_days(frame: pl.DataFrame) -> pl.DataFrame:
    """GPU cost per day (bucket, value) from `/v1/usage/infra?grain=day` rows."""
    if frame.is_empty():
        return pl.DataFrame(schema={"bucket": pl.Datetime("ms", "UTC"), "value": pl.Decimal(38, 18)})
    return frame.group_by("bucket").agg(pl.col("infra_cost_usd").sum().alias("value")).sort("bucket")


with layout.guard(api):
    with st.spinner("Loading spend…"):
        # every read the page needs that no widget below decides, at once
        today = view.end.replace(hour=0, minute=0, second=0, microsecond=0)  # as /v1/spend counts "today"
        week_start = today - timedelta(days=today.weekday())
        month_start = today.replace(day=1)
        since = min(month_start, week_start, today - timedelta(days=7))
        grain = controls.bar_grain(view)
        # the GPU cost per bar of the spend chart is also the range's GPU total (the same node-hours)
        (periods, totals, gpu_days, savings, finding, series, gpu_series, month_days, budgets, alerts,
         cells) = api.together(
            lambda: api.periods(view), lambda: api.totals(view),
            lambda: api.infra(View(since, view.end, view.filters), "project", grain="day"),
            lambda: api.cache_savings(view), lambda: api.nodes("finding", view),
            lambda: api.timeseries(view, grain=grain, dimension="provider", top=8),
            lambda: api.infra(view, "project", grain=grain),
            lambda: api.timeseries(View(month_start, view.end, view.filters), grain="day"),
            lambda: api.budgets(view), lambda: api.alerts(state="open"), lambda: api.heatmap(view))
        spend = spend_of(totals, gpu_series)
        periods, totals, savings = periods.row(0, named=True), totals.row(0, named=True), savings.row(0, named=True)
        trailing = view.end - timedelta(days=int(periods["forecast_days"]))
        gpu_days = infra_days(gpu_days)
    if not totals["calls"] and not periods["month_calls"]:
        layout.empty("No calls in this range.", "Push calls to `/v1/events`, import a gateway export "
                     "(`llmledger import …`), or start with `llmledger up --demo`.")
        st.stop()

    def gpus_since(start) -> Decimal:  # noqa: ANN001 - a datetime
        part = gpu_days.filter(pl.col("bucket") >= start)["value"]
        return Decimal(str(part.sum())) if part.len() else Decimal(0)

    days_left = (periods["month_end"] - view.end).total_seconds() / 86_400
    gpu_rate = gpus_since(trailing.replace(hour=0, minute=0, second=0, microsecond=0)) / Decimal(
        max(1, int(periods["forecast_days"])))
    by_period = {
        "Spend today (UTC)": (Spend(periods["today_usd"] or Decimal(0), gpus_since(today)), periods["today_calls"]),
        "This week": (Spend(periods["week_usd"] or Decimal(0), gpus_since(week_start)), periods["week_calls"]),
        "Month to date": (Spend(periods["month_usd"] or Decimal(0), gpus_since(periods["month_start"])),
                          periods["month_calls"]),
    }
    row = st.columns(4)
    for where, (title, (amount, calls)) in zip(row, by_period.items(), strict=False):
        layout.metric(where, title, fmt.money(amount.total_usd), f"{split(amount)} · {fmt.compact(calls)} calls")
    forecast = Spend(periods["forecast_usd"] or Decimal(0),
                     by_period["Month to date"][0].infra_usd + gpu_rate * Decimal(str(round(days_left, 4))))
    layout.metric(row[3], "Month-end forecast", fmt.money(forecast.total_usd), split(forecast),
                  help=f"Month to date plus the last {periods['forecast_days']} days' daily rate (API and GPU time) "
                       "× the days left.")

    calls = int(totals["calls"] or 0)
    errors = int(totals["errors"] or 0)
    row = st.columns(4)
    layout.metric(row[0], "Spend in range", fmt.money(spend.total_usd), split(spend),
                  help="API calls are priced per token; self-hosted GPU time is GPU-hours × $/GPU-hour (idle time "
                       "included), attributed to users, routes, … by tokens on the Attribution page.")
    layout.metric(row[1], "Calls in range", fmt.count(calls),
                  f"{fmt.money(spend.total_usd / calls) if calls else fmt.MISSING} per call, GPUs included")
    layout.metric(row[2], "Cache savings in range", fmt.money(savings["net_saved_usd"]),
                  f"{fmt.money(savings['saved_usd'])} saved − {fmt.money(savings['write_premium_usd'])} write premium",
                  help="What cache reads cost less than the full input price, minus what cache writes cost more.")
    layout.metric(row[3], "Errors", fmt.percent(errors / calls) if calls else fmt.MISSING,
                  f"{fmt.count(errors)} of {fmt.count(calls)} calls")

    for f in finding.filter(pl.col("excess_usd") > 0).iter_rows(named=True) if finding.height else []:
        st.warning(
            f"**Self-hosted {f['model']}: GPUs {fmt.number(f['util_pct'])}% utilised.** "
            f"{fmt.money(f['usd_per_1m_output_as_run'])} per 1M output tokens as run vs "
            f"{fmt.money(f['api_usd_per_1m_output'])} on {f['api_provider']} / {f['api_model']}: the same tokens would "
            f"have cost {fmt.money(f['api_cost_usd'])} instead of {fmt.money(f['infra_cost_usd'])} of GPU time in this "
            "range. Fill the GPUs (route more traffic to them) or serve this model from the API.",
            icon=":material/memory:")
        layout.link("Self-hosted nodes: utilisation and break-even →", controls.link("nodes"))

    left, right = st.columns([3, 2])
    with left:
        if gpu_series.height:
            series = pl.concat([series.filter(pl.col("value").cast(pl.Float64) > 0),
                                gpu_series.group_by("bucket").agg(pl.col("infra_cost_usd").sum().alias("value"))
                                .select("bucket", pl.lit(GPUS).alias("key"), pl.col("value").cast(series["value"].dtype))])
        st.plotly_chart(figures.stacked_bars(series, title=f"Spend per {grain}: API by provider, and GPU time",
                                             y_title="USD"), key="spend_series")
    with right:
        daily = month_days
        month_gpus = gpu_days.filter(pl.col("bucket") >= periods["month_start"])
        if month_gpus.height:
            daily = pl.concat([daily.select("bucket", pl.col("value").cast(pl.Float64)),
                               month_gpus.select("bucket", pl.col("value").cast(pl.Float64))]).group_by("bucket").agg(
                pl.col("value").sum())
        st.plotly_chart(figures.cumulative_spend(daily, month_start=periods["month_start"],
                                                 month_end=periods["month_end"],
                                                 forecast_usd=float(forecast.total_usd)), key="month")
        if budgets.is_empty():
            layout.empty("No budgets configured.", "Add monthly budgets per team or project, e.g. "
                         "`[[signals.budgets]]` with `team = \"data\"` and `monthly_usd = \"1500\"`.")
        else:
            st.plotly_chart(figures.budget_bars(budgets), key="budgets")
            st.caption("Budgets count API spend (what the budget alerts watch).")

    left, right = st.columns(2)
    with left:
        st.subheader("Top movers")
        by, period = st.columns(2)
        with by:
            dimension = controls.choice("movers", controls.DIMENSIONS, "route", title="By")
        with period:
            days = controls.choice("movers_days", list(MOVER_PERIODS), "7", title="Last … vs the one before",
                                   format_func=MOVER_PERIODS.get)
        recent = View(max(view.start, view.end - timedelta(days=int(days))), view.end, view.filters)
        with st.spinner("Loading movers…"):
            moved = api.movers(recent, dimension, n=8)
        if moved.is_empty():
            st.caption("nothing moved")
        else:
            st.plotly_chart(figures.movers(moved, dimension=controls.label(dimension)), key="movers")
            top = moved.sort("delta_usd", descending=True).row(0, named=True)
            layout.link(f"The calls of {controls.label(dimension)} {top['key']} →",
                        controls.link("calls", start=recent.start, end=recent.end,
                                      where=[*view.filters, f"{dimension}:{top['key']}"]))
    with right:
        st.subheader("Open alerts")
        engine, _, open_alerts = alerts
        if not engine:
            layout.empty("No alert engine configured.", "Signals (cache collapse, latency tail, spend spikes, "
                         "budgets, …) open incidents here once the signal engine evaluates them.")
        elif open_alerts.is_empty():
            st.success("No open alerts.", icon=":material/check_circle:")
        else:
            shown = open_alerts.with_columns(
                pl.Series("url", controls.drill_urls(open_alerts["incident_id"].to_list(), "alerts", param="incident")))
            tables.show_table(shown.select("severity", "signal", "summary", "opened_at", "cause", "url"),
                              links={"summary": "url"}, key="open_alerts")
        layout.link("Every incident of this range →", controls.link("alerts"))

    st.plotly_chart(figures.heatmap(cells), key="heatmap")
    layout.link("The calls of this range →", controls.link("calls"))
