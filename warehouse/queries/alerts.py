"""Alert reads for dashboards, reports, the CLI and the service's API: incidents, their history,
the notification outbox, silences and signal watermarks. Incident and outbox rows are versioned
(ReplacingMergeTree), so reads take the latest version (FINAL on small tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse
from warehouse.queries.scope import Scope


def incidents(
    wh: Warehouse,
    scope: Scope,
    *,
    states: Sequence[str] | None = None,
    signal: str | None = None,
    since: datetime | None = None,
    incident_id: str | None = None,
    limit: int = 500,
    tag: str = "alerts:incidents",
) -> pl.DataFrame:
    """Incidents, latest version each, newest change first. `states`: e.g. ['warning', 'critical']
    for the open ones; `since`: changed at or after; `incident_id`: that one only."""
    params: dict[str, Any] = {"limit": int(limit)}
    where = [scope.clause(params)]
    if incident_id:
        params["id"] = incident_id
        where.append("incident_id = {id:String}")
    if states:
        params["states"] = list(states)
        where.append("state IN {states:Array(String)}")
    if signal:
        params["signal"] = signal
        where.append("signal = {signal:String}")
    if since:
        params["since"] = since
        where.append("changed_at >= {since:DateTime64(3, 'UTC')}")
    sql = (f"SELECT * FROM alert_incidents FINAL WHERE {' AND '.join(where)} "
           "ORDER BY changed_at DESC, incident_id LIMIT {limit:UInt32}")
    return wh.query_df(sql, params, tag=tag)


def open_incidents(wh: Warehouse, scope: Scope, *, signal: str | None = None) -> pl.DataFrame:
    """Incidents in WARNING or CRITICAL (of one signal, or all)."""
    return incidents(wh, scope, states=["warning", "critical"], signal=signal, limit=100_000, tag="alerts:open")


def incident(wh: Warehouse, scope: Scope, incident_id: str) -> dict[str, Any] | None:
    """One incident (latest version) by id, or None."""
    params: dict[str, Any] = {"id": incident_id}
    frame = wh.query_df(
        f"SELECT * FROM alert_incidents FINAL WHERE incident_id = {{id:String}} AND {scope.clause(params)}",
        params, tag="alerts:incident")
    return frame.row(0, named=True) if frame.height else None


def incident_events(
    wh: Warehouse,
    scope: Scope,
    *,
    incident_id: str | None = None,
    since: datetime | None = None,
    limit: int = 1_000,
) -> pl.DataFrame:
    """Transitions (opened, escalated, …), oldest first; of one incident or since an instant."""
    params: dict[str, Any] = {"limit": int(limit)}
    where = [scope.clause(params)]
    if incident_id:
        params["id"] = incident_id
        where.append("incident_id = {id:String}")
    if since:
        params["since"] = since
        where.append("at >= {since:DateTime64(3, 'UTC')}")
    sql = (f"SELECT * FROM alert_events FINAL WHERE {' AND '.join(where)} ORDER BY at, created_at, event_id "
           "LIMIT {limit:UInt32}")
    return wh.query_df(sql, params, tag="alerts:events")


def outbox(
    wh: Warehouse,
    *,
    states: Sequence[str] | None = None,
    due_before: datetime | None = None,
    incident_ids: Sequence[str] | None = None,
    limit: int = 1_000,
) -> pl.DataFrame:
    """Notifications (latest version each), oldest first. `due_before`: next attempt at or before."""
    params: dict[str, Any] = {"limit": int(limit)}
    where = ["1"]
    if states:
        params["states"] = list(states)
        where.append("state IN {states:Array(String)}")
    if due_before:
        params["due"] = due_before
        where.append("next_attempt_at <= {due:DateTime64(3, 'UTC')}")
    if incident_ids is not None:
        params["ids"] = list(incident_ids)
        where.append("incident_id IN {ids:Array(String)}")
    sql = (f"SELECT * FROM alert_outbox FINAL WHERE {' AND '.join(where)} "
           "ORDER BY created_at, notification_id LIMIT {limit:UInt32}")
    return wh.query_df(sql, params, tag="alerts:outbox")


def silences(wh: Warehouse, *, active_at: datetime | None = None) -> pl.DataFrame:
    """Silences (latest version each); only those in force at `active_at` when given."""
    params: dict[str, Any] = {}
    where = "1"
    if active_at:
        params["at"] = active_at
        where = "starts_at <= {at:DateTime64(3, 'UTC')} AND ends_at > {at:DateTime64(3, 'UTC')}"
    return wh.query_df(f"SELECT * FROM alert_silences FINAL WHERE {where} ORDER BY created_at", params,
                       tag="alerts:silences")


def noted_scopes(wh: Warehouse, signal: str) -> set[str]:
    """Scope keys a signal has already told as an info note (each is told once)."""
    rows = wh.query_rows("SELECT DISTINCT scope_key FROM alert_events WHERE signal = {signal:String} AND kind = 'noted'",
                         {"signal": signal}, tag="alerts:noted")
    return {str(r[0]) for r in rows}


def watermarks(wh: Warehouse) -> dict[str, datetime]:
    """Signal family → the last instant evaluated."""
    rows = wh.query_rows("SELECT rule, max(evaluated_until) FROM signal_watermarks GROUP BY rule",
                         tag="alerts:watermarks")
    from datetime import UTC

    return {str(r): (t if t.tzinfo else t.replace(tzinfo=UTC)) for r, t in rows}


def incidents_between(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, team: str | None = None,
    tag: str = "alerts:between",
) -> pl.DataFrame:
    """Incidents open at any time in [start, end) (opened before `end`, not resolved before
    `start`), of one team or all, oldest first. Beside the latest version's columns: `peak_severity`
    (the highest severity reached before `end`) and the summary, cause and next step of its latest
    firing (opened, escalated or re-notified) before `end` — a resolved incident keeps why it fired."""
    params: dict[str, Any] = {"start": start, "end": end}
    where = [scope.clause(params), "opened_at < {end:DateTime64(3, 'UTC')}",
             "(resolved_at IS NULL OR resolved_at >= {start:DateTime64(3, 'UTC')})"]
    if team is not None:
        params["team"] = team
        where.append("team = {team:String}")
    sql = f"""
        SELECT i.incident_id AS incident_id, i.signal AS signal, i.scope AS scope, i.project AS project,
            i.team AS team, i.state AS state, i.opened_at AS opened_at, i.resolved_at AS resolved_at,
            i.value AS value, i.threshold AS threshold, i.unit AS unit,
            if(e.critical > 0, 'critical', 'warning') AS peak_severity,
            if(e.fired_summary != '', e.fired_summary, i.summary) AS summary,
            if(e.fired_cause != '', e.fired_cause, i.cause) AS cause,
            if(e.fired_next_step != '', e.fired_next_step, i.next_step) AS next_step
        FROM (SELECT * FROM alert_incidents FINAL WHERE {' AND '.join(where)}) AS i
        LEFT JOIN (
            SELECT incident_id, countIf(severity = 'critical') AS critical,
                argMaxIf(summary, at, kind IN ('opened', 'escalated', 'renotified')) AS fired_summary,
                argMaxIf(cause, at, kind IN ('opened', 'escalated', 'renotified')) AS fired_cause,
                argMaxIf(next_step, at, kind IN ('opened', 'escalated', 'renotified')) AS fired_next_step
            FROM alert_events FINAL
            WHERE at < {{end:DateTime64(3, 'UTC')}}
            GROUP BY incident_id
        ) AS e ON e.incident_id = i.incident_id
        ORDER BY opened_at, signal, incident_id
    """
    return wh.query_df(sql, params, tag=tag)
