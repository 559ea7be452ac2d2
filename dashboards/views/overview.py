"""Overview: spend today / this week / month to date with the month-end forecast and budgets, calls,
cost per call, cache savings, spend over time, top movers, open alerts and when the money goes."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from dashboards import controls, figures, layout
from dashboards import formatting as fmt
from dashboards.client import View

MOVER_PERIODS = {"1": "day", "7": "7 days", "30": "30 days"}

api = layout.api_for("overview")
view = controls.view(api)
st.title("Overview")

with layout.guard(api):
    with st.spinner("Loading spend…"):
        periods = api.spend(view).row(0, named=True)
        totals = api.totals(view).row(0, named=True)
        savings = api.cache_savings(view).row(0, named=True)
        infra = api.infra(view, "project")
    if not totals["calls"] and not periods["month_calls"]:
        layout.empty("No calls in this range.", "Push calls to `/v1/events`, import a gateway export "
                     "(`llmledger import …`), or start with `llmledger up --demo`.")
        st.stop()

    row = st.columns(4)
    layout.metric(row[0], "Spend today (UTC)", fmt.money(periods["today_usd"]), f"{fmt.count(periods['today_calls'])} calls")
    layout.metric(row[1], "This week", fmt.money(periods["week_usd"]), f"{fmt.count(periods['week_calls'])} calls")
    layout.metric(row[2], "Month to date", fmt.money(periods["month_usd"]), f"{fmt.count(periods['month_calls'])} calls")
    layout.metric(row[3], "Month-end forecast", fmt.money(periods["forecast_usd"]),
                  help=f"Month to date plus the last {periods['forecast_days']} days' daily rate × the days left.")
    calls = int(totals["calls"] or 0)
    row = st.columns(4)
    gpus = infra["infra_cost_usd"].sum() if not infra.is_empty() else 0
    layout.metric(row[0], "Calls in range", fmt.count(calls),
                  f"{fmt.money(totals['cost_usd'])} API" + (f" + {fmt.money(gpus)} self-hosted GPUs" if gpus else "")
                  + " spent",
                  help="API spend is priced per token; self-hosted GPU time (GPU-hours × $/GPU-hour) is attributed "
                       "to users, routes, … by tokens on the Attribution page.")
    layout.metric(row[1], "Cost per call", fmt.money(totals["cost_usd"] / calls) if calls else "—")
    layout.metric(row[2], "Cache savings in range", fmt.money(savings["net_saved_usd"]),
                  f"{fmt.money(savings['saved_usd'])} saved by reads − {fmt.money(savings['write_premium_usd'])} "
                  "write premium",
                  help="What cache reads cost less than the full input price, minus what cache writes cost more.")
    layout.metric(row[3], "Errors", fmt.percent((totals["errors"] or 0) / calls) if calls else "—",
                  f"{fmt.count(totals['unpriced_calls'])} unpriced calls")

    grain = controls.bar_grain(view)
    left, right = st.columns([3, 2])
    with left, st.spinner("Loading spend over time…"):
        series = api.timeseries(view, grain=grain, dimension="provider", top=8)
        st.plotly_chart(figures.stacked_bars(series, title=f"Spend per {grain} by provider", y_title="USD"),
                        key="spend_series")
    with right, st.spinner("Loading the month…"):
        month = View(periods["month_start"], view.end, view.filters)
        daily = api.timeseries(month, grain="day")
        budgets = api.budgets(view)
        st.plotly_chart(figures.cumulative_spend(daily, month_start=periods["month_start"],
                                                 month_end=periods["month_end"],
                                                 forecast_usd=float(periods["forecast_usd"])), key="month")
        if budgets.is_empty():
            layout.empty("No budgets configured.", "Add monthly budgets per team or project, e.g. "
                         "`[[signals.budgets]]` with `team = \"data\"` and `monthly_usd = \"1500\"`.")
        else:
            st.plotly_chart(figures.budget_bars(budgets), key="budgets")

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
    with right:
        st.subheader("Open alerts")
        with st.spinner("Loading alerts…"):
            engine, _, open_alerts = api.alerts(state="open")
        if not engine:
            layout.empty("No alert engine configured.", "Signals (cache collapse, latency tail, spend spikes, "
                         "budgets, …) open incidents here once the signal engine evaluates them.")
        elif open_alerts.is_empty():
            st.success("No open alerts.", icon=":material/check_circle:")
        else:
            layout.show_table(open_alerts.select([c for c in ("severity", "signal", "summary", "opened_at", "cause")
                                                  if c in open_alerts.columns]), key="open_alerts")

    with st.spinner("Loading the heatmap…"):
        st.plotly_chart(figures.heatmap(api.heatmap(view)), key="heatmap")
