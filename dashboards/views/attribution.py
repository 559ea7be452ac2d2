"""Attribution: cost and tokens by any dimension, stacked over time, drill-down by clicking a bar
(it becomes a filter and the breakdown moves to the next dimension), a table with CSV export, and
per-call input / output token distributions per route or model. Everything is in the URL."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import controls, figures, layout
from dashboards import formatting as fmt

IDLE = "(idle capacity)"  # the infra row of GPU time that served no call (warehouse.queries.nodes.IDLE)
MEASURES = {"cost_usd": "cost", "input_tokens": "input tokens", "output_tokens": "output tokens", "calls": "calls"}

api = layout.api_for("attribution")
view = controls.view(api)
st.title("Attribution")

left, right = st.columns([3, 2])
with left:
    dimension = controls.choice("dim", controls.DIMENSIONS, "team", title="Break down by", horizontal=True)
with right:
    measure = controls.choice("measure", list(MEASURES), "cost_usd", title="Measure", horizontal=True,
                              format_func=MEASURES.get)
money = measure == "cost_usd"
name = controls.label(dimension)

with layout.guard(api):
    with st.spinner(f"Loading {MEASURES[measure]} by {name}…"):
        usage = api.usage(view, dimension, limit=100)
    if usage.is_empty():
        layout.empty(f"No calls in this range{' with these filters' if view.filters else ''}.",
                     "Widen the time range or remove a filter in the sidebar.")
        st.stop()

    with st.spinner("Loading self-hosted infra cost…"):
        infra = api.infra(view, dimension)
    total = usage["cost_usd"].sum()
    st.caption(f"{fmt.count(usage['calls'].sum())} calls · {fmt.money(total)} · "
               f"{fmt.count(usage['input_tokens'].sum())} input / {fmt.count(usage['output_tokens'].sum())} output "
               f"tokens across {usage.height} {name} values. Click a bar to drill down.")
    if not infra.is_empty():
        idle = infra.filter(pl.col("key") == IDLE)["infra_cost_usd"].sum()
        served = infra.filter(pl.col("key") != IDLE)["infra_cost_usd"].sum()
        st.caption(f"Self-hosted GPUs add {fmt.money(served)} attributed by the tokens each {name} made them serve"
                   + (f", plus {fmt.money(idle)} of idle capacity" if idle else "")
                   + " (GPU-hours × $/GPU-hour, per node-hour; the table's infra and total columns).")
    left, right = st.columns([2, 3])
    with left:
        chart_key = f"bars_{dimension}_{measure}_{'|'.join(view.filters)}"
        event = st.plotly_chart(figures.bars_by(usage, value=measure, dimension=name, money=money,
                                                title=f"{MEASURES[measure].capitalize()} by {name}"),
                                key=chart_key, on_select="rerun", selection_mode="points")
        points = event.selection.points if event else []
        if points:
            picked = points[0].get("customdata") or points[0].get("y")
            if picked is not None and controls.drill(dimension, str(picked)):
                st.rerun()
    with right, st.spinner("Loading the time series…"):
        grain = controls.choice("grain", ["auto", "hour", "day", "week"], "auto", title="Resolution",
                                horizontal=True)
        grain = controls.bar_grain(view) if grain == "auto" else grain
        series = api.timeseries(view, grain=grain, measure=measure, dimension=dimension, top=8)
        st.plotly_chart(figures.stacked_bars(series, title=f"{MEASURES[measure].capitalize()} per {grain} by {name}",
                                             y_title=MEASURES[measure], money=money), key="series")

    table = usage.rename({"key": dimension}).select(
        dimension, "calls", "cost_usd", "input_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd",
        "output_cost_usd", "tool_cost_usd", "input_tokens", "cache_read_tokens", "cache_write_tokens",
        "output_tokens", "reasoning_tokens", "errors", "unpriced_calls")
    if not infra.is_empty():
        table = table.join(infra.select(pl.col("key").alias(dimension), "infra_cost_usd"), on=dimension, how="left")
        table = table.with_columns((pl.col("cost_usd") + pl.col("infra_cost_usd").fill_null(0)).alias("total_usd"))
        first = [dimension, "calls", "cost_usd", "infra_cost_usd", "total_usd"]
        table = table.select(*first, *(c for c in table.columns if c not in first))
    layout.show_table(table, key="usage_table", height=320)
    st.download_button("Download CSV", layout.csv_bytes(table), file_name=f"llmledger-{dimension}.csv",
                       mime="text/csv", key="csv")

    st.subheader("Tokens per call")
    per = controls.choice("dist", ["route", "model"], "route", title="Distribution per", horizontal=True)
    with st.spinner("Loading token distributions…"):
        left, right = st.columns(2)
        busiest: list[str] = []
        for column, token in ((left, "input_tokens"), (right, "output_tokens")):
            quantiles = api.distribution(view, measure=token, dimension=per)
            busiest = busiest or quantiles["key"].head(6).to_list() if not quantiles.is_empty() else busiest
            with column:
                if quantiles.is_empty():
                    st.caption("no calls")
                    continue
                st.plotly_chart(figures.token_boxes(quantiles, title=f"{token.replace('_', ' ').capitalize()} per call "
                                                    f"by {per} (p5–p99, median, max ×)"), key=f"box_{token}")
        bins = api.histogram(view, measure="input_tokens", dimension=per)
        st.plotly_chart(figures.token_histogram(bins.filter(bins["key"].is_in(busiest)),
                                                title=f"Input tokens per call: histogram of the busiest {per}s"),
                        key="histogram")
