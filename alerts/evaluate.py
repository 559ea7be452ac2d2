"""Signal evaluation: run every enabled family over the instants not yet evaluated, step each
(signal, scope) through the lifecycle, and write incidents, events and notifications to the
warehouse (the outbox) before anything is sent.

The same code serves the minute-by-minute job (one instant per family) and a backfill over a range
(`since`): instants at or before a family's watermark are never evaluated again, and every id is
deterministic, so evaluating the same window twice changes nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import polars as pl

from alerts.model import EventKind, scope_key
from alerts.outbox import build_notifications
from alerts.rules import FAMILIES, Family, Rule, RuleContext
from alerts.rules.base import floor_time, format_value, grid
from alerts.state import Event, Incident, Observation, Policy, advance, expire
from alerts.store import (
    STATE_LOCK,
    load_open_incidents,
    write_events,
    write_incidents,
    write_notifications,
    write_watermark,
)
from llmledger.settings import Settings
from warehouse.client import Warehouse
from warehouse.queries import alerts as queries
from warehouse.queries.scope import Scope

log = logging.getLogger(__name__)

STANDARD = {"at", "level", "peak", "value", "threshold", "volume", "point_level", "team", "project", "enabled",
            "warning", "critical", "min_volume"}
SPARK_POINTS = 12
CHUNK = timedelta(days=1)


@dataclass
class EvaluationReport:
    """What one evaluation did."""

    ranges: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    notifications: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def fired(self) -> list[Event]:
        """Events that opened or escalated an incident."""
        return [e for e in self.events if e.kind in (EventKind.OPENED, EventKind.ESCALATED)]


def policy_for(settings: Settings, rule: Rule) -> Policy:
    """The lifecycle policy of a rule."""
    return Policy(
        renotify_after=timedelta(minutes=settings.signals.renotify_after_min),
        resolve_unobserved_after=timedelta(minutes=settings.signals.resolve_unobserved_after_min),
        notify_resolved=rule.notify_resolved,
        renotify=rule.renotify,
        renotify_backoff=tuple(timedelta(minutes=m) for m in settings.signals.renotify_backoff_min),
    )


def _silenced(silences: list[dict[str, Any]], signal: str, scope: dict[str, str], at: datetime) -> bool:
    for s in silences:
        starts, ends = s["starts_at"], s["ends_at"]
        starts = starts if starts.tzinfo else starts.replace(tzinfo=UTC)
        ends = ends if ends.tzinfo else ends.replace(tzinfo=UTC)
        if s["signal"] in ("", signal) and starts <= at < ends and all(
            fnmatchcase(scope.get(k, ""), v) for k, v in dict(s["matchers"]).items()
        ):
            return True
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _RuleRun:
    """One rule's lifecycle over a range, its open incidents kept in memory between chunks."""

    def __init__(self, ctx: RuleContext, settings: Settings, rule: Rule, open_incidents: dict[str, Incident],
                 silences: list[dict[str, Any]]) -> None:
        self.ctx, self.settings, self.rule = ctx, settings, rule
        self.policy = policy_for(settings, rule)
        self.open = open_incidents
        self.silences = silences
        self.changed: dict[str, Incident] = {}
        self.events: list[Event] = []
        self.silenced_events: set[str] = set()

    def _summary(self, row: dict[str, Any]) -> str:
        try:
            return self.rule.describe(row)
        except (KeyError, TypeError, ValueError):
            return f"{self.rule.title}: {format_value(row.get('value'), self.rule.unit)}"

    def _at_onset(self, incident: Incident, row: dict[str, Any]) -> dict[str, Any]:
        """`row` with `onset` no later than where the incident's condition began: an escalation's
        cause is looked for at the incident's onset, not in the hour before the escalation."""
        sustain_for = timedelta(minutes=getattr(self.rule.settings(self.ctx), "sustain_min", 0))
        began = incident.opened_at - sustain_for
        onset = row.get("onset")
        if isinstance(onset, datetime):
            onset = onset if onset.tzinfo else onset.replace(tzinfo=UTC)
            began = min(began, onset)
        return {**row, "onset": began}

    def _record(self, incident: Incident, event: Event | None, row: dict[str, Any] | None) -> Incident:
        if event is not None:
            if event.kind is EventKind.RESOLVED and (row is None or row.get("value") is None):
                if "no data" not in incident.summary:
                    incident = replace(incident, summary=f"{self.rule.title}: back to normal")
            elif row is not None:
                incident = replace(incident, summary=self._summary(row))
            if event.kind in (EventKind.OPENED, EventKind.ESCALATED) and row is not None:
                try:
                    why = self.rule.explain(self.ctx, incident.scope, event.at, self._at_onset(incident, row))
                    incident = replace(incident, cause=why.cause, next_step=why.next_step,
                                       detail={**incident.detail, **why.detail})
                except Exception:  # noqa: BLE001 - a failed cause query must not lose the alert
                    log.exception("explaining %s %s failed", self.rule.name, incident.scope_key)
                    incident = replace(incident, next_step=self.rule.next_step)
            silenced = _silenced(self.silences, self.rule.name, incident.scope, event.at)
            if event.notify and not silenced:
                incident = replace(incident, notified_at=event.at)
            event = replace(event, incident=incident)
            if silenced:
                self.silenced_events.add(event.event_id)
            self.events.append(event)
        self.changed[incident.incident_id] = incident
        if incident.is_open:
            self.open[incident.scope_key] = incident
        else:
            self.open.pop(incident.scope_key, None)
        return incident

    def process(self, frame: pl.DataFrame, instants: list[datetime]) -> None:
        """Step every interesting scope of `frame` (rows per scope and instant) through the lifecycle."""
        rule = self.rule
        seen: set[str] = set()
        if not frame.is_empty():
            keys = [k for k in rule.scope_keys if k in frame.columns]
            active = frame.filter((pl.col("level") > 0) | (pl.col("peak") > 0)).select(keys).unique()
            open_scopes = [inc.scope for inc in self.open.values()]
            candidates = frame.join(active, on=keys, how="semi")
            if open_scopes:
                wanted = frame.select(keys).unique().filter(pl.struct(keys).map_elements(
                    lambda s: scope_key(rule.scope_of({**s})) in self.open, return_dtype=pl.Boolean))
                candidates = pl.concat([candidates, frame.join(wanted, on=keys, how="semi")]).unique(
                    subset=[*keys, "at"], keep="first")
            for _, group in candidates.sort([*keys, "at"]).group_by(keys, maintain_order=True):
                self._step_scope(group)
                seen.add(scope_key(rule.scope_of(group.row(0, named=True))))
        for key, incident in list(self.open.items()):
            if key in seen:
                continue
            if rule.absent_means_ok:
                obs = Observation(instants[0], 0, 0, None, None, "")
                incident, event = advance(incident, obs, signal=rule.name, scope=incident.scope,
                                          project=incident.project, team=incident.team, unit=rule.unit,
                                          levels=rule.levels, policy=self.policy)
                self._record(incident, event, None)  # type: ignore[arg-type]
        for key, incident in list(self.open.items()):
            incident, event = expire(incident, instants[-1], self.policy)
            if event is not None:
                self._record(incident, event, None)

    def _step_scope(self, group: pl.DataFrame) -> None:
        rule = self.rule
        rows = group.to_dicts()
        scope = rule.scope_of(rows[0])
        key = scope_key(scope)
        incident = self.open.get(key)
        values = [v for v in group["value"].to_list()] if "value" in group.columns else []
        extra = [c for c in group.columns if c not in STANDARD and c not in rule.scope_keys]
        last_row: dict[str, Any] | None = None
        for i, row in enumerate(rows):
            at = row["at"]
            if incident is not None and incident.is_open and at <= incident.observed_at:
                continue  # already judged (a re-run after an interrupted write)
            peak = row["peak"] if row["peak"] is not None else -1
            series = [float(v) for v in values[max(0, i - SPARK_POINTS + 1): i + 1]
                      if v is not None and v == v and v != float("inf")]
            obs = Observation(at, int(row["level"] or 0), int(peak), row.get("value"), row.get("threshold"), "",
                              series, {c: _plain(row.get(c)) for c in extra})
            incident, event = advance(incident, obs, signal=rule.name, scope=scope,
                                      project=str(row.get("project") or scope.get("project", "")),
                                      team=str(row.get("team") or ""), unit=rule.unit, levels=rule.levels,
                                      policy=self.policy)
            if incident is None:
                continue
            if event is not None:
                incident = self._record(incident, event, row)
            elif incident.is_open:
                last_row = row
                self.open[key] = incident
        if incident is not None and incident.is_open:
            if last_row is not None:
                incident = replace(incident, summary=self._summary(last_row))
            self.changed[incident.incident_id] = incident
            self.open[key] = incident


