"""Attribution: cost (API calls + the self-hosted GPU time each value made the nodes do) and tokens
by any dimension, ranked by total, stacked over time, drill-down by clicking a bar (it becomes a
filter and the breakdown moves to the next dimension) or a value in the table (its calls), a
table with CSV export, and per-call input / output token distributions per route or model.
Everything is in the URL."""

from __future__ import annotations

import polars as pl
import streamlit as st

from common import formatting as fmt
from dashboards import controls, figures, layout, tables
from dashboards.client import IDLE

MEASURES = {"cost_usd": "cost", "input_tokens": "input tokens", "output_tokens": "output tokens", "calls": "calls"}

api = layout.api_for("attribution")
view = controls.view(api)
st.title("Attribution")

left, middle, right = st.columns([5, 3, 2])
with left:
    dimension = controls.choice("dim", controls.DIMENSIONS, "team", title="Break down by", horizontal=True)
with middle:
    measure = controls.choice("measure", list(MEASURES), "cost_usd", title="Measure", horizontal=True,
                              format_func=MEASURES.get)
with right:
    grain = controls.choice("grain", ["auto", "hour", "day", "week"], "auto", title="Resolution")
grain = controls.bar_grain(view) if grain == "auto" else grain
money = measure == "cost_usd"
name = controls.label(dimension)

with layout.guard(api):
    with st.spinner(f"Loading {MEASURES[measure]} by {name}…"):
        usage, infra, series = api.together(
            lambda: api.usage(view, dimension, limit=100), lambda: api.infra(view, dimension),
            lambda: api.timeseries(view, grain=grain, measure=measure, dimension=dimension, top=8))
    if usage.is_empty():
        layout.empty(f"No calls in this range{' with these filters' if view.filters else ''}.",
                     "Widen the time range or remove a filter in the sidebar.")
        st.stop()

    served = infra.filter(pl.col("key") != IDLE) if infra.height else infra
    idle = infra.filter(pl.col("key") == IDLE)["infra_cost_usd"].sum() if infra.height else 0
    api_cost, gpu_cost = usage["cost_usd"].sum(), served["infra_cost_usd"].sum() if served.height else 0
    st.caption(f"{fmt.count(usage['calls'].sum())} calls · {fmt.money(api_cost + gpu_cost + idle)} in all: "
               f"{fmt.money(api_cost)} API + {fmt.money(gpu_cost)} GPU time attributed by tokens"
               + (f" + {fmt.money(idle)} of node-hours that served no call" if idle else "")
               + f" · {fmt.compact(usage['input_tokens'].sum())} input / {fmt.compact(usage['output_tokens'].sum())} "
               f"output tokens across {fmt.count(usage.height)} {name} values. Click a bar to drill down.")
    if gpu_cost:
        st.caption("Self-hosted GPU time is GPU-hours × $/GPU-hour per node-hour, split over the calls each node served "
                   "in that hour by their tokens; at low GPU utilisation most of it is capacity nobody used — see "
                   "Self-hosted nodes.")

    by_value = usage.join(served.select("key", "infra_cost_usd"), on="key", how="left") if served.height else \
        usage.with_columns(pl.lit(None, pl.Decimal(38, 18)).alias("infra_cost_usd"))
    left, right = st.columns([2, 3])
    with left:
        chart_key = f"bars_{dimension}_{measure}_{'|'.join(view.filters)}"
        title = (f"Cost by {name}: API and self-hosted GPU time" if money and served.height
                 else f"{MEASURES[measure].capitalize()} by {name}")
        event = st.plotly_chart(figures.bars_by(by_value, value=measure, dimension=name, money=money, title=title,
                                                infra="infra_cost_usd" if money and served.height else None),
                                key=chart_key, on_select="rerun", selection_mode="points")
        points = event.selection.points if event else []
        if points:
            picked = points[0].get("customdata") or points[0].get("y")
            if picked is not None and not str(picked).startswith(figures.OTHERS) and controls.drill(dimension, str(picked)):
                st.rerun()
    with right:
        st.plotly_chart(figures.stacked_bars(series, title=f"{MEASURES[measure].capitalize()} (API calls) per {grain} "
                                             f"by {name}, top 8 and other", y_title=MEASURES[measure], money=money),
                        key="series")

    table = by_value.with_columns(
        (pl.col("cost_usd") + pl.col("infra_cost_usd").fill_null(0)).alias("total_usd"),
        pl.Series("url", controls.drill_urls(by_value["key"].to_list(), "calls", dimension=dimension))
    ).sort("total_usd", descending=True).rename({"key": dimension})
    columns = [dimension, "calls", "total_usd", "cost_usd", "infra_cost_usd", "input_cost_usd", "cache_read_cost_usd",
               "cache_write_cost_usd", "output_cost_usd", "tool_cost_usd", "input_tokens", "cache_read_tokens",
               "cache_write_tokens", "output_tokens", "reasoning_tokens", "errors", "unpriced_calls", "url"]
    if not served.height:
        columns.remove("infra_cost_usd")
    tables.show_table(table.select(columns), links={dimension: "url"}, titles={dimension: name}, key="usage_table",
                      height=360)
    st.caption(f"Click a {name} for its calls.")
    left, right = st.columns([1, 3])
    left.download_button("Download CSV", tables.csv_bytes(table.drop("url")), file_name=f"llmledger-{dimension}.csv",
                         mime="text/csv", key="csv")
    layout.link("All calls of these filters →", controls.link("calls"), where=right)

    st.subheader("Tokens per call")
    per = controls.choice("dist", ["route", "model"], "route", title="Distribution per", horizontal=True)
    with st.spinner("Loading token distributions…"):
        inputs, outputs, bins = api.together(
            lambda: api.distribution(view, measure="input_tokens", dimension=per),
            lambda: api.distribution(view, measure="output_tokens", dimension=per),
            lambda: api.histogram(view, measure="input_tokens", dimension=per))
        left, right = st.columns(2)
        busiest: list[str] = []
        for column, token, quantiles in ((left, "input_tokens", inputs), (right, "output_tokens", outputs)):
            busiest = busiest or quantiles["key"].head(6).to_list() if not quantiles.is_empty() else busiest
            with column:
                if quantiles.is_empty():
                    st.caption("no calls")
                    continue
                st.plotly_chart(figures.token_boxes(quantiles, title=f"{token.replace('_', ' ').capitalize()} per call "
                                                    f"by {per} (p5–p99, median, max ×)"), key=f"box_{token}")
        st.plotly_chart(figures.token_histogram(bins.filter(bins["key"].is_in(busiest)),
                                                title=f"Input tokens per call: the busiest {per}s, one panel each"),
                        key="histogram")
