"""Reconciliation: the providers' bills (cost exports) against the calls llmledger logged — per
provider the capture rate (logged ÷ billed) and the invisible spend (billed, never logged: calls
made outside the gateway), and the days, API keys and models it sits in. Reads
`/v1/reconciliation/providers` and `/v1/reconciliation` only."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import polars as pl
import streamlit as st

from common import formatting as fmt
from dashboards import controls, layout, tables

DETAIL = ("day", "provider", "api_key_id", "model", "billed_usd", "logged_usd", "invisible_usd", "capture_rate",
          "provider_input_tokens", "logged_input_tokens", "logged_calls")

api = layout.api_for("reconciliation")
view = controls.view(None)
st.title("Reconciliation")
# bills come per UTC day: the whole days the range touches
first = datetime.combine(view.start.date(), time(0), tzinfo=UTC)
last = datetime.combine(view.end.date(), time(0), tzinfo=UTC)
end = last if last == view.end else last + timedelta(days=1)
days = {"start": first, "end": end}
st.caption(f"Provider bills {first:%Y-%m-%d} → {end:%Y-%m-%d} (UTC days) against the calls logged in them, "
           "compared per API key, model and day where the provider's cost export has them.")
if view.filters:
    st.caption("Filters do not apply here: a provider's bill is not split by team, route or user.")

with layout.guard(api):
    with st.spinner("Loading provider bills…"):
        providers = api.get("/v1/reconciliation/providers", **days)
    if providers.is_empty():
        layout.empty("No provider cost exports in this range.",
                     "Enable the OpenAI and Anthropic collectors (`[collectors.openai]`, `[collectors.anthropic]`, "
                     "admin keys in `OPENAI_ADMIN_KEY` / `ANTHROPIC_ADMIN_API_KEY`) and run `llmledger collect`: "
                     "their bills then show here beside the logged calls.")
        st.stop()
    columns = st.columns(len(providers))
    for where, row in zip(columns, providers.to_dicts(), strict=True):
        layout.metric(where, f"{row['provider']} capture", fmt.percent(row["capture_rate"]),
                      f"{fmt.money(row['logged_usd'])} logged of {fmt.money(row['billed_usd'])} billed",
                      help="Logged ÷ billed: the share of the provider's bill that llmledger saw as calls.")
    invisible_total = providers["invisible_usd"].sum()
    if invisible_total > 0:
        st.warning(f"{fmt.money(invisible_total)} billed that no logged call explains — calls made outside the "
                   "gateway, or logged without the provider's API key id (`api_key_id`).", icon=":material/visibility_off:")
    tables.show_table(providers.select("provider", "grain", "days", "billed_usd", "logged_usd", "invisible_usd",
                                       "capture_rate"), key="providers")

    with st.spinner("Loading days, keys and models…"):
        rows = api.get("/v1/reconciliation", **days)
    # '' means "not split by this" outside a row's grain, and "bill lines without one" within it
    rows = rows.with_columns(
        pl.when(pl.col("api_key_id") != "").then(pl.col("api_key_id"))
        .when(pl.col("grain").str.contains("api_key_id")).then(pl.lit("(none)")).otherwise(pl.lit("—")),
        pl.when(pl.col("model") != "").then(pl.col("model"))
        .when(pl.col("grain").str.contains("model")).then(pl.lit("(tools, other lines)")).otherwise(pl.lit("—")),
    )
    st.subheader("Invisible spend by day, key and model")
    unexplained = rows.filter(pl.col("invisible_usd") > 0).sort("invisible_usd", descending=True)
    if unexplained.is_empty():
        st.success("Every billed dollar is explained by logged calls.", icon=":material/check_circle:")
    else:
        tables.show_table(unexplained.select([c for c in DETAIL if c in rows.columns]),
                          key="invisible")
    with st.expander("Every row (billed and logged, tokens on both sides)"):
        tables.show_table(rows, key="rows", height=360)
        st.download_button("Download CSV", tables.csv_bytes(rows), file_name="reconciliation.csv", mime="text/csv")
