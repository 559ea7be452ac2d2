"""Alert precision on traffic the rules were not tuned on: how many incidents a day open on quiet
traffic, how many opened incidents an injected incident explains, and whether every injected
incident is caught at its severity in time.

Traffic comes from `bench.alerts_traffic` (its own generator). Two sets of projects: the "tune"
seeds (the ones a rule change may be checked against) and the "held-out" seeds, with heavier
tails, more bursts, larger level shifts and more cache misses, that no threshold was chosen on.
Each set has quiet projects (no incident) and incident projects (ramps and partial rollouts).
Every call goes through the real pipeline into the real warehouse; the signals are evaluated
minute by minute after a warm-up with the scheduler's own code (`alerts.evaluate`).

An opened incident is explained when an injected incident of the same project names its signal
(or one it legitimately trips too), its scope contains the injected one's, and it opened between
the injection's start − 5 min and its end + 1 h. Pages = events that notify (opened, escalated,
re-notified). Time to detect counts from when the ramp crosses the rule's threshold; in time means
≤ window + sustain + step + 5 min.

Usage: python -m bench.alerts_precision [--days 6] [--warmup-days 3]  (records BENCHMARKS.md)
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from alerts.evaluate import evaluate_signals
from bench.alerts_traffic import START, Incident, Shape, project_calls
from llmledger.settings import Settings
from warehouse.client import Warehouse
from warehouse.migrate import migrate
from warehouse.queries import alerts as alert_queries
from warehouse.queries.scope import Scope

SLACK = timedelta(minutes=5)
AFTER = timedelta(hours=1)
NOTIFYING = ("opened", "escalated", "renotified")


def incidents_for(day0: int) -> list[Incident]:
    """The injected incidents of an incident project, from day `day0` (0 = the range's first day)."""
    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return START + timedelta(days=day0 + day, hours=hour, minutes=minute)

    return [
        Incident("cache_breakpoint_dropped", "cache_not_applied", {"route": "assistant-chat"}, at(0, 10),
                 at(0, 13), "critical", at(0, 10, 20)),
        Incident("prefix_broken", "cache_hit_collapse", {"route": "assistant-chat"}, at(0, 16), at(0, 19),
                 "critical", at(0, 16, 18), also=("spend_spike",)),
        Incident("provider_slowdown", "latency_tail", {"provider": "anthropic"}, at(1, 9), at(1, 12), "critical",
                 at(1, 9, 10)),
        Incident("runaway_agent", "spend_spike", {"route": "search-answers"}, at(1, 15), at(1, 17), "critical",
                 at(1, 15, 30), also=("spend_spike",)),
        Incident("reasoning_runaway", "reasoning_runaway", {"route": "deep-research"}, at(2, 11), at(2, 11, 40),
                 "critical", at(2, 11), also=("spend_spike", "latency_tail")),
    ]


def projects(days: int, warmup: int) -> dict[str, tuple[str, Shape]]:
    """project → (set, shape): per set, two quiet projects and one with incidents."""
    heavy = {"noise_df": 2.0, "noise_scale": 0.42, "bursts_per_day": 1.0, "level_shift": 2.2, "miss_scale": 1.5}
    out: dict[str, tuple[str, Shape]] = {}
    for name, seed, extra, injected in (
        ("tune-q1", 1, {}, False), ("tune-q2", 2, {"noise_scale": 0.36}, False), ("tune-i1", 3, {}, True),
        ("held-q1", 101, heavy, False), ("held-q2", 102, {**heavy, "noise_df": 1.5}, False),
        ("held-i1", 103, heavy, True),
    ):
        shape = Shape(seed=seed, days=days, **extra)
        if injected:
            shape.incidents = incidents_for(warmup)
        out[name] = ("tune" if name.startswith("tune") else "held-out", shape)
    return out


@dataclass
class Opened:
    """An incident the evaluation opened."""

    incident_id: str
    signal: str
    scope: dict[str, str]
    opened_at: datetime
    critical_at: datetime | None
    pages: int


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def opened(wh: Warehouse) -> list[Opened]:
    """Every incident the evaluation opened, with its pages."""
    events = alert_queries.incident_events(wh, Scope.all(), limit=1_000_000)
    out = []
    for (incident_id,), group in events.sort("at").group_by(["incident_id"], maintain_order=True):
        first = group.row(0, named=True)
        critical = group.filter(pl.col("to_state") == "critical")["at"]
        pages = group.filter(pl.col("kind").is_in(NOTIFYING)).height
        out.append(Opened(incident_id, first["signal"], dict(first["scope"]), _utc(first["at"]),
                          _utc(critical[0]) if len(critical) else None, pages))
    return out


def _contains(scope: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(scope.get(k) == v for k, v in wanted.items())


def _explains(incident: Incident, project: str, alert: Opened) -> bool:
    if alert.scope.get("project") != project:
        return False
    if not incident.start - SLACK <= alert.opened_at <= incident.end + AFTER:
        return False
    if alert.signal == incident.signal and _contains(alert.scope, incident.scope):
        return True
    # the incident's own money moving (spend on its route, feature or its users) is a consequence
    return alert.signal in incident.also


def allowed(signal: str, settings: Settings) -> timedelta:
    rule = getattr(settings.signals, signal)
    return timedelta(minutes=rule.window_min + rule.sustain_min + rule.step_min) + SLACK


def score(alerts: list[Opened], plan: dict[str, tuple[str, Shape]], settings: Settings, days: float) -> dict:
    """Per set: quiet incidents/day per signal, precision per signal, recall and time to detect."""
    result: dict[str, dict] = {}
    for group in ("tune", "held-out"):
        members = {p: s for p, (g, s) in plan.items() if g == group}
        quiet = [p for p, s in members.items() if not s.incidents]
        mine = [a for a in alerts if a.scope.get("project") in members]
        explained, unexplained = [], []
        for a in mine:
            shape = members[a.scope["project"]]
            (explained if any(_explains(i, a.scope["project"], a) for i in shape.incidents) else unexplained).append(a)
        per_signal: dict[str, Counter] = defaultdict(Counter)
        for a in explained:
            per_signal[a.signal]["explained"] += 1
        for a in unexplained:
            per_signal[a.signal]["unexplained"] += 1
            if a.scope["project"] in quiet:
                per_signal[a.signal]["quiet"] += 1
                per_signal[a.signal]["quiet_pages"] += a.pages
            per_signal[a.signal]["unexplained_pages"] += a.pages
        detections = []
        for project, shape in members.items():
            for incident in shape.incidents:
                hits = sorted((a for a in mine if a.scope["project"] == project and a.signal == incident.signal
                               and _contains(a.scope, incident.scope)
                               and incident.start - SLACK <= a.opened_at <= incident.end), key=lambda a: a.opened_at)
                fired = None
                if hits:
                    fired = min(((h.critical_at if incident.severity == "critical" else h.opened_at) for h in hits
                                 if (h.critical_at if incident.severity == "critical" else h.opened_at)),
                                default=None)
                delay = fired - incident.crosses_at if fired else None
                detections.append({"project": project, "kind": incident.kind, "signal": incident.signal,
                                   "incidents": len(hits), "severity_ok": fired is not None,
                                   "delay": delay, "in_time": delay is not None and delay <= allowed(incident.signal, settings)})
        result[group] = {"quiet_projects": len(quiet), "projects": len(members), "per_signal": per_signal,
                         "explained": len(explained), "unexplained": len(unexplained),
                         "unexplained_pages": sum(a.pages for a in unexplained), "detections": detections,
                         "quiet_days": len(quiet) * days, "project_days": len(members) * days}
    return result


def report(result: dict, *, calls: int, days: int, warmup: int, seconds: float, load: str) -> str:
    """A Markdown section for BENCHMARKS.md."""
    lines = [f"{calls:,} generated calls (`bench.alerts_traffic`, not the simulator), {days} days per project, "
             f"signals evaluated minute by minute over the last {days - warmup} days after a {warmup}-day warm-up "
             f"(evaluation {seconds:.0f} s; `uptime` load before the run: {load}).", ""]
    for group, r in result.items():
        total = r["explained"] + r["unexplained"]
        precision = r["explained"] / total if total else 1.0
        recall = sum(d["in_time"] for d in r["detections"]) / max(1, len(r["detections"]))
        lines += [f"### {group} seeds ({r['projects']} projects, {r['quiet_projects']} quiet)", "",
                  f"**Unexplained pages per project-day: {r['unexplained_pages'] / r['project_days']:.2f}**; "
                  f"opened incidents explained by an injected one: **{precision:.0%}** ({r['explained']}/{total}); "
                  f"recall in time at the expected severity: **{recall:.0%}**.", "",
                  "| signal | quiet incidents/day | unexplained pages/project-day | precision |",
                  "| --- | ---: | ---: | ---: |"]
        for signal, c in sorted(r["per_signal"].items()):
            n = c["explained"] + c["unexplained"]
            lines.append(f"| {signal} | {c['quiet'] / max(r['quiet_days'], 1):.2f} | "
                         f"{c['unexplained_pages'] / r['project_days']:.2f} | {c['explained'] / n:.0%} |")
        lines += ["", "| injected | signal | detected in time | incidents opened | time to detect |",
                  "| --- | --- | --- | ---: | ---: |"]
        for d in r["detections"]:
            delay = f"{d['delay'].total_seconds() / 60:.0f} min" if d["delay"] is not None else "—"
            lines.append(f"| {d['kind']} | {d['signal']} | {'yes' if d['in_time'] else '**no**'} | "
                         f"{d['incidents']} | {delay} |")
        lines.append("")
    return "\n".join(lines)


def run(days: int, warmup: int, store: Path) -> tuple[dict, int, float]:
    """Build (once) the store, evaluate afresh, score."""
    from ingest.pipeline import Pipeline

    settings = Settings(home=store / "home", warehouse={"path": store / "warehouse"})
    plan = projects(days, warmup)
    with Warehouse.embedded(store / "warehouse", "alerts_precision") as wh:
        migrate(wh)
        if not wh.scalar("SELECT count() FROM calls"):
            with Pipeline(wh, settings) as pipeline:
                for project, (_, shape) in plan.items():
                    frame = project_calls(project, shape)
                    pipeline.ingest_frame(frame, source="alerts-precision")
        for table in ("alert_incidents", "alert_events", "alert_outbox", "signal_watermarks"):
            wh.command(f"TRUNCATE TABLE {table}")
        began = time.perf_counter()
        evaluate_signals(wh, settings, since=START + timedelta(days=warmup), at=START + timedelta(days=days))
        seconds = time.perf_counter() - began
        calls = int(wh.scalar("SELECT count() FROM calls"))
        result = score(opened(wh), plan, settings, days - warmup)
    return result, calls, seconds


def main() -> None:
    import os

    from bench.report import record

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--warmup-days", type=int, default=3)
    parser.add_argument("--label", default="", help="Section suffix, e.g. 'before' (recorded separately).")
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    store = Path(__file__).resolve().parent / "out" / "alerts-precision"
    result, calls, seconds = run(args.days, args.warmup_days, store)
    body = report(result, calls=calls, days=args.days, warmup=args.warmup_days, seconds=seconds, load=load)
    print(body)
    record("Alert precision on independent traffic" + (f" ({args.label})" if args.label else ""), body)


if __name__ == "__main__":
    main()
