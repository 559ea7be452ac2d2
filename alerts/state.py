"""The alert lifecycle per (signal, scope): OK → WARNING → CRITICAL → RESOLVED, as a pure function.

`advance(incident, observation)` returns the incident after one evaluation instant and the
transition it made, if any. It opens or escalates at the observation's level (a breach sustained
since its first breaching point, at its current level: `alerts.rules.base.sustain`), downgrades when no point of the period reached the current level any more, resolves when
no point breached for the policy's quiet period (hysteresis: a short lull neither resolves nor
re-opens an incident), holds otherwise (including when the window could not be judged), and
re-notifies a standing CRITICAL with a back-off (1 h, 4 h, 12 h, then daily by default) unless
acknowledged. Ids are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from alerts.model import EventKind, IncidentState, Level, Severity, scope_key, stable_id


@dataclass(frozen=True)
class Observation:
    """One rule's judgement of one scope at one instant."""

    at: datetime
    level: int  # the current level of a breach sustained for the whole sustain period
    peak: int  # highest at any point of it; -1: could not be judged
    value: float | None
    threshold: float | None
    summary: str
    series: list[float] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Incident:
    """One incident: a (signal, scope) from its opening to its resolution."""

    incident_id: str
    signal: str
    scope: dict[str, str]
    project: str
    team: str
    state: IncidentState
    level: int
    severity: Severity
    stage: str
    opened_at: datetime
    changed_at: datetime
    observed_at: datetime
    value: float
    threshold: float
    unit: str
    summary: str
    resolved_at: datetime | None = None
    cause: str = ""
    next_step: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    series: list[float] = field(default_factory=list)
    notified_at: datetime | None = None
    acked_by: str = ""
    acked_at: datetime | None = None
    last_breach_at: datetime | None = None  # the last instant any point of the sustain period breached

    @property
    def scope_key(self) -> str:
        return scope_key(self.scope)

    @property
    def is_open(self) -> bool:
        return self.state not in (IncidentState.RESOLVED, IncidentState.INFO)


@dataclass(frozen=True)
class Event:
    """A transition of an incident, as recorded in `alert_events` (and notified when `notify`)."""

    event_id: str
    kind: EventKind
    at: datetime
    incident: Incident  # the incident after the transition
    from_state: str
    notify: bool
    actor: str = ""


@dataclass(frozen=True)
class Policy:
    """Lifecycle settings."""

    renotify_after: timedelta
    resolve_unobserved_after: timedelta
    notify_resolved: bool = True
    renotify: bool = True
    # gaps between re-notifications of a standing CRITICAL (e.g. 1 h, 4 h, 12 h, then daily: the
    # last gap repeats); empty: every `renotify_after`
    renotify_backoff: tuple[timedelta, ...] = ()
    # how long a scope must be clear (no breaching point) before its incident resolves
    resolve_quiet: timedelta = timedelta(0)

    def next_gap(self, since_change: timedelta) -> timedelta:
        """The wait after a notification sent `since_change` after the incident last changed level."""
        if not self.renotify_backoff:
            return self.renotify_after
        passed, index = timedelta(0), 0
        for gap in self.renotify_backoff[:-1]:
            passed += gap
            if since_change >= passed:
                index += 1
        return self.renotify_backoff[index]

    def schedule(self, count: int = 5) -> list[timedelta]:
        """The first `count` re-notification times after a change of level (for texts)."""
        out, at = [], timedelta(0)
        for _ in range(count):
            at += self.next_gap(at)
            out.append(at)
        return out


def _event(kind: EventKind, incident: Incident, at: datetime, before: str, *, notify: bool, actor: str = "") -> Event:
    event_id = stable_id(incident.incident_id, kind.value, at.isoformat(), incident.level, actor)
    return Event(event_id, kind, at, incident, before, notify, actor)


def _state_of(level: Level) -> IncidentState:
    return IncidentState.CRITICAL if level.severity is Severity.CRITICAL else IncidentState.WARNING


