"""The arithmetic of a cascade threshold over a score distribution — no I/O.

Scores are the cheap model's confidence or the cheap-vs-frontier agreement in [0, 1]; a request
whose score is below the threshold escalates (the convention of `router_score`). A distribution is
grouped by distinct score: how many requests have it and what they cost on each model (Decimal USD).

The seed's "~70th percentile" is read as the share of replayed requests the cheap model keeps: the
recommended threshold leaves `keep_percentile`% of the sample at or above it, so the implied
escalation rate is (100 − P)%. The literal reading (escalate below the 70th percentile) would
escalate 70% — the seed's own stale-routing level, against its healthy 30–50% band and its table
(26–54% frontier calls). Pass another percentile to move the point.

Monthly cost at threshold t = (Σ cheap cost + Σ frontier cost of requests scoring below t)
× monthly requests / sampled requests: every request tries the cheap model, an escalated one also
calls the frontier model. Exact Decimal, rounded half-even to 18 places (the warehouse's scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from itertools import accumulate

import diptest
import numpy as np
import polars as pl

HEALTHY_BAND = (0.30, 0.50)  # seed §3.13: escalation on 30–50% of production traffic
STALE_RATE = 0.70  # seed §3.14 "stale routing"
DIP_ALPHA = 0.05
DIP_MIN_SAMPLE = 50  # fewer scores than this: the dip test is not run
QUANTUM = Decimal("1e-18")
GRID = tuple(round(i / 50, 2) for i in range(51))  # thresholds 0.00, 0.02, … 1.00 for the curve


@dataclass(frozen=True)
class Distribution:
    """Requests grouped by distinct score, ascending: count and cost on each model (Decimal USD)."""

    scores: np.ndarray
    weights: np.ndarray
    cheap_usd: tuple[Decimal, ...]
    frontier_usd: tuple[Decimal, ...]

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> Distribution:
        """From columns `score`, `n` and optionally `cheap_cost_usd`, `frontier_cost_usd` (rows with
        the same score are merged; missing costs count as 0)."""
        if frame.is_empty():
            raise ValueError("no scores")
        money = pl.Decimal(38, 18)
        cols = [pl.col("n").cast(pl.Int64).sum().alias("n")]
        for name in ("cheap_cost_usd", "frontier_cost_usd"):
            source = pl.col(name).cast(money) if name in frame.columns else pl.lit(0).cast(money)
            cols.append(source.fill_null(0).sum().alias(name))
        grouped = frame.group_by("score").agg(cols).sort("score")
        return cls(
            scores=grouped["score"].cast(pl.Float64).to_numpy(),
            weights=grouped["n"].to_numpy(),
            cheap_usd=tuple(Decimal(str(v)) for v in grouped["cheap_cost_usd"].to_list()),
            frontier_usd=tuple(Decimal(str(v)) for v in grouped["frontier_cost_usd"].to_list()),
        )

    @property
    def requests(self) -> int:
        return int(self.weights.sum())

    def sample(self) -> np.ndarray:
        """Every request's score (the grouped counts expanded), for tests of shape."""
        return np.repeat(self.scores, self.weights)

    def below(self, threshold: float) -> int:
        """How many groups score strictly below `threshold` (they escalate)."""
        return int(np.searchsorted(self.scores, threshold, side="left"))

    def escalation_rate(self, threshold: float) -> float:
        """Share of requests scoring below `threshold`."""
        return float(self.weights[: self.below(threshold)].sum() / self.requests)


def recommend(dist: Distribution, keep_percentile: float) -> float:
    """The observed score t whose escalation share (requests below t) is closest to
    1 − keep_percentile/100; the lowest such score on a tie. Within half a group's weight of the
    target, i.e. to the sample's resolution."""
    if not 0 < keep_percentile < 100:
        raise ValueError("the percentile must be between 0 and 100")
    target = 1 - keep_percentile / 100
    below = np.concatenate(([0], np.cumsum(dist.weights)[:-1])) / dist.requests
    return float(dist.scores[int(np.argmin(np.abs(below - target)))])


@dataclass(frozen=True)
class Point:
    """What one threshold implies."""

    threshold: float
    escalation_rate: float
    monthly_cost_usd: Decimal
    frontier_cost_usd: Decimal  # the monthly part spent on the frontier model
    all_frontier_usd: Decimal  # every request on the frontier model, a month
    frontier_cost_share: float | None
    saving_vs_frontier: float | None

    def as_dict(self) -> dict[str, object]:
        return {"threshold": self.threshold, "escalation_rate": self.escalation_rate,
                "monthly_cost_usd": str(self.monthly_cost_usd), "frontier_cost_usd": str(self.frontier_cost_usd),
                "all_frontier_usd": str(self.all_frontier_usd), "frontier_cost_share": self.frontier_cost_share,
                "saving_vs_frontier": self.saving_vs_frontier}


