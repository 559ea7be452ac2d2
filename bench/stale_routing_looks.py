"""Stale routing's CRITICAL: three looks in a row at the hour's bound against one bound over the
hour and the sustain period pooled — an offline simulation of the statistic (numpy; no warehouse),
to choose between them before changing the rule.

Traffic: Poisson first-step calls per 5-minute bucket, each escalating with a fixed share. Per
instant (every 5 minutes) the rule's windows as `alerts.rules.routing` takes them: the hour widened
five minutes at a time until it holds the warning's guard (34; up to 3 h), its 99% Wilson bound
against 50% (WARNING); for the CRITICAL either the hour's 95% bound ≥ 70% at three looks in a row
(the rule on main) or one bound at `confidence` over the pooled 70 minutes (widened until it holds
`guard` calls) with the two looks before at WARNING or more (the sustain). Reported: CRITICAL
episodes per policy-day on a policy that sits at a WARNING-level share (60–66%) all day — the false
criticals — and, for a cheap model rolled out over 20 minutes (0.39 → s1, traffic falling after it),
the median minutes from the 70% crossing to the CRITICAL and the share in time (≤ 75 min).

Usage: python -m bench.stale_routing_looks [--policies 100] [--seed 11]   (prints; records nothing)
"""

from __future__ import annotations

import argparse
from statistics import NormalDist

import numpy as np

STEP_MIN = 5
HOUR = list(range(12, 37))  # 60 … 180 minutes in buckets
POOLED = list(range(14, 37))  # 70 … 180
VARIANTS = (("three looks at 95%", None, None), ("pooled at 95%", 0.95, 17), ("pooled at 97.5%", 0.975, 25),
            ("pooled at 98%", 0.98, 26))


def wilson_lower(k: np.ndarray, n: np.ndarray, confidence: float) -> np.ndarray:
    """The one-sided Wilson lower bound (as `alerts.rules.stats.wilson_lower`), vectorised."""
    z = NormalDist().inv_cdf(confidence)
    n = np.maximum(n, 1e-9)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(np.maximum(p * (1 - p) / n + z * z / (4 * n * n), 0))
    return centre - half


def widened(c0: np.ndarray, c1: np.ndarray, t: int, widths: list[int], need: int) -> tuple[np.ndarray, np.ndarray]:
    """Per policy, the calls and escalations of the narrowest window holding `need` calls (else the widest)."""
    w0 = np.stack([c0[:, t] - c0[:, t - w] for w in widths])
    w1 = np.stack([c1[:, t] - c1[:, t - w] for w in widths])
    ok = w0 >= need
    index = np.argmax(ok, 0)
    index[~ok.any(0)] = len(widths) - 1
    rows = np.arange(c0.shape[0])
    return w0[index, rows], w1[index, rows]


def points(n0: np.ndarray, n1: np.ndarray, confidence: float | None, guard: int | None) -> np.ndarray:
    """Per instant and policy: 2 CRITICAL, 1 WARNING, 0 clear, -1 too thin (the point levels)."""
    policies, buckets = n0.shape
    c0 = np.concatenate([np.zeros((policies, 1)), np.cumsum(n0, 1)], 1)
    c1 = np.concatenate([np.zeros((policies, 1)), np.cumsum(n1, 1)], 1)
    out = np.full((buckets + 1, policies), -1)
    for t in range(max(HOUR) + 1, buckets + 1):
        h0, h1 = widened(c0, c1, t, HOUR, 34)
        judged = h0 >= 34
        warning = judged & (wilson_lower(h1, h0, 0.99) > 0.5)
        if confidence is None:
            critical = judged & (wilson_lower(h1, h0, 0.95) >= 0.7)
        else:
            p0, p1 = widened(c0, c1, t, POOLED, guard or 0)
            critical = (p0 >= (guard or 0)) & (wilson_lower(p1, p0, confidence) >= 0.7)
        out[t] = np.where(critical, 2, np.where(warning, 1, np.where(judged, 0, -1)))
    return out


def criticals(levels: np.ndarray, three_looks: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per policy: the first CRITICAL's instant (-1: none) and the number of CRITICAL episodes."""
    first = np.full(levels.shape[1], -1)
    episodes = np.zeros(levels.shape[1])
    for p in range(levels.shape[1]):
        x, on = levels[:, p], False
        for t in range(max(HOUR) + 3, len(x)):
            last = x[t - 2:t + 1]
            fires = (last == 2).all() if three_looks else (x[t] == 2 and (last >= 1).all())
            if fires and not on:
                episodes[p] += 1
                on = True
                first[p] = t if first[p] < 0 else first[p]
            if (last <= 0).all():
                on = False
    return first, episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policies", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    names = [v[0] for v in VARIANTS]
    print("False criticals per policy-day (a policy at a WARNING-level share for 2 days)\n")
    print("| calls/h | share | " + " | ".join(names) + " |\n| ---: | ---: |" + " ---: |" * len(names))
    for rate in (15, 25, 40, 60, 100):
        for share in (0.60, 0.64, 0.66):
            n0 = rng.poisson(rate / 12, size=(args.policies, 2 * 288 + 40)).astype(float)
            n1 = rng.binomial(n0.astype(int), share).astype(float)
            cells = [criticals(points(n0, n1, c, g), c is None)[1].sum() / (2 * args.policies) for _, c, g in VARIANTS]
            print(f"| {rate} | {share:.2f} | " + " | ".join(f"{x:.2f}" for x in cells) + " |", flush=True)
    print("\nA rollout 0.39 → s1 over 20 min: median minutes from the 70% crossing to CRITICAL / share in time\n")
    print("| calls/h before → after | s1 | " + " | ".join(names) + " |\n| --- | ---: |" + " ---: |" * len(names))
    for before, after, s1 in ((100, 100, 0.85), (40, 40, 0.85), (40, 20, 0.85), (25, 25, 0.85), (60, 30, 0.80),
                              (50, 25, 0.80), (30, 15, 0.80)):
        buckets, start = 148, 100
        crossing = start + 4 * (0.70 - 0.39) / (s1 - 0.39)
        rate = np.where(np.arange(buckets) < start + 10, before, after) / 12
        share = 0.39 + (s1 - 0.39) * np.clip((np.arange(buckets) - start + 0.5) / 4, 0, 1)
        n0 = rng.poisson(rate, size=(2 * args.policies, buckets)).astype(float)
        n1 = rng.binomial(n0.astype(int), share).astype(float)
        cells = []
        for _, c, g in VARIANTS:
            first, _ = criticals(points(n0, n1, c, g), c is None)
            late = np.where(first < 0, 10_000, (first - crossing) * STEP_MIN)
            cells.append(f"{np.median(late):.0f} / {np.mean(late <= 75):.0%}")
        print(f"| {before} → {after} | {s1:.2f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
