"""API vs self-hosting at a call volume, from measured traffic and measured throughput (the brief's
formulas, design.md §4): API = calls × (input × p_in + output × p_out); self-hosted GPU-hours =
calls × output tokens ÷ (tokens/s per GPU × 3600), rounded up to whole nodes running all month
(at least `min_nodes`), × $/GPU-hour. Chart arithmetic in floats; inputs arrive as Decimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import polars as pl

HOURS_PER_MONTH = 730.0


@dataclass(frozen=True)
class Workload:
    """Measured traffic: calls a month and tokens per call."""

    calls_per_month: float
    input_tokens_per_call: float
    output_tokens_per_call: float


@dataclass(frozen=True)
class ApiPrice:
    """USD per million tokens of the API model compared against."""

    input_mtok: Decimal
    output_mtok: Decimal

    def per_call(self, work: Workload) -> float:
        return (work.input_tokens_per_call * float(self.input_mtok)
                + work.output_tokens_per_call * float(self.output_mtok)) / 1e6


@dataclass(frozen=True)
class SelfHost:
    """What a node costs and does: $/GPU-hour, generated tokens/s per GPU, GPUs per node."""

    usd_per_gpu_hour: Decimal
    tokens_per_s_per_gpu: float
    gpus_per_node: int = 1
    min_nodes: int = 1


def self_hosted_monthly(calls: np.ndarray, work: Workload, host: SelfHost) -> np.ndarray:
    """Monthly self-hosted cost at each call volume (whole nodes, all month)."""
    gpu_hours = calls * work.output_tokens_per_call / (max(host.tokens_per_s_per_gpu, 1e-9) * 3600.0)
    nodes = np.maximum(host.min_nodes, np.ceil(gpu_hours / (HOURS_PER_MONTH * host.gpus_per_node)))
    return nodes * host.gpus_per_node * HOURS_PER_MONTH * float(host.usd_per_gpu_hour)


def curve(work: Workload, price: ApiPrice, host: SelfHost, *, low: float = 1e4, high: float = 1e9,
          points: int = 200) -> pl.DataFrame:
    """Columns calls, api_usd, self_hosted_usd over log-spaced monthly call volumes."""
    calls = np.logspace(np.log10(low), np.log10(high), points)
    return pl.DataFrame({"calls": calls, "api_usd": calls * price.per_call(work),
                         "self_hosted_usd": self_hosted_monthly(calls, work, host)})


def crossing(work: Workload, price: ApiPrice, host: SelfHost, *, high: float = 1e10) -> float | None:
    """The smallest monthly call volume from which self-hosting costs no more than the API (None
    when it never does up to `high`): found on a fine log grid."""
    table = curve(work, price, host, low=1e3, high=high, points=4000)
    cheaper = table.filter(pl.col("self_hosted_usd") <= pl.col("api_usd"))
    return None if cheaper.is_empty() else float(cheaper["calls"][0])


def api_per_1m_output(price: ApiPrice, work: Workload) -> float:
    """What the API charges per 1M output tokens of this traffic, its input included."""
    return price.per_call(work) / max(work.output_tokens_per_call, 1e-9) * 1e6


def self_hosted_per_1m_output(host: SelfHost) -> float:
    """GPU cost per 1M generated tokens at the host's throughput: $/h ÷ (tokens/s × 3600) × 1M."""
    return float(host.usd_per_gpu_hour) / (max(host.tokens_per_s_per_gpu, 1e-9) * 3600.0) * 1e6
