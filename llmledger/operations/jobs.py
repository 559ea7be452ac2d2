"""Background work on demand: the scheduler's jobs (run one, list them, their history), the
collectors (run, back-fill, forget a cursor) and the rollups (repair, rebuild a month)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from llmledger.instants import Instant
from llmledger.operations import OPERATOR, READ, OpContext, operation


class NoParams(BaseModel):
    model_config = {"extra": "forbid"}


@operation("jobs.list", "GET", "/v1/jobs", NoParams, scope=READ)
def list_jobs(ctx: OpContext, p: NoParams) -> list[dict[str, Any]]:
    """Every scheduled job: its trigger, what it does and its last run."""
    from llmledger.scheduler import job_registry
    from warehouse.queries.jobs import last_runs

    last = {r["job"]: r for r in last_runs(ctx.wh, ctx.scope).iter_rows(named=True)}
    out = []
    for name, spec in job_registry().items():
        run = last.get(name, {})
        out.append({"job": name, "trigger": _when(spec.trigger(ctx.settings.scheduler)) if spec.func else "(empty slot)",
                    "description": spec.description, "last_started_at": run.get("last_started_at"),
                    "state": run.get("state"), "duration_ms": run.get("duration_ms")})
    return out


def _when(trigger: Any) -> str:
    """A trigger as a person says it: every 15 s, every 15 min, or its cron fields."""
    interval = getattr(trigger, "interval", None)
    if interval is None:
        fields = {f.name: str(f) for f in getattr(trigger, "fields", [])}
        if not fields:
            return str(trigger)
        return "cron " + " ".join(fields.get(k, "*") for k in ("minute", "hour", "day", "month", "day_of_week")) + \
            " UTC"
    seconds = interval.total_seconds()
    return f"every {seconds:g} s" if seconds < 60 else f"every {seconds / 60:g} min" if seconds < 3600 else \
        f"every {seconds / 3600:g} h"


class HistoryParams(BaseModel):
    model_config = {"extra": "forbid"}
    job: str | None = Field(default=None, max_length=100)
    failed: bool = Field(default=False, description="Failures only.")
    limit: int = Field(default=100, ge=1, le=10_000)


@operation("jobs.history", "GET", "/v1/jobs/runs", HistoryParams, scope=READ)
def job_history(ctx: OpContext, p: HistoryParams) -> list[dict[str, Any]]:
    """Recent job runs, newest first."""
    from warehouse.queries.jobs import job_runs

    frame = job_runs(ctx.wh, ctx.scope, job=p.job, states=["failed"] if p.failed else None, limit=p.limit)
    return frame.select("started_at", "job", "trigger", "state", "duration_ms", "error").to_dicts()


class RunParams(BaseModel):
    model_config = {"extra": "forbid"}
    job: str = Field(min_length=1, max_length=100, description="e.g. signals.evaluate, alerts.deliver.")


@operation("jobs.run", "POST", "/v1/jobs/run", RunParams, scope=OPERATOR, long=True)
def run_job(ctx: OpContext, p: RunParams) -> dict[str, Any]:
    """Run one scheduled job now and record it (in the service: by its scheduler)."""
    from llmledger.scheduler import job_registry, run_job_once

    if p.job not in job_registry():
        raise LookupError(f"no job named {p.job!r}; known: {', '.join(job_registry())}")
    advance = ctx.feed.task(f"job {p.job}", 1)
    run = ctx.run_job(p.job) if ctx.run_job is not None else run_job_once(p.job, settings=ctx.settings, wh=ctx.wh)
    advance(1)
    return {"job": run.job, "state": run.state, "started_at": run.started_at, "duration_ms": run.duration_ms,
            "detail": run.detail, "error": run.error}


@operation("collectors.list", "GET", "/v1/collectors/registered", NoParams, scope=READ, store=False)
def list_collectors(ctx: OpContext, p: NoParams) -> list[dict[str, Any]]:
    """Registered collectors, what they produce and whether the settings enable them."""
    from collectors.registry import REGISTRY, settings_key
    from collectors.runner import describe

    section = ctx.settings.collectors
    rows = []
    for name in REGISTRY.names():
        info = describe(REGISTRY.get(name))
        info["enabled"] = bool(getattr(getattr(section, settings_key(name), None), "enabled", False))
        rows.append(info)
    return rows


class CollectParams(BaseModel):
    model_config = {"extra": "forbid"}
    name: str | None = Field(default=None, max_length=100, description="One collector (default: every enabled one).")
    since: Instant | None = Field(default=None, description="Back-fill from here instead of the cursor.")
    until: Instant | None = None


@operation("collectors.run", "POST", "/v1/collectors/run", CollectParams, scope=OPERATOR, long=True)
def run_collectors(ctx: OpContext, p: CollectParams) -> list[dict[str, Any]]:
    """Run the pull and scrape collectors once (or one), optionally back-filling a range."""
    from collectors.base import Kind
    from collectors.registry import REGISTRY
    from collectors.runner import run_collectors as run_all

    if p.name is not None:
        if p.name not in REGISTRY.names():
            raise LookupError(f"no collector named {p.name!r}; known: {', '.join(REGISTRY.names())}")
        if REGISTRY.get(p.name).capabilities.kind is Kind.FILE:
            raise ValueError(f"{p.name} imports files: use `llmledger import {p.name} FILE`")
    reports = run_all(ctx.settings, ctx.wh, [p.name] if p.name else None, since=p.since, until=p.until,
                      progress=lambda name: ctx.feed.task(f"collect {name} (records)"))
    return [r.as_dict() for r in reports]


class CollectorName(BaseModel):
    model_config = {"extra": "forbid"}
    name: str = Field(min_length=1, max_length=100)


@operation("collectors.reset", "POST", "/v1/collectors/reset", CollectorName, scope=OPERATOR)
def reset_collector(ctx: OpContext, p: CollectorName) -> dict[str, str]:
    """Forget a collector's cursor: its next run back-fills."""
    from collectors.registry import REGISTRY
    from ingest.collector_state import reset_cursor

    if p.name not in REGISTRY.names():
        raise LookupError(f"no collector named {p.name!r}; known: {', '.join(REGISTRY.names())}")
    reset_cursor(ctx.wh, p.name)
    return {"collector": p.name, "cursor": "reset"}


@operation("rollups.refresh", "POST", "/v1/rollups/refresh", NoParams, scope=OPERATOR, long=True)
def refresh_rollups(ctx: OpContext, p: NoParams) -> dict[str, Any]:
    """Rebuild the rollup months that disagree with raw calls."""
    from warehouse.rollups import refresh_rollups as refresh

    report = refresh(ctx.wh)
    return {"checked": report.checked, "rebuilt": [f"{t}/{part}" for t, part in report.rebuilt]}


class Month(BaseModel):
    model_config = {"extra": "forbid"}
    partition: str = Field(pattern=r"^\d{6}$", description="The month as YYYYMM.")


@operation("rollups.rebuild", "POST", "/v1/rollups/rebuild", Month, scope=OPERATOR, long=True)
def rebuild_rollups(ctx: OpContext, p: Month) -> dict[str, str]:
    """Recompute one month of every rollup from raw calls."""
    from warehouse.rollups import rebuild_rollups as rebuild

    rebuild(ctx.wh, p.partition)
    return {"rebuilt": p.partition}
