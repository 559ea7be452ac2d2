"""Statistics that respect sample size, as Polars expressions (vectorised over every scope).

- Wilson score bounds for a proportion k/n: a ratio signal fires when the one-sided bound at
  `confidence` is past its threshold, so 3 misses in 20 calls (15%) cannot page against a 10%
  threshold, while 30 in 100 does.
- The fewest samples a percentile needs: p99 is only a p99 with ≥ 1 / (1 − 0.99) = 100 samples;
  below that it is the window's slowest call (and "p99 ≥ T" is believed only when the Wilson
  bound of the share of calls ≥ T clears 1%).
- One-sided normal quantiles for confidence levels (the bounds' z, a mean's lower bound).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import polars as pl


def z_of(confidence: float) -> float:
    """The one-sided normal quantile of `confidence` (0.95 → 1.645)."""
    return NormalDist().inv_cdf(confidence)


def _wilson(k: pl.Expr, n: pl.Expr, z: float, sign: int) -> pl.Expr:
    n_ = n.cast(pl.Float64)
    p = k.cast(pl.Float64) / n_
    z2 = z * z
    center = (p + z2 / (2 * n_)) / (1 + z2 / n_)
    half = z / (1 + z2 / n_) * (p * (1 - p) / n_ + z2 / (4 * n_ * n_)).sqrt()
    return pl.when(n_ > 0).then((center + sign * half).clip(0.0, 1.0)).otherwise(None)


def wilson_lower(k: pl.Expr, n: pl.Expr, confidence: float) -> pl.Expr:
    """The Wilson score lower bound of k/n at one-sided `confidence` (null when n = 0)."""
    return _wilson(k, n, z_of(confidence), -1)


def wilson_upper(k: pl.Expr, n: pl.Expr, confidence: float) -> pl.Expr:
    """The Wilson score upper bound of k/n at one-sided `confidence` (null when n = 0)."""
    return _wilson(k, n, z_of(confidence), 1)


def wilson_lower_value(k: float, n: float, confidence: float) -> float:
    """The same bound for one pair of numbers (tests, texts)."""
    if n <= 0:
        return float("nan")
    z = z_of(confidence)
    p = k / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half)


def samples_for_quantile(q: float) -> int:
    """The fewest samples for which the q-quantile is not simply the largest value: ⌈1 / (1 − q)⌉."""
    return math.ceil(1 / (1 - q) - 1e-9)