class Pricer:
    """Monthly money at any threshold: prefix sums of the frontier cost by score, scaled from the
    sampled requests to `monthly_requests`."""

    def __init__(self, dist: Distribution, monthly_requests: Decimal) -> None:
        self.dist = dist
        self.monthly_requests = monthly_requests
        self.cheap_total = sum(dist.cheap_usd, Decimal(0))
        self.frontier_prefix = (Decimal(0), *accumulate(dist.frontier_usd))

    def _month(self, sample_usd: Decimal) -> Decimal:
        with localcontext() as ctx:
            ctx.prec = 80
            return (sample_usd * self.monthly_requests / self.dist.requests).quantize(QUANTUM, ROUND_HALF_EVEN)

    def at(self, threshold: float) -> Point:
        escalated = self.frontier_prefix[self.dist.below(threshold)]
        cost, frontier = self._month(self.cheap_total + escalated), self._month(escalated)
        all_frontier = self._month(self.frontier_prefix[-1])
        return Point(
            threshold=threshold, escalation_rate=self.dist.escalation_rate(threshold), monthly_cost_usd=cost,
            frontier_cost_usd=frontier, all_frontier_usd=all_frontier,
            frontier_cost_share=float(frontier / cost) if cost else None,
            saving_vs_frontier=float(1 - cost / all_frontier) if all_frontier else None,
        )

    def curve(self, extra: tuple[float, ...] = ()) -> pl.DataFrame:
        """threshold → escalation rate → monthly cost → frontier share, on `GRID` plus `extra`."""
        points = [self.at(t) for t in sorted({*GRID, *extra})]
        money = pl.Decimal(38, 18)
        return pl.DataFrame({
            "threshold": [p.threshold for p in points],
            "escalation_rate": [p.escalation_rate for p in points],
            "monthly_cost_usd": pl.Series([p.monthly_cost_usd for p in points], dtype=money),
            "frontier_cost_usd": pl.Series([p.frontier_cost_usd for p in points], dtype=money),
            "frontier_cost_share": [p.frontier_cost_share for p in points],
            "saving_vs_frontier": [p.saving_vs_frontier for p in points],
        })


@dataclass(frozen=True)
class Bimodality:
    """Hartigan's dip test of the scores (`diptest`, p-value from its interpolated table)."""

    tested: bool
    dip: float | None
    p_value: float | None
    bimodal: bool
    requests: int
    method: str = "Hartigan's dip test (diptest), unimodality rejected at p < 0.05"

    def as_dict(self) -> dict[str, object]:
        return {"method": self.method, "tested": self.tested, "dip": self.dip, "p_value": self.p_value,
                "bimodal": self.bimodal, "requests": self.requests}


def bimodality(dist: Distribution, *, alpha: float = DIP_ALPHA) -> Bimodality:
    """Dip test of every request's score; not run on fewer than `DIP_MIN_SAMPLE` scores."""
    sample = dist.sample()
    if sample.size < DIP_MIN_SAMPLE:
        return Bimodality(False, None, None, False, int(sample.size))
    dip, p_value = diptest.diptest(sample.astype(np.float64))
    return Bimodality(True, float(dip), float(p_value), bool(p_value < alpha), int(sample.size))


def band_warning(rate: float, *, what: str = "the recommended threshold") -> str | None:
    """A warning when an escalation rate is outside the healthy 30–50% band, else None."""
    low, high = HEALTHY_BAND
    if rate >= STALE_RATE:
        return (f"{what} escalates {rate:.0%} of requests: at 70%+ the seed diagnoses stale routing — "
                "change the cheap model or retrain the router (§3.14)")
    if rate > high:
        return (f"{what} escalates {rate:.0%} of requests, above the healthy 30–50% band: the cascade saves "
                "little; a conservative task (knowledge QA, seed: 0.7+ with ~54% frontier calls) or a weak cheap model")
    if rate < low:
        return (f"{what} escalates {rate:.0%} of requests, below the healthy 30–50% band: aggressive — watch "
                "answer quality before going live (seed: threshold 0.4 risks a quality collapse)")
    return None


TASK_GUIDANCE = (  # the seed's task table (RouteLLM on LMSYS data, same 95% GPT-4 quality)
    (("chat", "conversation", "dialog", "support", "mt-bench", "mt_bench"),
     "conversational: threshold 0.5–0.6, ~26% frontier calls, ~85% saving"),
    (("qa", "knowledge", "mmlu", "faq", "lookup"), "knowledge QA: threshold 0.7+, ~54% frontier calls, ~45% saving"),
    (("math", "gsm", "arithmetic", "reasoning"), "maths: a cascade saves ~35% at best — prefer a reasoning model (§3.8)"),
)


def task_guidance(task: str) -> str:
    """The seed's guidance for a task label (by keyword), or ''."""
    lowered = task.lower()
    for words, text in TASK_GUIDANCE:
        if any(w in lowered for w in words):
            return text
    return ""
