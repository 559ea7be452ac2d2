"""Persistence of the alert lifecycle: incidents, events, outbox rows, silences and watermarks,
written as Arrow inserts (no SQL here) and read back through `warehouse.queries.alerts`.

Every change of an incident or a notification is a new row version; `version` is a process-wide
increasing nanosecond clock, so a later write always wins. `STATE_LOCK` serialises the writers of
one process (the evaluator, the outbox worker, ack and silence commands).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from alerts.model import IncidentState, Severity, stable_id
from alerts.state import Event, Incident
from warehouse.client import Warehouse
from warehouse.queries import alerts as queries
from warehouse.queries.scope import Scope

STATE_LOCK = threading.RLock()
_last_version = 0
_version_lock = threading.Lock()
TIME = pl.Datetime("ms", "UTC")


def next_version() -> int:
    """A strictly increasing version (nanoseconds since the epoch, bumped on ties)."""
    global _last_version
    with _version_lock:
        _last_version = max(time.time_ns(), _last_version + 1)
        return _last_version


def _json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def incident_from_row(row: dict[str, Any]) -> Incident:
    """An `Incident` from a row of `alert_incidents`."""
    def utc(value: datetime | None) -> datetime | None:
        return None if value is None else (value if value.tzinfo else value.replace(tzinfo=UTC))

    return Incident(
        incident_id=row["incident_id"], signal=row["signal"], scope=dict(row["scope"]), project=row["project"],
        team=row["team"], state=IncidentState(row["state"]), level=int(row["level"]), severity=Severity(row["severity"]),
        stage=row["stage"], opened_at=utc(row["opened_at"]), changed_at=utc(row["changed_at"]),  # type: ignore[arg-type]
        observed_at=utc(row["observed_at"]), value=row["value"], threshold=row["threshold"],  # type: ignore[arg-type]
        unit=row["unit"], summary=row["summary"], resolved_at=utc(row["resolved_at"]), cause=row["cause"],
        next_step=row["next_step"], detail=json.loads(row["detail"] or "{}"), series=list(row["series"] or []),
        notified_at=utc(row["notified_at"]), acked_by=row["acked_by"], acked_at=utc(row["acked_at"]),
        last_breach_at=utc(row.get("last_breach_at")),
    )


def _scope_map(scope: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in scope.items()]


def write_incidents(wh: Warehouse, incidents: Iterable[Incident]) -> int:
    """Write the current version of each incident."""
    rows = [
        {
            "incident_id": i.incident_id, "signal": i.signal, "scope_key": i.scope_key, "scope": _scope_map(i.scope),
            "project": i.project, "team": i.team, "state": i.state.value, "level": i.level,
            "severity": i.severity.value, "stage": i.stage, "opened_at": i.opened_at, "changed_at": i.changed_at,
            "observed_at": i.observed_at, "resolved_at": i.resolved_at, "value": _num(i.value),
            "threshold": _num(i.threshold), "unit": i.unit, "summary": i.summary, "cause": i.cause,
            "next_step": i.next_step, "detail": _json(i.detail), "series": [float(v) for v in i.series],
            "notified_at": i.notified_at, "acked_by": i.acked_by, "acked_at": i.acked_at,
            "last_breach_at": i.last_breach_at, "version": next_version(),
        }
        for i in incidents
    ]
    if not rows:
        return 0
    frame = pl.DataFrame(rows, schema_overrides={
        "scope": pl.List(pl.Struct({"key": pl.String, "value": pl.String})), "opened_at": TIME, "changed_at": TIME,
        "observed_at": TIME, "resolved_at": TIME, "notified_at": TIME, "acked_at": TIME, "last_breach_at": TIME,
        "level": pl.UInt8,
        "version": pl.UInt64, "series": pl.List(pl.Float64)})
    return wh.insert_arrow("alert_incidents", _as_maps(frame, ["scope"]), tag="alerts:write-incidents")


def write_events(wh: Warehouse, events: Iterable[Event]) -> int:
    """Record transitions in the history."""
    rows = [
        {
            "event_id": e.event_id, "incident_id": e.incident.incident_id, "signal": e.incident.signal,
            "scope_key": e.incident.scope_key, "scope": _scope_map(e.incident.scope), "project": e.incident.project,
            "team": e.incident.team, "at": e.at, "kind": e.kind.value, "from_state": e.from_state,
            "to_state": e.incident.state.value, "severity": e.incident.severity.value, "stage": e.incident.stage,
            "value": _num(e.incident.value), "threshold": _num(e.incident.threshold), "unit": e.incident.unit,
            "summary": e.incident.summary, "cause": e.incident.cause, "next_step": e.incident.next_step,
            "detail": _json(e.incident.detail), "series": [float(v) for v in e.incident.series], "actor": e.actor,
        }
        for e in events
    ]
    if not rows:
        return 0
    frame = pl.DataFrame(rows, schema_overrides={
        "scope": pl.List(pl.Struct({"key": pl.String, "value": pl.String})), "at": TIME,
        "series": pl.List(pl.Float64)})
    return wh.insert_arrow("alert_events", _as_maps(frame, ["scope"]), tag="alerts:write-events")


@dataclass(frozen=True)
class Notification:
    """One notification of the outbox."""

    notification_id: str
    event_id: str
    incident_id: str
    kind: str
    destination: str  # slack | log
    channel: str
    payload: dict[str, Any]
    created_at: datetime
    state: str = "pending"  # pending | sending | sent | logged | suppressed | failed
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str = ""
    sent_at: datetime | None = None
    message_ts: str = ""
    thread_ts: str = ""
    claim_owner: str = ""  # the lease owner that set it `sending` …
    claim_term: int = 0  # … under this lease term (the fencing token)


def notification_for(event: Event, *, destination: str, channel: str, payload: dict[str, Any],
                     suppressed: bool) -> Notification:
    """The outbox row of an event (id derived from the event's, so it is written once)."""
    return Notification(
        notification_id=stable_id(event.event_id, destination, channel), event_id=event.event_id,
        incident_id=event.incident.incident_id, kind=event.kind.value, destination=destination, channel=channel,
        payload=payload, created_at=event.at, state="suppressed" if suppressed else "pending",
        next_attempt_at=event.at,
    )


def write_notifications(wh: Warehouse, notifications: Iterable[Notification]) -> int:
    """Write the current version of each notification."""
    rows = [
        {
            "notification_id": n.notification_id, "event_id": n.event_id, "incident_id": n.incident_id,
            "kind": n.kind, "destination": n.destination, "channel": n.channel,
            "payload": json.dumps(n.payload, default=str),  # scope order kept: people read it
            "created_at": n.created_at, "state": n.state, "attempts": n.attempts,
            "next_attempt_at": n.next_attempt_at or n.created_at, "last_error": n.last_error[:2000],
            "sent_at": n.sent_at, "message_ts": n.message_ts, "thread_ts": n.thread_ts,
            "claim_owner": n.claim_owner, "claim_term": n.claim_term, "version": next_version(),
        }
        for n in notifications
    ]
    if not rows:
        return 0
    frame = pl.DataFrame(rows, schema_overrides={"created_at": TIME, "next_attempt_at": TIME, "sent_at": TIME,
                                                 "attempts": pl.UInt16, "claim_term": pl.UInt64,
                                                 "version": pl.UInt64})
    return wh.insert_arrow("alert_outbox", frame, tag="alerts:write-outbox")


def notification_from_row(row: dict[str, Any]) -> Notification:
    """A `Notification` from a row of `alert_outbox`."""
    def utc(value: datetime | None) -> datetime | None:
        return None if value is None else (value if value.tzinfo else value.replace(tzinfo=UTC))

    return Notification(
        notification_id=row["notification_id"], event_id=row["event_id"], incident_id=row["incident_id"],
        kind=row["kind"], destination=row["destination"], channel=row["channel"], payload=json.loads(row["payload"]),
        created_at=utc(row["created_at"]), state=row["state"], attempts=int(row["attempts"]),  # type: ignore[arg-type]
        next_attempt_at=utc(row["next_attempt_at"]), last_error=row["last_error"], sent_at=utc(row["sent_at"]),
        message_ts=row["message_ts"], thread_ts=row["thread_ts"], claim_owner=row.get("claim_owner") or "",
        claim_term=int(row.get("claim_term") or 0),
    )


def write_watermark(wh: Warehouse, family: str, until: datetime) -> None:
    """Record that `family` has been evaluated up to `until` (inclusive)."""
    wh.insert_arrow("signal_watermarks", pl.DataFrame({"rule": [family], "evaluated_until": [until]},
                                                      schema_overrides={"evaluated_until": TIME}),
                    tag="alerts:watermark")


def write_silence(wh: Warehouse, row: dict[str, Any]) -> None:
    """Write a silence version (`matchers` as a dict)."""
    frame = pl.DataFrame([{**row, "matchers": _scope_map(row["matchers"]), "version": next_version()}],
                         schema_overrides={"matchers": pl.List(pl.Struct({"key": pl.String, "value": pl.String})),
                                           "starts_at": TIME, "ends_at": TIME, "created_at": TIME,
                                           "version": pl.UInt64})
    wh.insert_arrow("alert_silences", _as_maps(frame, ["matchers"]), tag="alerts:silence")


def load_open_incidents(wh: Warehouse, signal: str) -> dict[str, Incident]:
    """Open incidents of a signal by scope key."""
    frame = queries.open_incidents(wh, Scope.all(), signal=signal)
    return {row["scope_key"]: incident_from_row(row) for row in frame.iter_rows(named=True)}


def _as_maps(frame: pl.DataFrame, columns: list[str]) -> Any:
    """Arrow table with `columns` (lists of key/value structs) as Arrow maps (ClickHouse Map)."""
    import pyarrow as pa

    table = frame.to_arrow()
    for name in columns:
        index = table.schema.get_field_index(name)
        values = [[(kv["key"], kv["value"]) for kv in row] if row is not None else []
                  for row in frame[name].to_list()]
        maps = pa.array(values, type=pa.map_(pa.string(), pa.string()))
        table = table.set_column(index, pa.field(name, maps.type), maps)
    return table
