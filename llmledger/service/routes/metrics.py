"""`GET /metrics`: Prometheus text exposition of the service's health and the LLM traffic.

Needs a key with the read scope (like the read API), unless `metrics.public` is set; a key bound to
a project sees that project's traffic only and no service-wide health families.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from llmledger.service.auth import ANONYMOUS, Principal, State, authenticate
from llmledger.service.exposition import content_type, render
from llmledger.service.keys import KeyScope

router = APIRouter(tags=["metrics"])


async def scraper(request: Request, state: State) -> Principal:
    """The caller: anyone when `metrics.public`, else a key with the read scope (401 / 403)."""
    if state.settings.metrics.public:
        return ANONYMOUS
    principal = await authenticate(request, state)
    if not principal.allows(KeyScope.READ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this API key lacks the 'read' scope")
    return principal


@router.get("/metrics", summary="Prometheus metrics: service health and LLM traffic",
            response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(state: State, who: Annotated[Principal, Depends(scraper)]) -> Response:
    """Prometheus text format 0.0.4. Families and labels are listed in the README."""
    body = await run_in_threadpool(render, state, who.read_scope, health=who.project is None)
    return Response(body, media_type=content_type())
