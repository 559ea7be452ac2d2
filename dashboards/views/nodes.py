"""Self-hosted nodes: GPU utilisation, memory, power, KV cache, running / waiting requests and tokens/s
per node and model; cost per 1M tokens against the API price of comparable models; and the API vs
self-host break-even from measured traffic and measured throughput, with the GPU price as an input."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import streamlit as st

from dashboards import controls, economics, figures, layout
from dashboards import formatting as fmt
from dashboards.client import View

BASES = {"capacity": "estimated capacity (measured decode rate × requests the KV cache holds)",
         "peak": "measured peak (best 5-minute bucket)", "custom": "my own number"}

api = layout.api_for("nodes")
view = controls.view(api)
st.title("Self-hosted nodes")
step = controls.step_seconds(view)


def keyed(frame: pl.DataFrame, *parts: str) -> pl.DataFrame:
    """Add a `key` column joining `parts` (node, gpu, model) for one line per series."""
    return frame.with_columns(pl.concat_str([pl.col(p).cast(pl.String) for p in parts], separator=" / ").alias("key"))


with layout.guard(api):
    with st.spinner("Loading node metrics…"):
        gpu = api.nodes("gpu", view, step_s=step)
        load = api.nodes("load", view, step_s=step)
    if gpu.is_empty() and load.is_empty():
        layout.empty("No self-hosted node metrics in this range.",
                     "Point the `vllm` and `dcgm` collectors at your inference servers "
                     "(`[collectors.vllm]` / `[collectors.dcgm]` with `targets = [{ url = …, node = … }]`, the same "
                     "`node` name for a machine's vLLM and DCGM targets), or import `nvidia-smi` CSV.")
        st.stop()
    with st.spinner("Loading throughput and cost…"):
        throughput = api.nodes("throughput", view, step_s=step)
        cost = api.nodes("cost", view)
        inputs = api.nodes("breakeven", view)
        hosted = View(view.start, view.end, (*view.filters, "deployment:self_hosted"))
        traffic = api.usage(hosted, "model")

    row = st.columns(4)
    layout.metric(row[0], "Nodes / GPUs", f"{gpu['node'].n_unique()} / {gpu.select('node', 'gpu').unique().height}")
    layout.metric(row[1], "Mean GPU utilisation", f"{gpu['util_pct'].mean():.1f}%" if gpu.height else "—")
    infra = cost["infra_cost_usd"].sum() if cost.height else None
    layout.metric(row[2], "GPU cost in range", fmt.money(infra), help="GPU-hours observed × `collectors.gpu_prices`")
    tokens = (cost["prompt_tokens"].sum() + cost["generation_tokens"].sum()) if cost.height else 0
    layout.metric(row[3], "Self-hosted cost per 1M tokens", fmt.money(infra / Decimal(tokens) * Decimal(1_000_000))
                  if infra is not None and tokens else "—", f"{fmt.count(tokens)} tokens served")

    left, right = st.columns(2)
    with left:
        st.plotly_chart(figures.lines(keyed(gpu, "node", "gpu"), y="util_pct", title="GPU utilisation (%)",
                                      y_title="%"), key="util")
        st.plotly_chart(figures.lines(keyed(load, "node", "model"), y="kv_cache_usage_max", percent=True,
                                      title="KV-cache usage (max per bucket)", y_title="of the KV cache"), key="kv")
        st.plotly_chart(figures.lines(keyed(throughput, "node", "model"), y="generation_tokens_per_s",
                                      title="Generated tokens/s", y_title="tokens/s"), key="tps")
    with right:
        st.plotly_chart(figures.lines(keyed(gpu, "node", "gpu"), y="power_w", title="Power (W)", y_title="W"),
                        key="power")
        st.plotly_chart(figures.lines(keyed(gpu, "node", "gpu"), y="fb_used_share", percent=True, y_range=(0, 1.02),
                                      title="GPU memory used (vLLM preallocates its KV cache)", y_title="of memory"),
                        key="memory")
        running = keyed(load, "node", "model")
        fig = figures.lines(running, y="requests_running_max", title="Requests running (solid) and waiting (dotted), max",
                            y_title="requests")
        figures.lines(running, y="requests_waiting_max", title="", y_title="", dash="dot", suffix=" waiting", fig=fig)
        st.plotly_chart(fig, key="requests")

    st.header("API or self-hosted?")
    served = traffic.filter(pl.col("calls") > 0)
    if served.is_empty() or inputs.is_empty():
        layout.empty("No self-hosted calls in this range to compare.",
                     "Calls served by your nodes carry `deployment = self_hosted` and `node`.")
        st.stop()
    model = controls.choice("model", served["key"].to_list(), served["key"][0], title="Self-hosted model")
    mine = served.filter(pl.col("key") == model).row(0, named=True)
    days = (view.end - view.start).total_seconds() / 86_400
    work = economics.Workload(calls_per_month=mine["calls"] * 30.44 / days,
                              input_tokens_per_call=mine["input_tokens"] / mine["calls"],
                              output_tokens_per_call=mine["output_tokens"] / mine["calls"])
    measured = inputs.filter(pl.col("model") == model)
    family = "-".join(model.split("-")[:3])
    with st.spinner("Loading API prices…"):
        prices = api.price_list(like=family)
        if prices.is_empty():
            prices = api.price_list(models=["gpt-4o-mini", "gpt-4o", "claude-haiku-4-5", "gemini-2.5-flash"])
    labels = [f"{r['provider']} / {r['model']}" for r in prices.iter_rows(named=True)]
    left, right = st.columns([1, 2])
    with left:
        picked = st.selectbox("Compare with the API model", labels, key="api_model")
        price_row = prices.row(labels.index(picked), named=True)
        default_price = float(measured["usd_per_gpu_hour"].drop_nulls().mean() or 2.5)
        gpu_price = st.number_input("GPU price ($ per GPU-hour)", min_value=0.1, max_value=100.0,
                                    value=round(default_price, 2), step=0.25, key="gpu_price",
                                    help="H100: about $2–3/h on neo-clouds, $5–8/h at hyperscalers.")
        basis = st.radio("Throughput per GPU", list(BASES), format_func=BASES.get, key="basis")
        capacity = float(measured["capacity_tokens_per_s_per_gpu"].mean() or 0)
        peak = float(measured["peak_tokens_per_s_per_gpu"].mean() or 0)
        tps = {"capacity": capacity, "peak": peak}.get(basis) or st.number_input(
            "Generated tokens/s per GPU", min_value=1.0, value=max(capacity, 1.0), key="custom_tps")
        gpus = int(measured["gpus"].max() or 1)
        st.caption(f"Measured: {fmt.count(work.calls_per_month)} calls/month, {work.input_tokens_per_call:,.0f} in / "
                   f"{work.output_tokens_per_call:,.0f} out tokens per call; mean {measured['tokens_per_s_per_gpu'].mean():.2f}"
                   f", peak {peak:.1f}, capacity ≈ {capacity:,.0f} tokens/s per GPU; {gpus} GPUs per node.")
    price = economics.ApiPrice(price_row["input_mtok"], price_row["output_mtok"])
    host = economics.SelfHost(Decimal(str(gpu_price)), tps, gpus_per_node=gpus)
    crossing = economics.crossing(work, price, host)
    with right:
        low = min(1e4, max(work.calls_per_month / 3, 100.0))
        st.plotly_chart(figures.breakeven(economics.curve(work, price, host, low=low),
                                          current_calls=work.calls_per_month,
                                          crossing=crossing, api_label=f"API: {picked}"), key="breakeven")
    row = st.columns(4)
    layout.metric(row[0], "API, 1M output tokens", fmt.money(economics.api_per_1m_output(price, work)),
                  "this traffic's input included")
    self_measured = measured["cost_per_1m_output_tokens_usd"].drop_nulls()
    layout.metric(row[1], "Self-hosted, 1M output as run", fmt.money(self_measured.mean()) if self_measured.len()
                  else "—", "GPU-hours observed ÷ tokens served")
    layout.metric(row[2], "Self-hosted, 1M output at full use", fmt.money(economics.self_hosted_per_1m_output(host)),
                  f"{tps:,.0f} tokens/s per GPU")
    layout.metric(row[3], "Break-even (calls / month)", fmt.count(crossing) if crossing else "> 10B",
                  f"you: {fmt.count(work.calls_per_month)}")
    with st.expander("Per node"):
        layout.show_table(cost, key="node_cost")
