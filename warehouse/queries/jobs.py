"""Job run history (`job_runs`): the platform's own scheduled work. Not project data, so only an
all-projects scope (admin) sees it; a narrower scope gets an empty frame.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse
from warehouse.queries.scope import Scope


def job_runs(
    wh: Warehouse,
    scope: Scope,
    *,
    job: str | None = None,
    states: list[str] | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> pl.DataFrame:
    """Runs (latest state each), newest first: job, trigger, state, times, duration, error, detail."""
    params: dict[str, Any] = {"limit": int(limit)}
    where = ["1" if scope.projects is None else "0"]
    if job:
        params["job"] = job
        where.append("job = {job:String}")
    if states:
        params["states"] = states
        where.append("state IN {states:Array(String)}")
    if since:
        params["since"] = since
        where.append("started_at >= {since:DateTime64(3, 'UTC')}")
    sql = (f"SELECT run_id, job, trigger, state, scheduled_for, started_at, finished_at, duration_ms, error, detail "
           f"FROM job_runs FINAL WHERE {' AND '.join(where)} ORDER BY started_at DESC LIMIT {{limit:UInt32}}")
    return wh.query_df(sql, params, tag="jobs:runs")


def job_failures(wh: Warehouse, scope: Scope, *, since: datetime | None = None, limit: int = 100) -> pl.DataFrame:
    """Failed runs, newest first."""
    return job_runs(wh, scope, states=["failed"], since=since, limit=limit)


def last_runs(wh: Warehouse, scope: Scope) -> pl.DataFrame:
    """The latest run of each job (its state, when it started, how long it took, its error)."""
    where = "1" if scope.projects is None else "0"
    sql = (f"SELECT job, argMax(state, started_at) AS state, max(started_at) AS last_started_at, "
           f"argMax(duration_ms, started_at) AS duration_ms, argMax(error, started_at) AS error "
           f"FROM job_runs FINAL WHERE {where} GROUP BY job ORDER BY job")
    return wh.query_df(sql, tag="jobs:last")
