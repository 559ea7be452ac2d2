"""Maintenance the service runs itself (`admin` scope): re-pricing a time range.

While the service holds the embedded store this is the only way to reprice, and it is the safe
way on a server too: the reprice holds the process's writer lock, so no pushed batch lands in a
month while that month is rebuilt and swapped.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from ingest.reprice import reprice_with_settings
from llmledger.service.auth import Admin, State
from llmledger.service.models import RepriceIn, RepriceOut

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post("/reprice", response_model=RepriceOut, summary="Reload prices and recompute stored costs")
def reprice(body: RepriceIn, state: State, who: Admin) -> RepriceOut:
    """Rebuilds the price table from genai-prices and the service's overrides, then recomputes the
    costs of calls in [since, until) month by month, with the hourly rollups."""
    if who.project is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "re-pricing touches every project: use an unbound admin key")
    writer = state.pipeline.writer
    load, report = reprice_with_settings(
        state.wh, state.settings.pricing, since=body.since, until=body.until, lock=writer.lock
    )
    writer.refresh_prices()
    return RepriceOut(
        price_cells=load.rows,
        prices_changed=load.changed,
        calls=report.calls,
        months=report.partitions,
        cost_before_usd=str(report.cost_before_usd),
        cost_after_usd=str(report.cost_after_usd),
        unpriced_before=report.unpriced_before,
        unpriced_after=report.unpriced_after,
        renamed_models=report.renamed_models,
    )
