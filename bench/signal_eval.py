"""Signal detection against the simulator's ground truth: precision, recall, severity, delay, cause.

Simulates a range holding every incident of design.md §5 (and the same traffic without them),
ingests both through the real pipeline into the real warehouse, evaluates every signal over the
range with the same code the scheduler runs each minute, and scores the alerts against
`ground_truth(config)`: an injected incident is detected when its signal fires for a scope that
contains the truth's scope, no later than the rule's window + sustain (+ slack) after the start,
at the expected severity. An alert is a true positive when it matches an injected incident or one
of the truth's `also_trips`; every alert on the quiet traffic is a false positive.

Usage: python -m bench.signal_eval [--calls-per-day 30000] [--days 14]  (records BENCHMARKS.md)
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from alerts.evaluate import evaluate_signals
from llmledger.settings import Settings
from llmledger.simulator import GroundTruth, IncidentTruth, SimulationConfig, ground_truth, iter_days
from warehouse.client import Warehouse
from warehouse.migrate import migrate
from warehouse.queries import alerts as alert_queries
from warehouse.queries.scope import Scope

START = datetime(2025, 11, 1, tzinfo=UTC)
SIGNAL_OF = {  # simulator incident → llmledger signal
    "cache_hit_collapse": "cache_hit_collapse", "cache_not_applied": "cache_not_applied",
    "prompt_accumulation": "prompt_accumulation", "llm_calls_in_tools": "llm_calls_in_tools",
    "reasoning_runaway": "reasoning_runaway", "stale_routing": "stale_routing",
    "sandbox_runaway": "sandbox_runaway", "latency_tail": "latency_tail", "spend_spike": "spend_spike",
    "budget_overrun": "budget",
}
PHRASES = {"spend spike": "spend_spike", "latency tail": "latency_tail", "cache hit collapse": "cache_hit_collapse"}
SLACK = timedelta(minutes=5)


def config(days: int = 14, calls_per_day: int = 30_000, *, incidents: bool = True) -> SimulationConfig:
    """The evaluated range: every incident fits in 14 days from a month's first day."""
    return SimulationConfig(start=START, days=days, calls_per_day=calls_per_day, seed=7, incidents=incidents)


def load(wh: Warehouse, settings: Settings, cfg: SimulationConfig) -> int:
    """Simulate `cfg` and ingest calls and tool runs through the real pipeline; returns calls written."""
    from ingest.pipeline import Pipeline
    from ingest.tool_runs import ToolRunWriter

    written = 0
    runs = ToolRunWriter(wh)
    with Pipeline(wh, settings) as pipeline:
        for day in iter_days(cfg):
            written += pipeline.ingest_frame(day.calls, source="simulator").written
            runs.write(day.tool_runs)
    return written


def settings_for(truth: GroundTruth, base: Settings) -> Settings:
    """`base` with the budget the truth's budget incident is measured against."""
    from llmledger.settings import Budget

    incident = next((i for i in truth.incidents if i.name == "budget_overrun"), None)
    budgets = [Budget(team=incident.scope["team"], monthly_usd=str(incident.details["budget_usd"]))] if incident else []
    return base.model_copy(update={"signals": base.signals.model_copy(update={"budgets": budgets})})


@dataclass(frozen=True)
class Alert:
    """An incident the evaluation opened, with when it first reached each severity."""

    incident_id: str
    signal: str
    scope: dict[str, str]
    opened_at: datetime
    critical_at: datetime | None
    severity: str  # the highest reached
    cause: str
    resolved_at: datetime | None


def evaluate(wh: Warehouse, settings: Settings, cfg: SimulationConfig, *, warmup_days: int = 2) -> tuple[list[Alert], float]:
    """Evaluate every signal over the range after a warm-up (as the minute job would have); returns
    the alerts and the seconds the evaluation took."""
    began = time.perf_counter()
    evaluate_signals(wh, settings, since=cfg.range_start + timedelta(days=warmup_days), at=cfg.range_end)
    seconds = time.perf_counter() - began
    events = alert_queries.incident_events(wh, Scope.all(), limit=1_000_000)
    events = events.filter(pl.col("kind") != "noted")  # info notes (a new spend source) are no alerts
    alerts = []
    for (incident_id,), group in events.sort("at").group_by(["incident_id"], maintain_order=True):
        first = group.row(0, named=True)
        critical = group.filter(pl.col("to_state") == "critical")["at"]
        resolved = group.filter(pl.col("kind") == "resolved")["at"]
        fired = group.filter(pl.col("kind").is_in(["opened", "escalated"]))
        alerts.append(Alert(
            incident_id=incident_id, signal=first["signal"], scope=dict(first["scope"]),
            opened_at=_utc(first["at"]), critical_at=_utc(critical[0]) if len(critical) else None,
            severity="critical" if len(critical) else "warning",
            cause=fired["cause"][-1] if fired.height else "", resolved_at=_utc(resolved[0]) if len(resolved) else None,
        ))
    return alerts, seconds


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def allowed_delay(signal: str, settings: Settings) -> timedelta:
    """How long after an incident starts its signal may first fire: the rule's window, sustain and
    evaluation step, plus a little slack."""
    rule = getattr(settings.signals, signal)
    return timedelta(minutes=rule.window_min + rule.sustain_min + rule.step_min) + SLACK


