"""The router threshold advice for a route's cascade, from an uploaded replay file or the route's
logged router scores; with `save`, the replay is stored for the API and the routing page."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from llmledger.instants import Instant
from llmledger.operations import ADMIN, OpContext, operation


class AdviseParams(BaseModel):
    model_config = {"extra": "forbid"}
    route: str = Field(min_length=1, max_length=300)
    name: str | None = Field(default=None, max_length=255, pattern=r"^[^/\\]+$",
                             description="The replay file's name (its format is read from the suffix); none: logged scores.")
    cheap: str | None = Field(default=None, max_length=200)
    frontier: str | None = Field(default=None, max_length=200)
    percentile: float = Field(default=70.0, gt=0, lt=100)
    current: float | None = Field(default=None, ge=0, le=1)
    days: int = Field(default=30, ge=1, le=366)
    end: Instant | None = None
    monthly_requests: int | None = Field(default=None, ge=1)
    project: str | None = Field(default=None, max_length=200)
    save: bool = False


@operation("routing.advise", "POST", "/v1/routing/advise", AdviseParams, scope=ADMIN, upload=True)
def advise(ctx: OpContext, p: AdviseParams) -> dict[str, Any]:
    """Recommend a cascade threshold and what each threshold would escalate and cost (the body: an
    optional replay file)."""
    from advisor.advice import advise as run
    from advisor.advice import measure_route
    from advisor.errors import AdvisorError
    from advisor.replay import read_replay, save_replay
    from warehouse.queries.scope import Scope

    scope = ctx.scope if p.project is None else Scope.of(p.project)
    if ctx.scope.projects is not None and p.project not in (None, *ctx.scope.projects):
        raise PermissionError(f"this key may not read project {p.project!r}")
    try:
        loaded = None
        if ctx.upload is not None:
            loaded = read_replay(ctx.upload)
        advice = run(ctx.wh, scope, route=p.route, replay=loaded, percentile=p.percentile, cheap=p.cheap,
                     frontier=p.frontier, current=p.current, days=p.days, end=p.end, monthly_requests=p.monthly_requests)
        if p.save and loaded is not None:
            target = p.project
            if target is None:
                projects = measure_route(ctx.wh, scope, p.route, advice.end.replace(year=advice.end.year - 1),
                                         advice.end).projects
                if len(projects) != 1:
                    raise AdvisorError(f"route {p.route} is in {len(projects)} projects: name one with --project")
                target = projects[0]
            save_replay(ctx.wh, loaded, project=target, route=p.route)
    except AdvisorError as err:
        raise ValueError(str(err)) from err
    return advice.as_dict()
