"""Reconciliation endpoints: provider bills against logged calls per day at the finest grain each
cost export has, and per provider over a range (capture rate, invisible spend)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, model_validator

from llmledger.service.auth import Reader, State
from llmledger.service.models import Instant, Table
from llmledger.service.reading import Tag, answer
from warehouse.queries import reconciliation

router = APIRouter(prefix="/v1", tags=["read"])

Grain = StrEnum("Grain", {d: d for d in reconciliation.DIMENSIONS})  # type: ignore[misc]


class ReconcileQuery(BaseModel):
    """[start, end) in whole UTC days and the grain asked for (narrowed per provider to what its
    cost export has)."""

    model_config = {"extra": "forbid"}

    start: Instant = Field(description="First day (ISO 8601; naive = UTC).")
    end: Instant = Field(description="End, exclusive.")
    by: list[Grain] = Field(default_factory=lambda: [Grain(d) for d in reconciliation.DEFAULT_BY],  # type: ignore[misc]
                            max_length=len(reconciliation.DIMENSIONS),
                            description="api_key_id, model and/or service_tier (repeatable); none given: "
                                        "api_key_id and model.")

    @model_validator(mode="after")
    def _ordered(self) -> ReconcileQuery:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def dimensions(self) -> list[str]:
        return [str(g.value) for g in self.by]


@router.get("/reconciliation", response_model=Table, summary="Provider bills against logged calls, per day")
def reconcile(q: Annotated[ReconcileQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per day, provider and grain (`grain` names it; dimensions outside it are ''): billed and
    logged dollars, `diff_usd`, `invisible_usd` (bill no logged call explains), `capture_rate`
    (logged ÷ billed), and the provider's and the logged token counts."""
    return answer(reconciliation.reconcile(state.read_wh, who.read_scope, q.start, q.end, by=q.dimensions(), tag=tag))


@router.get("/reconciliation/providers", response_model=Table, summary="Capture rate and invisible spend per provider")
def capture(q: Annotated[ReconcileQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per provider over the days its cost export covers: grain, days, billed and logged dollars,
    `capture_rate` and `invisible_usd`."""
    return answer(reconciliation.capture(state.read_wh, who.read_scope, q.start, q.end, by=q.dimensions(), tag=tag))
