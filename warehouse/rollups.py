"""Maintenance of the incremental rollups (`calls_hourly`, `calls_user_hourly`, `calls_cache_hourly`,
`tool_runs_hourly`).

Materialized views keep them current on every insert, but they never see `REPLACE PARTITION`
(reprice), data that predates the view (a fresh migration over old data) or rows a background
merge collapses. `rebuild_rollups(wh, partition_id)` recomputes one month of every rollup from
its source, with the view's own SELECT (read back from the engine, so there is one definition),
and swaps it in atomically; `refresh_rollups(wh)` finds the months whose rollups disagree with
their source (count and exact Decimal cost) and rebuilds just those.
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
    """A rollup table, the view that feeds it and the table it summarises."""

    table: str
    view: str
    source: str
    count_column: str  # the rollup column that counts source rows
    cost_column: str | None  # an exact Decimal sum to compare with the source, if any


ROLLUPS: tuple[Rollup, ...] = (
    Rollup("calls_hourly", "calls_hourly_mv", "calls", "calls", "cost_usd"),
    Rollup("calls_user_hourly", "calls_user_hourly_mv", "calls", "calls", "cost_usd"),
    Rollup("calls_cache_hourly", "calls_cache_hourly_mv", "calls", "calls", "cache_read_cost_usd"),
    Rollup("tool_runs_hourly", "tool_runs_hourly_mv", "tool_runs", "runs", None),
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


def _source_totals(wh: Warehouse, rollup: Rollup) -> dict[str, tuple[int, Decimal]]:
    cost = f"sum({rollup.cost_column})" if rollup.cost_column else "toDecimal128(0, 18)"
    rows = wh.query_rows(
        f"SELECT _partition_id, count(), {cost} FROM {rollup.source} GROUP BY _partition_id",
        tag="rollups:check-source",
    )
    return {str(p): (int(n), Decimal(c or 0)) for p, n, c in rows}


def _rollup_totals(wh: Warehouse, rollup: Rollup) -> dict[str, tuple[int, Decimal]]:
    cost = f"sum({rollup.cost_column})" if rollup.cost_column else "toDecimal128(0, 18)"
    rows = wh.query_rows(
        f"SELECT _partition_id, sum({rollup.count_column}), {cost} FROM {rollup.table} GROUP BY _partition_id",
        tag="rollups:check-rollup",
    )
    return {str(p): (int(n), Decimal(c or 0)) for p, n, c in rows}


def stale_partitions(wh: Warehouse) -> tuple[int, list[tuple[str, str]]]:
    """(pairs compared, the (rollup table, partition id) pairs whose row count or exact cost
    differs from the source)."""
    stale: list[tuple[str, str]] = []
    sources: dict[tuple[str, str | None], dict[str, tuple[int, Decimal]]] = {}
    compared = 0
    for rollup in ROLLUPS:
        key = (rollup.source, rollup.cost_column)
        if key not in sources:
            sources[key] = _source_totals(wh, rollup)
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
