"""What people on call do to alerts, over HTTP: one incident with its timeline, acknowledge it,
silence a signal or scope for a while, list and lift silences.

The embedded store has one owner (the service), so this is how the CLI and the dashboards act on
alerts while the service runs. Reading an incident needs the `read` scope; acting on alerts needs
`admin`. A key bound to a project sees and acknowledges only that project's incidents, and its
silences always carry a `project` matcher for that project, so one tenant never mutes another.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import polars as pl
from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from alerts.commands import acknowledge_incident, lift_silence, silence
from alerts.errors import UnknownIncident
from llmledger.service.auth import Admin, Principal, Reader, State
from llmledger.service.models import Table
from llmledger.service.reading import Tag, answer, table
from warehouse.queries import alerts as alert_queries

router = APIRouter(prefix="/v1", tags=["alerts"])

MAX_SILENCE = timedelta(days=90)


class IncidentDetail(BaseModel):
    """One incident (latest version) and its transitions, oldest first."""

    incident: dict[str, object]
    events: Table


class AckIn(BaseModel):
    model_config = {"extra": "forbid"}
    by: str = Field(min_length=1, max_length=200, description="Who takes the incident (shown in its thread).")


class SilenceIn(BaseModel):
    model_config = {"extra": "forbid"}
    minutes: int = Field(gt=0, le=int(MAX_SILENCE.total_seconds() // 60), description="How long the silence lasts.")
    by: str = Field(min_length=1, max_length=200)
    signal: str = Field(default="", max_length=64, description="One signal, or '' for every signal.")
    scope: dict[str, str] = Field(default_factory=dict, max_length=16,
                                  description="Scope key → glob (e.g. {\"route\": \"nightly-*\"}); every one must match.")
    reason: str = Field(default="", max_length=500)


class SilenceOut(BaseModel):
    silence_id: str
    matchers: dict[str, str]
    ends_at: datetime


class SilencesQuery(BaseModel):
    model_config = {"extra": "forbid"}
    active: bool = Field(default=True, description="Only silences in force now (false: every silence).")


def _matchers(who: Principal, scope: dict[str, str]) -> dict[str, str]:
    """A project-bound key silences only its own project, whatever it asked for."""
    if who.project is None:
        return dict(scope)
    asked = scope.get("project")
    if asked not in (None, who.project):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this API key may only silence project {who.project!r}")
    return {**scope, "project": who.project}


def _visible(frame: pl.DataFrame, who: Principal) -> pl.DataFrame:
    if who.project is None or frame.is_empty():
        return frame
    mine = [r["silence_id"] for r in frame.iter_rows(named=True) if dict(r["matchers"]).get("project") == who.project]
    return frame.filter(pl.col("silence_id").is_in(mine))


@router.get("/alerts/{incident_id}", response_model=IncidentDetail, summary="One incident and its timeline")
def incident_detail(incident_id: str, state: State, who: Reader, tag: Tag) -> IncidentDetail:
    """The incident's latest state (scope, value, threshold, cause, next step, who acknowledged it)
    and every transition (opened, escalated, re-notified, acknowledged, resolved) in order."""
    frame = alert_queries.incidents(state.read_wh, who.read_scope, incident_id=incident_id, limit=1, tag=tag)
    if frame.is_empty():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no incident {incident_id!r}")
    events = alert_queries.incident_events(state.read_wh, who.read_scope, incident_id=incident_id)
    return IncidentDetail(incident=table(frame).rows[0], events=table(events))


@router.post("/alerts/{incident_id}/ack", summary="Acknowledge an open incident")
async def ack(incident_id: str, body: AckIn, state: State, who: Admin) -> dict[str, object]:
    """Stops re-notifications of this incident until its state changes; its thread hears who took it."""
    try:
        acked = await run_in_threadpool(acknowledge_incident, state.wh, state.settings, incident_id,
                                        by=body.by, scope=who.read_scope)
    except UnknownIncident as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None
    return {"incident_id": acked.incident_id, "state": acked.state.value, "acked_by": acked.acked_by}


@router.get("/silences", response_model=Table, summary="Silences")
def silences(q: Annotated[SilencesQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Silences in force now (or all): signal, matchers, from, until, who and why."""
    frame = alert_queries.silences(state.read_wh, active_at=datetime.now(UTC) if q.active else None)
    return answer(_visible(frame, who))


@router.post("/silences", response_model=SilenceOut, status_code=status.HTTP_201_CREATED,
             summary="Silence a signal or scope for a while")
async def create_silence(body: SilenceIn, state: State, who: Admin) -> SilenceOut:
    """Matching incidents keep their lifecycle and history; nobody is notified until it ends."""
    matchers = _matchers(who, body.scope)
    now = datetime.now(UTC)
    duration = timedelta(minutes=body.minutes)
    silence_id = await run_in_threadpool(lambda: silence(state.wh, signal=body.signal, matchers=matchers,
                                                         duration=duration, by=body.by, reason=body.reason, now=now))
    return SilenceOut(silence_id=silence_id, matchers=matchers, ends_at=now + duration)


@router.delete("/silences/{silence_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Lift a silence now")
async def delete_silence(silence_id: str, state: State, who: Admin) -> Response:
    if who.project is not None:
        mine = _visible(alert_queries.silences(state.read_wh), who)
        if silence_id not in set(mine["silence_id"].to_list() if mine.height else []):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no silence {silence_id!r}")
    if not await run_in_threadpool(lift_silence, state.wh, silence_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no silence {silence_id!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