def _contains(alert_scope: dict[str, str], truth_scope: dict[str, str]) -> bool:
    return all(alert_scope.get(k) == v for k, v in truth_scope.items())


@dataclass
class Detection:
    """How one injected incident was detected."""

    incident: IncidentTruth
    alert: Alert | None
    delay: timedelta | None
    severity_ok: bool
    in_time: bool

    @property
    def detected(self) -> bool:
        return self.alert is not None and self.in_time and self.severity_ok


def _window(incident: IncidentTruth, settings: Settings) -> tuple[datetime, datetime]:
    signal = SIGNAL_OF[incident.name]
    if incident.name == "budget_overrun":
        lo, hi = incident.details["crossing_window_for_2pct_pricing_error"]
        step = timedelta(minutes=settings.signals.budget.step_min)
        return datetime.fromisoformat(lo.replace("Z", "+00:00")), datetime.fromisoformat(hi.replace("Z", "+00:00")) + step
    return incident.start_at, incident.start_at + allowed_delay(signal, settings)


def detect(incident: IncidentTruth, alerts: list[Alert], settings: Settings) -> Detection:
    """The alert of the incident's signal and scope that fired first inside its detection window."""
    signal = SIGNAL_OF[incident.name]
    lo, hi = _window(incident, settings)
    if incident.name == "budget_overrun":
        candidates = [a for a in alerts if a.signal == signal and _contains(a.scope, incident.scope)
                      and a.critical_at is not None]
        best = min(candidates, key=lambda a: abs((a.critical_at - incident.start_at).total_seconds()), default=None)
        if best is None:
            return Detection(incident, None, None, False, False)
        return Detection(incident, best, best.critical_at - incident.start_at, True, lo <= best.critical_at <= hi)
    candidates = [a for a in alerts if a.signal == signal and _contains(a.scope, incident.scope)
                  and lo - SLACK <= a.opened_at <= incident.end_at]
    if not candidates:
        return Detection(incident, None, None, False, False)
    best = min(candidates, key=lambda a: a.opened_at)
    fired = best.critical_at if incident.expected_severity == "critical" else best.opened_at
    return Detection(incident, best, (fired or best.opened_at) - incident.start_at,
                     best.severity == incident.expected_severity or incident.expected_severity == "warning",
                     fired is not None and fired <= hi)


def also_trips(incident: IncidentTruth) -> list[tuple[str, dict[str, str]]]:
    """(signal, scope) pairs the truth says this incident may legitimately fire too."""
    out = []
    for text in incident.also_trips:
        match = re.match(r"^(\w[\w ]*?) on (.+?)(?: \(|$)", text)
        if not match or match.group(1) not in PHRASES:
            continue
        for part in match.group(2).split(" / "):
            dimension, _, value = part.strip().partition(" ")
            column = {"route": "route", "feature": "feature", "team": "team", "user": "user_id"}.get(dimension)
            if column:
                out.append((PHRASES[match.group(1)], {column: value}))
    return out


def _explains(alert: Alert, incident: IncidentTruth, settings: Settings, *, extra: timedelta) -> bool:
    """Whether `alert` is the incident's own signal or one of its also_trips, during the incident."""
    lo, hi = incident.start_at - SLACK, incident.end_at + extra
    if incident.name == "budget_overrun":
        return alert.signal == "budget" and _contains(alert.scope, incident.scope)
    if not lo <= alert.opened_at <= hi:
        return False
    if alert.signal == SIGNAL_OF[incident.name] and _contains(alert.scope, incident.scope):
        return True
    return any(alert.signal == s and _contains(alert.scope, scope) for s, scope in also_trips(incident))


def _related(alert: Alert, incident: IncidentTruth, extra: timedelta) -> bool:
    """A looser tie: during the incident, on a scope value the incident names (its route, its users)."""
    if not incident.start_at - SLACK <= alert.opened_at <= incident.end_at + extra:
        return False
    names = set(incident.scope.values()) | {str(v) for v in incident.details.values() if isinstance(v, str)}
    names |= {u for u in incident.details.get("users", [])}
    return any(v in names for k, v in alert.scope.items() if k != "project")


