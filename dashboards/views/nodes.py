"""Self-hosted nodes: GPU utilisation, memory, power, KV cache, running / waiting requests and tokens/s
— one small panel per node, a line per GPU or model; what the GPU time cost and how much of it did
no work; cost per 1M output tokens as run against the API price of comparable models; and the API vs
self-host break-even from measured traffic and measured throughput, with the GPU price as an input
that every $ figure below it follows."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import streamlit as st

from common import formatting as fmt
from dashboards import controls, economics, figures, layout, tables
from dashboards.client import View

BASES = {"capacity": "estimated capacity (measured decode rate × requests the KV cache holds)",
         "peak": "measured peak (best 5-minute bucket)", "custom": "my own number"}

api = layout.api_for("nodes")
view = controls.view(api)
st.title("Self-hosted nodes")
step = controls.step_seconds(view)


def as_text(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """`columns` as strings (GPU indexes become panel / line names)."""
    return frame.with_columns(pl.col(c).cast(pl.String) for c in columns)


with layout.guard(api):
    with st.spinner("Loading node metrics…"):
        hosted = View(view.start, view.end, (*view.filters, "deployment:self_hosted"))
        gpu, load, throughput, cost, inputs, traffic = api.together(
            lambda: api.nodes("gpu", view, step_s=step), lambda: api.nodes("load", view, step_s=step),
            lambda: api.nodes("throughput", view, step_s=step), lambda: api.nodes("cost", view),
            lambda: api.nodes("breakeven", view), lambda: api.usage(hosted, "model"))
    if gpu.is_empty() and load.is_empty():
        layout.empty("No self-hosted node metrics in this range.",
                     "Point the `vllm` and `dcgm` collectors at your inference servers "
                     "(`[collectors.vllm]` / `[collectors.dcgm]` with `targets = [{ url = …, node = … }]`, the same "
                     "`node` name for a machine's vLLM and DCGM targets), or import `nvidia-smi` CSV.")
        st.stop()

    util = float(gpu["util_pct"].mean() or 0) if gpu.height else None
    infra = Decimal(str(cost["infra_cost_usd"].sum())) if cost.height and cost["infra_cost_usd"].null_count() < cost.height \
        else None
    row = st.columns(4)
    layout.metric(row[0], "Nodes / GPUs", f"{gpu['node'].n_unique()} / {gpu.select('node', 'gpu').unique().height}")
    layout.metric(row[1], "Mean GPU utilisation", f"{fmt.number(util)}%" if util is not None else fmt.MISSING,
                  "DCGM, over the range")
    layout.metric(row[2], "GPU cost in range", fmt.money(infra), "GPU-hours × $/GPU-hour",
                  help="GPU-hours observed × `collectors.gpu_prices`")
    idle = infra * Decimal(str(1 - util / 100)) if infra is not None and util is not None else None
    layout.metric(row[3], "GPU time that did no work", fmt.money(idle),
                  f"{fmt.number(100 - util)}% of the GPU cost" if util is not None else None,
                  help="GPU cost × (1 − mean utilisation): the capacity paid for and not used, whether or not a call "
                       "arrived in that hour.")

    gpus = as_text(gpu, "gpu")
    load_lines = as_text(load, "model")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(figures.small_multiples(gpus, columns=1, facet="node", series="gpu", y="util_pct", y_format=",.1f",
                                                title="GPU utilisation (%) per node, a line per GPU", y_title="%"),
                        key="util")
        st.plotly_chart(figures.small_multiples(load_lines, columns=1, facet="node", series="model", y="kv_cache_usage_max",
                                                percent=True, title="KV-cache usage (max per bucket)",
                                                y_title="of the KV cache"), key="kv")
        st.plotly_chart(figures.small_multiples(as_text(throughput, "model"), columns=1, facet="node", series="model",
                                                y="generation_tokens_per_s", y_format=",.2f",
                                                title="Generated tokens/s per node", y_title="tokens/s"), key="tps")
    with right:
        st.plotly_chart(figures.small_multiples(gpus, columns=1, facet="node", series="gpu", y="power_w", y_format=",.0f",
                                                title="Power (W) per node, a line per GPU", y_title="W"), key="power")
        st.plotly_chart(figures.small_multiples(gpus, columns=1, facet="node", series="gpu", y="fb_used_share", percent=True,
                                                y_range=(0, 1.02), title="GPU memory used (vLLM preallocates its KV "
                                                "cache)", y_title="of memory"), key="memory")
        st.plotly_chart(figures.small_multiples(load_lines, columns=1, facet="node", series="model", y="requests_running_max",
                                                extra=("requests_waiting_max", "waiting"), y_format=",.0f",
                                                title="Requests running and waiting (dotted), max per bucket",
                                                y_title="requests"), key="requests")

    st.header("API or self-hosted?")
    served = traffic.filter(pl.col("calls") > 0)
    if served.is_empty() or inputs.is_empty():
        layout.empty("No self-hosted calls in this range to compare.",
                     "Calls served by your nodes carry `deployment = self_hosted` and `node`.")
        st.stop()
    model = controls.choice("hosted", served["key"].to_list(), served["key"][0], title="Self-hosted model")
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
        per_gpu = int(measured["gpus"].max() or 1)
        st.caption(f"Measured: {fmt.compact(work.calls_per_month)} calls/month, {fmt.count(work.input_tokens_per_call)} "
                   f"in / {fmt.count(work.output_tokens_per_call)} out tokens per call; generated tokens/s per GPU: "
                   f"mean {fmt.number(measured['tokens_per_s_per_gpu'].mean(), places=2)}, peak {fmt.number(peak)}, "
                   f"capacity ≈ {fmt.count(capacity)}; {per_gpu} GPUs per node.")
    price = economics.ApiPrice(price_row["input_mtok"], price_row["output_mtok"])
    host = economics.SelfHost(Decimal(str(gpu_price)), tps, gpus_per_node=per_gpu)
    crossing = economics.crossing(work, price, host)
    with right:
        low = min(1e4, max(work.calls_per_month / 3, 100.0))
        st.plotly_chart(figures.breakeven(economics.curve(work, price, host, low=low),
                                          current_calls=work.calls_per_month,
                                          crossing=crossing, api_label=f"API: {picked}"), key="breakeven")
    # as run at the price in the box: the GPU-hours this model used × that price ÷ the tokens it generated
    ran = cost.filter(pl.col("model") == model)
    ran = ran.with_columns((pl.col("gpu_hours") * gpu_price).alias("at_price_usd"))
    generated = int(ran["generation_tokens"].sum() or 0)
    as_run = Decimal(str(ran["at_price_usd"].sum())) / generated * 1_000_000 if generated else None
    row = st.columns(4)
    layout.metric(row[0], "API, 1M output tokens", fmt.money(economics.api_per_1m_output(price, work)),
                  "this traffic's input included")
    layout.metric(row[1], "Self-hosted, 1M output as run", fmt.money(as_run),
                  f"at {fmt.money(gpu_price)} per GPU-hour")
    layout.metric(row[2], "Self-hosted, 1M output at full use", fmt.money(economics.self_hosted_per_1m_output(host)),
                  f"{fmt.count(tps)} tokens/s per GPU")
    layout.metric(row[3], "Break-even (calls / month)", fmt.compact(crossing) if crossing else "> 10B",
                  f"you: {fmt.compact(work.calls_per_month)}")
    with st.expander("Per node and model, at this GPU price"):
        per_node = cost.with_columns(
            (pl.col("gpu_hours") * gpu_price).cast(pl.Decimal(38, 18)).alias("at_price_usd"),
            pl.when(pl.col("generation_tokens") > 0).then(pl.col("gpu_hours") * gpu_price * 1e6 / pl.col("generation_tokens"))
            .cast(pl.Decimal(38, 18)).alias("at_price_per_1m_output_usd"))
        tables.show_table(per_node.select("node", "model", "gpus", "gpu_model", "util_pct", "gpu_hours",
                                          "usd_per_gpu_hour", "infra_cost_usd", "at_price_usd",
                                          "at_price_per_1m_output_usd", "prompt_tokens", "generation_tokens", "requests",
                                          "generation_tokens_per_s_per_gpu"),
                          kinds={"gpu_hours": "number", "generation_tokens_per_s_per_gpu": "number",
                                 "util_pct": "pct", "usd_per_gpu_hour": "money"},
                          titles={"usd_per_gpu_hour": "recorded $ per GPU-hour", "infra_cost_usd": "at the recorded price ($)",
                                  "at_price_usd": f"at {fmt.money(gpu_price)}/h ($)",
                                  "at_price_per_1m_output_usd": f"$ per 1M output at {fmt.money(gpu_price)}/h"},
                          key="node_cost")
    layout.link(f"The calls {model} served →", controls.link("calls", where=[*view.filters, f"model:{model}"]))
