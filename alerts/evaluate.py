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

from alerts.model import EventKind, IncidentState, Severity, scope_key, stable_id
from alerts.outbox import build_notifications
from alerts.rules import FAMILIES, Family, Rule, RuleContext
from alerts.rules.base import UNKNOWN, floor_time, format_value, grid
from alerts.settings import AlertingSettings
from alerts.state import Event, Incident, Observation, Policy, advance, expire
from alerts.store import (
    STATE_LOCK,
    load_open_incidents,
    write_events,
    write_incidents,
    write_notifications,
    write_watermark,
)
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


def policy_for(settings: AlertingSettings, rule: Rule) -> Policy:
    """The lifecycle policy of a rule."""
    return Policy(
        renotify_after=timedelta(minutes=settings.signals.renotify_after_min),
        resolve_unobserved_after=timedelta(minutes=settings.signals.resolve_unobserved_after_min),
        notify_resolved=rule.notify_resolved,
        renotify=rule.renotify,
        renotify_backoff=tuple(timedelta(minutes=m) for m in settings.signals.renotify_backoff_min),
        resolve_quiet=timedelta(minutes=rule.settings_of(settings.signals).resolve_quiet),
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
    """One rule's lifecycle over a range, its open incidents kept in memory between chunks.

    Incidents are keyed by the rule's cause group (`Rule.group_keys`, e.g. one provider's latency
    across its routes and models) or, for rules without one, by scope: a group's observation at an
    instant is its worst member's, and the incident lists every member that breached. Clear siblings
    that never breached do not make a group clear while its breaching members are unjudged (a lull;
    `member_states`), so a later escalation of the same cause lands on the open incident; the
    unobserved-expiry still ends it if they are never judged again."""

    def __init__(self, ctx: RuleContext, settings: AlertingSettings, rule: Rule, open_incidents: dict[str, Incident],
                 silences: list[dict[str, Any]], noted: set[str]) -> None:
        self.ctx, self.settings, self.rule = ctx, settings, rule
        self.policy = policy_for(settings, rule)
        self.open = {str(i.detail.get("group") or i.scope_key): i for i in open_incidents.values()}
        self.silences = silences
        self.noted = noted
        self.changed: dict[str, Incident] = {}
        self.events: list[Event] = []
        self.silenced_events: set[str] = set()

    def _summary(self, row: dict[str, Any], incident: Incident | None = None) -> str:
        try:
            text = self.rule.describe({**row, "_incident": incident.detail if incident is not None else {}})
        except (KeyError, TypeError, ValueError):
            text = f"{self.rule.title}: {format_value(row.get('value'), self.rule.unit)}"
        members = (incident.detail.get("members") if incident is not None else None) or row.get("members") or []
        return text + group_text(members, incident.scope if incident is not None else None, self.rule.unit)

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

    def _record(self, incident: Incident, event: Event | None, row: dict[str, Any] | None, key: str) -> Incident:
        if event is not None:
            if event.kind is EventKind.RESOLVED and (row is None or row.get("value") is None):
                if "no data" not in incident.summary:
                    incident = replace(incident, summary=f"{self.rule.title}: back to normal")
            elif row is not None:
                incident = replace(incident, summary=self._summary(row, incident))
            if event.kind in (EventKind.OPENED, EventKind.ESCALATED) and row is not None:
                try:
                    at_onset = self._at_onset(incident, row)
                    why = self.rule.explain(self.ctx, incident.scope, event.at, at_onset)
                    incident = replace(incident, cause=why.cause, next_step=why.next_step,
                                       detail={**incident.detail, **why.detail,
                                               "onset": at_onset["onset"].isoformat()})
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
            self.open[key] = incident
        else:
            self.open.pop(key, None)
        return incident

    def process(self, frame: pl.DataFrame, instants: list[datetime]) -> None:
        """Step every interesting scope (or cause group) of `frame` (rows per scope and instant)
        through the lifecycle."""
        rule = self.rule
        seen: set[str] = set()
        if not frame.is_empty():
            frame = keyed(rule, frame)
            active = frame.filter((pl.col("level") > 0) | (pl.col("peak") > 0))["_key"].unique()
            candidates = frame.filter(pl.col("_key").is_in(active.implode())
                                      | pl.col("_key").is_in(pl.Series(list(self.open), dtype=pl.String).implode()))
            for (key,), group in candidates.sort(["_key", "at"]).group_by(["_key"], maintain_order=True):
                self._step_scope(str(key), group)
                seen.add(str(key))
        for key, incident in list(self.open.items()):
            if key in seen:
                continue
            if rule.absent_means_ok:
                obs = Observation(instants[0], 0, 0, None, None, "")
                incident, event = advance(incident, obs, signal=rule.name, scope=incident.scope,
                                          project=incident.project, team=incident.team, unit=rule.unit,
                                          levels=rule.levels_of(incident.scope), policy=self.policy)
                self._record(incident, event, None, key)  # type: ignore[arg-type]
        for key, incident in list(self.open.items()):
            incident, event = expire(incident, instants[-1], self.policy)
            if event is not None:
                self._record(incident, event, None, key)

    def note(self, frame: pl.DataFrame) -> None:
        """Tell each scope of `frame` (rows: scope columns, `at`, …) once, as an info note."""
        if frame.is_empty():
            return
        rule = self.rule
        frame = keyed(rule, frame).sort("at").unique("_key", keep="first", maintain_order=True)
        for row in frame.filter(~pl.col("_key").is_in(pl.Series(sorted(self.noted), dtype=pl.String).implode())) \
                .iter_rows(named=True):
            scope = rule.scope_of(row)
            at = row["at"] if row["at"].tzinfo else row["at"].replace(tzinfo=UTC)
            why = rule.note(self.ctx, scope, at, row)
            incident = Incident(
                incident_id=stable_id(rule.name, scope_key(scope), "noted"), signal=rule.name, scope=scope,
                project=str(row.get("project") or scope.get("project", "")), team=str(row.get("team") or ""),
                state=IncidentState.INFO, level=0, severity=Severity.INFO, stage="info", opened_at=at, changed_at=at,
                observed_at=at, value=float(row.get("value") or float("nan")), threshold=float("nan"),
                unit=rule.unit, summary=why.cause.split(";")[0], cause=why.cause, next_step=why.next_step,
                detail=why.detail)
            event = Event(stable_id(incident.incident_id, EventKind.NOTED.value), EventKind.NOTED, at, incident,
                          "ok", True)
            if _silenced(self.silences, rule.name, scope, at):
                self.silenced_events.add(event.event_id)
            self.events.append(event)
            self.noted.add(str(row["_key"]))

    def _step_scope(self, key: str, group: pl.DataFrame) -> None:
        rule = self.rule
        rows = group.to_dicts()
        incident = self.open.get(key)
        values = [v for v in group["value"].to_list()] if "value" in group.columns else []
        extra = [c for c in group.columns if c not in STANDARD and c not in rule.scope_keys and not c.startswith("_")]
        last_row: dict[str, Any] | None = None
        for i, row in enumerate(rows):
            at = row["at"]
            if incident is not None and incident.is_open and at <= incident.observed_at:
                continue  # already judged (a re-run after an interrupted write)
            scope = incident.scope if incident is not None and incident.is_open else rule.scope_of(row)
            peak = row["peak"] if row["peak"] is not None else UNKNOWN
            open_before = incident if incident is not None and incident.is_open else None
            pending, recovered = member_states(rule, open_before, row)
            if peak == 0 and pending and not recovered:
                peak = UNKNOWN  # the breaching members are unjudged since: the group cannot be judged clear
            series = [float(v) for v in values[max(0, i - SPARK_POINTS + 1): i + 1]
                      if v is not None and v == v and v != float("inf")]
            obs = Observation(at, int(row["level"] or 0), int(peak), row.get("value"), row.get("threshold"), "",
                              series, {c: _plain(row.get(c)) for c in extra if c != "members"})
            incident, event = advance(incident, obs, signal=rule.name, scope=scope,
                                      project=str(row.get("project") or scope.get("project", "")),
                                      team=str(row.get("team") or ""), unit=rule.unit,
                                      levels=rule.levels_of(scope), policy=self.policy)
            if incident is None:
                continue
            if incident.is_open:
                detail = rule.accumulate(incident.detail, row)
                if rule.group_keys:
                    detail = {**detail, "group": key, "members": merge_members(incident, row.get("members") or [], rule),
                              PENDING: sorted(pending), RECOVERED: sorted(recovered)}
                incident = replace(incident, detail=detail)
            if event is not None:
                incident = self._record(incident, event, row, key)
            elif incident.is_open:
                if peak > 0:  # a quiet hold keeps the summary of the last breach
                    last_row = row
                self.open[key] = incident
        if incident is not None and incident.is_open:
            if last_row is not None:
                incident = replace(incident, summary=self._summary(last_row, incident))
            self.changed[incident.incident_id] = incident
            self.open[key] = incident


def keyed(rule: Rule, frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with `_key`: the scope's key, or for a rule with cause groups one row per (group,
    instant) — the worst member's row, the group's highest level and peak, `members` (the scopes
    that breached at that instant, with their values), and the keys of the members that breached
    (`_breached`) and of those judged clear (`_cleared`) at that instant."""
    if not rule.group_keys:
        return frame.with_columns(rule.key_expr().alias("_key"))
    groups = [k for k in rule.group_keys if k in frame.columns]
    scopes = [k for k in rule.scope_keys if k in frame.columns]
    marked = frame.with_columns(
        pl.concat_str([pl.lit(f"{k}=") + pl.col(k).cast(pl.String).fill_null("") for k in groups],
                      separator=",").alias("_key"),
        pl.struct([*(pl.col(k).cast(pl.String) for k in scopes), pl.col("value").cast(pl.Float64)]).alias("_member"),
        pl.concat_str([pl.lit(f"{k}=") + pl.col(k).cast(pl.String).fill_null("") for k in scopes],
                      separator=",").alias("_member_key"),
        ((pl.col("level") > 0) | (pl.col("peak") > 0)).alias("_breach"),
    ).sort(["_key", "at", "level", "peak", "value"], descending=[False, False, True, True, rule.worse == "higher"],
           nulls_last=True)
    return marked.group_by(["_key", "at"], maintain_order=True).agg(
        pl.all().exclude("_member", "_member_key", "_breach", "peak").first(),
        pl.col("peak").max(),
        pl.col("_member").filter(pl.col("_breach")).alias("members"),
        pl.col("_member_key").filter(pl.col("_breach")).alias("_breached"),
        pl.col("_member_key").filter(~pl.col("_breach") & (pl.col("peak") == 0)).alias("_cleared"),
    )


PENDING = "unjudged_breaching"  # an open group incident's members that breached and are not judged clear since
RECOVERED = "recovered"  # ... and those that breached and have been judged clear since


def member_states(rule: Rule, incident: Incident | None, row: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The members of a cause group (keys, as `keyed` writes them) that breached — while `incident`
    was open, or at this instant — split into those not judged clear since (pending) and those
    judged clear since (recovered). The group is clear only when no member breaches and either
    none is pending or one has recovered: a breaching member that went unjudged (no calls in a
    lull) may still be breaching, and siblings that never breached say nothing about its cause,
    while a member of the cause that was judged clear shows the cause has ended (its thin
    co-members need not hold the incident to the unobserved-expiry). Rules without groups, and
    event-like rules (no row means nothing happened), have neither."""
    if not rule.group_keys or rule.absent_means_ok:
        return set(), set()
    detail = incident.detail if incident is not None else {}
    breached, cleared = set(row.get("_breached") or []), set(row.get("_cleared") or [])
    pending = set(detail.get(PENDING, [])) | breached
    recovered = (set(detail.get(RECOVERED, [])) | (pending & cleared)) - breached
    return pending - cleared, recovered


def merge_members(incident: Incident, members: list[dict[str, Any]], rule: Rule) -> list[dict[str, Any]]:
    """The scopes an incident groups: every member that breached while it was open (the worst
    value each reached), its own scope first."""
    known = {scope_key({k: v for k, v in m.items() if k != "value"}): dict(m)
             for m in incident.detail.get("members", [])}
    for member in members:
        key = scope_key({k: v for k, v in member.items() if k != "value"})
        value = member.get("value")
        old = known.get(key)
        if old is None:
            known[key] = {k: v for k, v in member.items()}
        elif value is not None and (old.get("value") is None or (value > old["value"]) == (rule.worse == "higher")):
            old["value"] = value
    own = scope_key({k: v for k, v in incident.scope.items()})
    return sorted(known.values(), key=lambda m: scope_key({k: v for k, v in m.items() if k != "value"}) != own)


def group_text(members: list[dict[str, Any]], anchor: dict[str, str] | None, unit: str) -> str:
    """'; 3 scopes: route=a/model=m 41.2 s, …' for an incident that groups several scopes (the
    attributes they share are left out)."""
    if len(members) < 2:
        return ""
    names = [{k: v for k, v in m.items() if k not in ("value", "project")} for m in members]
    shared = {k for k in names[0] if all(n.get(k) == names[0][k] for n in names)}
    parts = []
    for m, name in zip(members[:6], names[:6], strict=False):
        label = "/".join(f"{k}={v}" for k, v in name.items() if k not in shared) or scope_key(name)
        parts.append(f"{label} {format_value(m.get('value'), unit)}")
    more = f", +{len(members) - 6} more" if len(members) > 6 else ""
    return f"; {len(members)} scopes: " + ", ".join(parts) + more


def evaluate_signals(
    wh: Warehouse,
    settings: AlertingSettings,
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
            runs = {r.name: _RuleRun(ctx, settings, r, load_open_incidents(wh, r.name), silences,
                                     queries.noted_scopes(wh, r.name) if r.notes else set()) for r in rules}
            chunk_start = instants[0]
            while chunk_start <= instants[-1]:
                chunk = [t for t in instants if chunk_start <= t < chunk_start + CHUNK]
                frames = family.observe(ctx, chunk)
                for name, run in runs.items():
                    if name in frames:
                        run.process(frames[name], chunk)
                    if f"{name}:notes" in frames:
                        run.note(frames[f"{name}:notes"])
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
