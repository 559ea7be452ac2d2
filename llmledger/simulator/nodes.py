"""Simulated self-hosted node metrics (vLLM `/metrics` and DCGM exporter samples) derived from the
simulated self-hosted calls, so GPU utilisation, KV cache, queues and throughput agree with them.

`node_samples(calls, start, end)` yields one `NodeSamples` per UTC day, in the shapes of the
`gpu_samples`, `inference_samples` and `inference_histograms` tables (what the vLLM and DCGM
collectors write): one vLLM scrape per node and model and one DCGM scrape per GPU every `step_s`.
Counters are cumulative from `start` (the servers start with the range); no prompt text anywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

GPUS_PER_NODE = 2  # Llama 3.1 70B in FP8, tensor-parallel over two H100s
GPU_MODEL = "NVIDIA H100 80GB HBM3"
FB_TOTAL_MIB = 81_559.0
FB_PREALLOCATED = 0.90  # vLLM's gpu_memory_utilization: weights + KV cache reserved at start
KV_CAPACITY_TOKENS = 230_000  # KV-cache tokens a node holds (~74 GB at 320 KiB per token)
SHARED_PREFIX_TOKENS = 1_800  # the route's system prompt: what vLLM's prefix cache keeps hitting
IDLE_W, MAX_W = 75.0, 700.0
ENGINE = "0"
# A subset of vLLM's default bucket edges (seconds); +inf is the count.
HISTOGRAM_EDGES: dict[str, tuple[float, ...]] = {
    "ttft_s": (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, np.inf),
    "e2e_s": (0.3, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, np.inf),
    "queue_s": (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, np.inf),
}
CALL_COLUMNS = ("ts", "project", "node", "model", "input_tokens", "output_tokens", "ttft_ms", "latency_ms",
                "queue_ms")


@dataclass(frozen=True)
class NodeSamples:
    """One day of samples, one frame per table."""

    gpu: pl.DataFrame
    inference: pl.DataFrame
    histograms: pl.DataFrame


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class _Events:
    """Sorted event times with running counts and sums: how many (and what weight) happened by t."""

    def __init__(self, times: np.ndarray, weights: np.ndarray | None = None) -> None:
        order = np.argsort(times, kind="stable")
        self.times = times[order].astype(np.float64)
        self.order = order
        self.cum_t = np.concatenate(([0.0], np.cumsum(self.times)))
        w = np.ones(len(times)) if weights is None else weights[order].astype(np.float64)
        self.cum_w = np.concatenate(([0.0], np.cumsum(w)))

    def count(self, t: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.times, t, side="right")

    def weight(self, t: np.ndarray) -> np.ndarray:
        return self.cum_w[self.count(t)]

    def time_integral(self, t: np.ndarray) -> np.ndarray:
        """Σ over events at or before t of (t − event time), in ms."""
        n = self.count(t)
        return t * n - self.cum_t[n]


def _server_series(calls: pl.DataFrame, t: np.ndarray, origin_ms: int, step_ms: int) -> dict[str, np.ndarray]:
    """Gauges, counters and histogram counts of one server (node, model) at scrape instants `t` (ms
    since `origin_ms`, the range start: small numbers keep the float sums exact)."""
    start = (calls["ts"].dt.epoch("ms").to_numpy() - origin_ms).astype(np.float64)
    queue = calls["queue_ms"].fill_null(0).to_numpy().astype(np.float64)
    latency = calls["latency_ms"].fill_null(calls["ttft_ms"]).fill_null(0).to_numpy().astype(np.float64)
    admit, end = start + queue, start + np.maximum(latency, queue)
    inputs = calls["input_tokens"].to_numpy().astype(np.float64)
    outputs = calls["output_tokens"].to_numpy().astype(np.float64)
    context = inputs + outputs
    started, admitted = _Events(start), _Events(admit, context)
    finished = _Events(end, context)
    prompt, generated = _Events(end, inputs), _Events(end, outputs)
    hits = _Events(end, np.minimum(inputs, SHARED_PREFIX_TOKENS))
    running = admitted.count(t) - finished.count(t)
    # time-integral of the running count → mean concurrency over each scrape interval
    busy = admitted.time_integral(t) - finished.time_integral(t)
    mean_running = np.diff(busy, prepend=0.0) / step_ms  # nothing runs before the range starts
    out = {
        "requests_running": running.astype(np.float64),
        "requests_waiting": (started.count(t) - admitted.count(t)).astype(np.float64),
        "kv_cache_usage": np.clip((admitted.weight(t) - finished.weight(t)) / KV_CAPACITY_TOKENS, 0.0, 1.0),
        "prompt_tokens_total": prompt.weight(t),
        "generation_tokens_total": generated.weight(t),
        "prefix_cache_queries_total": prompt.weight(t),
        "prefix_cache_hits_total": hits.weight(t),
        "requests_finished_total": finished.count(t).astype(np.float64),
        "preemptions_total": np.zeros(len(t)),
        "mean_running": np.clip(mean_running, 0.0, None),
    }
    values = {
        "ttft_s": calls["ttft_ms"].fill_null(0).to_numpy() / 1000.0,
        "e2e_s": latency / 1000.0,
        "queue_s": queue / 1000.0,
    }
    idx = finished.count(t)
    for metric, edges in HISTOGRAM_EDGES.items():
        v = values[metric][finished.order]
        cum_sum = np.concatenate(([0.0], np.cumsum(v)))
        out[f"{metric}:sum"] = cum_sum[idx]
        for le in edges:
            out[f"{metric}:{le}"] = np.concatenate(([0.0], np.cumsum(v <= le)))[idx]
    return out


def _gpu_frame(node: str, project: str, ts: pl.Series, mean_running: np.ndarray, step_s: int,
               rng: np.random.Generator) -> pl.DataFrame:
    """DCGM samples of the node's GPUs: busy while any request runs, SM activity rising with the batch."""
    n = len(ts)
    busy = 1.0 - np.exp(-mean_running)
    frames = []
    for gpu in range(GPUS_PER_NODE):
        util = np.clip(97.0 * busy + rng.uniform(0.0, 2.0, n), 0.0, 100.0)
        sm = np.clip(util / 100.0 * (0.35 + 0.45 * np.minimum(1.0, mean_running / 32.0)), 0.0, 1.0)
        power = IDLE_W + (MAX_W - IDLE_W) * (0.25 * util / 100.0 + 0.6 * sm) + rng.normal(0.0, 3.0, n)
        used = np.full(n, FB_TOTAL_MIB * FB_PREALLOCATED) + rng.normal(0.0, 40.0, n)
        uuid = hashlib.sha256(f"{node}:{gpu}".encode()).hexdigest()
        frames.append(pl.DataFrame({
            "project": project, "ts": ts, "node": node, "gpu": np.full(n, gpu, dtype=np.uint16),
            "gpu_instance": "", "gpu_uuid": f"GPU-{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:32]}",
            "gpu_model": GPU_MODEL, "hostname": node, "source": "simulator",
            "util_pct": np.round(util, 1), "sm_active": np.round(sm, 4), "gr_engine_active": np.round(util / 100, 4),
            "tensor_active": np.round(sm * 0.6, 4), "dram_active": np.round(sm * 0.8, 4),
            "mem_copy_util_pct": np.round(util * 0.3, 1), "fb_used_mib": np.round(used),
            "fb_free_mib": np.round(FB_TOTAL_MIB - used), "fb_total_mib": FB_TOTAL_MIB,
            "power_w": np.round(power, 1), "power_limit_w": MAX_W, "temp_c": np.round(30.0 + 0.07 * power, 0),
            "mem_temp_c": np.round(34.0 + 0.06 * power, 0), "sm_clock_mhz": np.where(util > 5, 1980.0, 345.0),
            "energy_mj": np.cumsum(power * step_s * 1000.0),
        }))
    return pl.concat(frames)


