"""Per-call behaviour endpoints: token distributions (box plots, histograms), reasoning outliers,
and cascade routing (escalation rate, cost per step, all-on-the-frontier comparison)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import Field

from llmledger.service.auth import Reader, State
from llmledger.service.models import Dimension, Grain, RangeQuery, Table
from llmledger.service.reading import Tag, answer, value
from warehouse.queries import distributions, routing

router = APIRouter(prefix="/v1", tags=["read"])

TokenMeasure = StrEnum("TokenMeasure", {m: m for m in sorted(distributions.TOKEN_MEASURES)})  # type: ignore[misc]


class DistributionQuery(RangeQuery):
    measure: TokenMeasure = TokenMeasure("input_tokens")  # type: ignore[call-arg]
    dimension: Dimension = Dimension("route")  # type: ignore[call-arg]
    nonzero: bool = Field(default=False, description="Only calls where the measure is above 0.")
    limit: int = Field(default=30, ge=1, le=200)


class OutliersQuery(RangeQuery):
    n: int = Field(default=20, ge=1, le=500)


class CascadeQuery(RangeQuery):
    grain: Grain = Grain("hour")  # type: ignore[call-arg]


@router.get("/distribution", response_model=Table, summary="Per-call token quantiles by a dimension")
def distribution(q: Annotated[DistributionQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per value (column `key`): calls, mean, max, p5/p25/p50/p75/p95/p99 of the measure per call."""
    return answer(distributions.token_quantiles(
        state.read_wh, who.read_scope, q.start, q.end, measure=value(q.measure), dimension=value(q.dimension),
        nonzero=q.nonzero, filters=q.filters(), limit=q.limit, tag=tag))


@router.get("/histogram", response_model=Table, summary="Per-call token histogram (log bins) by a dimension")
def histogram(q: Annotated[DistributionQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per value (column `key`) and bin [bin_lo, bin_hi) tokens: calls."""
    return answer(distributions.token_histogram(
        state.read_wh, who.read_scope, q.start, q.end, measure=value(q.measure), dimension=value(q.dimension),
        nonzero=q.nonzero, filters=q.filters(), tag=tag))


@router.get("/reasoning/outliers", response_model=Table, summary="Calls with the most reasoning tokens")
def reasoning_outliers(q: Annotated[OutliersQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """The `n` calls with most reasoning tokens, with their route/model p99 and how far above it."""
    return answer(distributions.reasoning_outliers(state.read_wh, who.read_scope, q.start, q.end,
                                                  filters=q.filters(), n=q.n, tag=tag))


@router.get("/cascade/series", response_model=Table, summary="Cascade escalation rate per routing policy")
def cascade_series(q: Annotated[CascadeQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per bucket and routing policy: step-0 calls, escalated calls, escalation rate, step-0 models."""
    return answer(routing.cascade_series(state.read_wh, who.read_scope, q.start, q.end, grain=value(q.grain),
                                        filters=q.filters(), tag=tag))


@router.get("/cascade/steps", response_model=Table, summary="Cost of each cascade step")
def cascade_steps(q: Annotated[RangeQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per routing policy, step and model: calls, cost, cost per call, tokens, share of the policy's cost."""
    return answer(routing.cascade_steps(state.read_wh, who.read_scope, q.start, q.end, filters=q.filters(), tag=tag))


@router.get("/cascade/frontier", response_model=Table, summary="The same requests all on the frontier model")
def cascade_frontier(q: Annotated[RangeQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per routing policy: requests, calls, actual cost, frontier model, all-frontier cost, saving."""
    return answer(routing.frontier_cost(state.read_wh, who.read_scope, q.start, q.end, filters=q.filters(), tag=tag))
