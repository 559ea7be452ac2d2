"""Maintenance of the incremental rollups (`ROLLUPS`: the hourly ones over `calls` and `tool_runs`,
the daily tiers fed from hourly ones, the five-minute edge tier over `calls` and the five-minute one
over `gpu_samples`).

Materialized views keep them current on every insert, but they never see `REPLACE PARTITION`
(reprice), data that predates the view (a fresh migration over old data) or rows a background
merge collapses. `rebuild_rollups(wh, partition_id)` recomputes one month of every rollup from
its source, with the view's own SELECT (read back from the engine, so there is one definition),
and swaps it in atomically — hourly rollups before the daily tiers built from them;
`refresh_rollups(wh)` finds the months whose rollups disagree with the raw table they summarise
(row count and an exact total) and rebuilds just those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from warehouse.client import Warehouse
from warehouse.errors import WarehouseError


class RollupError(WarehouseError):
    """A rollup's view definition could not be turned into a rebuild statement."""

    user_message = "rollup maintenance failed"


@dataclass(frozen=True)
class Rollup:
    """A rollup table, the view that feeds it, the table the view reads (`source`: raw, or the hourly
    rollup a daily tier merges) and how it is checked against the raw table it summarises (`raw`):
    rows counted by `count_column`, an exact total (`total`: raw expression, rollup expression) and
    the raw rows it keeps (`raw_where`)."""

    table: str
    view: str
    source: str
    count_column: str
    total: tuple[str, str] | None
    raw: str = "calls"
    raw_where: str = "1"


_COST = ("sum(cost_usd)", "sum(cost_usd)")
# In rebuild order: a daily tier after the hourly rollup it is built from.
ROLLUPS: tuple[Rollup, ...] = (
    Rollup("calls_hourly", "calls_hourly_mv", "calls", "calls", _COST),
    Rollup("calls_user_hourly", "calls_user_hourly_mv", "calls", "calls", _COST),
    Rollup("calls_cache_hourly", "calls_cache_hourly_mv", "calls", "calls", ("sum(cache_read_cost_usd)",) * 2),
    Rollup("tool_runs_hourly", "tool_runs_hourly_mv", "tool_runs", "runs", None, raw="tool_runs"),
    Rollup("calls_daily", "calls_daily_mv", "calls_hourly", "calls", _COST),
    Rollup("calls_user_daily", "calls_user_daily_mv", "calls_user_hourly", "calls", _COST),
    Rollup("calls_user_totals_hourly", "calls_user_totals_hourly_mv", "calls_user_hourly", "calls", _COST),
    Rollup("calls_user_totals_daily", "calls_user_totals_daily_mv", "calls_user_daily", "calls", _COST),
    Rollup("calls_prompt_hourly", "calls_prompt_hourly_mv", "calls", "calls", None),
    Rollup("calls_tokens_hourly", "calls_tokens_hourly_mv", "calls", "calls",
           ("sum(input_tokens) + sum(output_tokens)", "sum(input_sum) + sum(output_sum)")),
    Rollup("calls_tokens_daily", "calls_tokens_daily_mv", "calls_tokens_hourly", "calls",
           ("sum(input_tokens) + sum(output_tokens)", "sum(input_sum) + sum(output_sum)")),
    Rollup("calls_routing_hourly", "calls_routing_hourly_mv", "calls", "calls", _COST,
           raw_where="routing_policy != ''"),
    Rollup("calls_node_hourly", "calls_node_hourly_mv", "calls", "calls",
           ("sum(input_tokens + output_tokens)", "sum(io_tokens)"), raw_where="deployment = 'self_hosted' AND node != ''"),
    Rollup("calls_route_scores_daily", "calls_route_scores_daily_mv", "calls", "calls",
           ("sum(input_tokens)", "sum(input_tokens)")),
    Rollup("calls_deployment_hourly", "calls_deployment_hourly_mv", "calls", "calls", _COST),
    Rollup("calls_latency_hourly", "calls_latency_hourly_mv", "calls", "calls",
           ("countIf(status = 'ok' AND latency_ms IS NOT NULL)", "sum(latency_calls)")),
    Rollup("calls_unpriced_hourly", "calls_unpriced_hourly_mv", "calls", "calls",
           ("sum(input_tokens + output_tokens)", "sum(input_tokens) + sum(output_tokens)"), raw_where="unpriced"),
    Rollup("calls_5m", "calls_5m_mv", "calls", "calls", _COST),
    Rollup("calls_reasoning_top_hourly", "calls_reasoning_top_hourly_mv", "calls", "calls",
           ("sum(reasoning_tokens)", "sum(reasoning_sum)"), raw_where="reasoning_tokens > 0"),
    Rollup("gpu_samples_5m", "gpu_samples_5m_mv", "gpu_samples", "samples", None, raw="gpu_samples"),
    Rollup("gpu_samples_hourly", "gpu_samples_hourly_mv", "gpu_samples_5m", "samples", None, raw="gpu_samples"),
)
_SCRATCH = "_rebuild_{table}"