def node_samples(
    calls: pl.DataFrame, start: datetime, end: datetime, *, step_s: int = 60, histogram_every: int = 5,
    seed: int = 7,
) -> Iterator[NodeSamples]:
    """Samples every `step_s` in (start, end) of each (project, node, model) serving `calls` (canonical
    self-hosted calls: `CALL_COLUMNS`), one `NodeSamples` per UTC day in time order. Histogram
    buckets are kept from every `histogram_every`-th scrape only (they are cumulative, so quantiles
    over any range stay exact at that resolution, at a fifth of the rows)."""
    step_ms, origin = step_s * 1000, _ms(start)
    t = np.arange(step_ms, _ms(end) - origin, step_ms, dtype=np.float64)
    if calls.height == 0 or len(t) == 0:
        return
    ts = pl.Series("ts", t.astype(np.int64) + origin).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    gpu_parts, inference_parts, histogram_parts = [], [], []
    rng = np.random.default_rng(seed)
    for (project, node), per_node in sorted(calls.group_by("project", "node"), key=lambda g: g[0]):
        mean_running = np.zeros(len(t))
        for (model,), served in sorted(per_node.group_by("model"), key=lambda g: g[0]):
            series = _server_series(served, t, origin, step_ms)
            mean_running += series.pop("mean_running")
            base = {"project": project, "ts": ts, "node": node, "model": model, "engine": ENGINE}
            inference_parts.append(pl.DataFrame({**base, "source": "simulator", **{
                k: v for k, v in series.items() if ":" not in k}}))
            keep = slice(histogram_every - 1, None, histogram_every)
            sparse = {**base, "ts": ts[keep]}
            for metric, edges in HISTOGRAM_EDGES.items():
                for le in edges:
                    histogram_parts.append(pl.DataFrame({**sparse, "metric": metric, "le": le,
                                                         "count": series[f"{metric}:{le}"][keep],
                                                         "sum": series[f"{metric}:sum"][keep]}))
        gpu_parts.append(_gpu_frame(str(node), str(project), ts, mean_running, step_s, rng))
    gpu, inference, histograms = pl.concat(gpu_parts), pl.concat(inference_parts), pl.concat(histogram_parts)
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        nxt = day + timedelta(days=1)
        within = (pl.col("ts") >= day) & (pl.col("ts") < nxt)
        yield NodeSamples(gpu.filter(within), inference.filter(within), histograms.filter(within))
        day = nxt
