"""Finished latency hours (`calls_latency_finished`, migration 0091): the hourly latency series of a
closed hour, merged once from the t-digest states of `calls_latency_hourly` and kept as plain numbers,
per project and for all projects together, overall and per route, model and provider.

By the hour, a month of latency merged ~11k digest states three times (latency, TTFT, queue) on every
read: that merging was the read's whole cost, and it grows with the calls per hour. Once an hour is
closed its answer only changes when calls arrive late (or its rollup month is rebuilt), so
`finish_latency_hours` (run by the `rollups.refresh` job) stores it, and a read (`fresh_hours`) uses
a finished hour only while the fingerprint of the rollup rows it was merged from (`SOURCE_HASH`: the
hour's calls, ok calls and latency / TTFT / queue-time sums in that scope) still matches; any other
hour (the current one, one that took late calls) is merged live as before. Answers are the merged
digests' quantiles either way. A rollup month rebuilt from raw calls with the same sums keeps its
finished hours: their quantiles came from digests of the same calls, within the digests' error.
Rows are versioned by `finished_at`, the start of the INSERT that merged them (when it took its
snapshot of the rollup), so a background merge keeps the rows of the newer state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from warehouse.client import Warehouse
from warehouse.queries.scope import Scope

TABLE = "calls_latency_finished"
VIEW = "calls_latency_finishing"  # the finished rows of every hour, merged from `calls_latency_hourly`
DIMENSIONS = frozenset({"route", "model", "provider"})  # besides the hour overall (dimension '')
HOURS_PER_INSERT = 168  # hours merged per statement (their groups' digest states are held in memory at once)
_ROW_KINDS = len(DIMENSIONS) + 1  # a scope's hour is finished once each dimension's rows match its fingerprint
# the fingerprint of the `calls_latency_hourly` rows summed over a scope and hour (as the view takes it)
SOURCE_HASH = ("cityHash64(sum(calls), sum(ok_calls), sum(latency_ms_sum), sum(ttft_ms_sum), "
               "sum(queue_ms_sum))")
_COLUMNS = ("all_projects, project, dimension, hour, key, source_hash, calls, latency_calls, latency_ms_sum, "
            "latency_q, ttft_calls, ttft_ms_sum, ttft_q, queue_calls, queue_q")


@dataclass(frozen=True)
class Finished:
    """What one `finish_latency_hours` run did: hours (re)finished and rows written."""

    hours: int
    rows: int


def finish_latency_hours(wh: Warehouse, now: datetime) -> Finished:
    """Finish every closed hour (before `now`'s hour) whose finished rows are missing or no longer
    match `calls_latency_hourly` in some scope (late calls, a rebuilt month): all its scopes are
    merged again in one pass; rows still current for a scope are written again and replaced."""
    params: dict[str, Any] = {"before": now.replace(minute=0, second=0, microsecond=0), "kinds": _ROW_KINDS}
    stale = [row[0] for row in wh.query_rows(f"""
        SELECT DISTINCT hour FROM (
            SELECT grouping(project) AS x_all, if(x_all = 1, '', toString(project)) AS x_project, hour,
                   {SOURCE_HASH} AS x_hash
            FROM calls_latency_hourly WHERE hour < {{before:DateTime('UTC')}}
            GROUP BY GROUPING SETS ((project, hour), (hour)))
        WHERE (x_all, x_project, hour, x_hash) NOT IN (
            SELECT all_projects, toString(project), hour, source_hash FROM {TABLE}
            WHERE hour < {{before:DateTime('UTC')}}
            GROUP BY all_projects, project, hour, source_hash HAVING uniqExact(dimension) = {{kinds:UInt8}})
        ORDER BY hour""", params, tag="latency_hours:stale")]
    written = 0
    for at in range(0, len(stale), HOURS_PER_INSERT):  # a long import's hours a week at a time: bounded memory
        written += wh.written_rows(
            f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT {_COLUMNS} FROM {VIEW} WHERE hour IN {{hours:Array(DateTime('UTC'))}}",
            {"hours": stale[at:at + HOURS_PER_INSERT]}, tag="latency_hours:finish")
    return Finished(len(stale), written)


def fresh_hours(scope: Scope, dimension: str | None, params: dict[str, Any]) -> tuple[str, str] | None:
    """For a read of whole hours [`h_first`, `h_last`) (bound by the caller) in `scope`, per `dimension`
    (None: overall), without filters: (the condition picking this read's finished rows that still
    match the rollup, a subquery of their hours). A re-finished hour keeps its older rows until they
    are replaced: the condition leaves them out. None where nothing finished serves the read: a
    dimension not kept, or a scope of several projects (finished rows are per project or for every
    project together)."""
    if dimension is not None and dimension not in DIMENSIONS:
        return None
    if scope.projects is None:
        rows = "all_projects = 1"
    elif len(scope.projects) == 1:
        rows = "all_projects = 0 AND project = {finished_project:String}"
        params["finished_project"] = scope.projects[0]
    else:
        return None
    params["finished_dimension"] = dimension or ""
    rows += (" AND dimension = {finished_dimension:String} AND hour >= {h_first:DateTime64(3, 'UTC')} "
             "AND hour < {h_last:DateTime64(3, 'UTC')}")
    current = (f"SELECT hour, {SOURCE_HASH} FROM calls_latency_hourly WHERE {scope.clause(params)} "
               "AND hour >= {h_first:DateTime64(3, 'UTC')} AND hour < {h_last:DateTime64(3, 'UTC')} GROUP BY hour")
    rows += f" AND (hour, source_hash) IN ({current})"
    return rows, f"SELECT DISTINCT hour FROM {TABLE} WHERE {rows}"
