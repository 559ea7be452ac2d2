"""Caching: hit-ratio windows per route and model against the 0.5 (warning) and 0.3 (critical) lines
with prompt-version changes marked, calls long enough to cache that were not cached, and what the
cache saved and what its absence cost."""

from __future__ import annotations

import polars as pl
import streamlit as st

from common import formatting as fmt
from dashboards import controls, figures, layout, palette, tables

MIN_CALLS, MIN_ELIGIBLE = 10, 10

api = layout.api_for("caching")
view = controls.view(api)
st.title("Prompt caching")
st.caption("Hit ratio: explicit caches (Anthropic) cache-read ÷ (cache-read + cache-write) tokens; automatic caches "
           "(OpenAI, Gemini) cached ÷ input tokens of calls long enough to cache. Calls long enough to cache: Anthropic "
           "Haiku ≥ 2048, Sonnet / Opus ≥ 1024, OpenAI ≥ 1024 input tokens.")

with layout.guard(api):
    grain = controls.grain_for(view)
    with st.spinner("Loading cache savings…"):
        total, windows, versions, savings = api.together(
            lambda: api.cache_savings(view), lambda: api.cache_windows(view, grain=grain, by=["route", "model"]),
            lambda: api.prompt_versions(view, by="route"), lambda: api.cache_savings(view, by=["route", "model"]))
        total = total.row(0, named=True)
    reads, writes = int(total["cache_read_tokens"] or 0), int(total["cache_write_tokens"] or 0)
    eligible, uncached = int(total["eligible_calls"] or 0), int(total["uncached_eligible_calls"] or 0)
    if reads + writes == 0 and eligible == 0:
        layout.empty("No prompt caching in this range.", "Calls report cache use in `cache_read_tokens` and "
                     "`cache_write_5m_tokens` / `cache_write_1h_tokens`; none did, and none was long enough to cache.")
        st.stop()
    hits, base = int(windows["cache_hit_tokens"].sum() or 0), int(windows["cache_base_tokens"].sum() or 0)
    row = st.columns(4)
    layout.metric(row[0], "Hit ratio", fmt.percent(hits / base) if base else fmt.MISSING,
                  f"{fmt.compact(reads)} read / {fmt.compact(writes)} written tokens")
    layout.metric(row[1], "Saved by the cache (net)", fmt.money(total["net_saved_usd"]),
                  f"{fmt.money(total['saved_usd'])} on reads − {fmt.money(total['write_premium_usd'])} write premium")
    layout.metric(row[2], "Missed: not cached", fmt.money(total["missed_usd"]), "upper bound",
                  help="Input of calls long enough to cache that neither read nor wrote the cache, priced at the "
                       "input price minus the cache-read price.")
    layout.metric(row[3], "Cacheable calls not cached", fmt.percent(uncached / eligible) if eligible else fmt.MISSING,
                  f"{fmt.count(uncached)} of {fmt.count(eligible)} calls")

    windows = windows.with_columns(pl.concat_str("route", pl.lit(" · "), "model").alias("key"))
    # buckets too small to judge (as the signals' volume guards) are left out of the lines
    touched = windows.filter(((pl.col("cache_read_tokens") + pl.col("cache_write_tokens")) > 0)
                             & (pl.col("calls") >= MIN_CALLS))
    ranked = touched.group_by("key").agg((pl.col("cache_read_tokens") + pl.col("cache_write_tokens")).sum().alias("t"),
                                         pl.col("hit_ratio").min().alias("low")).sort("t", descending=True)
    shown = set(ranked.head(6)["key"].to_list()) | set(ranked.filter(pl.col("low") < 0.5)["key"].to_list())
    markers = figures.prompt_markers(versions)
    st.plotly_chart(figures.lines(
        touched.filter(pl.col("key").is_in(list(shown))), y="hit_ratio", percent=True, y_range=(0, 1.05),
        title=f"Hit ratio per {grain} by route · model (prompt-version changes marked)", y_title="hit ratio",
        thresholds=((0.5, "warning 0.5", palette.WARNING), (0.3, "critical 0.3", palette.CRITICAL)),
        markers=markers), key="hit_ratio")
    st.caption(f"Shown: the six pairs with most cache traffic and every pair that fell below 0.5, in buckets of at "
               f"least {MIN_CALLS} calls. Dashed lines: prompt versions starting or ending (hover a label for all of "
               "them).")

    cacheable = windows.filter(pl.col("eligible_calls") >= MIN_ELIGIBLE)
    dipped = cacheable.group_by("key").agg(pl.col("not_applied_share").max().alias("high"),
                                           pl.col("eligible_calls").sum().alias("n")).sort("n", descending=True)
    keys = set(dipped.head(6)["key"].to_list()) | set(dipped.filter(pl.col("high") > 0.1)["key"].to_list())
    st.plotly_chart(figures.lines(
        cacheable.filter(pl.col("key").is_in(list(keys))), y="not_applied_share", percent=True,
        title=f"Calls long enough to cache that used no cache, per {grain}", y_title="share of cacheable calls",
        thresholds=((0.1, "10%", palette.WARNING),), markers=markers, y_range=(0, 1.05)), key="not_applied")

    st.subheader("Savings by route and model")
    urls = [controls.link("calls", where=[*view.filters, f"route:{r}", f"model:{m}"])
            for r, m in zip(savings["route"].to_list(), savings["model"].to_list(), strict=True)]
    tables.show_table(savings.with_columns(pl.Series("url", urls)).select(
        "route", "model", "cache_read_tokens", "saved_usd", "cache_write_tokens", "write_premium_usd", "net_saved_usd",
        "eligible_calls", "uncached_eligible_calls", "missed_usd", "url"), links={"route": "url"}, key="savings")
    st.caption("Click a route for the calls of that route and model.")
    if not versions.is_empty():
        with st.expander("Prompt versions in this range"):
            tables.show_table(versions.rename({"key": "route"}), key="versions")
