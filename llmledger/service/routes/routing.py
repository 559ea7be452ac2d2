"""The router threshold advisor's read endpoint: what threshold a route's cascade should start
with, and what every threshold would escalate and cost (advisor/)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from advisor.advice import DEFAULT_DAYS, DEFAULT_PERCENTILE, advise
from advisor.errors import AdvisorError
from advisor.replay import latest_replay
from llmledger.service.auth import Reader, State
from llmledger.service.models import Instant

router = APIRouter(prefix="/v1", tags=["read"])


class AdviceSource(StrEnum):
    AUTO = "auto"  # the newest stored replay of the route, else its logged router scores
    REPLAY = "replay"
    LIVE = "live"


class AdviceQuery(BaseModel):
    route: str = Field(min_length=1, max_length=300, description="The route (`route` of its calls).")
    percentile: float = Field(default=DEFAULT_PERCENTILE, gt=0, lt=100,
                              description="Share of requests the threshold keeps on the cheap model, in %.")
    source: AdviceSource = AdviceSource.AUTO
    days: int = Field(default=DEFAULT_DAYS, ge=1, le=366, description="Days of logged traffic measured.")
    end: Instant | None = Field(default=None, description="End of the measured window (default: now).")
    current: float | None = Field(default=None, ge=0, le=1, description="The live threshold, if known.")


@router.get("/routing/advice", summary="Router threshold advice for a route's cascade")
def routing_advice(q: Annotated[AdviceQuery, Query()], state: State, who: Reader) -> dict[str, Any]:
    """Recommended threshold, its escalation rate and monthly cost, the threshold curve, the dip
    test and warnings; money as exact decimal strings. 404 when the route has nothing to advise on."""
    scope = who.read_scope
    replay = None
    if q.source != AdviceSource.LIVE:
        replay = latest_replay(state.read_wh, scope, q.route)
        if replay is None and q.source == AdviceSource.REPLAY:
            raise HTTPException(404, f"no stored replay for route {q.route}")
    try:
        advice = advise(state.read_wh, scope, route=q.route, replay=replay, percentile=q.percentile, days=q.days,
                        end=q.end, current=q.current)
    except AdvisorError as err:
        raise HTTPException(404, str(err)) from err
    return advice.as_dict()
