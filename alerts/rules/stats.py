"""Statistics that respect sample size, as Polars expressions (vectorised over every scope).

- Wilson score bounds for a proportion k/n: a ratio signal fires when the one-sided bound at
  `confidence` is past its threshold, so 3 misses in 20 calls (15%) cannot page against a 10%
  threshold, while 30 in 100 does.
- The fewest samples a percentile needs: p99 is only a p99 with ≥ 1 / (1 − 0.99) = 100 samples;
  below that it is the window's slowest call (and "p99 ≥ T" is believed only when the Wilson
  exact binomial test of the share of calls ≥ T clears 1%: `share_exceeds`).
- One-sided normal quantiles for confidence levels (the bounds' z, a mean's lower bound).
"""

from __future__ import annotations

import functools
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


@functools.cache
def binomial_critical_counts(p0: float, alpha: float, n_max: int) -> tuple[int, ...]:
    """For each n in 0..n_max, the fewest successes k with P(X ≥ k | n, p0) ≤ `alpha` (X binomial):
    the exact one-sided binomial test of "the share is above p0" (n + 1 where no k is enough)."""
    out = []
    q = 1.0 - p0
    for n in range(n_max + 1):
        pmf, below, k = q ** n, 0.0, 0
        while k <= n and 1.0 - below > alpha:
            below += pmf
            pmf = pmf * (n - k) / (k + 1) * p0 / q if k < n else 0.0
            k += 1
        out.append(k if 1.0 - below <= alpha + 1e-15 else n + 1)
    return tuple(out)


def share_exceeds(k: pl.Expr, n: pl.Expr, p0: float, confidence: float, n_max: int = 2_000) -> pl.Expr:
    """True when k of n is evidence at one-sided `confidence` that the share is above `p0`: the exact
    binomial test (Clopper–Pearson) up to `n_max` trials, the Wilson lower bound beyond. For rare
    events the Wilson bound is too lenient at small counts (3 slow calls of 100 clear 1% at 95% by
    Wilson, while P(X ≥ 3 | 100, 1%) = 8%), so a rare share like "more than 1% of calls slower than
    T" is judged exactly."""
    table = pl.Series("critical", binomial_critical_counts(p0, 1.0 - confidence, n_max), dtype=pl.Int64)
    trials = n.cast(pl.Int64)
    exact = k.cast(pl.Float64) >= pl.lit(table).gather(trials.clip(0, n_max)).cast(pl.Float64)
    return pl.when(trials <= n_max).then(exact).otherwise(wilson_lower(k, n, confidence) > p0)
