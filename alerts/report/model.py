"""What a weekly report says, as plain frozen records: built by `content`, `savings` and
`incidents`, rendered by `render` and `charts`. Money is Decimal USD throughout; shares are
Decimal fractions (0.25 = 25%); times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import polars as pl

from alerts.report.week import Week

COMPANY = "*"  # the audience key of the company-wide report


def change(current: Decimal, previous: Decimal) -> Decimal | None:
    """Relative change (0.1 = +10%); None when there was nothing before."""
    return None if previous == 0 else (current - previous) / previous


@dataclass(frozen=True)
class Audience:
    """Who a report is for: the whole company (`key` = "*") or one team."""

    key: str
    recipients: tuple[str, ...] = ()

    @property
    def team(self) -> str | None:
        """The team, or None for the company-wide report."""
        return None if self.key == COMPANY else self.key

    @property
    def title(self) -> str:
        return "Company-wide" if self.team is None else f"Team {self.team}"


@dataclass(frozen=True)
class Totals:
    """Spend and volume of the week beside the week before. Spend is API (calls at their token
    prices) plus self-hosted infra (GPU time); `total_usd` is their sum, and what the report leads
    with and compares."""

    cost_usd: Decimal  # API: the calls at their token prices
    previous_cost_usd: Decimal
    calls: int
    previous_calls: int
    input_tokens: int
    output_tokens: int
    errors: int
    unpriced_calls: int  # outside self-hosting
    infra_cost_usd: Decimal = Decimal(0)  # self-hosted nodes' GPU time
    previous_infra_cost_usd: Decimal = Decimal(0)
    self_hosted_calls: int = 0  # costed by GPU time, never "unpriced"

    @property
    def total_usd(self) -> Decimal:
        return self.cost_usd + self.infra_cost_usd

    @property
    def previous_total_usd(self) -> Decimal:
        return self.previous_cost_usd + self.previous_infra_cost_usd

    @property
    def delta_usd(self) -> Decimal:
        return self.total_usd - self.previous_total_usd

    @property
    def change(self) -> Decimal | None:
        return change(self.total_usd, self.previous_total_usd)


@dataclass(frozen=True)
class BillLine:
    """One provider's bill (cost export) for the week against the calls llmledger logged."""

    provider: str
    grain: str  # what the bill was compared by: "api_key_id, model", "model", "provider", …
    billed_usd: Decimal
    logged_usd: Decimal
    invisible_usd: Decimal  # billed, not explained by any logged call (per key/model/day where known)
    capture_rate: float | None  # logged ÷ billed


@dataclass(frozen=True)
class TeamSpend:
    """A team's week, its month to date and month-end forecast, against its budget (if any)."""

    team: str
    cost_usd: Decimal
    previous_cost_usd: Decimal
    month_to_date_usd: Decimal
    forecast_usd: Decimal
    budget_usd: Decimal | None

    @property
    def delta_usd(self) -> Decimal:
        return self.cost_usd - self.previous_cost_usd

    @property
    def change(self) -> Decimal | None:
        return change(self.cost_usd, self.previous_cost_usd)

    @property
    def budget_used(self) -> Decimal | None:
        """Month to date as a share of the budget."""
        return None if self.budget_usd is None else self.month_to_date_usd / self.budget_usd

    @property
    def forecast_share(self) -> Decimal | None:
        """Forecast as a share of the budget."""
        return None if self.budget_usd is None else self.forecast_usd / self.budget_usd

    @property
    def budget_status(self) -> str:
        """`none`, `ok`, `at risk` (forecast over budget) or `over` (month to date over budget)."""
        if self.budget_usd is None:
            return "none"
        if self.month_to_date_usd > self.budget_usd:
            return "over"
        return "at risk" if self.forecast_usd > self.budget_usd else "ok"


@dataclass(frozen=True)
class TopLine:
    """One of the most expensive values of a dimension."""

    key: str
    cost_usd: Decimal
    calls: int
    share: Decimal  # of the week's total spend


@dataclass(frozen=True)
class Mover:
    """A value of a dimension whose spend changed most from the week before."""

    dimension: str
    key: str
    cost_usd: Decimal
    previous_cost_usd: Decimal
    share_of_change: Decimal | None  # delta / the total's delta (None when the total did not move)

    @property
    def delta_usd(self) -> Decimal:
        return self.cost_usd - self.previous_cost_usd


@dataclass(frozen=True)
class CacheSummary:
    """Prompt caching over the week."""

    hit_ratio: float | None  # as `warehouse.queries.cache_ratio` defines it, per provider's caching
    previous_hit_ratio: float | None
    cache_read_tokens: int
    realised_usd: Decimal  # what the cache reads saved against uncached input prices
    missed_usd_month: Decimal  # uncached repeated prefixes: the estimate of their opportunities


@dataclass(frozen=True)
class LatencyLine:
    """Latency of one route's successful calls against its TTFT SLO."""

    route: str
    calls: int
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    ttft_p95_ms: float | None
    ttft_p99_ms: float | None
    ttft_slo_ms: int

    @property
    def breached(self) -> bool:
        """TTFT p95 over the SLO."""
        return self.ttft_p95_ms is not None and self.ttft_p95_ms > self.ttft_slo_ms


@dataclass(frozen=True)
class IncidentLine:
    """An alert incident that was open during the week."""

    signal: str
    severity: str
    state: str
    scope: dict[str, str]
    opened_at: datetime
    resolved_at: datetime | None
    summary: str
    cause: str
    next_step: str


@dataclass(frozen=True)
class Incidents:
    """The week's incidents, or why there are none to show."""

    available: bool
    items: tuple[IncidentLine, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Opportunity:
    """A saving the data shows, with its estimate per month."""

    kind: str  # uncached_prefix | not_on_batch_api | cheap_step_answers_most | reasoning_budget | self_hosted_underused
    title: str
    scope: dict[str, str]
    evidence: str
    action: str
    saving_usd_month: Decimal


@dataclass(frozen=True)
class DataQuality:
    """Where the week's numbers may be incomplete."""

    gaps: tuple[tuple[datetime, datetime], ...] | None  # [start, end) hours without any call; None: not shown
    unpriced: tuple[tuple[str, str, int], ...]  # (provider, model, calls)
    dead_letters: tuple[tuple[str, str, int], ...] | None  # (source, reason, records); None: not shown

    @property
    def clean(self) -> bool:
        return not self.gaps and not self.unpriced and not self.dead_letters


@dataclass(frozen=True)
class WeeklyReport:
    """Everything one weekly e-mail says."""

    week: Week
    audience: Audience
    generated_at: datetime
    totals: Totals
    teams: tuple[TeamSpend, ...]
    top: dict[str, tuple[TopLine, ...]]
    movers: dict[str, tuple[Mover, ...]]
    cache: CacheSummary
    latency: tuple[LatencyLine, ...]
    incidents: Incidents
    opportunities: tuple[Opportunity, ...]
    data_quality: DataQuality
    dashboard_url: str | None
    bills: tuple[BillLine, ...] | None  # provider bills against logged calls; None: not shown (team reports)
    table: pl.DataFrame = field(repr=False)  # the per-dimension CSV
    daily: pl.DataFrame = field(repr=False)  # day, key, cost_usd (this week, stacked)
    daily_previous: pl.DataFrame = field(repr=False)  # day, cost_usd (the week before)
