"""The calls behind a number: `GET /v1/calls` (a page of individual calls with their cost
components, tokens, latency / TTFT / TPOT, cascade step, tool and session; filterable by every
attribution dimension, cost and latency ranges and time; paged by an opaque keyset cursor) and
`GET /v1/sessions/{session_id}` (one session's calls in order with the growth of their input).
No prompt or response text exists to return."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import Field, model_validator

from llmledger.service.auth import Reader, State
from llmledger.service.models import RangeQuery, Table
from llmledger.service.reading import Tag, answer, table
from warehouse.queries import calls as call_queries

router = APIRouter(prefix="/v1", tags=["calls"])


class CallOrder(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"
    COSTLIEST = "costliest"
    SLOWEST = "slowest"


class CallsQuery(RangeQuery):
    order: CallOrder = CallOrder.NEWEST
    limit: int = Field(default=50, ge=1, le=call_queries.MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=2048, description="`next_cursor` of the previous page.")
    min_cost_usd: Decimal | None = Field(default=None, ge=0, description="Cost at least (USD, inclusive).")
    max_cost_usd: Decimal | None = Field(default=None, ge=0)
    min_latency_ms: int | None = Field(default=None, ge=0, le=2**32 - 1, description="End-to-end latency at least.")
    max_latency_ms: int | None = Field(default=None, ge=0, le=2**32 - 1)
    min_ttft_ms: int | None = Field(default=None, ge=0, le=2**32 - 1)
    max_ttft_ms: int | None = Field(default=None, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _bounds(self) -> CallsQuery:
        for low, high in (("min_cost_usd", "max_cost_usd"), ("min_latency_ms", "max_latency_ms"),
                          ("min_ttft_ms", "max_ttft_ms")):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{low} must not exceed {high}")
        return self

    def ranges(self) -> call_queries.Ranges:
        return call_queries.Ranges(self.min_cost_usd, self.max_cost_usd, self.min_latency_ms, self.max_latency_ms,
                                   self.min_ttft_ms, self.max_ttft_ms)


class CallsPage(Table):
    """A page of calls; `next_cursor` fetches the next one (null on the last page)."""

    next_cursor: str | None = None


class SessionQuery(RangeQuery):
    limit: int = Field(default=500, ge=1, le=10_000)


@router.get("/calls", response_model=CallsPage, summary="Individual calls, filtered and paged")
def calls(q: Annotated[CallsQuery, Query()], state: State, who: Reader, tag: Tag) -> CallsPage:
    """Calls of [start, end) matching the filters (`dimension:value`, any attribution dimension,
    model, provider, status, session, tool …) and the cost / latency / TTFT ranges, newest first
    (or oldest, costliest, slowest). Pass `next_cursor` back as `cursor` for the next page."""
    try:
        frame, cursor = call_queries.calls_page(state.read_wh, who.read_scope, q.start, q.end, q.filters(),
                                                ranges=q.ranges(), order=q.order.value, cursor=q.cursor,
                                                limit=q.limit, tag=tag)
    except call_queries.BadCursor as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(err)) from None
    out = table(frame)
    return CallsPage(columns=out.columns, rows=out.rows, next_cursor=cursor)


@router.get("/sessions/{session_id}", response_model=Table, summary="One session's calls in order")
def session(session_id: str, q: Annotated[SessionQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """The session's calls of [start, end) (and the filters), oldest first, with turn, input growth
    over the previous call (tokens) and the session's cost so far."""
    if not session_id or len(session_id) > 512:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "a session id is 1 to 512 characters")
    return answer(call_queries.session_calls(state.read_wh, who.read_scope, session_id, q.start, q.end,
                                            q.filters(), limit=q.limit, tag=tag))
