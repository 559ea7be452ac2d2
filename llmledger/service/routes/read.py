"""The read API over the query library: cost and usage by dimension, time series, latency
percentiles (overall and over time), cache hit ratios, top-N, dead letters and prices. Handlers are thin and sync (run in
the thread pool, so reads proceed while ingest runs); every query is scoped to the caller's
project(s). Money is returned as decimal strings."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, Field

from llmledger.service.auth import Reader, State
from llmledger.service.models import Dimension, Grain, Instant, Measure, RangeQuery, Table
from llmledger.service.reading import Tag, answer, value
from warehouse.queries import attribution, nodes, ops, series

router = APIRouter(prefix="/v1", tags=["read"])


UsageMeasure = StrEnum("UsageMeasure", {m: m for m in attribution.MEASURE_NAMES})  # type: ignore[misc]


class UsageQuery(RangeQuery):
    dimension: Dimension = Field(description="Group by this column.")
    limit: int = Field(default=100, ge=1, le=100_000)
    measure: list[UsageMeasure] = Field(  # type: ignore[valid-type]
        default_factory=list, max_length=len(attribution.MEASURE_NAMES),
        description="Only these measures (repeat for more; `calls` and `cost_usd` always come): "
                    "fewer columns read and returned. Default: all.")


class InfraGrain(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


class InfraQuery(RangeQuery):
    dimension: Dimension = Field(description="Attribute self-hosted infra cost to this column.")
    grain: InfraGrain | None = Field(default=None, description="Also per UTC bucket of node-hours (column `bucket`).")


class SeriesQuery(RangeQuery):
    grain: Grain = Grain("hour")  # type: ignore[call-arg]
    measure: Measure = Measure("cost_usd")  # type: ignore[call-arg]
    dimension: Dimension | None = Field(default=None, description="Stack by this column.")
    top: int = Field(default=10, ge=1, le=100, description="Stacked values kept; the rest are 'other'.")


class LatencyQuery(RangeQuery):
    dimension: Dimension | None = None


class LatencySeriesQuery(RangeQuery):
    grain: Grain = Grain("hour")  # type: ignore[call-arg]
    dimension: Dimension | None = None


class CacheQuery(RangeQuery):
    grain: Grain = Grain("hour")  # type: ignore[call-arg]
    dimension: Dimension | None = None


class TopQuery(RangeQuery):
    dimension: Dimension
    measure: Measure = Measure("cost_usd")  # type: ignore[call-arg]
    n: int = Field(default=10, ge=1, le=1000)


class DeadLetterQuery(BaseModel):
    model_config = {"extra": "forbid"}
    start: Instant
    end: Instant
    source: str | None = Field(default=None, max_length=256)
    reason: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=100, ge=1, le=10_000)


class PriceQuery(BaseModel):
    model_config = {"extra": "forbid"}
    model: str = Field(min_length=1, max_length=256, description="Catalogue model id, e.g. gpt-4o.")
    provider: str | None = Field(default=None, max_length=128)
    at: Instant | None = Field(default=None, description="When (default now).")


@router.get("/totals", response_model=Table, summary="Totals over a range")
def totals(q: Annotated[RangeQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Calls, cost components, tokens, errors over [start, end); `cost_usd` (calls at their token
    prices: API spend), `infra_cost_usd` (self-hosted GPU time) and `total_cost_usd` (their sum);
    `unpriced_calls` outside self-hosting, `self_hosted_calls` (costed by GPU time) and
    `uncosted_self_hosted_calls` (in node-hours without GPU samples or price)."""
    return answer(attribution.totals(state.read_wh, who.read_scope, q.start, q.end, q.filters(), tag=tag))


