"""Alert precision on traffic the rules were not tuned on: how many incidents a day open on quiet
traffic, how many pages nothing explains, how many opened incidents an injected incident
explains, and whether every injected incident is caught at its severity in time.

Generator-agnostic: each `--traffic MODULE` (repeatable; default `bench.alerts_traffic`) exposes
`START` and `scenarios(days, warmup_days) -> list[Scenario]` (`bench.alert_cases`). Per generator,
every scenario's calls go through the real pipeline and its tool runs through `ToolRunWriter` into
a real embedded warehouse (one database per generator, rebuilt when the traffic changes), the
scenarios' budgets are configured as `signals.budgets`, and the signals are evaluated minute by
minute after the warm-up with the scheduler's own code (`alerts.evaluate`). One BENCHMARKS.md
section per generator and seed set (`Scenario.seed_set`).

Scoring. An opened incident (info notes such as "new spend source" are no incidents) is explained
when an injected incident of the same project names its signal, or one it legitimately trips too
(`also`), its scope — or one of the scopes it groups — contains the injected one's, and it opened
between the injection's start − 5 min and its end + 1 h. Pages = events that notify (opened,
escalated, re-notified). Detected = an incident of the injected one's signal and scope opened
between its start − 5 min and its end reached the expected severity; time to detect counts from
`crosses_at` (when the generator says the condition became observable); in time = ≤ the rule's
window + sustain + 5 min. "Incidents opened" per injected incident shows grouping (one cause, one
incident); "cause" whether the first page at the expected severity named the injected change
(`cause_hint`).

Recall is reported for the issue's ten incident kinds apart from the extra kinds a generator marks
(`Incident.extra`: a day-long spend level shift; the budget forecast is one of the ten). An incident the generator marks
not observable (`Incident.observable`) is listed with the reason and counted neither as detected nor
as missed: a level shift no larger than the route's own quiet day-long shifts is a product decision,
not a miss — the benchmark's quiet traffic contains day-long shifts of up to ×2.5 on purpose, and the
precision bar is kept rather than paging on every one of them.

Usage: python -m bench.alerts_precision [--traffic bench.alerts_traffic]… [--days 21] [--warmup-days 7]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import json
import os
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import polars as pl

from alerts.evaluate import evaluate_signals
from bench.alert_cases import Incident, Scenario
from llmledger.settings import Budget, Settings
from warehouse.client import Warehouse
from warehouse.migrate import migrate
from warehouse.queries import alerts as alert_queries
from warehouse.queries.scope import Scope

SLACK = timedelta(minutes=5)
AFTER = timedelta(hours=1)
NOTIFYING = ("opened", "escalated", "renotified")
NOTES = ("noted",)  # info events: reported once, never a page, no incident
STORE = Path(__file__).resolve().parent / "out" / "alerts-precision"


@dataclass
class Opened:
    """An incident the evaluation opened."""

    incident_id: str
    signal: str
    scope: dict[str, str]
    members: list[dict[str, str]]  # the scopes it groups (its own first)
    team: str
    opened_at: datetime
    critical_at: datetime | None
    pages: int
    first_cause: dict[str, str] = field(default_factory=dict)  # severity → cause of its first page at it

    project_of: str = ""

    @property
    def project(self) -> str:
        return self.scope.get("project") or self.project_of

    def covers(self, wanted: dict[str, str]) -> bool:
        """True when the incident's scope, one of its grouped scopes or its team names `wanted`."""
        return any(all((s.get(k) == v) or (k == "team" and self.team == v) for k, v in wanted.items())
                   for s in [self.scope, *self.members])


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def opened(wh: Warehouse) -> tuple[list[Opened], pl.DataFrame]:
    """Every incident the evaluation opened, with its pages; and the info notes."""
    events = alert_queries.incident_events(wh, Scope.all(), limit=10_000_000)
    notes = events.filter(pl.col("kind").is_in(NOTES))
    out = []
    for (incident_id,), group in events.filter(~pl.col("kind").is_in(NOTES)).sort("at").group_by(
            ["incident_id"], maintain_order=True):
        first = group.row(0, named=True)
        critical = group.filter(pl.col("to_state") == "critical")["at"]
        pages = group.filter(pl.col("kind").is_in(NOTIFYING))
        members: list[dict[str, str]] = []
        for text in group["detail"].to_list():
            for member in json.loads(text or "{}").get("members", []):
                if member not in members:
                    members.append(member)
        causes = {}
        for row in pages.iter_rows(named=True):
            causes.setdefault(row["severity"], row["cause"])
        out.append(Opened(incident_id, first["signal"], dict(first["scope"]), members, first["team"],
                          _utc(first["at"]), _utc(critical[0]) if len(critical) else None, pages.height, causes,
                          project_of=first["project"]))
    return out, notes