@dataclass(frozen=True)
class RefreshReport:
    """What `refresh_rollups` checked and rebuilt."""

    checked: int
    rebuilt: list[tuple[str, str]]  # (rollup table, partition id)


def _rebuild_select(wh: Warehouse, rollup: Rollup) -> str:
    """The view's SELECT, reading one partition of its source instead of the whole table."""
    row = wh.query_rows(
        "SELECT as_select FROM system.tables WHERE database = {db:String} AND name = {name:String}",
        {"db": wh.database, "name": rollup.view},
        tag="rollups:definition",
    )
    if not row:
        raise RollupError(f"materialized view {rollup.view} is missing in database {wh.database!r}")
    select = row[0][0]
    source = re.compile(rf"\bFROM\s+`?{re.escape(wh.database)}`?\.`?{re.escape(rollup.source)}`?(?=\s|$)")
    if len(source.findall(select)) != 1:
        raise RollupError(f"cannot find the single source table {rollup.source} in {rollup.view}: {select[:200]}")
    partition = (
        f"FROM (SELECT * FROM {rollup.source} WHERE _partition_id = {{partition:String}}) AS {rollup.source}"
    )
    return source.sub(lambda _: partition, select)


def rebuild_rollups(wh: Warehouse, partition_id: str) -> None:
    """Recompute every rollup's month `partition_id` (e.g. '202511') from its source and swap it in.

    The month is built beside the live rollup and replaced in one `REPLACE PARTITION`, so readers
    see the old or the new month, never half of one. Rows inserted into the source while a month
    is rebuilt may be missed by the rebuilt copy; the `rollups.refresh` job notices and repairs.
    """
    if not partition_id.isdigit():
        raise ValueError(f"partition ids are YYYYMM digits, got {partition_id!r}")
    for rollup in ROLLUPS:
        select = _rebuild_select(wh, rollup)
        scratch = _SCRATCH.format(table=rollup.table)
        wh.command(f"DROP TABLE IF EXISTS {scratch}")
        wh.command(f"CREATE TABLE {scratch} AS {rollup.table}")
        try:
            written = wh.written_rows(
                f"INSERT INTO {scratch} {select}", {"partition": partition_id}, tag="rollups:rebuild"
            )
            if written:
                wh.command(f"ALTER TABLE {rollup.table} REPLACE PARTITION ID '{int(partition_id)}' FROM {scratch}")
            else:
                wh.command(f"ALTER TABLE {rollup.table} DROP PARTITION ID '{int(partition_id)}'")
        finally:
            wh.command(f"DROP TABLE IF EXISTS {scratch}")


def _raw_totals(wh: Warehouse, rollup: Rollup) -> dict[str, tuple[int, Decimal]]:
    total = rollup.total[0] if rollup.total else "0"
    rows = wh.query_rows(
        f"SELECT _partition_id, count(), {total} FROM {rollup.raw} WHERE {rollup.raw_where} GROUP BY _partition_id",
        tag="rollups:check-source",
    )
    return {str(p): (int(n), Decimal(c or 0)) for p, n, c in rows}


def _rollup_totals(wh: Warehouse, rollup: Rollup) -> dict[str, tuple[int, Decimal]]:
    total = rollup.total[1] if rollup.total else "0"
    rows = wh.query_rows(
        f"SELECT _partition_id, sum({rollup.count_column}), {total} FROM {rollup.table} GROUP BY _partition_id",
        tag="rollups:check-rollup",
    )
    return {str(p): (int(n), Decimal(c or 0)) for p, n, c in rows}


def stale_partitions(wh: Warehouse) -> tuple[int, list[tuple[str, str]]]:
    """(pairs compared, the (rollup table, partition id) pairs whose row count or exact total
    differs from the raw table's)."""
    stale: list[tuple[str, str]] = []
    sources: dict[tuple[str, str, tuple[str, str] | None], dict[str, tuple[int, Decimal]]] = {}
    compared = 0
    for rollup in ROLLUPS:
        key = (rollup.raw, rollup.raw_where, rollup.total)
        if key not in sources:
            sources[key] = _raw_totals(wh, rollup)
        source = sources[key]
        have = _rollup_totals(wh, rollup)
        for partition in sorted(set(source) | set(have)):
            compared += 1
            if source.get(partition, (0, Decimal(0))) != have.get(partition, (0, Decimal(0))):
                stale.append((rollup.table, partition))
    return compared, stale


def refresh_rollups(wh: Warehouse) -> RefreshReport:
    """Rebuild the months whose rollups disagree with their source (after a migration over old
    data, a reprice run without the hook, or merges collapsing duplicate source rows)."""
    compared, stale = stale_partitions(wh)
    for partition in sorted({p for _, p in stale}):
        rebuild_rollups(wh, partition)
    return RefreshReport(checked=compared, rebuilt=stale)
