"""Collectors benchmark: a big LiteLLM spend-log import and a day of DCGM scrapes of 64 GPUs.

1. Writes (once, cached under bench/data/) a CSV `LiteLLM_SpendLogs` export of `--rows` rows in
   the shape Postgres' `\\copy … CSV HEADER` produces: metadata JSON with usage extras and
   spend_logs_metadata, OpenAI and Anthropic calls with cache and reasoning tokens, ~0.1% MCP tool
   calls and ~0.1% bad rows. Times `llmledger import litellm-spend-logs` (read, map, normalise,
   validate, price, dedup, write) into a fresh store, then the re-import (all duplicates).
2. Generates a day of 15-second DCGM exporter scrapes of 8 nodes × 8 GPUs (64 GPUs, 46,080
   scrape bodies, in the exporter's text format), and times parsing them with prometheus-client
   + mapping to rows, then writing them in hourly batches, and single-scrape writes as the
   scheduler does them. Then times the GPU queries over the day.

Usage: python -m bench.collectors [--rows 2000000] [--gpus-per-node 8] [--nodes 8] [--only spend|dcgm]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bench.report import record

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
OUT = ROOT / "bench" / "out"
START = datetime(2026, 10, 1, tzinfo=UTC)


def spend_logs_csv(rows: int, seed: int = 7) -> Path:
    """A LiteLLM_SpendLogs CSV export of `rows` rows (cached by size and seed)."""
    path = DATA / f"litellm-spend-logs-{rows}-{seed}.csv"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    anthropic = rng.random(rows) < 0.4
    prompt = rng.integers(200, 20_000, rows)
    reads = (prompt * rng.random(rows) * 0.8).astype(np.int64)
    writes = np.where(anthropic, (prompt - reads) // 3, 0)
    writes_1h = np.where(anthropic, writes // 4, 0)
    completion = rng.integers(20, 2_000, rows)
    reasoning = np.where(rng.random(rows) < 0.3, completion // 2, 0)
    start_ms = (START.timestamp() * 1000 + np.sort(rng.integers(0, 30 * 86_400_000, rows))).astype(np.int64)
    duration = rng.integers(200, 30_000, rows)
    ttft = (duration * rng.uniform(0.05, 0.5, rows)).astype(np.int64)
    frame = pl.DataFrame({
        "i": np.arange(rows), "anthropic": anthropic, "prompt": prompt, "reads": reads, "writes": writes,
        "writes_1h": writes_1h, "completion": completion, "reasoning": reasoning, "start": start_ms,
        "duration": duration, "ttft": ttft, "user": rng.integers(0, 5_000, rows), "team": rng.integers(0, 40, rows),
        "feature": rng.integers(0, 25, rows), "tool": rng.random(rows) < 0.1, "mcp": rng.random(rows) < 0.001,
        "bad": rng.random(rows) < 0.001,
    })
    ts = lambda ms: pl.from_epoch(ms, time_unit="ms").dt.strftime("%Y-%m-%d %H:%M:%S%.3f")  # noqa: E731
    provider = pl.when(pl.col("anthropic")).then(pl.lit("anthropic")).otherwise(pl.lit("openai"))
    model = pl.when(pl.col("anthropic")).then(pl.lit("claude-sonnet-4-5-20250929")).otherwise(pl.lit("gpt-4o-2024-08-06"))
    auv = pl.when(pl.col("anthropic")).then(pl.format(
        '{{"cache_read_input_tokens": {}, "cache_creation_input_tokens": {}, "prompt_tokens_details": {{"cached_tokens": {}, '
        '"cache_creation_tokens": {}, "cache_creation_token_details": {{"ephemeral_5m_input_tokens": {}, '
        '"ephemeral_1h_input_tokens": {}}}}}, "completion_tokens_details": {{"reasoning_tokens": {}}}}}',
        "reads", "writes", "reads", "writes", pl.col("writes") - pl.col("writes_1h"), "writes_1h", "reasoning",
    )).otherwise(pl.format(
        '{{"prompt_tokens_details": {{"cached_tokens": {}}}, "completion_tokens_details": {{"reasoning_tokens": {}}}}}',
        "reads", "reasoning"))
    slm = pl.when(pl.col("tool")).then(pl.format(
        '{{"feature": "f{}", "route": "/r{}", "tool_name": "web_search", "trace_id": "t{}", "parent_span_id": "s{}"}}',
        "feature", pl.col("feature") % 5, pl.col("i") // 4, pl.col("i") - 1,
    )).otherwise(pl.format('{{"feature": "f{}", "route": "/r{}", "trace_id": "t{}", "span_id": "s{}"}}',
                           "feature", pl.col("feature") % 5, pl.col("i") // 4, "i"))
    metadata = pl.format(
        '{{"user_api_key_alias": "key-{}", "user_api_key_team_id": "team-{}", "user_api_key_team_alias": "team {}", '
        '"status": "success", "spend_logs_metadata": {}, "additional_usage_values": {}}}',
        pl.col("team") % 7, "team", "team", slm, auv,
    )
    out = frame.select(
        pl.format("req-{}", "i").alias("request_id"),
        pl.when(pl.col("mcp")).then(pl.lit("call_mcp_tool")).otherwise(pl.lit("acompletion")).alias("call_type"),
        pl.format("hash{}", pl.col("team") % 7).alias("api_key"),
        ((pl.col("prompt") * 3 + pl.col("completion") * 15) / 1_000_000).round(8).cast(pl.String).alias("spend"),
        (pl.col("prompt") + pl.col("completion")).alias("total_tokens"),
        # LiteLLM's prompt_tokens include cache reads and writes; a few rows are unreadable on purpose
        pl.when(pl.col("bad")).then(pl.lit("n/a")).otherwise(pl.col("prompt").cast(pl.String)).alias("prompt_tokens"),
        pl.col("completion").alias("completion_tokens"),
        ts(pl.col("start")).alias("startTime"),
        ts(pl.col("start") + pl.col("duration")).alias("endTime"),
        pl.col("duration").alias("request_duration_ms"),
        ts(pl.col("start") + pl.col("ttft")).alias("completionStartTime"),
        pl.when(pl.col("mcp")).then(pl.lit("")).otherwise(model).alias("model"),
        pl.lit("").alias("model_id"),
        pl.when(pl.col("anthropic")).then(pl.lit("sonnet")).otherwise(pl.lit("gpt-4o")).alias("model_group"),
        provider.alias("custom_llm_provider"),
        pl.lit("").alias("api_base"),
        pl.format("internal-{}", pl.col("user") % 50).alias("user"),
        metadata.alias("metadata"),
        pl.lit("False").alias("cache_hit"),
        pl.lit("").alias("cache_key"),
        pl.lit("[]").alias("request_tags"),
        pl.format("team-{}", "team").alias("team_id"),
        pl.lit("").alias("organization_id"),
        pl.format("user-{}", "user").alias("end_user"),
        pl.lit("").alias("requester_ip_address"),
        pl.format("sess-{}", pl.col("i") // 8).alias("session_id"),
        pl.lit("success").alias("status"),
        pl.when(pl.col("mcp")).then(pl.lit("github/search_issues")).otherwise(pl.lit("")).alias("mcp_namespaced_tool_name"),
        pl.lit("").alias("agent_id"),
    )
    out.write_csv(path)
    return path


def bench_spend_logs(rows: int) -> dict[str, object]:
    from collectors.runner import run_collector
    from llmledger.runtime import open_warehouse
    from llmledger.settings import Settings

    path = spend_logs_csv(rows)
    store = OUT / "collectors-store"
    shutil.rmtree(store, ignore_errors=True)
    settings = Settings(home=OUT / "collectors-home", warehouse={"path": store, "database": "spend"})
    with open_warehouse(settings) as wh:
        began = time.perf_counter()
        first = run_collector("litellm-spend-logs", settings, wh, path=path)
        seconds = time.perf_counter() - began
        began = time.perf_counter()
        again = run_collector("litellm-spend-logs", settings, wh, path=path)
        again_seconds = time.perf_counter() - began
        stored = wh.scalar("SELECT count() FROM calls")
        tools = wh.scalar("SELECT count() FROM tool_runs")
    assert first.ok and again.ok, (first.error, again.error)
    return {
        "rows": rows, "file_mb": round(path.stat().st_size / 2**20), "seconds": round(seconds, 1),
        "rows_per_s": round(rows / seconds), "calls": stored, "tool_runs": tools, "dead": first.dead,
        "reimport_seconds": round(again_seconds, 1), "reimport_written": again.written,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


_DCGM_FIELDS = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ)."),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries."),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    ("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %)."),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer memory reserved (in MiB)."),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active."),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles the device memory interface is active."),
)


def dcgm_scrape(node: int, gpus: int, step: int, rng: np.random.Generator) -> str:
    """One DCGM exporter response of a node with `gpus` H100s (default counters, Hostname label)."""
    lines: list[str] = []
    util = rng.integers(0, 101, gpus)
    values = {
        "DCGM_FI_DEV_SM_CLOCK": [1980] * gpus, "DCGM_FI_DEV_MEM_CLOCK": [2619] * gpus,
        "DCGM_FI_DEV_MEMORY_TEMP": [45] * gpus, "DCGM_FI_DEV_GPU_TEMP": (40 + util // 3).tolist(),
        "DCGM_FI_DEV_POWER_USAGE": (100 + util * 6.0).round(3).tolist(),
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": [step * 9_000_000 + g for g in range(gpus)],
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": [0] * gpus, "DCGM_FI_DEV_GPU_UTIL": util.tolist(),
        "DCGM_FI_DEV_MEM_COPY_UTIL": (util // 2).tolist(), "DCGM_FI_DEV_ENC_UTIL": [0] * gpus,
        "DCGM_FI_DEV_DEC_UTIL": [0] * gpus, "DCGM_FI_DEV_XID_ERRORS": [0] * gpus,
        "DCGM_FI_DEV_FB_FREE": (81000 - util * 790).tolist(), "DCGM_FI_DEV_FB_USED": (util * 790).tolist(),
        "DCGM_FI_DEV_FB_RESERVED": [559] * gpus, "DCGM_FI_PROF_GR_ENGINE_ACTIVE": (util / 100).tolist(),
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": (util / 250).tolist(), "DCGM_FI_PROF_DRAM_ACTIVE": (util / 160).tolist(),
    }
    labels = [
        f'gpu="{g}",UUID="GPU-{node:04d}{g:04d}-0000-1111-2222-333344445555",pci_bus_id="00000000:{g + 16:02X}:00.0",'
        f'device="nvidia{g}",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node-{node}",DCGM_FI_DRIVER_VERSION="550.54.15"'
        for g in range(gpus)
    ]
    for name, kind, help_ in _DCGM_FIELDS:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{{{label}}} {value}" for label, value in zip(labels, values[name], strict=True))
    return "\n".join(lines) + "\n"


def bench_dcgm(nodes: int, gpus: int) -> dict[str, object]:
    from collectors.base import Output
    from collectors.config import GpuPrice
    from collectors.dcgm import parse_dcgm
    from ingest.node_metrics import SampleWriter, load_gpu_prices
    from llmledger.runtime import open_warehouse
    from llmledger.settings import Settings
    from warehouse.queries import nodes as node_queries
    from warehouse.queries.scope import Scope

    steps = 86_400 // 15
    rng = np.random.default_rng(11)
    began = time.perf_counter()
    bodies = [[dcgm_scrape(n, gpus, s, rng) for n in range(nodes)] for s in range(steps)]
    generate_s = time.perf_counter() - began
    text_mb = sum(len(b) for row in bodies for b in row) / 2**20
    store = OUT / "collectors-store"
    settings = Settings(home=OUT / "collectors-home", warehouse={"path": store, "database": "dcgm"})
    parse_s = write_s = 0.0
    rows = 0
    with open_warehouse(settings) as wh:
        writer = SampleWriter(wh)
        pending: list[pl.DataFrame] = []
        for s in range(steps):
            at = START + timedelta(seconds=15 * s)
            t0 = time.perf_counter()
            pending.extend(parse_dcgm(bodies[s][n], node=None, ts=at) for n in range(nodes))
            parse_s += time.perf_counter() - t0
            if len(pending) >= 240 * nodes or s == steps - 1:  # one hour of scrapes per write
                t0 = time.perf_counter()
                rows += writer.write(Output.GPU_SAMPLES, pl.concat(pending))
                write_s += time.perf_counter() - t0
                pending = []
        load_gpu_prices(wh, [GpuPrice(gpu_model="H100", usd_per_gpu_hour="2.50")])
        end = START + timedelta(days=1)
        timings = {}
        for label, call in (
            ("gpu_utilisation (1-min steps, 64 GPUs)", lambda: node_queries.gpu_utilisation(wh, Scope.all(), START, end)),
            ("gpu_cost (GPU-hours × price)", lambda: node_queries.gpu_cost(wh, Scope.all(), START, end)),
        ):
            call()
            t0 = time.perf_counter()
            for _ in range(5):
                result = call()
            timings[label] = (round((time.perf_counter() - t0) / 5 * 1000), result.height)
        cost = node_queries.gpu_cost(wh, Scope.all(), START, end)
        stored = wh.scalar("SELECT count() FROM gpu_samples")
        # the scheduler's shape: one insert per scrape of one node (after the queries: another node)
        single = []
        for s in range(100):
            frame = parse_dcgm(bodies[s][0], node="single-writes", ts=START + timedelta(seconds=15 * s))
            t0 = time.perf_counter()
            writer.write(Output.GPU_SAMPLES, frame)
            single.append(time.perf_counter() - t0)
    scrapes = steps * nodes
    return {
        "nodes": nodes, "gpus": nodes * gpus, "scrapes": scrapes, "text_mb": round(text_mb), "rows": rows,
        "stored": stored, "generate_s": round(generate_s, 1), "parse_s": round(parse_s, 1),
        "parse_ms_per_scrape": round(parse_s / scrapes * 1000, 2), "samples_per_s": round(scrapes * gpus * 18 / parse_s),
        "write_s": round(write_s, 1), "rows_per_s_written": round(rows / write_s),
        "single_write_ms_p50": round(float(np.percentile(single, 50)) * 1000, 1),
        "single_write_ms_p95": round(float(np.percentile(single, 95)) * 1000, 1),
        "queries": timings,
        "gpu_hours": round(float(cost["gpu_hours"].sum()), 2),
        "infra_cost_usd": str(sum(cost["infra_cost_usd"].to_list())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--only", choices=["spend", "dcgm"], help="Re-run one part, re-using the other's last result.")
    args = parser.parse_args()
    cache = {part: OUT / f"collectors-{part}.json" for part in ("spend", "dcgm")}
    results: dict[str, dict] = {}
    for part, run in (("spend", lambda: bench_spend_logs(args.rows)),
                      ("dcgm", lambda: bench_dcgm(args.nodes, args.gpus_per_node))):
        if args.only and args.only != part and cache[part].exists():  # re-use the other part's last run
            results[part] = json.loads(cache[part].read_text())
            continue
        shutil.rmtree(OUT / "collectors-store", ignore_errors=True)
        results[part] = run()
        cache[part].write_text(json.dumps(results[part], default=str))
        print(json.dumps(results[part], indent=2, default=str))
    spend, dcgm = results["spend"], results["dcgm"]
    results["load"] = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    queries = "\n".join(f"| `{label}` over the day | {ms} ms | {n:,} rows |" for label, (ms, n) in dcgm["queries"].items())
    body = f"""