@dataclass
class Score:
    """Precision and recall of one evaluation."""

    detections: list[Detection]
    true_alerts: list[Alert]
    false_alerts: list[tuple[Alert, str]]  # (alert, 'quiet' | 'unexplained' | 'related to <incident>')
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def recall(self) -> float:
        return sum(d.detected for d in self.detections) / max(1, len(self.detections))

    @property
    def precision(self) -> float:
        return len(self.true_alerts) / max(1, len(self.true_alerts) + len(self.false_alerts))

    @property
    def precision_with_consequences(self) -> float:
        """Counting alerts on the incident's own route / users during it as legitimate."""
        related = sum(1 for _, why in self.false_alerts if why.startswith("related"))
        return (len(self.true_alerts) + related) / max(1, len(self.true_alerts) + len(self.false_alerts))


def score(truth: GroundTruth, alerts: list[Alert], quiet_alerts: list[Alert], settings: Settings) -> Score:
    """Score the alerts of the incident run and of the quiet run against the truth."""
    detections = [detect(i, alerts, settings) for i in truth.incidents]
    extra = timedelta(hours=1)
    true_alerts, false_alerts = [], []
    for alert in alerts:
        if any(_explains(alert, i, settings, extra=extra) for i in truth.incidents):
            true_alerts.append(alert)
            continue
        related = next((i.name for i in truth.incidents if _related(alert, i, extra)), None)
        false_alerts.append((alert, f"related to {related}" if related else "unexplained"))
    false_alerts += [(a, "quiet") for a in quiet_alerts]
    return Score(detections, true_alerts, false_alerts)


def report(result: Score, *, calls: int, days: int) -> str:
    """A Markdown section for BENCHMARKS.md."""
    rows = []
    for d in result.detections:
        delay = f"{d.delay.total_seconds() / 60:.0f} min" if d.delay is not None else "—"
        cause = (d.alert.cause[:110] + "…") if d.alert and len(d.alert.cause) > 110 else (d.alert.cause if d.alert else "")
        rows.append(f"| {d.incident.name} | {'yes' if d.detected else '**no**'} | "
                    f"{d.alert.severity if d.alert else '—'} | {delay} | {cause.replace('|', '/')} |")
    false_rows = "\n".join(f"| {a.signal} | {','.join(f'{k}={v}' for k, v in a.scope.items())} | "
                           f"{a.opened_at:%m-%d %H:%M} | {why} |" for a, why in result.false_alerts) or "| — | | | |"
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    return f"""
{days} simulated days ({calls:,} calls with incidents, the same traffic without them), every signal
evaluated minute by minute after a 2-day warm-up with the scheduler's own code (`alerts.evaluate`).
Detection = the incident's signal fires for a scope containing the truth's, at the expected
severity, within the rule's window + sustain + step (+5 min) of the start (budgets: within the
truth's ±2% pricing window + one step).

**Recall {result.recall:.0%}** ({sum(d.detected for d in result.detections)}/{len(result.detections)} incidents);
**precision {result.precision:.0%}** ({len(result.true_alerts)} alerts explained by an incident or its
`also_trips`, {len(result.false_alerts)} not); {result.precision_with_consequences:.0%} when alerts on an
incident's own route or users during it count as legitimate. Evaluation time: {seconds}.

| incident | detected | severity | delay | probable cause in the alert |
| --- | --- | --- | ---: | --- |
{chr(10).join(rows)}

Alerts not explained by the truth:

| signal | scope | opened | why |
| --- | --- | --- | --- |
{false_rows}
"""


def run(days: int, calls_per_day: int, store: Path) -> tuple[Score, int]:
    """Build (once) the two stores under `store` and score a fresh evaluation of each."""
    base = Settings(home=store / "home", warehouse={"path": store / "warehouse"})
    truth = ground_truth(config(days, calls_per_day))
    alerts: dict[str, list[Alert]] = {}
    seconds: dict[str, float] = {}
    calls = 0
    for name, incidents in (("incidents", True), ("quiet", False)):
        with Warehouse.embedded(store / "warehouse", f"signal_eval_{name}") as wh:
            migrate(wh)
            if not wh.scalar("SELECT count() FROM calls"):
                load(wh, base, config(days, calls_per_day, incidents=incidents))
            for table in ("alert_incidents", "alert_events", "alert_outbox", "signal_watermarks"):
                wh.command(f"TRUNCATE TABLE {table}")
            cfg = config(days, calls_per_day, incidents=incidents)
            alerts[name], seconds[name] = evaluate(wh, settings_for(ground_truth(cfg), base), cfg)
            if incidents:
                calls = int(wh.scalar("SELECT count() FROM calls"))
    result = score(truth, alerts["incidents"], alerts["quiet"], settings_for(truth, base))
    result.seconds = seconds
    return result, calls


def main() -> None:
    from bench.report import record

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--calls-per-day", type=int, default=30_000)
    args = parser.parse_args()
    store = Path(__file__).resolve().parent / "out" / "signal-eval"
    result, calls = run(args.days, args.calls_per_day, store)
    body = report(result, calls=calls, days=args.days)
    print(body)
    record("Signal detection against the simulator's ground truth", body)


if __name__ == "__main__":
    main()
