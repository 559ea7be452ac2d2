"""The alert precision benchmark's own scoring: when an injected incident is observable (calls a
95% one-sided test needs, counted as they arrive; a level shift against the route's quiet shifts)
and how the report keeps the ten kinds apart from the extra ones. Small synthetic inputs, no store."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from bench.alert_cases import Incident
from bench.alerts_precision import Detection, report
from bench.alerts_traffic import (
    MINUTE_MS, START, TUNE, Evidence, Project, _ms, _rollout, observable, shift_crossing,
)


def test_calls_needed_come_from_the_score_test() -> None:
    # a hit ratio of 0.05 (5% of calls healthy) against 0.30, an escalation rate of 0.85 against 0.70
    assert Evidence("hit ratio", 0.30, 0.05, lambda ts: ts * 0 + 0.05, below=True).calls() == 10
    assert Evidence("escalation rate", 0.70, 0.85, lambda ts: ts * 0 + 0.85).calls() == 26
    assert Evidence("escalation rate", 0.70, 0.60, lambda ts: ts * 0 + 0.60).calls() is None


def test_a_ramp_needs_more_calls_than_its_full_effect() -> None:
    start = START + timedelta(hours=10)
    evidence = Evidence("escalation rate", 0.70, 0.85, _rollout(start, 20, 1.0, 0.39, 0.46))
    at_full = np.arange(100) * MINUTE_MS + _ms(start) + 20 * MINUTE_MS
    assert evidence.seen(at_full) == 26
    crossing = _ms(start) + int(0.674 * 20 * MINUTE_MS)  # 0.39 + 0.46 s reaches 0.70
    ramping = crossing + np.arange(100) * 10_000
    assert evidence.seen(ramping) > 26


def _project_with(ts_ms: np.ndarray) -> Project:
    p = Project("p", np.random.default_rng(0), 21, TUNE, 1.0)
    n = ts_ms.size
    p.calls = pl.DataFrame({"ts_ms": ts_ms.astype(np.int64), "route": ["chat"] * n, "status": ["ok"] * n})
    return p


def test_a_lull_after_the_crossing_delays_observability() -> None:
    start = START + timedelta(days=9, hours=12)
    crossing = _ms(start) + 30 * MINUTE_MS  # the ramp is complete: every call is at the full effect
    before_lull = crossing + np.arange(4) * 3 * MINUTE_MS  # 4 calls, then 34 minutes of nothing
    after_lull = before_lull[-1] + 34 * MINUTE_MS + np.arange(20) * 3 * MINUTE_MS
    p = _project_with(np.concatenate([before_lull, after_lull]))
    p.evidence["prefix_broken"] = Evidence("hit ratio", 0.30, 0.05, _rollout(start, 30, 0.95, 1.0, -1.0),
                                            below=True)
    incident = Incident("prefix_broken", "cache_hit_collapse", {"route": "chat"}, start,
                        start + timedelta(hours=3), "critical", start + timedelta(minutes=30))
    seen = observable(p, incident)
    assert seen.observable and not seen.extra
    assert _ms(seen.crosses_at) == after_lull[10 - 4 - 1]  # the 10th call, six after the lull
    thin_project = _project_with(before_lull)  # the calls never come
    thin_project.evidence = p.evidence
    thin = observable(thin_project, incident)
    assert not thin.observable and thin.crosses_at == incident.end


def test_a_level_shift_is_observable_only_above_the_routes_quiet_shifts() -> None:
    hours = 21 * 24
    rng = np.random.default_rng(1)
    spend = 10 * np.exp(rng.normal(0, 0.1, hours))
    excluded = np.zeros(hours, dtype=bool)
    first, last = 16 * 24 + 9, 16 * 24 + 19
    excluded[first:last] = True
    shifted = spend.copy()
    shifted[first:last] *= 3.5
    at, best, quiet_max = shift_crossing(shifted, excluded, first, last)
    assert at is not None and first < at <= first + 6 and best > quiet_max
    shifted[10 * 24: 11 * 24] *= 4.0  # a quiet day-long shift larger than the incident
    at, best, quiet_max = shift_crossing(shifted, excluded, first, last)
    assert at is None and quiet_max > best


def test_report_keeps_the_ten_kinds_apart_and_lists_an_unobservable_shift() -> None:
    start = START + timedelta(days=9)
    ten = Incident("stale_routing", "stale_routing", {"routing_policy": "x"}, start, start + timedelta(hours=3),
                   "critical", start + timedelta(minutes=20))
    shift = Incident("spend_level_shift", "spend_spike", {"route": "chat"}, start, start + timedelta(hours=10),
                     "warning", start + timedelta(hours=10), extra=True, observable=False,
                     observability="not observable: six-hour spend ratio up to 2.10× vs 2.60×")
    result = {"projects": 1, "quiet_projects": 0, "quiet_days": 0, "project_days": 14, "per_signal": {},
              "explained": 2, "unexplained": [], "unexplained_pages": 0, "notes": 0,
              "detections": [Detection("p", ten, 1, timedelta(minutes=30), True, None),
                             Detection("p", shift, 0, None, False, None)]}
    text = report(result, generator="g", seed_set="tune", calls=1, days=21, warmup=7, seconds=1, load="1")
    assert "recall of the ten incident kinds in time at the expected severity: **100%** (1/1)" in text
    assert "extra kinds (not among the ten), in time: 0/0, 1 not observable" in text
    assert "| p | spend_level_shift | spend_spike | warning | not observable |" in text
    assert "2.10× vs 2.60×" in text
