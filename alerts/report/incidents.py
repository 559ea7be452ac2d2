"""The report's incidents section: alert incidents open at any time during the week (of the team,
or all for the company), with the severity they reached and the probable cause they fired with,
read from the signals' alert history. Where the warehouse has no alert history, the section says
so — it never invents incidents.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.report.model import IncidentLine, Incidents
from alerts.report.week import Week
from warehouse.client import Warehouse
from warehouse.queries import alerts, weekly
from warehouse.queries.scope import Scope

NO_HISTORY = ("No alert history available: this warehouse has no alert tables, so the week's incidents "
              "cannot be listed.")


def _utc(at: datetime | None) -> datetime | None:
    return None if at is None else (at if at.tzinfo else at.replace(tzinfo=UTC))


def week_incidents(wh: Warehouse, scope: Scope, week: Week, team: str | None) -> Incidents:
    """Incidents open at any time in the week, oldest first."""
    if not (weekly.has_table(wh, "alert_incidents") and weekly.has_table(wh, "alert_events")):
        return Incidents(available=False, note=NO_HISTORY)
    frame = alerts.incidents_between(wh, scope, week.start, week.end, team=team, tag="job:report:incidents")
    return Incidents(available=True, items=tuple(
        IncidentLine(
            signal=str(r["signal"]).replace("_", " "), severity=str(r["peak_severity"]), state=str(r["state"]),
            scope={str(k): str(v) for k, v in dict(r["scope"] or {}).items()},
            opened_at=_utc(r["opened_at"]), resolved_at=_utc(r["resolved_at"]),  # type: ignore[arg-type]
            summary=str(r["summary"]), cause=str(r["cause"]), next_step=str(r["next_step"]),
        )
        for r in frame.to_dicts()
    ))