**LiteLLM spend-log import** — a generated `LiteLLM_SpendLogs` CSV export ({spend['rows']:,} rows,
{spend['file_mb']} MiB; metadata JSON with usage extras, 40% Anthropic with cache writes, 0.1% MCP
tool calls, 0.1% unreadable rows) through `llmledger import litellm-spend-logs` (read, map,
normalise, validate, price, dedup, write), fresh embedded store:

| step | seconds | rows/s |
| --- | ---: | ---: |
| import | {spend['seconds']} | {spend['rows_per_s']:,} |
| re-import of the same file (all duplicates, {spend['reimport_written']} written) | {spend['reimport_seconds']} | |

Stored {spend['calls']:,} calls and {spend['tool_runs']:,} tool runs; {spend['dead']:,} rows dead-lettered;
peak RSS of the benchmark process {spend['peak_rss_mb']} MiB.

**A day of DCGM scrapes** — {dcgm['nodes']} nodes × {dcgm['gpus'] // dcgm['nodes']} H100s = {dcgm['gpus']} GPUs,
every 15 s: {dcgm['scrapes']:,} exporter responses ({dcgm['text_mb']} MiB of text, 18 default fields per GPU),
{dcgm['rows']:,} GPU sample rows.

| step | total | per unit |
| --- | ---: | ---: |
| parse (prometheus-client) + map to rows | {dcgm['parse_s']} s | {dcgm['parse_ms_per_scrape']} ms per node scrape; {dcgm['samples_per_s']:,} samples/s |
| write, hourly batches (dedup anti-join) | {dcgm['write_s']} s | {dcgm['rows_per_s_written']:,} rows/s |
| write, one insert per node scrape (the scheduler's shape) | | p50 {dcgm['single_write_ms_p50']} ms, p95 {dcgm['single_write_ms_p95']} ms |
{queries}

The day's samples add up to {dcgm['gpu_hours']} GPU-hours (64 GPUs × 5,759 intervals of 15 s); at $2.50/GPU-hour,
${float(dcgm['infra_cost_usd']):,.2f}. The machine was shared with other work while this ran (load average
{results.get('load', '?')}), so treat these as lower bounds on speed.
Scraping 8 nodes every 15 s costs about {dcgm['parse_ms_per_scrape'] * 8 + dcgm['single_write_ms_p50'] * 8:.0f} ms of
work per interval.
"""
    record("Collectors: LiteLLM spend-log import and a day of DCGM scrapes", body)


if __name__ == "__main__":
    main()
