"""Where the money goes and where it is heading: spend today / this week / month to date with a
month-end forecast, budgets against it, spend by weekday and hour, and the top movers against the
previous period.

Periods are UTC (weeks start on Monday); money is Decimal(38, 18) USD; ranges are [start, end).
Whole hours come from the hourly rollups where they keep what is asked (`hybrid`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries import hybrid
from warehouse.queries.scope import DIMENSIONS, Filters, Scope, where


def month_start(at: datetime) -> datetime:
    """Midnight UTC on the first of `at`'s month."""
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def next_month(at: datetime) -> datetime:
    """Midnight UTC on the first of the month after `at`'s."""
    return month_start(month_start(at) + timedelta(days=32))


def spend_periods(
    wh: Warehouse, scope: Scope, now: datetime, filters: Filters | None = None, *, forecast_days: int = 7,
    tag: str = "spend:periods",
) -> pl.DataFrame:
    """One row: spend and calls today, this week and month to date (each up to `now`), the spend
    of the last `forecast_days` × 24 h, and the month-end forecast: month to date plus that daily
    rate times the days left in the month (`forecast_usd`)."""
    now = now.astimezone(UTC)
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    week, month = day - timedelta(days=day.weekday()), month_start(now)
    trailing = now - timedelta(days=forecast_days)
    params: dict[str, Any] = {
        "day": day, "week": week, "month": month, "trailing": trailing,
        "left_ms": int((next_month(now) - now).total_seconds() * 1000),
        "trailing_ms": int(forecast_days * 86_400_000),
    }
    since = min(week, month, trailing)
    rows = hybrid.rows(scope, since, now, filters, keys={}, measures=("cost_usd", "calls"), params=params,
                       boundaries=(day, week, month, trailing), days=True)
    if rows is None:
        rows = f"SELECT ts AS t, cost_usd, 1 AS calls FROM calls WHERE {where(scope, since, now, filters, params=params)}"
    sql = f"""
        SELECT
            sumIf(cost_usd, t >= {{day:DateTime64(3, 'UTC')}}) AS today_usd,
            sumIf(calls, t >= {{day:DateTime64(3, 'UTC')}}) AS today_calls,
            sumIf(cost_usd, t >= {{week:DateTime64(3, 'UTC')}}) AS week_usd,
            sumIf(calls, t >= {{week:DateTime64(3, 'UTC')}}) AS week_calls,
            sumIf(cost_usd, t >= {{month:DateTime64(3, 'UTC')}}) AS month_usd,
            sumIf(calls, t >= {{month:DateTime64(3, 'UTC')}}) AS month_calls,
            sumIf(cost_usd, t >= {{trailing:DateTime64(3, 'UTC')}}) AS trailing_usd,
            month_usd + trailing_usd * toDecimal128({{left_ms:UInt64}}, 0) / toDecimal128({{trailing_ms:UInt64}}, 0)
                AS forecast_usd
        FROM ({rows})
    """
    return wh.query_df(sql, params, tag=tag).with_columns(
        pl.lit(month).alias("month_start"), pl.lit(next_month(now)).alias("month_end"),
        pl.lit(forecast_days).alias("forecast_days"))


def spend_heatmap(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None, *,
    tag: str = "spend:heatmap",
) -> pl.DataFrame:
    """Spend and calls by UTC weekday (1 = Monday … 7 = Sunday) and hour of day (0–23), every cell
    present (zero where nothing ran)."""
    params: dict[str, Any] = {}
    rows = hybrid.rows(scope, start, end, filters, keys={}, measures=("cost_usd", "calls"), params=params)
    if rows is None:
        rows = f"SELECT ts AS t, cost_usd, 1 AS calls FROM calls WHERE {where(scope, start, end, filters, params=params)}"
    sql = f"""
        SELECT weekday, hour, sum(c) AS cost_usd, toUInt64(sum(n)) AS calls FROM (
            SELECT toUInt8(toDayOfWeek(t)) AS weekday, toUInt8(toHour(t)) AS hour,
                sum(cost_usd) AS c, sum(calls) AS n
            FROM ({rows}) GROUP BY weekday, hour
            UNION ALL
            SELECT toUInt8(intDiv(number, 24) + 1) AS weekday, toUInt8(number % 24) AS hour,
                toDecimal128(0, 18) AS c, toUInt64(0) AS n
            FROM numbers(168)
        )
        GROUP BY weekday, hour ORDER BY weekday, hour
    """
    return wh.query_df(sql, params, tag=tag)


