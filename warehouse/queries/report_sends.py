"""The weekly report's delivery ledger (`report_sends`): the one insert that records an attempt
and the reads that decide what is still to send. Not project data: only an all-projects scope
reads it (a narrower scope sees nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse
from warehouse.queries.scope import Scope


def record_send(
    wh: Warehouse,
    *,
    report: str,
    period: str,
    audience: str,
    recipients: Sequence[str],
    status: str,
    attempt: int,
    message_id: str,
    attempted_at: datetime,
    error_kind: str = "",
    error: str = "",
) -> None:
    """Append one attempt (status `sent` or `failed`) to the ledger."""
    wh.command(
        "INSERT INTO report_sends (report, period, audience, recipients, status, attempt, message_id, error_kind, "
        "error, attempted_at) VALUES ({report:String}, {period:String}, {audience:String}, "
        "{recipients:Array(String)}, {status:String}, {attempt:UInt16}, {message_id:String}, {error_kind:String}, "
        "{error:String}, {at:DateTime64(3, 'UTC')})",
        {"report": report, "period": period, "audience": audience, "recipients": list(recipients),
         "status": status, "attempt": int(attempt), "message_id": message_id, "error_kind": error_kind,
         "error": error[:2000], "at": attempted_at},
        tag="report:ledger",
    )


def send_states(wh: Warehouse, scope: Scope, *, report: str, period: str) -> pl.DataFrame:
    """Per audience of one report period: the latest `status`, `attempts` so far, `sent_at` (of a
    successful send, else null), `message_id`, `recipients` and the last error."""
    params: dict[str, Any] = {"report": report, "period": period}
    # inner aliases must not shadow the columns they aggregate
    sql = f"""
        SELECT audience, last_status AS status, attempts, sent_at, last_message_id AS message_id,
            last_recipients AS recipients, last_error_kind AS error_kind, last_error AS error
        FROM (
            SELECT audience, argMax(status, attempted_at) AS last_status, countIf(status != 'sending') AS attempts,
                maxIfOrNull(attempted_at, status = 'sent') AS sent_at,
                argMax(message_id, attempted_at) AS last_message_id,
                argMax(recipients, attempted_at) AS last_recipients,
                argMax(error_kind, attempted_at) AS last_error_kind, argMax(error, attempted_at) AS last_error
            FROM report_sends
            WHERE {"1" if scope.projects is None else "0"} AND report = {{report:String}} AND period = {{period:String}}
            GROUP BY audience
        )
        ORDER BY audience
    """
    return wh.query_df(sql, params, tag="report:ledger")


def sends(wh: Warehouse, scope: Scope, *, report: str | None = None, limit: int = 200) -> pl.DataFrame:
    """Every recorded attempt, newest first."""
    params: dict[str, Any] = {"limit": int(limit)}
    cond = ["1" if scope.projects is None else "0"]
    if report is not None:
        params["report"] = report
        cond.append("report = {report:String}")
    sql = (f"SELECT report, period, audience, recipients, status, attempt, message_id, error_kind, error, attempted_at "
           f"FROM report_sends WHERE {' AND '.join(cond)} ORDER BY attempted_at DESC LIMIT {{limit:UInt32}}")
    return wh.query_df(sql, params, tag="report:ledger")
