"""Every injected incident fires the right signal for the right scope, at the right severity,
within its window + sustain, with the probable cause the data shows — and the same traffic
without incidents fires nothing. Real simulator, real pipeline, real embedded ClickHouse, the
scheduler's own evaluation code (`bench.signal_eval` is the harness; `python -m bench.signal_eval`
records the numbers in BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from alerts.evaluate import evaluate_signals
from alerts.rules import FAMILIES, RuleContext
from alerts.rules.base import floor_time, grid
from bench import signal_eval as harness
from llmledger.settings import Settings
from llmledger.simulator import INCIDENT_NAMES, GroundTruth, ground_truth
from tests.conftest import migrated_database

pytestmark = pytest.mark.slow  # simulated weeks ingested and evaluated: scheduled first when parallel

CONFIG = harness.config()
QUIET = harness.config(incidents=False)


@pytest.fixture(scope="module")
def truth() -> GroundTruth:
    return ground_truth(CONFIG)


@pytest.fixture(scope="module")
def runs(store: Path, tmp_path_factory: pytest.TempPathFactory, truth: GroundTruth) -> Iterator[dict]:
    """Both simulations ingested and evaluated once for the whole module."""
    base = Settings(home=tmp_path_factory.mktemp("signals-home"), warehouse={"path": store})
    out: dict = {}
    with ExitStack() as databases:
        for name, cfg in (("incidents", CONFIG), ("quiet", QUIET)):
            wh = databases.enter_context(migrated_database(base))
            harness.load(wh, base, cfg)
            settings = harness.settings_for(ground_truth(cfg), base)
            alerts, seconds = harness.evaluate(wh, settings, cfg)
            out[name] = {"wh": wh, "settings": settings, "alerts": alerts, "seconds": seconds}
        out["score"] = harness.score(truth, out["incidents"]["alerts"], out["quiet"]["alerts"],
                                     out["incidents"]["settings"])
        yield out


CAUSE_HINTS = {
    "cache_hit_collapse": lambda i: ["v7 → v8", i.details["prefix_hash_during"]],
    "cache_not_applied": lambda i: [i.details["sdk_during"]],
    "prompt_accumulation": lambda i: [i.details["sessions"][0][:12]],
    "llm_calls_in_tools": lambda i: [f"{i.details['model_before']} → {i.details['model_during']}", "calls per run"],
    "reasoning_runaway": lambda i: [i.details["capped_event_ids"][0][:20]],
    "stale_routing": lambda i: [i.details["cheap_model_during"], "cheap (step-0) model changed"],
    "sandbox_runaway": lambda i: ["timeout"],
    "latency_tail": lambda i: [f"queue on node {i.details['node']}"],
    "spend_spike": lambda i: [i.details["route"], i.details["model"]],
    "budget_overrun": lambda i: ["100%", "forecast"],
}


@pytest.mark.parametrize("name", INCIDENT_NAMES)
def test_each_incident_fires_its_signal_in_time_with_its_cause(runs: dict, truth: GroundTruth, name: str) -> None:
    detection = next(d for d in runs["score"].detections if d.incident.name == name)
    incident = detection.incident
    assert detection.alert is not None, f"{name}: no {harness.SIGNAL_OF[name]} alert for {incident.scope}"
    assert detection.severity_ok and detection.alert.severity == incident.expected_severity
    assert detection.in_time, f"{name}: fired {detection.delay} after the start"
    for hint in CAUSE_HINTS[name](incident):
        assert hint in detection.alert.cause, (name, hint, detection.alert.cause)
    if name != "budget_overrun":  # the incident ends, and so does the alert (within its window + sustain)
        rule = getattr(runs["incidents"]["settings"].signals, harness.SIGNAL_OF[name])
        assert detection.alert.resolved_at is not None
        assert detection.alert.resolved_at <= incident.end_at + timedelta(
            minutes=2 * (rule.window_min + rule.sustain_min) + 10)


def test_the_same_traffic_without_incidents_fires_nothing(runs: dict) -> None:
    assert runs["quiet"]["alerts"] == []


def test_precision_and_recall(runs: dict) -> None:
    score = runs["score"]
    assert score.recall == 1.0
    # The only alerts the truth does not list are spend spikes of the prompt-accumulation sessions'
    # users and route: real spend jumps, on the incident's own route and users, during it.
    assert all(why == "related to prompt_accumulation" for _, why in score.false_alerts), score.false_alerts
    assert score.precision >= 0.7 and score.precision_with_consequences == 1.0


def test_evaluating_the_same_window_again_adds_nothing(runs: dict) -> None:
    wh, settings = runs["incidents"]["wh"], runs["incidents"]["settings"]
    counts = [wh.scalar(f"SELECT count() FROM {t} FINAL") for t in ("alert_incidents", "alert_events", "alert_outbox")]
    report = evaluate_signals(wh, settings, since=CONFIG.range_start + timedelta(days=2), at=CONFIG.range_end)
    assert report.events == [] and report.notifications == 0
    assert [wh.scalar(f"SELECT count() FROM {t} FINAL") for t in
            ("alert_incidents", "alert_events", "alert_outbox")] == counts


@pytest.mark.parametrize("name", ["cache_hit_collapse", "prompt_accumulation", "llm_calls_in_tools",
                                  "stale_routing", "latency_tail", "spend_spike"])
def test_one_instant_is_judged_as_in_a_backfill(runs: dict, truth: GroundTruth, name: str) -> None:
    """The minute job (one instant) and a backfill over hours agree on every scope's level and value."""
    wh, settings = runs["incidents"]["wh"], runs["incidents"]["settings"]
    signal = harness.SIGNAL_OF[name]
    family = next(f for f in FAMILIES if any(r.name == signal for r in f.rules))
    ctx = RuleContext(wh, settings.signals)
    step = family.step(settings.signals)
    at = floor_time(truth.incident(name).start_at + timedelta(minutes=75), step)
    ranged = family.observe(ctx, grid(at - timedelta(hours=3), at, step))[signal]
    single = family.observe(ctx, [at])[signal]
    keys = [c for c in single.columns if c in ("project", "route", "model", "provider", "tool_name",
                                                "routing_policy", "dimension", "key")]
    columns = [*keys, "level", "peak", "value"]
    judged = pl.col("peak") >= 0  # a scope with no data in its window is unjudged in both
    from_range = ranged.filter((pl.col("at") == at) & judged).select(columns).sort(keys)
    alone = single.filter(judged).select(columns).sort(keys)
    assert alone.height > 0 and alone.equals(from_range)