def evaluate_signals(
    wh: Warehouse,
    settings: Settings,
    *,
    at: datetime | None = None,
    since: datetime | None = None,
    scope: Scope | None = None,
    families: tuple[Family, ...] = FAMILIES,
    max_catchup: timedelta = timedelta(minutes=15),
) -> EvaluationReport:
    """Evaluate every enabled family at the instants after its watermark, up to `at` (default: now
    minus the evaluation lag). Without `since`, a family that fell behind catches up at most
    `max_catchup`; with `since`, every instant from there is evaluated (a backfill)."""
    scope = scope or Scope.all()
    until = at or datetime.now(UTC) - timedelta(seconds=settings.signals.evaluation_lag_s)
    report = EvaluationReport()
    ctx = RuleContext(wh, settings.signals, scope)
    marks = queries.watermarks(wh)
    silences = queries.silences(wh).to_dicts()
    for family in families:
        if not family.enabled(settings.signals):
            continue
        began = time.perf_counter()
        step = family.step(settings.signals)
        end = floor_time(until, step)
        if since is not None:
            start = floor_time(since, step)
        elif family.name in marks:
            start = end - max_catchup + step  # a scheduler that was down catches up a little, not all
        else:
            start = end  # first evaluation ever: now only
        if family.name in marks:
            start = max(start, marks[family.name] + step)
        instants = grid(start, end, step)
        if not instants:
            continue
        rules = family.active_rules(settings.signals)
        with STATE_LOCK:
            runs = {r.name: _RuleRun(ctx, settings, r, load_open_incidents(wh, r.name), silences) for r in rules}
            chunk_start = instants[0]
            while chunk_start <= instants[-1]:
                chunk = [t for t in instants if chunk_start <= t < chunk_start + CHUNK]
                frames = family.observe(ctx, chunk)
                for name, run in runs.items():
                    if name in frames:
                        run.process(frames[name], chunk)
                chunk_start += CHUNK
            events = [e for run in runs.values() for e in run.events]
            write_incidents(wh, [i for run in runs.values() for i in run.changed.values()])
            write_events(wh, events)
            silenced = set().union(*(run.silenced_events for run in runs.values()))
            rules_by_name = {r.name: r for r in rules}
            notifications = build_notifications(wh, settings, events, rules_by_name, silenced)
            write_notifications(wh, notifications)
            write_watermark(wh, family.name, instants[-1])
        report.ranges[family.name] = (instants[0], instants[-1])
        report.events.extend(events)
        report.notifications += len(notifications)
        report.seconds[family.name] = time.perf_counter() - began
    return report
