"""Latency: end-to-end, TTFT, TPOT and queue p50 / p95 / p99 per model, route or provider against the
TTFT SLO (1 s on chat routes, 3 s elsewhere), and the mean-vs-p99 views where a hidden tail shows."""

from __future__ import annotations

from fnmatch import fnmatchcase

import polars as pl
import streamlit as st

from dashboards import controls, figures, layout, palette

CHAT_ROUTES = ("*chat*",)
SLO_CHAT_MS, SLO_OTHER_MS, TAIL_MS = 1_000, 3_000, 30_000

api = layout.api_for("latency")
view = controls.view(api)
st.title("Latency")
dimension = controls.choice("dim", ["route", "model", "provider"], "route", title="Per", horizontal=True)
name = controls.label(dimension)

with layout.guard(api):
    with st.spinner("Loading percentiles…"):
        pct = api.latency(view, dimension)
    if pct.is_empty():
        layout.empty("No successful calls in this range.", "Latency comes from `latency_ms`, `ttft_ms` and `queue_ms` "
                     "of calls with status ok.")
        st.stop()
    slo = pl.Series([SLO_CHAT_MS if dimension == "route" and any(fnmatchcase(str(k), g) for g in CHAT_ROUTES)
                     else SLO_OTHER_MS for k in pct["key"].to_list()], dtype=pl.Float64)
    table = pct.with_columns(slo.alias("ttft_slo_ms")).with_columns(
        (pl.col("ttft_p99_ms") > pl.col("ttft_slo_ms")).alias("ttft_p99_over_slo"),
        (pl.col("latency_p99_ms") >= TAIL_MS).alias("tail_over_30s"))
    columns = ["key", "calls", "latency_mean_ms", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_p50_ms",
               "ttft_p95_ms", "ttft_p99_ms", "ttft_slo_ms", "ttft_p99_over_slo", "tpot_p50_ms", "tpot_p99_ms",
               "queue_p50_ms", "queue_p99_ms", "tail_over_30s"]
    shown = table.select(columns).with_columns(pl.selectors.float().round(0)).rename({"key": dimension})
    st.dataframe(shown, hide_index=True, key="percentiles",
                 column_config={c: st.column_config.NumberColumn(c.replace("_ms", " (ms)"), format="%d")
                                for c in columns if c.endswith("_ms")})
    over = table.filter(pl.col("ttft_p99_over_slo") | pl.col("tail_over_30s"))
    if not over.is_empty():
        st.warning(f"{over.height} {name}(s) break a line over the whole range: "
                   + ", ".join(over["key"].cast(pl.String).to_list()), icon=":material/timer:")

    grain = controls.grain_for(view)
    with st.spinner("Loading latency over time…"):
        series = api.latency_series(view, grain=grain, dimension=dimension)
    busiest = pct.sort("calls", descending=True)["key"].head(6).to_list()
    tails = series.filter(pl.col("latency_p99_ms") >= TAIL_MS)["key"].unique().to_list()
    focus = series.filter(pl.col("key").is_in(list(dict.fromkeys([*busiest, *tails]))))
    left, right = st.columns(2)
    with left:
        fig = figures.lines(focus, y="latency_p99_ms", title=f"End-to-end p99 (solid) vs mean (dotted) per {grain}",
                            y_title="seconds (log)", scale=0.001, suffix=" p99", log_y=True,
                            thresholds=((TAIL_MS / 1000, "p99 30 s", palette.CRITICAL),))
        # means only for the lines whose tail broke 30 s (else the three busiest): the contrast is the point
        figures.lines(focus.filter(pl.col("key").is_in(tails or busiest[:3])), y="latency_mean_ms", title="",
                      y_title="", scale=0.001, dash="dot", suffix=" mean", fig=fig)
        st.plotly_chart(fig, key="tail_series")
    with right:
        st.plotly_chart(figures.mean_vs_p99(pct, dimension=name), key="mean_vs_p99")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(figures.lines(focus, y="ttft_p99_ms", title=f"Time to first token, p99 per {grain}",
                                      y_title="seconds (log)", scale=0.001, log_y=True,
                                      thresholds=((SLO_CHAT_MS / 1000, "chat SLO 1 s", palette.WARNING),
                                                  (SLO_OTHER_MS / 1000, "SLO 3 s", palette.CRITICAL))),
                        key="ttft_series")
    with right:
        queued = series.filter(pl.col("queue_p99_ms").is_not_null())
        if queued.is_empty():
            layout.empty("No queue times reported.", "Self-hosted servers and gateways can send `queue_ms` per call.")
        else:
            st.plotly_chart(figures.lines(queued, y="queue_p99_ms", title=f"Queue time p99 per {grain} (where known)",
                                          y_title="seconds", scale=0.001), key="queue_series")
