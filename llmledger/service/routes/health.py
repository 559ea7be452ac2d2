"""`GET /health`: warehouse, spool, background components and authentication, without a key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from llmledger.service.auth import State

router = APIRouter(tags=["health"])


@router.get("/health", summary="Service health")
def health(state: State) -> JSONResponse:
    """200 when the warehouse answers, 503 otherwise; spool and component states in the body."""
    body: dict[str, Any] = {"status": "ok"}
    try:
        state.read_wh.scalar("SELECT 1", tag="service:health")
        body["warehouse"] = {"ok": True, "mode": "embedded" if state.read_wh.embedded_mode else "server",
                             "database": state.wh.database}
    except Exception as err:  # noqa: BLE001 - reported, not raised
        body["status"] = "degraded"
        body["warehouse"] = {"ok": False, "error": type(err).__name__}
    body["spool"] = state.push.health()
    components = {c.name: c.health() for c in state.components}
    body["scheduler"] = components.pop("scheduler", {"state": "not configured"})
    body["components"] = components
    body["auth"] = state.auth_mode()
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)