def movers(
    wh: Warehouse, scope: Scope, dimension: str, start: datetime, end: datetime, filters: Filters | None = None,
    *, n: int = 10, tag: str = "spend:movers",
) -> pl.DataFrame:
    """The `n` values of `dimension` whose spend changed most (in $) from the previous period of equal
    length [start − (end − start), start) to [start, end): columns key, cost_usd, previous_cost_usd,
    delta_usd, change (ratio; NULL when the value is new), calls, previous_calls."""
    column = identifier(dimension, DIMENSIONS)
    previous = start - (end - start)
    params: dict[str, Any] = {"n": int(n), "mid": start}
    rows = hybrid.rows(scope, previous, end, filters, keys={"key": dimension}, measures=("cost_usd", "calls"),
                       params=params, boundaries=(start,), days=True)
    if rows is None:
        cond = where(scope, previous, end, filters, params=params)
        rows = f"SELECT ts AS t, toString({column}) AS key, cost_usd, 1 AS calls FROM calls WHERE {cond}"
    sql = f"""
        SELECT key,
            sumIf(cost_usd, t >= {{mid:DateTime64(3, 'UTC')}}) AS current_usd,
            sumIf(cost_usd, t < {{mid:DateTime64(3, 'UTC')}}) AS previous_cost_usd,
            current_usd - previous_cost_usd AS delta_usd,
            if(previous_cost_usd = 0, NULL, toFloat64(delta_usd) / toFloat64(previous_cost_usd)) AS change,
            toUInt64(sumIf(calls, t >= {{mid:DateTime64(3, 'UTC')}})) AS current_calls,
            toUInt64(sumIf(calls, t < {{mid:DateTime64(3, 'UTC')}})) AS previous_calls
        FROM ({rows})
        GROUP BY key ORDER BY abs(delta_usd) DESC, key LIMIT {{n:UInt32}}
    """
    return wh.query_df(sql, params, tag=tag).rename({"current_usd": "cost_usd", "current_calls": "calls"}).select(
        "key", "cost_usd", "previous_cost_usd", "delta_usd", "change", "calls", "previous_calls")


@dataclass(frozen=True)
class BudgetSpec:
    """A monthly budget of a team and/or a project."""

    monthly_usd: Decimal
    team: str | None = None
    project: str | None = None

    @property
    def name(self) -> str:
        """`project=…,team=…` (the parts that are set)."""
        return ",".join(f"{k}={v}" for k, v in (("project", self.project), ("team", self.team)) if v)

    def filters(self) -> dict[str, list[str]]:
        return {k: [v] for k, v in (("project", self.project), ("team", self.team)) if v}


def configured_budgets(settings: Any) -> list[BudgetSpec]:
    """The budgets configured for the budget signal (`settings.signals.budgets`)."""
    return [BudgetSpec(Decimal(b.monthly_usd), b.team, b.project) for b in settings.signals.budgets]


def budget_status(
    wh: Warehouse, scope: Scope, budgets: Sequence[BudgetSpec], now: datetime, *, forecast_days: int = 7,
    tag: str = "spend:budgets",
) -> pl.DataFrame:
    """One row per budget whose project the scope may read: budget (name), team, project, monthly_usd,
    month_usd (month to date), forecast_usd (month end, as `spend_periods`), used and forecast_used
    (shares of the budget)."""
    rows = []
    for budget in budgets:
        if budget.project and scope.projects is not None and budget.project not in scope.projects:
            continue
        period = spend_periods(wh, scope, now, budget.filters(), forecast_days=forecast_days, tag=tag).row(0, named=True)
        month, forecast = period["month_usd"] or Decimal(0), period["forecast_usd"] or Decimal(0)
        rows.append({"budget": budget.name, "team": budget.team, "project": budget.project,
                     "monthly_usd": budget.monthly_usd, "month_usd": month, "forecast_usd": forecast,
                     "used": float(month / budget.monthly_usd), "forecast_used": float(forecast / budget.monthly_usd)})
    money = pl.Decimal(38, 18)
    return pl.DataFrame(rows, schema={"budget": pl.String, "team": pl.String, "project": pl.String,
                                      "monthly_usd": money, "month_usd": money, "forecast_usd": money,
                                      "used": pl.Float64, "forecast_used": pl.Float64})