def _explains(incident: Incident, alert: Opened) -> bool:
    if not incident.start - SLACK <= alert.opened_at <= incident.end + AFTER:
        return False
    if alert.signal == incident.signal and alert.covers(incident.scope):
        return True
    return alert.signal in incident.also  # the incident's own money moving, say


def allowed(signal: str, settings: Settings) -> timedelta:
    """How long after the condition crosses its threshold the signal may reach the severity."""
    rule = getattr(settings.signals, signal)
    return timedelta(minutes=rule.window_min + rule.sustain_min) + SLACK


@dataclass
class Detection:
    """How one injected incident was detected."""

    project: str
    incident: Incident
    hits: int
    delay: timedelta | None
    in_time: bool
    cause_ok: bool | None  # None: the incident names no cause hint


def detect(incident: Incident, project: str, alerts: list[Opened], settings: Settings) -> Detection:
    """The first incident of the injected one's signal and scope to reach its severity."""
    hits = sorted((a for a in alerts if a.project == project and a.signal == incident.signal
                   and a.covers(incident.scope) and incident.start - SLACK <= a.opened_at <= incident.end),
                  key=lambda a: a.opened_at)
    reached = [(a.critical_at if incident.severity == "critical" else a.opened_at, a) for a in hits]
    reached = sorted(((at, a) for at, a in reached if at is not None), key=lambda pair: pair[0])
    if not reached:
        return Detection(project, incident, len(hits), None, False, None if not incident.cause_hint else False)
    at, alert = reached[0]
    delay = at - incident.crosses_at
    cause = alert.first_cause.get(incident.severity, "") or next(iter(alert.first_cause.values()), "")
    return Detection(project, incident, len(hits), delay,
                     incident.observable and delay <= allowed(incident.signal, settings),
                     (incident.cause_hint in cause) if incident.cause_hint else None)


def _recall(detections: list[Detection]) -> str:
    """'in time/observable', and how many were not observable."""
    seen = [d for d in detections if d.incident.observable]
    text = f"{sum(d.in_time for d in seen)}/{len(seen)}"
    return text + (f", {len(detections) - len(seen)} not observable" if len(seen) < len(detections) else "")


def score(alerts: list[Opened], notes: pl.DataFrame, scenarios: list[Scenario], settings: Settings,
          days: float) -> dict:
    """Per signal: quiet incidents/day, unexplained pages per project-day, precision; recall and
    time to detect per injected incident; info notes per project-day."""
    members = {s.project: s for s in scenarios}
    mine = [a for a in alerts if a.project in members]
    explained, unexplained = [], []
    for a in mine:
        (explained if any(_explains(i, a) for i in members[a.project].incidents) else unexplained).append(a)
    per_signal: dict[str, Counter] = defaultdict(Counter)
    for a in explained:
        per_signal[a.signal]["explained"] += 1
    for a in unexplained:
        per_signal[a.signal]["unexplained"] += 1
        per_signal[a.signal]["unexplained_pages"] += a.pages
        if members[a.project].quiet:
            per_signal[a.signal]["quiet"] += 1
    detections = [detect(i, s.project, mine, settings) for s in scenarios for i in s.incidents]
    quiet = [s for s in scenarios if s.quiet]
    my_notes = notes.filter(pl.col("project").is_in(list(members)))
    return {"projects": len(scenarios), "quiet_projects": len(quiet), "quiet_days": len(quiet) * days,
            "project_days": len(scenarios) * days, "per_signal": per_signal, "explained": len(explained),
            "unexplained": unexplained, "unexplained_pages": sum(a.pages for a in unexplained),
            "detections": detections, "notes": my_notes.height}


def _minutes(delta: timedelta | None) -> str:
    return f"{delta.total_seconds() / 60:.0f} min" if delta is not None else "—"


def _since_start(d: Detection) -> str:
    """A not-observable incident's detection, from its start (its crossing never came)."""
    if d.delay is None:
        return "—"
    return f"opened {_minutes(d.delay + d.incident.crosses_at - d.incident.start)} after start"


