"""Spend endpoints: today / this week / month to date with the month-end forecast, configured
budgets against it, spend by weekday and hour, and the top movers against the previous period."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from llmledger.service.auth import Reader, State
from llmledger.service.models import Dimension, FilterQuery, Instant, RangeQuery, Table
from llmledger.service.reading import Tag, answer, value
from warehouse.queries import spend

router = APIRouter(prefix="/v1", tags=["read"])


class SpendQuery(FilterQuery):
    at: Instant | None = Field(default=None, description="Periods end here (default now).")
    forecast_days: int = Field(default=7, ge=1, le=60, description="Days of recent spend the forecast extrapolates.")


class MoversQuery(RangeQuery):
    dimension: Dimension
    n: int = Field(default=10, ge=1, le=100)


class BudgetQuery(BaseModel):
    model_config = {"extra": "forbid"}
    at: Instant | None = Field(default=None, description="Month to date up to here (default now).")


@router.get("/spend", response_model=Table, summary="Spend today, this week, month to date; month-end forecast")
def spend_periods(q: Annotated[SpendQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """One row: `today_usd`, `week_usd` (weeks start Monday, UTC), `month_usd` and their calls,
    `trailing_usd` (last `forecast_days` days) and `forecast_usd` for the month end."""
    return answer(spend.spend_periods(state.read_wh, who.read_scope, q.at or datetime.now(UTC), q.filters(),
                                     forecast_days=q.forecast_days, tag=tag))


@router.get("/spend/heatmap", response_model=Table, summary="Spend by weekday and hour of day (UTC)")
def spend_heatmap(q: Annotated[RangeQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """168 rows: weekday (1 = Monday), hour, cost_usd, calls."""
    return answer(spend.spend_heatmap(state.read_wh, who.read_scope, q.start, q.end, q.filters(), tag=tag))


@router.get("/movers", response_model=Table, summary="Largest spend changes against the previous period")
def movers(q: Annotated[MoversQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """The `n` values of `dimension` whose spend changed most from [start − (end − start), start)."""
    return answer(spend.movers(state.read_wh, who.read_scope, value(q.dimension), q.start, q.end, q.filters(),
                              n=q.n, tag=tag))


@router.get("/budgets", response_model=Table, summary="Configured budgets: month to date and forecast")
def budgets(q: Annotated[BudgetQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """One row per configured monthly budget (`[[signals.budgets]]`) that the caller may read:
    `budget`, `team`, `project`, `monthly_usd`, `month_usd`, `forecast_usd`, `used`, `forecast_used`."""
    return answer(spend.budget_status(state.read_wh, who.read_scope, spend.configured_budgets(state.settings),
                                     q.at or datetime.now(UTC), tag=tag))
