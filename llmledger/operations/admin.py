"""Looking after the store: the price table and re-pricing, the schema's migrations, the demo's
simulated traffic, and the attribution summary of the last days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, model_validator

from llmledger.instants import Instant
from llmledger.operations import OPERATOR, READ, OpContext, operation


class NoParams(BaseModel):
    model_config = {"extra": "forbid"}


@operation("prices.load", "POST", "/v1/admin/prices/load", NoParams, scope=OPERATOR)
def load_prices(ctx: OpContext, p: NoParams) -> dict[str, Any]:
    """Rebuild the price table from genai-prices and the configured overrides."""
    from ingest.pricing import load_prices as load

    result = load(ctx.wh, ctx.settings.pricing)
    if ctx.pipeline is not None:
        ctx.pipeline.writer.refresh_prices()
    return {"price_cells": result.rows, "models": result.models, "overrides": result.overrides,
            "changed": result.changed}


class RepriceParams(BaseModel):
    """The range to re-price: [since, until), UTC (naive times are UTC)."""

    model_config = {"extra": "forbid"}
    since: Instant
    until: Instant

    @model_validator(mode="after")
    def _ordered(self) -> RepriceParams:
        if self.until <= self.since:
            raise ValueError("until must be after since")
        return self


@operation("prices.reprice", "POST", "/v1/admin/reprice", RepriceParams, scope=OPERATOR, long=True)
def reprice(ctx: OpContext, p: RepriceParams) -> dict[str, Any]:
    """Reload prices and recompute the stored costs of calls in [since, until), month by month, with
    the hourly rollups. In the service it holds the writer lock, so no pushed batch lands in a
    month while that month is rebuilt and swapped."""
    from ingest.reprice import reprice_with_settings

    months = ctx.wh.scalar(
        "SELECT uniqExact(_partition_id) FROM calls WHERE ts >= {since:DateTime64(3, 'UTC')} "
        "AND ts < {until:DateTime64(3, 'UTC')}", {"since": p.since, "until": p.until}, tag="reprice:months")
    advance = ctx.feed.task("reprice (months)", int(months or 0))
    load, report = reprice_with_settings(ctx.wh, ctx.settings.pricing, since=p.since, until=p.until,
                                         lock=ctx.writer_lock, on_month=lambda _: advance(1))
    if ctx.pipeline is not None:
        ctx.pipeline.writer.refresh_prices()
    return {"price_cells": load.rows, "prices_changed": load.changed, "calls": report.calls,
            "months": report.partitions, "cost_before_usd": str(report.cost_before_usd),
            "cost_after_usd": str(report.cost_after_usd), "unpriced_before": report.unpriced_before,
            "unpriced_after": report.unpriced_after, "renamed_models": report.renamed_models}


@operation("migrations.list", "GET", "/v1/admin/migrations", NoParams, scope=READ)
def migrations(ctx: OpContext, p: NoParams) -> dict[str, Any]:
    """The schema's migrations: applied, and pending (the service applies them when it starts)."""
    from warehouse.migrate import applied, check

    pending = [m.name for m in check(ctx.wh)]
    done = sorted(applied(ctx.wh).items())
    return {"applied": [name for _, (name, _) in done], "pending": pending}


class DemoParams(BaseModel):
    model_config = {"extra": "forbid"}
    days: int = Field(default=30, ge=1, le=366)
    calls_per_day: int = Field(default=30_000, ge=100, le=5_000_000)
    seed: int = 7


@operation("demo.seed", "POST", "/v1/admin/demo", DemoParams, scope=OPERATOR, long=True)
def seed_demo(ctx: OpContext, p: DemoParams) -> dict[str, Any]:
    """Simulate and ingest the demo's traffic (incidents, nodes, replays) and evaluate the signals over it."""
    from llmledger.demo import seed_demo as seed

    result = seed(ctx.wh, ctx.settings, days=p.days, calls_per_day=p.calls_per_day, seed=p.seed, feed=ctx.feed)
    return {"start": result.start, "end": result.end, "written": result.written, "duplicates": result.duplicates,
            "tool_runs": result.tool_runs, "node_samples": result.node_samples, "incidents": result.incidents,
            "ground_truth_path": str(result.ground_truth_path)}


class SummaryParams(BaseModel):
    model_config = {"extra": "forbid"}
    days: int | None = Field(default=30, ge=1, le=3660, description="The last N days (ignored with start).")
    start: Instant | None = None
    end: Instant | None = Field(default=None, description="Default: now.")


@operation("summary", "GET", "/v1/summary", SummaryParams, scope=READ)
def summary(ctx: OpContext, p: SummaryParams) -> dict[str, Any]:
    """The attribution summary of a range: totals, top routes / users / models / teams, cache, latency."""
    from llmledger.summary import build_summary

    end = p.end or datetime.now(UTC)
    start = p.start or end - timedelta(days=p.days or 30)
    return build_summary(ctx.wh, start, end, scope=ctx.scope).as_dict()
