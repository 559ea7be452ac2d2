"""Reads behind `llmledger export calls`: call counts per hour of a range (to cut it into chunks of
bounded size) and the stored call rows of one chunk, with the read API's scope and filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from warehouse.client import Warehouse
from warehouse.queries.scope import Filters, Scope, where

EXCLUDED = ("batch_id",)  # internal write bookkeeping, not part of the record


def hour_counts(wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None,
                *, tag: str = "export:calls") -> list[tuple[datetime, int]]:
    """(hour, calls) for every hour of [start, end) holding calls, in order."""
    params: dict[str, Any] = {}
    sql = (f"SELECT toDateTime64(toStartOfHour(ts), 3, 'UTC') AS hour, count() FROM calls "
           f"WHERE {where(scope, start, end, filters, params=params)} GROUP BY hour ORDER BY hour")
    return [(h if h.tzinfo else h.replace(tzinfo=UTC), int(n)) for h, n in wh.query_rows(sql, params, tag=tag)]


def calls_between(wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None,
                  *, limit_zero: bool = False, tag: str = "export:calls") -> pa.Table:
    """Every stored column of the calls in [start, end) (ordered by time), as Arrow."""
    params: dict[str, Any] = {}
    columns = [c for c in wh.table_columns("calls") if c not in EXCLUDED]
    select = ", ".join(f"`{c}`" for c in columns)
    sql = (f"SELECT {select} FROM calls WHERE {where(scope, start, end, filters, params=params)} "
           "ORDER BY ts, event_id" + (" LIMIT 0" if limit_zero else ""))
    return wh.query_arrow(sql, params, tag=tag)
