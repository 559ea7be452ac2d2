"""The self-hosted finding: what each self-hosted model's GPUs cost and did over a range, beside what
the same tokens would have cost on the cheapest comparable API model. Shown on the dashboards'
overview and in the weekly report's savings, from one function so both say the same thing.

GPU cost and tokens served come from the node metrics (`nodes.self_host_cost`: GPU-hours × $/GPU-hour,
split over a node's models by tokens; vLLM's prompt and generation counters); the API price is
the catalogue's standard price of the cheapest model whose id contains the self-hosted model's
family (`llama-3.1-70b`), else of `FALLBACK_MODELS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import polars as pl

from warehouse.client import Warehouse
from warehouse.queries import nodes, ops
from warehouse.queries.scope import Scope

FALLBACK_MODELS = ("gpt-4o-mini", "gpt-4o", "claude-haiku-4-5", "gemini-2.5-flash")
MONEY = pl.Decimal(38, 18)
MILLION = Decimal(1_000_000)
SCHEMA = {"model": pl.String, "nodes": pl.UInt32, "gpus": pl.Int64, "util_pct": pl.Float64, "gpu_hours": pl.Float64,
          "infra_cost_usd": MONEY, "input_tokens": pl.Int64, "output_tokens": pl.Int64,
          "usd_per_1m_output_as_run": MONEY, "api_provider": pl.String, "api_model": pl.String,
          "api_usd_per_1m_output": MONEY, "api_cost_usd": MONEY, "excess_usd": MONEY}


def family(model: str) -> str:
    """The part of a model id that names its family: `llama-3.1-70b-instruct` → `llama-3.1-70b`."""
    return "-".join(model.split("-")[:3])


def _cheapest(wh: Warehouse, model: str, at: datetime, fallback: Sequence[str], tag: str) -> dict | None:
    prices = ops.price_list(wh, at=at, like=family(model), limit=20, tag=tag)
    prices = prices.filter(pl.col("model") != model) if prices.height else prices
    if prices.is_empty():
        prices = ops.price_list(wh, at=at, models=list(fallback), limit=20, tag=tag)
    return prices.row(0, named=True) if prices.height else None


def self_hosted_vs_api(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, fallback: Sequence[str] = FALLBACK_MODELS,
    tag: str = "nodes:finding",
) -> pl.DataFrame:
    """Per self-hosted model served in [start, end): nodes, GPUs, mean GPU utilisation (%, weighted
    by GPU-hours), GPU-hours, GPU cost, input and output tokens served, $ per 1M output tokens as
    run (GPU cost ÷ output tokens, input included), the comparable API model and its $ per 1M
    output tokens for this traffic (its input and output prices at the served input:output ratio),
    what the same tokens cost there (`api_cost_usd`), and `excess_usd` = GPU cost − API cost (what
    self-hosting cost beyond the API; negative when it saved). Most excess first."""
    served = nodes.self_host_cost(wh, scope, start, end, tag=tag)
    served = served.filter(pl.col("infra_cost_usd").is_not_null()) if served.height else served
    if served.is_empty():
        return pl.DataFrame(schema=SCHEMA)
    per_model = served.group_by("model").agg(
        pl.col("node").n_unique().alias("nodes"), pl.col("gpus").sum().alias("gpus"),
        ((pl.col("util_pct") * pl.col("gpu_hours")).sum() / pl.col("gpu_hours").sum()).alias("util_pct"),
        pl.col("gpu_hours").sum(), pl.col("infra_cost_usd").sum(),
        pl.col("prompt_tokens").sum().alias("input_tokens"), pl.col("generation_tokens").sum().alias("output_tokens"))
    rows = []
    for row in per_model.iter_rows(named=True):
        cost, inputs, outputs = Decimal(row["infra_cost_usd"]), int(row["input_tokens"]), int(row["output_tokens"])
        price = _cheapest(wh, row["model"], end, fallback, tag)
        api_cost = None if price is None else (Decimal(inputs) * Decimal(price["input_mtok"])
                                               + Decimal(outputs) * Decimal(price["output_mtok"])) / MILLION
        rows.append({**row, "gpus": int(row["gpus"]), "infra_cost_usd": cost,
                     "usd_per_1m_output_as_run": cost * MILLION / outputs if outputs else None,
                     "api_provider": price and price["provider"], "api_model": price and price["model"],
                     "api_usd_per_1m_output": api_cost * MILLION / outputs if api_cost is not None and outputs else None,
                     "api_cost_usd": api_cost, "excess_usd": cost - api_cost if api_cost is not None else None})
    return pl.DataFrame(rows, schema=SCHEMA).sort("excess_usd", descending=True, nulls_last=True)
