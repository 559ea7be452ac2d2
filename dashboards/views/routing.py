"""Reasoning and routing: reasoning tokens per call by route and model with the single-call outliers
(runaway reasoning), and cascade routing — escalation rate per policy against the healthy 30–50%
band, the cost of each step, and the same requests all on the frontier model."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import polars as pl
import streamlit as st

from common import formatting as fmt
from dashboards import controls, figures, layout, palette, tables
from dashboards.client import ApiError, frame

MIN_REQUESTS = 20

api = layout.api_for("routing")
view = controls.view(api)
st.title("Reasoning & routing")

with layout.guard(api):
    st.header("Reasoning tokens")
    per = controls.choice("per", ["route", "model"], "route", title="Per", horizontal=True)
    grain = {"5min": "hour"}.get(controls.grain_for(view), controls.grain_for(view))  # enough requests per bucket
    with st.spinner("Loading reasoning and routing…"):
        quantiles, worst, series, steps, frontier, usage = api.together(
            lambda: api.distribution(view, measure="reasoning_tokens", dimension=per, nonzero=True),
            lambda: api.reasoning_outliers(view, n=25), lambda: api.cascade_series(view, grain=grain),
            lambda: api.cascade_steps(view), lambda: api.cascade_frontier(view), lambda: api.usage(view, "route"))
    if quantiles.is_empty():
        layout.empty("No call reported reasoning tokens in this range.",
                     "Reasoning models report them as `reasoning_tokens` (part of `output_tokens`).")
    else:
        left, right = st.columns(2)
        with left:
            st.plotly_chart(figures.token_boxes(quantiles, title=f"Reasoning tokens per call by {per} "
                                                "(calls that reasoned; p5–p99, max ×)"), key="reasoning_box")
        with right:
            st.plotly_chart(figures.outliers(worst), key="outliers")
        runaway = worst.filter(pl.col("reasoning_tokens") >= 100_000)
        if not runaway.is_empty():
            st.warning(f"{runaway.height} call(s) used ≥ 100,000 reasoning tokens, from {fmt.timestamp(runaway['ts'].min())} "
                       f"to {fmt.timestamp(runaway['ts'].max())} — set a reasoning budget (max reasoning / thinking "
                       f"tokens) on {', '.join(sorted(set(runaway['route'].to_list())))}.", icon=":material/psychology:")
        urls = [controls.link("calls", start=ts - timedelta(minutes=1), end=ts + timedelta(minutes=1),
                              where=[f"route:{route}"], order="costliest")
                for ts, route in zip(worst["ts"].to_list(), worst["route"].to_list(), strict=True)]
        tables.show_table(worst.with_columns(pl.Series("url", urls)).select(
            "ts", "route", "model", "user_id", "reasoning_tokens", "output_tokens", "route_p99", "times_p99", "cost_usd",
            "event_id", "url"), links={"event_id": "url"}, kinds={"route_p99": "count", "times_p99": "number"},
            key="outlier_table", height=260)

    st.header("Cascade routing")
    if series.is_empty():
        layout.empty("No cascade routing in this range.", "Calls of a cascade carry `routing_policy` and "
                     "`cascade_step` (0 = first model tried); escalations are steps ≥ 1.")
        st.stop()
    # a bucket with too few requests to judge is a gap in the line, not a point
    judged = series.rename({"routing_policy": "key"}).with_columns(
        pl.when(pl.col("step0_calls") >= MIN_REQUESTS).then("escalation_rate").alias("escalation_rate"))
    st.plotly_chart(figures.lines(judged, y="escalation_rate", percent=True,
                                  title=f"Escalation rate per {grain} and routing policy (buckets of ≥ {MIN_REQUESTS} requests)",
                                  y_title="escalated ÷ first-step calls", band=(0.3, 0.5),
                                  thresholds=((0.5, "warning 50%", palette.WARNING),
                                              (0.7, "critical 70%", palette.CRITICAL))), key="escalation")
    stale = judged.filter(pl.col("escalation_rate") >= 0.7)
    if not stale.is_empty():
        first = stale.sort("bucket").row(0, named=True)
        latest = judged.filter((pl.col("key") == first["key"]) & pl.col("escalation_rate").is_not_null()).sort("bucket")
        now = latest.row(latest.height - 1, named=True) if latest.height else first
        still = (now["escalation_rate"] or 0) >= 0.5
        text = (f"{first['key']} escalated {fmt.percent(first['escalation_rate'])} of requests from "
                f"{fmt.timestamp(first['bucket'])} (first-step model: {', '.join(first['step0_models'])}): a changed "
                "cheap model or stale router. ")
        if still:
            st.warning(text + f"Still {fmt.percent(now['escalation_rate'])} at {fmt.timestamp(now['bucket'])}: retrain "
                       "the router or roll the model back.", icon=":material/alt_route:")
        else:
            st.info(text + f"Back to {fmt.percent(now['escalation_rate'])} by {fmt.timestamp(now['bucket'])}.",
                    icon=":material/alt_route:")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(figures.stacked_steps(steps), key="steps")
    with right:
        st.plotly_chart(figures.frontier(frontier), key="frontier")
    tables.show_table(frontier.select("routing_policy", "requests", "calls", "actual_cost_usd", "frontier_model",
                                      "all_frontier_cost_usd", "saved_usd"),
                      titles={"saved_usd": "saved by the cascade ($)"}, key="frontier_table")
    tables.show_table(steps, key="steps_table")

    st.header("Threshold advice")
    routes = usage.filter(pl.col("key") != "")["key"].to_list()[:50]
    cascaded = [r for r in ("support-chat", "ticket-triage") if r in routes] + [r for r in routes
                                                                              if r not in ("support-chat", "ticket-triage")]
    route = st.selectbox("Route", cascaded, key="advice_route") if cascaded else None
    keep = st.slider("Keep on the cheap model (%)", 30, 95, 70, step=5, key="advice_percentile")
    if route:
        try:
            advice = api.routing_advice(view, route=route, percentile=keep)
        except ApiError as err:
            st.info(str(err))
        else:
            rec, cur = advice["recommended"], advice["current"]
            curve = frame(advice["curve"])
            st.plotly_chart(figures.threshold_curve(
                curve, recommended=rec["threshold"], current=cur["threshold"] if cur else None,
                title=f"{route}: threshold → escalation and monthly cost ({advice['source']}, "
                      f"{fmt.count(advice['requests_sampled'])} scores, {advice['cheap']} → {advice['frontier']})"),
                key="advice_curve")
            cols = st.columns(4)
            cols[0].metric("Recommended threshold", fmt.number(rec["threshold"], places=2))
            cols[1].metric("Escalation", fmt.percent(rec["escalation_rate"]))
            cols[2].metric("Monthly cost", fmt.money(Decimal(rec["monthly_cost_usd"])))
            cols[3].metric("Saving vs all frontier", fmt.percent(rec["saving_vs_frontier"]))
            if advice["classifier_advice"]:
                st.warning("Classifier routing: " + advice["classifier_advice"], icon=":material/call_split:")
            for warning in advice["warnings"]:
                st.warning(warning, icon=":material/warning:")
            bim = advice["bimodality"]
            st.caption(f"{bim['method']}: " + (f"dip {fmt.number(bim['dip'], places=4)}, p = {bim['p_value']:.3g}" if bim["tested"]
                                               else "not run (too few scores)")
                       + (f" · current threshold {fmt.number(cur['threshold'], places=2)}: {advice['current_source']}"
                          if cur else ""))
