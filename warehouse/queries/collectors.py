"""Collector operations: each collector's last run, last success, data lag and last error.

Read from `collector_runs` (one row per run, written by `collectors.runner.run_collector`). Lag is
now − the newest data a successful run vouched for: for provider exports the oldest stream
high-water mark (buckets complete up to there), for scrapes the time of the last good scrape.
Error messages here are safe to show: collectors never put secrets in them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse
from warehouse.queries.scope import Scope


def collector_status(
    wh: Warehouse, scope: Scope, *, now: datetime | None = None, tag: str = "collectors:status"
) -> pl.DataFrame:
    """One row per collector that has run: runs, errors, last_run_at, last_status, last_success_at,
    data_through, lag_s (seconds, NULL before a first success), last_error_at, last_error_kind,
    last_error (the newest failure, also when a later run succeeded)."""
    params: dict[str, Any] = {"now": now or datetime.now(UTC)}
    sql = f"""
        SELECT collector, count() AS runs, countIf(status = 'error') AS errors,
            max(started_at) AS last_run_at, argMax(status, started_at) AS last_status,
            maxIfOrNull(finished_at, status = 'ok') AS last_success_at,
            maxIfOrNull(data_through, status = 'ok') AS data_through,
            dateDiff('second', coalesce(data_through, last_success_at), {{now:DateTime64(3, 'UTC')}}) AS lag_s,
            maxIfOrNull(finished_at, status = 'error') AS last_error_at,
            argMaxIf(error_kind, started_at, status = 'error') AS last_error_kind,
            argMaxIf(error, started_at, status = 'error') AS last_error
        FROM collector_runs
        WHERE {scope.clause(params)}
        GROUP BY collector
        ORDER BY collector
    """
    return wh.query_df(sql, params, tag=tag)
