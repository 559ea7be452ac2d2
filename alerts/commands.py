"""What people do to alerts, as functions the CLI calls and the service can expose as endpoints:
acknowledge an incident (no more re-notifications; its thread hears who took it), silence a signal
or scope for a while (incidents keep their lifecycle, nobody is notified), lift a silence.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import polars as pl

from alerts.errors import UnknownIncident
from alerts.outbox import build_notifications
from alerts.rules import FAMILIES
from alerts.settings import AlertingSettings
from alerts.state import Incident, acknowledge
from alerts.store import (
    STATE_LOCK,
    incident_from_row,
    write_events,
    write_incidents,
    write_notifications,
    write_silence,
)
from warehouse.client import Warehouse
from warehouse.queries import alerts as queries
from warehouse.queries.scope import Scope


def acknowledge_incident(wh: Warehouse, settings: AlertingSettings, incident_id: str, *, by: str,
                         scope: Scope | None = None, now: datetime | None = None) -> Incident:
    """Acknowledge an open incident; raises `UnknownIncident` when there is no such open incident."""
    now = now or datetime.now(UTC)
    with STATE_LOCK:
        row = queries.incident(wh, scope or Scope.all(), incident_id)
        if row is None or row["state"] == "resolved":
            raise UnknownIncident(f"no open incident {incident_id!r}")
        acked, event = acknowledge(incident_from_row(row), by=by, at=now)
        write_incidents(wh, [acked])
        write_events(wh, [event])
        rules = {r.name: r for f in FAMILIES for r in f.rules}
        write_notifications(wh, build_notifications(wh, settings, [event], rules, set()))
    return acked


def silence(wh: Warehouse, *, signal: str = "", matchers: dict[str, str] | None = None,
            duration: timedelta, by: str, reason: str = "", now: datetime | None = None) -> str:
    """Silence a signal ('' = every signal) for scopes matching every glob in `matchers`, for
    `duration`; returns the silence id."""
    now = now or datetime.now(UTC)
    silence_id = uuid.uuid4().hex[:12]
    with STATE_LOCK:
        write_silence(wh, {"silence_id": silence_id, "signal": signal, "matchers": dict(matchers or {}),
                           "starts_at": now, "ends_at": now + duration, "created_by": by, "reason": reason,
                           "created_at": now})
    return silence_id


def lift_silence(wh: Warehouse, silence_id: str, *, now: datetime | None = None) -> bool:
    """End a silence now; False when there is no such silence."""
    now = now or datetime.now(UTC)
    with STATE_LOCK:
        rows = queries.silences(wh).filter(pl.col("silence_id") == silence_id).to_dicts()
        if not rows:
            return False
        row = rows[0]
        write_silence(wh, {**{k: row[k] for k in ("silence_id", "signal", "starts_at", "created_by", "reason",
                                                   "created_at")}, "matchers": dict(row["matchers"]), "ends_at": now})
    return True
