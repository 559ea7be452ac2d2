"""Period-over-period comparisons and data-quality look-ups, for the weekly report.

`movers` puts a dimension's cost in two ranges side by side; `hours_without_calls` and
`unpriced_models` say where the numbers may be incomplete (dead letters: `ops.dead_letter_counts`). Money is
Decimal(38, 18) USD; times are UTC; ranges are half-open [start, end).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries.scope import DIMENSIONS, Filters, Scope, where


def movers(
    wh: Warehouse,
    scope: Scope,
    dimension: str,
    current: tuple[datetime, datetime],
    previous: tuple[datetime, datetime],
    filters: Filters | None = None,
    *,
    limit: int = 10,
    tag: str = "weekly:movers",
) -> pl.DataFrame:
    """Per value of `dimension` (column `key`): `cost_usd` in `current`, `previous_cost_usd` in
    `previous` and `delta_usd`, largest absolute change first. The two ranges must not overlap."""
    column = identifier(dimension, DIMENSIONS)
    params: dict[str, Any] = {"limit": int(limit), "cur_start": current[0], "cur_end": current[1],
                              "prev_start": previous[0], "prev_end": previous[1]}
    in_current = "ts >= {cur_start:DateTime64(3, 'UTC')} AND ts < {cur_end:DateTime64(3, 'UTC')}"
    in_previous = "ts >= {prev_start:DateTime64(3, 'UTC')} AND ts < {prev_end:DateTime64(3, 'UTC')}"
    cond = where(scope, min(current[0], previous[0]), max(current[1], previous[1]), filters, params=params)
    sql = f"""
        SELECT key, cur_cost AS cost_usd, prev_cost AS previous_cost_usd, cur_cost - prev_cost AS delta_usd,
            cur_calls AS calls, prev_calls AS previous_calls
        FROM (
            -- inner aliases must not shadow the columns they sum
            SELECT toString({column}) AS key,
                sumIf(cost_usd, {in_current}) AS cur_cost, sumIf(cost_usd, {in_previous}) AS prev_cost,
                countIf({in_current}) AS cur_calls, countIf({in_previous}) AS prev_calls
            FROM calls WHERE {cond}
            GROUP BY key
        )
        ORDER BY abs(delta_usd) DESC, key
        LIMIT {{limit:UInt32}}
    """
    return wh.query_df(sql, params, tag=tag)


def hours_without_calls(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None, *,
    tag: str = "weekly:gaps",
) -> pl.DataFrame:
    """Every whole UTC hour in [start, end) in which no call was recorded (column `hour`), in order.
    `start` and `end` should fall on hour boundaries."""
    params: dict[str, Any] = {}
    cond = where(scope, start, end, filters, params=params)
    sql = f"""
        SELECT toDateTime64(hour, 3, 'UTC') AS hour FROM (
            SELECT toStartOfHour(ts) AS hour, count() AS calls FROM calls WHERE {cond} GROUP BY hour
            ORDER BY hour WITH FILL
                FROM toStartOfHour(toDateTime({{start:DateTime64(3, 'UTC')}}, 'UTC'))
                TO toDateTime({{end:DateTime64(3, 'UTC')}}, 'UTC')
                STEP INTERVAL 1 HOUR
        )
        WHERE calls = 0
        ORDER BY hour
    """
    return wh.query_df(sql, params, tag=tag)


def unpriced_models(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None, *,
    tag: str = "weekly:unpriced",
) -> pl.DataFrame:
    """Models with unpriced calls in the range (kept, priced 0): provider, model, calls, most first.
    Self-hosted models are left out: they are costed by GPU time, not per token."""
    params: dict[str, Any] = {}
    sql = (f"SELECT provider, model, count() AS calls, sum(input_tokens) AS input_tokens, "
           f"sum(output_tokens) AS output_tokens FROM calls WHERE {where(scope, start, end, filters, params=params)} "
           "AND unpriced AND deployment != 'self_hosted' GROUP BY provider, model ORDER BY calls DESC, provider, model")
    return wh.query_df(sql, params, tag=tag)


def has_table(wh: Warehouse, name: str, *, tag: str = "weekly:has_table") -> bool:
    """True when the warehouse's database has a table (or view) of that name."""
    return bool(wh.scalar("SELECT count() FROM system.tables WHERE database = currentDatabase() "
                          "AND name = {name:String}", {"name": name}, tag=tag))
