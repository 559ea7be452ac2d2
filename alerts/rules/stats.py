"""Statistics that respect sample size, as Polars expressions (vectorised over every scope).

- Wilson score bounds for a proportion k/n: a ratio signal fires when the one-sided bound at
  `confidence` is past its threshold, so 3 misses in 20 calls (15%) cannot page against a 10%
  threshold, while 30 in 100 does.
- The fewest samples a percentile needs: p99 is only a p99 with ≥ 1 / (1 − 0.99) = 100 samples;
  below that it is the window's slowest call. "p99 ≥ T" is believed only when the exact binomial
  test of the share of calls ≥ T clears 1% — and, in a window of n < 100 calls, clears 1/n
  (`share_exceeds(..., per_window=True)`): evidence that the window holds more such calls than its
  single slowest, so a thin window needs proportionally stronger evidence (4 slow calls of 55, where
  a 1% share would take 3).
- Volume guards derived from the test they guard (`score_test_volume`): the fewest trials at which
  the one-sided score test of "share > p0" (the test the Wilson bound inverts) has the power named
  against a share p1 — not a fixed small number.
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


def score_test_volume(p0: pl.Expr, p1: pl.Expr, confidence: float, power: float = 0.5) -> pl.Expr:
    """The fewest trials n at which the one-sided score test of "share > p0" at `confidence` has
    `power` against a true share p1 > p0: n > ((z_c·√(p0(1−p0)) + z_p·√(p1(1−p1))) / (p1 − p0))²
    (normal approximation). The Wilson lower bound is that test inverted, so at power ½ (z_p = 0)
    this is exactly the fewest trials at which a window showing p1 has its Wilson bound past p0:
    fewer, and a window at p1 cannot be told from p0 more often than not. Null where p1 ≤ p0."""
    z_c, z_p = z_of(confidence), NormalDist().inv_cdf(power)
    p0_, p1_ = p0.cast(pl.Float64), p1.cast(pl.Float64)
    spread = z_c * (p0_ * (1 - p0_)).sqrt() + z_p * (p1_ * (1 - p1_)).sqrt()
    n = (spread / (p1_ - p0_)).pow(2)
    return pl.when(p1_ > p0_).then(n.floor() + 1).otherwise(None).cast(pl.Int64)


def samples_for_quantile(q: float) -> int:
    """The fewest samples for which the q-quantile is not simply the largest value: ⌈1 / (1 − q)⌉."""
    return math.ceil(1 / (1 - q) - 1e-9)


def _critical_count(n: int, p: float, alpha: float) -> int:
    """The fewest successes k with P(X ≥ k | n, p) ≤ `alpha` (n + 1 where no k is enough)."""
    if p >= 1.0:
        return n + 1
    q = 1.0 - p
    pmf, below, k = q ** n, 0.0, 0
    while k <= n and 1.0 - below > alpha:
        below += pmf
        pmf = pmf * (n - k) / (k + 1) * p / q if k < n else 0.0
        k += 1
    return k if 1.0 - below <= alpha + 1e-15 else n + 1


@functools.cache
def binomial_critical_counts(p0: float, alpha: float, n_max: int, per_window: bool = False) -> tuple[int, ...]:
    """For each n in 0..n_max, the fewest successes k with P(X ≥ k | n, p0) ≤ `alpha` (X binomial):
    the exact one-sided binomial test of "the share is above p0" (n + 1 where no k is enough).
    `per_window`: the share tested is max(p0, 1/n) — more than one success per window of n."""
    return tuple(_critical_count(n, max(p0, 1.0 / n) if per_window and n else p0, alpha) for n in range(n_max + 1))


def share_exceeds(k: pl.Expr, n: pl.Expr, p0: float, confidence: float, n_max: int = 2_000, *,
                  per_window: bool = False) -> pl.Expr:
    """True when k of n is evidence at one-sided `confidence` that the share is above `p0`: the exact
    binomial test (Clopper–Pearson) up to `n_max` trials, the Wilson lower bound beyond. For rare
    events the Wilson bound is too lenient at small counts (3 slow calls of 100 clear 1% at 95% by
    Wilson, while P(X ≥ 3 | 100, 1%) = 8%), so a rare share like "more than 1% of calls slower than
    T" is judged exactly. `per_window`: a window of n < 1/p0 calls must show a share above 1/n (more
    such calls than its single most extreme one) — a thin window needs proportionally stronger
    evidence; from 1/p0 calls on it is the same test."""
    table = pl.Series("critical", binomial_critical_counts(p0, 1.0 - confidence, n_max, per_window), dtype=pl.Int64)
    trials = n.cast(pl.Int64)
    exact = k.cast(pl.Float64) >= pl.lit(table).gather(trials.clip(0, n_max)).cast(pl.Float64)
    return pl.when(trials <= n_max).then(exact).otherwise(wilson_lower(k, n, confidence) > p0)