@router.get("/usage", response_model=Table, summary="Cost and usage by a dimension")
def usage(q: Annotated[UsageQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per value of `dimension` (column `key`): calls, cost components, tokens; most expensive first.
    At most `limit` values; when there are more, a last row `(others)` sums the rest, so the rows
    always add up to the totals (`keys`: how many values each row stands for). `measure` narrows the
    columns to those asked for (plus `calls` and `cost_usd`)."""
    measures = [str(value(m)) for m in q.measure] or None
    return answer(attribution.usage_by_capped(state.read_wh, who.read_scope, value(q.dimension), q.start, q.end,
                                             q.filters(), limit=q.limit, measures=measures, tag=tag))


@router.get("/usage/infra", response_model=Table, summary="Self-hosted infra cost by a dimension")
def usage_infra(q: Annotated[InfraQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per value of `dimension` (column `key`): self-hosted calls, tokens and the GPU cost of the
    node-hours they used, split by tokens (`infra_cost_usd`); unfiltered, a last row
    `(idle capacity)` holds the GPU cost of node-hours that served no call. With `grain`, the same per
    bucket (a time series of infra cost)."""
    return answer(nodes.infra_by(state.read_wh, who.read_scope, value(q.dimension), q.start, q.end, q.filters(),
                                grain=value(q.grain), tag=tag))


@router.get("/timeseries", response_model=Table, summary="A measure over time, optionally stacked")
def timeseries(q: Annotated[SeriesQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Columns bucket, (key), value at the chosen grain (UTC)."""
    return answer(series.time_series(state.read_wh, who.read_scope, q.start, q.end, grain=value(q.grain),
                                    measure=value(q.measure), dimension=value(q.dimension), top=q.top,
                                    filters=q.filters(), tag=tag))


@router.get("/latency", response_model=Table, summary="Latency percentiles (end to end, TTFT, TPOT)")
def latency(q: Annotated[LatencyQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """p50/p95/p99 and mean in ms of successful calls, overall or per `dimension`."""
    return answer(attribution.latency_percentiles(state.read_wh, who.read_scope, q.start, q.end, q.filters(),
                                                 dimension=value(q.dimension), tag=tag))


@router.get("/latency/series", response_model=Table, summary="Latency percentiles over time")
def latency_series(q: Annotated[LatencySeriesQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per bucket (and key) of successful calls: calls, mean / p50 / p95 / p99 of latency and TTFT,
    p99 of queue time where known (ms)."""
    return answer(series.latency_series(state.read_wh, who.read_scope, q.start, q.end, grain=value(q.grain),
                                       dimension=value(q.dimension), filters=q.filters(), tag=tag))


@router.get("/cache", response_model=Table, summary="Prompt-cache hit ratio over time")
def cache(q: Annotated[CacheQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per bucket (and key): cache read / write tokens, the hit and base tokens of the cache hit
    ratio and the ratio: read ÷ (read + write) where calls report cache writes (Anthropic,
    Bedrock), cached ÷ input of eligible calls otherwise (OpenAI, Azure, Gemini, DeepSeek, xAI)."""
    return answer(series.cache_hit_series(state.read_wh, who.read_scope, q.start, q.end, grain=value(q.grain),
                                         dimension=value(q.dimension), filters=q.filters(), tag=tag))


@router.get("/top", response_model=Table, summary="Top-N values of a dimension by a measure")
def top(q: Annotated[TopQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """The `n` largest; columns key, value, calls, cost_usd."""
    return answer(series.top_n(state.read_wh, who.read_scope, q.start, q.end, dimension=value(q.dimension),
                              measure=value(q.measure), n=q.n, filters=q.filters(), tag=tag))


@router.get("/dead-letters", response_model=Table, summary="Records that could not be ingested")
def dead_letters(q: Annotated[DeadLetterQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Newest first. Dead letters carry no trusted project, so keys bound to a project get 403."""
    if who.project is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "dead letters are visible only to keys not bound to a project")
    return answer(ops.dead_letters(state.read_wh, q.start, q.end, source=q.source, reason=q.reason, limit=q.limit,
                                  tag=tag))


@router.get("/prices", response_model=Table, summary="Price cells in force for a model")
def prices(q: Annotated[PriceQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """USD per token (per use for web searches) by context, time-of-day window and input tier."""
    return answer(ops.prices(state.read_wh, model=q.model, provider=q.provider, at=q.at or datetime.now(UTC),
                            tag=tag))
