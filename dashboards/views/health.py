"""Data health: what is silently failing in the data itself — unpriced models (kept at $0 and
flagged; each a link to its calls), dead letters per source and reason, collector freshness.
Alerts have their own page."""

from __future__ import annotations

import polars as pl
import streamlit as st

from common import formatting as fmt
from dashboards import controls, layout, tables

api = layout.api_for("health")
view = controls.view(api)
st.title("Data health")

with layout.guard(api):
    with st.spinner("Loading data health…"):
        unpriced, counts, status = api.together(lambda: api.unpriced(view), lambda: api.dead_letter_counts(view),
                                                api.collectors)
    left, right = st.columns(2)
    with left:
        st.subheader("Unpriced models")
        gpu_priced = unpriced.filter(pl.col("deployment") == "self_hosted") if not unpriced.is_empty() else unpriced
        unpriced = unpriced.filter(pl.col("deployment") != "self_hosted") if not unpriced.is_empty() else unpriced
        if unpriced.is_empty():
            st.success("Every API call in this range found a price.", icon=":material/check_circle:")
        else:
            st.warning("Calls of these models are kept at $0 and flagged: add a price override "
                       "(`[[pricing.models]]` in llmledger.toml), then `llmledger reprice --since …`.", icon=":material/sell:")
            shown = unpriced.drop("deployment").with_columns(
                pl.Series("url", controls.drill_urls(unpriced["model"].to_list(), "calls", dimension="model")))
            tables.show_table(shown, links={"model": "url"}, key="unpriced")
        if not gpu_priced.is_empty():
            st.info("Self-hosted models have no per-token price: their cost is the GPU time of their nodes "
                    "(`collectors.gpu_prices`), attributed by tokens on the Attribution and Self-hosted nodes "
                    f"pages. {', '.join(gpu_priced['model'].unique().sort().to_list())}: "
                    f"{fmt.count(gpu_priced['calls'].sum())} calls.", icon=":material/dns:")
    with right:
        st.subheader("Dead letters")
        if counts.is_empty():
            st.success("No record was refused in this range.", icon=":material/check_circle:")
        else:
            tables.show_table(counts, key="dead_letter_counts")
            with st.expander("Latest refused records"):
                tables.show_table(api.dead_letters(view, limit=50).drop("raw", strict=False), key="dead_letters")

    st.subheader("Collectors")
    if status.is_empty():
        layout.empty("No collector has run yet.", "Enable pull / scrape collectors in `[collectors.<name>]` "
                     "(OpenAI and Anthropic usage exports, vLLM, DCGM) and run `llmledger collect` or let the "
                     "service's scheduler run them; their last success, lag and last error show here.")
    else:
        stale = status.filter((pl.col("last_status") != "ok") | (pl.col("lag_s") > 2 * 3600))
        if not stale.is_empty():
            st.warning("Behind or failing: " + ", ".join(stale["collector"].to_list()), icon=":material/satellite_alt:")
        lagging = status.with_columns(pl.col("lag_s").cast(pl.Float64).mul(1000).alias("lag_ms")).drop("lag_s") \
            if "lag_s" in status.columns else status
        tables.show_table(lagging, kinds={"lag_ms": "seconds"}, titles={"lag_ms": "lag (s)"}, key="collectors")
    layout.link("Alerts and incidents →", controls.link("alerts"))