def report(r: dict, *, generator: str, seed_set: str, calls: int, days: int, warmup: int, seconds: float,
           load: str) -> str:
    """A Markdown section for BENCHMARKS.md."""
    total = r["explained"] + len(r["unexplained"])
    precision = r["explained"] / total if total else 1.0
    detections = r["detections"]
    ten = [d for d in detections if not d.incident.extra]
    extra = [d for d in detections if d.incident.extra]
    ten_seen = [d for d in ten if d.incident.observable]
    recall = sum(d.in_time for d in ten_seen) / max(1, len(ten_seen))
    per_day = r["unexplained_pages"] / max(r["project_days"], 1)
    role = {"tune": " — the set rule changes were checked against while tuning",
            "held-out": " — no threshold was chosen on it",
            "fresh": " — its own seeds and distributions, seen once (on the previous round's final rules), no longer held out",
            "fresh-2": " — its own seeds and distributions, seen once (on the previous round's final rules), no longer held out",
            "fresh-3": " — its own seeds and distributions, seen once (on the previous round's final rules), no longer held out",
            "fresh-4": " — seeds and distributions fixed before this round's rule changes, run only on its final rules"}.get(seed_set, "")
    lines = [f"`{generator}`, {seed_set} seeds{role}: {r['projects']} projects ({r['quiet_projects']} quiet), "
             f"{calls:,} calls, {days} days each; signals evaluated minute by minute over the last {days - warmup} "
             f"days after a {warmup}-day warm-up (the generator's whole evaluation {seconds:.0f} s; `uptime` load "
             f"before the run: {load}).", "",
             f"**Unexplained pages per project-day: {per_day:.2f}**; opened incidents explained by an injected one: "
             f"**{precision:.0%}** ({r['explained']}/{total}); recall of the ten incident kinds in time at the "
             f"expected severity: **{recall:.0%}** ({_recall(ten)}); extra kinds (not among the ten), in time: "
             f"{_recall(extra) if extra else 'none injected'}; every injected incident, a not observable one "
             f"counted as missed: {sum(d.in_time for d in detections)}/{len(detections)}; "
             f"info notes (new spend sources): {r['notes'] / max(r['project_days'], 1):.2f} per project-day.", "",
             "| signal | quiet incidents/day | unexplained pages/project-day | precision |",
             "| --- | ---: | ---: | ---: |"]
    for signal, c in sorted(r["per_signal"].items()):
        n = c["explained"] + c["unexplained"]
        lines.append(f"| {signal} | {c['quiet'] / max(r['quiet_days'], 1):.2f} | "
                     f"{c['unexplained_pages'] / max(r['project_days'], 1):.2f} | {c['explained'] / n:.0%} |")
    if extra:
        lines += ["", "Extra kinds are not among the issue's ten and are reported apart. A day-long level shift "
                  "counts only where it was observable: where its six hours of spend rose above the largest "
                  "six-hour ratio the route reached on its own quiet days before. The quiet traffic has day-long "
                  "shifts of up to ×2.5 on purpose, and the precision bar is kept rather than paging on all of "
                  "them, so a shift no larger than those is listed as not observable, not counted as a miss."]
    for title, group in (("The ten incident kinds", ten), ("Extra kinds", extra)):
        if not group:
            continue
        lines += ["", f"{title}:", "", "| project | injected | signal | severity | in time | incidents opened | "
                  "time to detect | cause named | counted from |", "| --- | --- | --- | --- | --- | ---: | ---: | --- | --- |"]
        for d in group:
            cause = "—" if d.cause_ok is None else ("yes" if d.cause_ok else "**no**")
            in_time = "not observable" if not d.incident.observable else ("yes" if d.in_time else "**no**")
            counted = f"{d.incident.crosses_at:%m-%d %H:%M}" + (f" ({d.incident.observability})"
                                                                if d.incident.observability else "")
            lines.append(f"| {d.project} | {d.incident.kind} | {d.incident.signal} | {d.incident.severity} | "
                         f"{in_time} | {d.hits} | {_minutes(d.delay) if d.incident.observable else _since_start(d)} | "
                         f"{cause} | {counted} |")
    if r["unexplained"]:
        lines += ["", "Unexplained incidents:", "", "| project | signal | scope | opened | pages |",
                  "| --- | --- | --- | --- | ---: |"]
        for a in sorted(r["unexplained"], key=lambda a: (a.project, a.opened_at))[:40]:
            scope = ", ".join(f"{k}={v}" for k, v in a.scope.items() if k != "project")
            lines.append(f"| {a.project} | {a.signal} | {scope} | {a.opened_at:%m-%d %H:%M} | {a.pages} |")
    return "\n".join(lines) + "\n"


def fingerprint(scenarios: list[Scenario]) -> str:
    """What the traffic is, cheaply: projects, row counts and content hashes."""
    digest = hashlib.sha256()
    for s in scenarios:
        digest.update(s.project.encode())
        for frame in (s.calls, s.tool_runs):
            digest.update(f"{frame.height}:{int(frame.hash_rows(seed=7).sum()) if frame.height else 0}".encode())
    return digest.hexdigest()[:16]


def settings_for(scenarios: list[Scenario], home: Path, warehouse: Path) -> Settings:
    """Settings with every scenario's budgets."""
    base = Settings(home=home, warehouse={"path": warehouse})
    # a scenario's budget is its project's (a team budget of one project, not of every project's team)
    budgets = [Budget(**{"project": s.project, **b}) for s in scenarios for b in s.budgets]
    return base.model_copy(update={"signals": base.signals.model_copy(update={"budgets": budgets})})


