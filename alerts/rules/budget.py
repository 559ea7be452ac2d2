"""Team and project budgets: month-to-date spend against each configured monthly budget, with a
month-end forecast; each level (50 / 80 / 100% by default) notified once per month. Closed hours
come from the rollup, the current hour from raw calls.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from alerts.model import Level, Severity
from alerts.rules.base import TIME, Explanation, Family, Rule, RuleContext, empty_observations, time_series
from alerts.settings import Budget
from warehouse.queries import signals as q

KEYS = ["budget", "period"]


def month_start(at: datetime) -> datetime:
    """Midnight UTC on the first of `at`'s month."""
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def next_month(at: datetime) -> datetime:
    """Midnight UTC on the first of the month after `at`'s."""
    return month_start(month_start(at) + timedelta(days=32))


def budget_name(budget: Budget) -> str:
    """`team=data`, `project=acme-app` or both, comma-joined."""
    return ",".join(f"{k}={v}" for k, v in (("project", budget.project), ("team", budget.team)) if v)


def counts_text(budget_counts: str) -> str:
    """What a budget holds, for people."""
    return "API spend + self-hosted infra" if budget_counts == "api+infra" else "API spend only"


class BudgetThreshold(Rule):
    """+ budget: month-to-date spend of a team / project (both when both are given) against its
    monthly budget; levels at 50% and 80% (WARNING) and 100% (CRITICAL), each notified once per
    month. Beside them, a forecast warning, once per period: month-to-date plus the daily rate of
    the last `forecast_days` days times the days left reaches `forecast_warning` (100%) of the
    budget — its own incident (scope `measure=forecast`), which holds until the period ends. Each
    budget says whether it counts API spend only or API spend + self-hosted infra (`counts`).
    When a period ends its incidents resolve (silently: the period ended, nothing recovered): during
    the first day of a period every evaluation also observes the closed one at level 0."""

    method = "month-to-date vs 50/80/100%; month-end forecast (7-day rate) ≥ 100% once per period"
    name = "budget"
    title = "Budget"
    scope_keys = ("budget", "period")
    unit = "usd"
    notify_resolved = False
    renotify = False  # each level is notified once per month
    next_step = ("Review the top spenders of the scope (routes, users, models) and the savings opportunities; "
                 "raise the budget or cap the spend.")
    forecast_level = (Level("forecast over budget", Severity.WARNING),)

    def __init__(self, levels: list[float] | None = None) -> None:
        marks = levels or [0.5, 0.8, 1.0]
        self.levels = tuple(Level(f"{m:.0%}", Severity.CRITICAL if m >= 1.0 else Severity.WARNING) for m in marks)

    def levels_of(self, scope: dict[str, str]) -> tuple[Level, ...]:
        return self.forecast_level if scope.get("measure") == "forecast" else self.levels

    def scope_of(self, row: dict[str, Any]) -> dict[str, str]:
        scope = dict(part.split("=", 1) for part in str(row["budget"]).split(","))
        scope["period"] = str(row["period"])
        if row.get("measure") == "forecast":
            scope["measure"] = "forecast"
        return scope

    def key_expr(self) -> pl.Expr:
        return pl.concat_str([pl.col("budget"), pl.lit(",period="), pl.col("period"),
                              pl.when(pl.col("measure") == "forecast").then(pl.lit(",measure=forecast"))
                              .otherwise(pl.lit(""))])

    def describe(self, row: dict[str, Any]) -> str:
        counts = counts_text(str(row.get("counts") or "api"))
        if row.get("closed"):
            return (f"{self.title}: period {row.get('period')} closed with ${row.get('spent_usd') or 0:,.2f} spent "
                    f"({row.get('used') or 0:.0%} of ${row.get('budget_usd', 0):,.2f}, {counts})")
        if row.get("measure") == "forecast":
            return (f"{self.title}: month-end forecast ${row.get('forecast_usd', 0):,.2f}, "
                    f"{(row.get('forecast_usd') or 0) / (row.get('budget_usd') or 1):.0%} of ${row.get('budget_usd', 0):,.2f} "
                    f"({counts}); ${row.get('spent_usd', 0):,.2f} spent so far")
        return (f"{self.title}: ${row['value']:,.2f} spent this month, {row.get('used', 0):.0%} of "
                f"${row.get('budget_usd', 0):,.2f} ({counts}); forecast ${row.get('forecast_usd', 0):,.2f} by month end")

    def explain(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        forecast, budget = row.get("forecast_usd") or 0, row.get("budget_usd") or 0
        rate = row.get("daily_rate_usd") or 0
        counts = counts_text(str(row.get("counts") or "api"))
        if scope.get("measure") == "forecast":
            return Explanation(
                f"month-end forecast ${forecast:,.2f}, {forecast / budget:.0%} of the budget ({counts}), at the last "
                f"{ctx.signals.budget.forecast_days} days' rate of ${rate:,.2f}/day; warned once this period",
                self.next_step)
        over = f"forecast ${forecast:,.2f} by month end ({forecast / budget:.0%} of the budget)" if budget else ""
        level = int(row.get("level") or 0)
        stage = self.levels[level - 1].name if level else "a level"
        return Explanation(f"month-to-date spend ({counts}) crossed {stage} of the budget; {over}", self.next_step)


class BudgetFamily(Family):
    """Budgets from the hourly rollup plus the current hour's raw calls (and, for budgets that
    count it, the self-hosted infra cost allocated by hour)."""

    name = "budget"
    rules = (BudgetThreshold(),)

    def active_rules(self, signals: Any) -> tuple[Rule, ...]:
        return (BudgetThreshold(signals.budget.levels),)

    def observe(self, ctx: RuleContext, instants: list[datetime]) -> dict[str, pl.DataFrame]:
        settings = ctx.signals.budget
        rule = BudgetThreshold(settings.levels)
        if not settings.enabled or not ctx.signals.budgets:
            return {rule.name: empty_observations(KEYS)}
        first, last = min(instants), max(instants)
        hour_lo = min(month_start(first), first - timedelta(days=settings.forecast_days)).replace(
            minute=0, second=0, microsecond=0)
        if first < month_start(first) + timedelta(days=1):  # the closed period is observed: all of its spend
            hour_lo = min(hour_lo, month_start(month_start(first) - timedelta(days=1)))
        hour_hi = last.replace(minute=0, second=0, microsecond=0)
        hourly = q.budget_hourly(ctx.wh, ctx.scope, hour_lo, hour_hi).with_columns(
            pl.col("hour").cast(TIME), pl.col("cost_usd").cast(pl.Float64))
        recent = q.budget_recent(ctx.wh, ctx.scope, first.replace(minute=0, second=0, microsecond=0), last).with_columns(
            pl.col("bucket").cast(TIME), pl.col("cost_usd").cast(pl.Float64))
        at = time_series(instants).to_frame().with_columns(
            pl.col("at").dt.truncate("1h").alias("hour_of"), pl.col("at").dt.truncate("1mo").alias("month"))
        frames = []
        for budget in ctx.signals.budgets:
            match = pl.lit(True)
            for column, value in (("team", budget.team), ("project", budget.project)):
                if value:
                    match = match & (pl.col(column) == value)
            h = hourly.filter(match).group_by("hour").agg(pl.col("cost_usd").sum())
            if budget.counts == "api+infra":
                h = pl.concat([h, _infra_hourly(ctx, budget, hour_lo, hour_hi)]).group_by("hour").agg(
                    pl.col("cost_usd").sum())
            r = recent.filter(match).group_by("bucket").agg(pl.col("cost_usd").sum()).sort("bucket")
            frames.append(self._judge(at, h.sort("hour"), r, budget, settings.forecast_days, rule,
                                      settings.forecast_warning))
        out = pl.concat(frames) if frames else empty_observations(KEYS)
        return {rule.name: out}

    @staticmethod
    def _judge(at: pl.DataFrame, hourly: pl.DataFrame, recent: pl.DataFrame, budget: Budget, forecast_days: int,
               rule: BudgetThreshold, forecast_warning: float | None) -> pl.DataFrame:
        amount = float(budget.monthly_usd)
        # G(t): spend of whole hours before t (all fetched history); R(t): raw spend of buckets before t
        cum_h = hourly.with_columns(pl.col("cost_usd").cum_sum().alias("g"), (pl.col("hour") + timedelta(hours=1))
                                    .alias("t")).select("t", "g")
        cum_r = recent.with_columns(pl.col("cost_usd").cum_sum().alias("r"), (pl.col("bucket") + timedelta(minutes=5))
                                    .alias("t")).select("t", "r")

        def g_at(frame: pl.DataFrame, column: str, alias: str) -> pl.DataFrame:
            probe = frame.select(pl.col(column).alias("t")).unique().sort("t")
            return probe.join_asof(cum_h, on="t", strategy="backward").with_columns(
                pl.col("g").fill_null(0.0)).rename({"t": column, "g": alias})

        def r_at(frame: pl.DataFrame, column: str, alias: str) -> pl.DataFrame:
            probe = frame.select(pl.col(column).alias("t")).unique().sort("t")
            return probe.join_asof(cum_r, on="t", strategy="backward").with_columns(
                pl.col("r").fill_null(0.0)).rename({"t": column, "r": alias})

        frame = at.with_columns((pl.col("hour_of") - timedelta(days=forecast_days)).alias("rate_from"),
                                pl.col("month").dt.offset_by("-1mo").alias("prev_month"))
        frame = (frame.join(g_at(frame, "hour_of", "g_hour"), on="hour_of").join(g_at(frame, "month", "g_month"), on="month")
                 .join(g_at(frame, "prev_month", "g_prev"), on="prev_month")
                 .join(g_at(frame, "rate_from", "g_from"), on="rate_from")
                 .join(r_at(frame, "at", "r_at"), on="at").join(r_at(frame, "hour_of", "r_hour"), on="hour_of"))
        month_end = pl.col("month").dt.offset_by("1mo")
        days_left = (month_end - pl.col("at")).dt.total_seconds() / 86_400
        out = frame.with_columns(
            (pl.col("g_hour") - pl.col("g_month") + pl.col("r_at") - pl.col("r_hour")).alias("value"),
            ((pl.col("g_hour") - pl.col("g_from")) / forecast_days).alias("daily_rate_usd"),
        ).with_columns(
            (pl.col("value") + pl.col("daily_rate_usd") * days_left).alias("forecast_usd"),
            (pl.col("value") / amount).alias("used"),
            pl.lit(amount).alias("budget_usd"),
        )
        marks = [float(level.name.rstrip("%")) / 100 for level in rule.levels]
        level = pl.lit(0)
        for i, mark in enumerate(marks, start=1):
            level = pl.when(pl.col("used") >= mark).then(i).otherwise(level)
        thresholds = pl.lit(marks[0] * amount)
        for mark in marks[1:]:
            thresholds = pl.when(pl.col("used") >= mark).then(mark * amount).otherwise(thresholds)
        common = [pl.lit(budget_name(budget)).alias("budget"), pl.col("month").dt.strftime("%Y-%m").alias("period"),
                  pl.lit(budget.team or "").alias("team"), pl.lit(budget.project or "").alias("project"),
                  pl.lit(0.0).alias("volume"), pl.lit(budget.counts).alias("counts")]
        columns = ["budget", "period", "measure", "project", "team", "at", "level", "peak", "value", "threshold",
                   "volume", "used", "budget_usd", "forecast_usd", "daily_rate_usd", "spent_usd", "counts", "closed"]
        spent = out.with_columns(
            level.cast(pl.Int8).alias("level"), level.cast(pl.Int8).alias("peak"), thresholds.alias("threshold"),
            pl.lit("spent").alias("measure"), pl.col("value").alias("spent_usd"), *common, pl.lit(False).alias("closed"),
        ).select(columns)
        # the period that just ended, observed at level 0 through the new period's first day: its
        # incidents (a crossing, a forecast warning) resolve when it ends, not when unobserved for long
        measures = ["spent"] + (["forecast"] if forecast_warning is not None else [])
        closed = out.filter(pl.col("at") < pl.col("month") + timedelta(days=1)).with_columns(
            pl.lit(0, pl.Int8).alias("level"), pl.lit(0, pl.Int8).alias("peak"),
            (pl.col("g_month") - pl.col("g_prev")).alias("spent_usd"), *common,
        ).with_columns(
            pl.col("prev_month").dt.strftime("%Y-%m").alias("period"), pl.col("spent_usd").alias("value"),
            pl.col("spent_usd").alias("forecast_usd"), (pl.col("spent_usd") / amount).alias("used"),
            pl.lit(float("nan")).alias("threshold"), pl.lit(True).alias("closed"),
        )
        closed = pl.concat([closed.with_columns(pl.lit(m).alias("measure")) for m in measures]).select(columns)
        if forecast_warning is None:
            return pl.concat([spent, closed])
        over = pl.col("forecast_usd") >= forecast_warning * amount
        # once crossed, held (never resolved) until the period ends: warned once per period
        forecast = out.with_columns(
            over.cast(pl.Int8).alias("level"), pl.when(over).then(1).otherwise(-1).cast(pl.Int8).alias("peak"),
            pl.lit(forecast_warning * amount).alias("threshold"), pl.lit("forecast").alias("measure"),
            pl.col("value").alias("spent_usd"), *common, pl.lit(False).alias("closed"),
        ).with_columns(pl.col("forecast_usd").alias("value")).select(columns)
        return pl.concat([spent, forecast, closed])


def _infra_hourly(ctx: RuleContext, budget: Budget, lo: datetime, hi: datetime) -> pl.DataFrame:
    """The self-hosted infra cost allocated to a budget's team / project per closed hour."""
    from warehouse.queries import nodes
    from warehouse.queries.scope import Scope

    scope = Scope.of(budget.project) if budget.project else ctx.scope
    if budget.project and ctx.scope.projects is not None and budget.project not in ctx.scope.projects:
        return pl.DataFrame(schema={"hour": TIME, "cost_usd": pl.Float64})
    dimension, filters = ("team", {"team": [budget.team]}) if budget.team else ("project", {"project": [budget.project]})
    frame = nodes.infra_by(ctx.wh, scope, dimension, lo, hi, filters, grain="hour", tag="signals:budget-infra")
    if frame.is_empty():
        return pl.DataFrame(schema={"hour": TIME, "cost_usd": pl.Float64})
    return frame.select(pl.col("bucket").cast(TIME).alias("hour"), pl.col("infra_cost_usd").cast(pl.Float64).fill_null(0.0)
                        .alias("cost_usd"))
