"""Operations endpoints: alert incidents (and whether signals are evaluated at all), dead letters
per reason, unpriced models, collector freshness and a price list for comparisons."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, Field

from llmledger.service.auth import Reader, State
from llmledger.service.models import Instant, RangeQuery, Table
from llmledger.service.reading import Tag, answer, table
from warehouse.queries import alerts as alert_queries
from warehouse.queries import collectors, ops

router = APIRouter(prefix="/v1", tags=["operations"])

OPEN_STATES = ("warning", "critical")


class AlertState(StrEnum):
    OPEN = "open"
    ALL = "all"


class AlertsQuery(BaseModel):
    model_config = {"extra": "forbid"}
    state: AlertState = AlertState.OPEN
    since: Instant | None = Field(default=None, description="Changed at or after (state=all).")
    signal: str | None = Field(default=None, max_length=64, description="Only this signal's incidents.")
    limit: int = Field(default=200, ge=1, le=10_000)


class Alerts(Table):
    """Alert incidents, newest change first; `engine` is false when signals are not evaluated here
    (the scheduler is off and no signal was ever evaluated): then `detail` says what to do."""

    engine: bool
    detail: str = ""


class IncidentsQuery(BaseModel):
    model_config = {"extra": "forbid"}
    start: Instant
    end: Instant
    team: str | None = Field(default=None, max_length=256, description="Only this team's incidents.")


class CountsQuery(BaseModel):
    model_config = {"extra": "forbid"}
    start: Instant
    end: Instant


class PriceListQuery(BaseModel):
    model_config = {"extra": "forbid"}
    model: list[str] = Field(default_factory=list, max_length=50, description="Catalogue model ids (repeatable).")
    like: str | None = Field(default=None, max_length=128, description="Also every model whose id contains this.")
    at: Instant | None = None
    limit: int = Field(default=200, ge=1, le=2000)


@router.get("/alerts", response_model=Alerts, summary="Alert incidents (open, or all)")
def alerts(q: Annotated[AlertsQuery, Query()], state: State, who: Reader, tag: Tag) -> Alerts:
    """Open incidents (WARNING / CRITICAL) or all, with scope, value, threshold, cause and next step."""
    engine = state.settings.scheduler.enabled or bool(alert_queries.watermarks(state.read_wh))
    if not engine:
        return Alerts(columns=[], rows=[], engine=False,
                      detail="no alert engine configured: the scheduler is off ([scheduler] enabled = false) and no "
                             "signal was ever evaluated; run `llmledger signals evaluate` or enable the scheduler")
    states = list(OPEN_STATES) if q.state is AlertState.OPEN else None
    out = table(alert_queries.incidents(state.read_wh, who.read_scope, states=states, since=q.since, limit=q.limit,
                                        signal=q.signal, tag=tag))
    return Alerts(columns=out.columns, rows=out.rows, engine=True)


@router.get("/incidents", response_model=Table, summary="Incidents of a range, with peak severity and cause")
def incident_history(q: Annotated[IncidentsQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Incidents open at any time in [start, end), oldest first: state now, `peak_severity` (the
    highest reached before `end`), and the summary, cause and next step of their latest firing, so a
    resolved incident still says why it fired."""
    if q.end <= q.start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "end must be after start")
    return answer(alert_queries.incidents_between(state.read_wh, who.read_scope, q.start, q.end, team=q.team,
                                                 tag=tag))


@router.get("/dead-letters/counts", response_model=Table, summary="Dead letters per source and reason")
def dead_letter_counts(q: Annotated[CountsQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Records that could not be ingested in [start, end) (by ingest time), per source and reason."""
    if who.project is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "dead letters are visible only to keys not bound to a project")
    return answer(ops.dead_letter_counts(state.read_wh, q.start, q.end, tag=tag))


@router.get("/unpriced", response_model=Table, summary="Models without a price")
def unpriced(q: Annotated[RangeQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per provider / model / raw model name: calls kept at $0 and flagged, tokens, first and last call."""
    return answer(ops.unpriced_models(state.read_wh, who.read_scope, q.start, q.end, tag=tag))


@router.get("/collectors", response_model=Table, summary="Collector freshness: last run, success, lag, error")
def collector_status(state: State, who: Reader, tag: Tag) -> Response:
    """One row per collector that has run (see `warehouse.queries.collectors.collector_status`)."""
    return answer(collectors.collector_status(state.read_wh, who.read_scope, tag=tag))


@router.get("/price-list", response_model=Table, summary="Standard prices per 1M tokens, for comparisons")
def price_list(q: Annotated[PriceListQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Base-tier, standard-context prices in force at `at` (default now) of the listed models and of
    every model whose id contains `like`, cheapest output first."""
    return answer(ops.price_list(state.read_wh, at=q.at or datetime.now(UTC), models=q.model, like=q.like,
                                limit=q.limit, tag=tag))