def load(wh: Warehouse, settings: Settings, scenarios: list[Scenario]) -> None:
    """Ingest every scenario's calls (real pipeline) and tool runs."""
    from ingest.pipeline import Pipeline
    from ingest.tool_runs import ToolRunWriter

    runs = ToolRunWriter(wh)
    with Pipeline(wh, settings) as pipeline:
        for s in scenarios:
            for day in _days(s.calls):
                pipeline.ingest_frame(day, source="alerts-precision")
            if s.tool_runs.height:
                for day in _days(s.tool_runs):
                    runs.write(day)


def _days(frame: pl.DataFrame, rows: int = 200_000) -> list[pl.DataFrame]:
    """A scenario's rows in ingest-sized batches: by UTC day when `ts` is a datetime, else by count."""
    if frame.schema.get("ts") is not None and frame.schema["ts"].is_temporal():
        return frame.with_columns(pl.col("ts").dt.date().alias("_day")).partition_by(
            "_day", include_key=False, maintain_order=True)
    return [frame.slice(i, rows) for i in range(0, frame.height, rows)]


def run_generator(name: str, days: int, warmup: int, store: Path = STORE, seed_set: str | None = None
                  ) -> tuple[ModuleType, list[Scenario], list[Opened], pl.DataFrame, Settings, int, float]:
    """Generate, (re)load when the traffic changed, evaluate afresh (only the projects of `seed_set`
    when given: tuning never looks at the held-out seeds); the alerts and notes."""
    module = importlib.import_module(name)
    # a generator that can build one seed set alone does so, into a database of that set's own
    alone = seed_set is not None and "seed_sets" in inspect.signature(module.scenarios).parameters
    scenarios = module.scenarios(days, warmup, seed_sets=[seed_set]) if alone else module.scenarios(days, warmup)
    projects = [s.project for s in scenarios]
    if len(set(projects)) != len(projects):
        raise ValueError(f"{name}: project names repeat")
    database = "ap_" + re.sub(r"\W", "_", name) + ("_" + re.sub(r"\W", "_", seed_set) if alone else "")
    settings = settings_for(scenarios, store / "home", store / "warehouse")
    mark = store / f"{database}.fingerprint"
    print_ = fingerprint(scenarios)
    with Warehouse.embedded(store / "warehouse", database) as wh:
        if not mark.exists() or mark.read_text() != print_:
            wh.command(f"DROP DATABASE IF EXISTS {wh.database}")
            wh.command(f"CREATE DATABASE IF NOT EXISTS {wh.database}")
            migrate(wh)
            load(wh, settings, scenarios)
            mark.write_text(print_)
        migrate(wh)
        for table in ("alert_incidents", "alert_events", "alert_outbox", "signal_watermarks"):
            wh.command(f"TRUNCATE TABLE {table}")
        start = module.START
        began = time.perf_counter()
        chosen = [s.project for s in scenarios if seed_set is None or s.seed_set == seed_set]
        evaluate_signals(wh, settings, since=start + timedelta(days=warmup), at=start + timedelta(days=days),
                         scope=Scope.of(*chosen) if seed_set is not None else None)
        seconds = time.perf_counter() - began
        calls = int(wh.scalar("SELECT count() FROM calls"))
        scenarios = [s for s in scenarios if s.project in chosen]
        alerts, notes = opened(wh)
    return module, scenarios, alerts, notes, settings, calls, seconds


def main() -> None:
    from bench.report import record

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traffic", action="append", help="Generator module (repeatable).")
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--warmup-days", type=int, default=7)
    parser.add_argument("--label", default="", help="Section suffix (recorded separately).")
    parser.add_argument("--no-record", action="store_true", help="Print only.")
    parser.add_argument("--seed-set", help="Evaluate and report only this seed set (e.g. tune, while tuning).")
    args = parser.parse_args()
    STORE.mkdir(parents=True, exist_ok=True)
    for name in args.traffic or ["bench.alerts_traffic"]:
        load_avg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        _, scenarios, alerts, notes, settings, calls, seconds = run_generator(name, args.days, args.warmup_days,
                                                                              seed_set=args.seed_set)
        sets: dict[str, list[Scenario]] = defaultdict(list)
        for s in scenarios:
            sets[s.seed_set or "all"].append(s)
        for seed_set, members in sets.items():
            result = score(alerts, notes, members, settings, args.days - args.warmup_days)
            set_calls = sum(s.calls.height for s in members)
            body = report(result, generator=name, seed_set=seed_set, calls=set_calls, days=args.days,
                          warmup=args.warmup_days, seconds=seconds, load=load_avg)
            print(f"## {name} · {seed_set}\n{body}")
            if not args.no_record:
                title = f"Alert precision: {name}, {seed_set} seeds" + (f" ({args.label})" if args.label else "")
                record(title, body)


if __name__ == "__main__":
    main()