def advance(
    incident: Incident | None,
    obs: Observation,
    *,
    signal: str,
    scope: dict[str, str],
    project: str,
    team: str,
    unit: str,
    levels: tuple[Level, ...],
    policy: Policy,
) -> tuple[Incident | None, Event | None]:
    """The incident after `obs` and the transition made (None when nothing changed)."""
    current = incident if incident is not None and incident.is_open else None
    held = current.level if current else 0
    at = obs.at
    measured = {"value": obs.value if obs.value is not None else float("nan"),
                "threshold": obs.threshold if obs.threshold is not None else float("nan"),
                "summary": obs.summary, "series": obs.series, "observed_at": at}
    if obs.level > held:
        level = levels[obs.level - 1]
        if current is None:
            opened = Incident(
                incident_id=stable_id(signal, scope_key(scope), at.isoformat()), signal=signal, scope=scope,
                project=project, team=team, state=_state_of(level), level=obs.level, severity=level.severity,
                stage=level.name, opened_at=at, changed_at=at, unit=unit, detail=obs.detail, last_breach_at=at,
                **measured,
            )
            return opened, _event(EventKind.OPENED, opened, at, "ok", notify=True)
        escalated = replace(current, state=_state_of(level), level=obs.level, severity=level.severity,
                            stage=level.name, changed_at=at, acked_by="", acked_at=None,
                            detail={**current.detail, **obs.detail}, last_breach_at=at, **measured)
        return escalated, _event(EventKind.ESCALATED, escalated, at, current.state.value, notify=True)
    if current is None:
        return incident, None
    if obs.peak > 0:
        current = replace(current, last_breach_at=at)
    if obs.peak == 0:
        clear_since = current.last_breach_at or current.changed_at
        if at - clear_since < policy.resolve_quiet:  # clear, but not for long enough: hold
            return replace(current, **measured), None
        resolved = replace(current, state=IncidentState.RESOLVED, level=0, severity=Severity.OK, stage="resolved",
                           changed_at=at, resolved_at=at, **measured)
        return resolved, _event(EventKind.RESOLVED, resolved, at, current.state.value, notify=policy.notify_resolved)
    if 0 < obs.peak < held:
        level = levels[obs.peak - 1]
        lower = replace(current, state=_state_of(level), level=obs.peak, severity=level.severity, stage=level.name,
                        changed_at=at, **measured)
        # recorded, not notified: a downgrade is usually a step towards resolution, and fewer
        # messages keep a channel worth reading (the thread hears the resolution)
        return lower, _event(EventKind.DOWNGRADED, lower, at, current.state.value, notify=False)
    if obs.peak < 0:  # could not be judged: hold, without refreshing when it was last seen
        return current, None
    refreshed = replace(current, **measured)
    due = current.notified_at is None or at - current.notified_at >= policy.next_gap(
        current.notified_at - current.changed_at)
    if policy.renotify and current.severity is Severity.CRITICAL and not current.acked_by and due:
        return refreshed, _event(EventKind.RENOTIFIED, refreshed, at, current.state.value, notify=True)
    return refreshed, None


def expire(incident: Incident, at: datetime, policy: Policy) -> tuple[Incident, Event | None]:
    """Resolve an open incident whose scope has not been judged for `resolve_unobserved_after`."""
    if not incident.is_open or at - incident.observed_at < policy.resolve_unobserved_after:
        return incident, None
    when = incident.observed_at + policy.resolve_unobserved_after
    resolved = replace(incident, state=IncidentState.RESOLVED, level=0, severity=Severity.OK, stage="resolved",
                       changed_at=when, resolved_at=when,
                       summary=incident.summary + " (resolved: no data to judge)")
    return resolved, _event(EventKind.RESOLVED, resolved, when, incident.state.value, notify=policy.notify_resolved)


def acknowledge(incident: Incident, *, by: str, at: datetime) -> tuple[Incident, Event]:
    """Mark an open incident acknowledged: no more re-notifications until its state changes."""
    acked = replace(incident, acked_by=by, acked_at=at)
    return acked, _event(EventKind.ACKNOWLEDGED, acked, at, incident.state.value, notify=True, actor=by)
