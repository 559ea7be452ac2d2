"""List-price cost estimates for simulated calls, for ground truth (budgets) and tests.

Rates are genai-prices' base tier for each simulated model at a given instant (the simulator keeps
every call under the 200k-token tiers), with the design's 50% Batch API discount. Self-hosted
models cost 0 here: their cost is GPU time, which the warehouse allocates. The warehouse's own
pricing (Decimal, overrides, price history) is the reference; this is a float estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

import polars as pl
from genai_prices import data_snapshot
from genai_prices import types as gp

from llmledger.simulator.catalog import MODELS

BATCH_DISCOUNT = 0.5


@dataclass(frozen=True)
class ModelRates:
    """USD per token (per use for web searches)."""

    input: float
    cache_read: float
    cache_write_5m: float
    cache_write_1h: float
    output: float
    web_search: float


def _base(price: Decimal | gp.TieredPrices | None) -> float | None:
    if price is None:
        return None
    return float(price.base if isinstance(price, gp.TieredPrices) else price)


@lru_cache(maxsize=8)
def model_rates(at: datetime) -> dict[str, ModelRates]:
    """Rates of every simulated model at an instant, keyed by model name."""
    snapshot = data_snapshot.get_snapshot()
    rates: dict[str, ModelRates] = {}
    for spec in MODELS:
        if spec.deployment == "self_hosted":
            rates[spec.key] = ModelRates(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
            continue
        _, model = snapshot.find_provider_model(spec.key, None, spec.provider, None)
        price = model.get_prices(at)
        per_token = 1e-6
        input_rate = _base(price.input_mtok) or 0.0
        write = _base(price.cache_write_mtok)
        rates[spec.key] = ModelRates(
            input=input_rate * per_token,
            cache_read=(_base(price.cache_read_mtok) or input_rate) * per_token,
            cache_write_5m=(write or input_rate) * per_token,
            cache_write_1h=(_base(price.cache_write_1h_mtok) or write or input_rate) * per_token,
            output=(_base(price.output_mtok) or 0.0) * per_token,
            web_search=(_base(price.web_searches_kcount) or 0.0) / 1000,
        )
    return rates


def cost_expr(at: datetime) -> pl.Expr:
    """A Polars expression for the estimated USD cost of each call of a canonical call frame."""
    rates = model_rates(at)

    def rate(field: str) -> pl.Expr:
        return pl.col("model").replace_strict({k: getattr(v, field) for k, v in rates.items()}, default=0.0,
                                             return_dtype=pl.Float64)

    cache_writes = pl.col("cache_write_5m_tokens") + pl.col("cache_write_1h_tokens")
    uncached = pl.col("input_tokens") - pl.col("cache_read_tokens") - cache_writes
    cost = (
        uncached * rate("input")
        + pl.col("cache_read_tokens") * rate("cache_read")
        + pl.col("cache_write_5m_tokens") * rate("cache_write_5m")
        + pl.col("cache_write_1h_tokens") * rate("cache_write_1h")
        + pl.col("output_tokens") * rate("output")
        + pl.col("web_searches").fill_null(0) * rate("web_search")
    )
    return pl.when(pl.col("is_batch")).then(cost * (1 - BATCH_DISCOUNT)).otherwise(cost).alias("cost_usd")
