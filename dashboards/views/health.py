"""Alerts and data health: open incidents and alert history with their cause and next step; dead
letters, unpriced models and collector freshness — what is silently failing in the data itself."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import controls, layout

INCIDENT_COLUMNS = ("severity", "state", "signal", "summary", "scope", "value", "threshold", "opened_at", "changed_at",
                    "resolved_at", "cause", "next_step")

api = layout.api_for("health")
view = controls.view(api)
st.title("Alerts & data health")

with layout.guard(api):
    st.header("Alerts")
    with st.spinner("Loading alerts…"):
        engine, _, open_alerts = api.alerts(state="open")
    if not engine:
        layout.empty("No alert engine configured.", "This llmledger evaluates no signals yet: incidents (cache "
                     "collapse, latency tail, stale routing, spend spikes, budgets, …) appear here, with their cause "
                     "and next step, once the signal engine runs.")
    else:
        if open_alerts.is_empty():
            st.success("No open alerts.", icon=":material/check_circle:")
        else:
            layout.show_table(open_alerts.select([c for c in INCIDENT_COLUMNS if c in open_alerts.columns]),
                              key="open_incidents")
        with st.spinner("Loading alert history…"):
            _, _, history = api.alerts(state="all", limit=500)
        history = history.filter(pl.col("changed_at") >= view.start) if "changed_at" in history.columns else history
        st.subheader("History in this range")
        if history.is_empty():
            st.caption("no incidents in this range")
        else:
            layout.show_table(history.select([c for c in INCIDENT_COLUMNS if c in history.columns]), key="history",
                              height=360)

    st.header("Data health")
    left, right = st.columns(2)
    with left:
        st.subheader("Unpriced models")
        with st.spinner("Loading unpriced models…"):
            unpriced = api.unpriced(view)
        gpu_priced = unpriced.filter(pl.col("deployment") == "self_hosted") if not unpriced.is_empty() else unpriced
        unpriced = unpriced.filter(pl.col("deployment") != "self_hosted") if not unpriced.is_empty() else unpriced
        if unpriced.is_empty():
            st.success("Every API call in this range found a price.", icon=":material/check_circle:")
        else:
            st.warning("Calls of these models are kept at $0 and flagged: add a price override "
                       "(`[[pricing.models]]` in llmledger.toml), then `llmledger reprice --since …`.", icon=":material/sell:")
            layout.show_table(unpriced.drop("deployment"), key="unpriced")
        if not gpu_priced.is_empty():
            st.info("Self-hosted models have no per-token price: their cost is the GPU time of their nodes "
                    "(`collectors.gpu_prices`), attributed by tokens on the Attribution and Self-hosted nodes "
                    f"pages. {', '.join(gpu_priced['model'].unique().sort().to_list())}: "
                    f"{gpu_priced['calls'].sum():,} calls.", icon=":material/dns:")
    with right:
        st.subheader("Dead letters")
        with st.spinner("Loading dead letters…"):
            counts = api.dead_letter_counts(view)
        if counts.is_empty():
            st.success("No record was refused in this range.", icon=":material/check_circle:")
        else:
            layout.show_table(counts, key="dead_letter_counts")
            with st.expander("Latest refused records"):
                layout.show_table(api.dead_letters(view, limit=50).drop("raw", strict=False), key="dead_letters")

    st.subheader("Collectors")
    with st.spinner("Loading collector status…"):
        status = api.collectors()
    if status.is_empty():
        layout.empty("No collector has run yet.", "Enable pull / scrape collectors in `[collectors.<name>]` "
                     "(OpenAI and Anthropic usage exports, vLLM, DCGM) and run `llmledger collect` or let the "
                     "service's scheduler run them; their last success, lag and last error show here.")
    else:
        stale = status.filter((pl.col("last_status") != "ok") | (pl.col("lag_s") > 2 * 3600))
        if not stale.is_empty():
            st.warning("Behind or failing: " + ", ".join(stale["collector"].to_list()), icon=":material/satellite_alt:")
        layout.show_table(status, key="collectors")
