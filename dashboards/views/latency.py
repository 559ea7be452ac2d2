"""Latency: end-to-end, TTFT, TPOT and queue p50 / p95 / p99 per model, route or provider against the
TTFT SLO (1 s on chat routes, 3 s elsewhere), one small panel per route for the p99 against the
mean (where a hidden tail shows) and for TTFT, and the mean-vs-p99 map. Durations are seconds
everywhere (TPOT: ms per token); each value links to its slowest calls."""

from __future__ import annotations

from fnmatch import fnmatchcase

import polars as pl
import streamlit as st

from dashboards import controls, figures, layout, palette, tables

CHAT_ROUTES = ("*chat*",)
SLO_CHAT_MS, SLO_OTHER_MS, TAIL_MS = 1_000, 3_000, 30_000
PANELS = 6

api = layout.api_for("latency")
view = controls.view(api)
st.title("Latency")
dimension = controls.choice("dim", ["route", "model", "provider"], "route", title="Per", horizontal=True)
name = controls.label(dimension)

with layout.guard(api):
    grain = controls.grain_for(view)
    with st.spinner("Loading latency…"):
        pct, series = api.together(lambda: api.latency(view, dimension),
                                   lambda: api.latency_series(view, grain=grain, dimension=dimension))
    if pct.is_empty():
        layout.empty("No successful calls in this range.", "Latency comes from `latency_ms`, `ttft_ms` and `queue_ms` "
                     "of calls with status ok.")
        st.stop()
    slo = pl.Series([SLO_CHAT_MS if dimension == "route" and any(fnmatchcase(str(k), g) for g in CHAT_ROUTES)
                     else SLO_OTHER_MS for k in pct["key"].to_list()], dtype=pl.Float64)
    table = pct.with_columns(slo.alias("ttft_slo_ms")).with_columns(
        (pl.col("ttft_p99_ms") > pl.col("ttft_slo_ms")).alias("ttft_p99_over_slo"),
        (pl.col("latency_p99_ms") >= TAIL_MS).alias("tail_over_30s"),
        pl.Series("url", controls.drill_urls(pct["key"].to_list(), "calls", dimension=dimension, order="slowest")))
    columns = ["key", "calls", "latency_mean_ms", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_p50_ms",
               "ttft_p95_ms", "ttft_p99_ms", "ttft_slo_ms", "ttft_p99_over_slo", "tpot_p50_ms", "tpot_p99_ms",
               "queue_p50_ms", "queue_p99_ms", "tail_over_30s", "url"]
    tables.show_table(table.select(columns).sort("calls", descending=True), links={"key": "url"},
                      titles={"key": name, "ttft_p99_over_slo": "TTFT p99 over SLO", "tail_over_30s": "p99 ≥ 30 s"},
                      key="percentiles")
    st.caption(f"— : no call reported it (TTFT and TPOT need streamed calls; queue time comes from self-hosted "
               f"servers and gateways). Click a {name} for its slowest calls.")
    over = table.filter(pl.col("ttft_p99_over_slo").fill_null(False) | pl.col("tail_over_30s").fill_null(False))
    if not over.is_empty():
        st.warning(f"Over the whole range, {over.height} {name}(s) broke a line (TTFT p99 over its SLO, or an "
                   "end-to-end p99 of 30 s or more): " + ", ".join(over["key"].cast(pl.String).to_list()),
                   icon=":material/timer:")

    busiest = pct.sort("calls", descending=True)["key"].head(PANELS).to_list()
    tails = series.filter(pl.col("latency_p99_ms") >= TAIL_MS)["key"].unique().to_list()
    chosen = list(dict.fromkeys([*tails, *busiest]))[:PANELS]
    focus = series.filter(pl.col("key").is_in(chosen))
    left, right = st.columns(2)
    with left:
        st.plotly_chart(figures.small_multiples(
            focus, facet="key", y="latency_p99_ms", extra=("latency_mean_ms", "mean"), scale=0.001, log_y=True,
            title=f"End-to-end p99 and mean (dotted) per {grain}", y_title="seconds (log)",
            thresholds=((TAIL_MS / 1000, "p99 30 s", palette.CRITICAL),), y_format=",.2f"), key="tail_series")
    with right:
        st.plotly_chart(figures.mean_vs_p99(pct, dimension=name), key="mean_vs_p99")
        st.caption(f"Panels: the {name}s whose p99 reached 30 s, then the busiest; the map labels the five widest tails.")
    left, right = st.columns(2)
    with left:
        streamed = focus.filter(pl.col("ttft_p99_ms").is_not_null())
        if streamed.is_empty():
            layout.empty("No streamed calls among these.", "TTFT is reported by streamed calls (`ttft_ms`).")
        else:
            st.plotly_chart(figures.small_multiples(
                streamed, facet="key", y="ttft_p99_ms", scale=0.001, log_y=True, y_format=",.2f",
                title=f"Time to first token, p99 per {grain}", y_title="seconds (log)",
                thresholds=((SLO_CHAT_MS / 1000, "chat SLO 1 s", palette.WARNING),
                            (SLO_OTHER_MS / 1000, "SLO 3 s", palette.CRITICAL))), key="ttft_series")
    with right:
        queued = series.filter(pl.col("queue_p99_ms").is_not_null())
        if queued.is_empty():
            layout.empty("No queue times reported.", "Self-hosted servers and gateways can send `queue_ms` per call.")
        else:
            st.plotly_chart(figures.lines(queued, y="queue_p99_ms", title=f"Queue time p99 per {grain} (where known)",
                                          y_title="seconds", scale=0.001, y_format=",.2f"), key="queue_series")
