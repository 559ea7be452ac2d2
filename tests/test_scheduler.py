"""The real APScheduler running the real jobs: configuration (coalesce, one instance, misfire
grace), runs and failures recorded in `job_runs`, slots filled by other packages, cron use."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from llmledger.scheduler import JobSpec, build_scheduler, job_registry, run_job_once
from llmledger.settings import Settings
from warehouse.client import Warehouse
from warehouse.queries.jobs import job_failures, job_runs, last_runs
from warehouse.queries.scope import Scope


def _fast(settings: Settings) -> Settings:
    scheduler = settings.scheduler.model_copy(update={"signals_interval_s": 1, "delivery_interval_s": 1,
                                                      "rollups_interval_s": 1, "collectors_interval_s": 1})
    return settings.model_copy(update={"scheduler": scheduler})


def _wait_for(predicate, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_scheduler_runs_and_records_jobs(wh: Warehouse, settings: Settings) -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    collected: list[datetime] = []

    def collectors(ctx):  # the collectors package fills this slot with its runner
        collected.append(ctx.now)
        return {"collectors": 0}

    def broken(ctx):
        raise RuntimeError("source unavailable")

    failing = JobSpec("custom.broken", broken, lambda s: IntervalTrigger(seconds=1, timezone=UTC), "always fails")
    scheduler = build_scheduler(_fast(settings), wh=wh,
                                extra_jobs={"collectors.run": collectors, "custom.broken": failing})
    assert scheduler.health()["empty_slots"] == []
    scheduler.start()
    try:
        for job in scheduler.apscheduler.get_jobs():  # job defaults apply once the scheduler starts
            assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 30)
        wanted = {"signals.evaluate", "alerts.deliver", "rollups.refresh", "collectors.run"}
        def succeeded() -> set[str]:
            last = last_runs(wh, Scope.all())
            return set(last.filter(last["state"] == "ok")["job"])

        assert _wait_for(lambda: wanted <= succeeded()), last_runs(wh, Scope.all())
        assert _wait_for(lambda: job_failures(wh, Scope.all()).height > 0)
        health = scheduler.health()
        assert health["state"] == "running" and health["jobs"]["signals.evaluate"]["next_run_at"]
    finally:
        scheduler.stop()
    assert scheduler.health()["state"] == "stopped" and collected
    failure = job_failures(wh, Scope.all()).row(0, named=True)
    assert failure["job"] == "custom.broken" and "RuntimeError: source unavailable" in failure["error"]
    runs = job_runs(wh, Scope.all(), job="signals.evaluate")
    assert set(runs["state"]) == {"ok"} and set(runs["trigger"]) == {"scheduled"}
    assert job_runs(wh, Scope.of("acme-app")).is_empty()  # platform history is for admins


def test_run_job_once_for_cron_users(wh: Warehouse, settings: Settings) -> None:
    result = run_job_once("rollups.refresh", settings=settings, wh=wh)
    assert result.state == "ok" and result.detail["rebuilt"] == [] and result.detail["latency_hours_finished"] == 0
    runs = job_runs(wh, Scope.all(), job="rollups.refresh")
    assert runs.height == 1 and runs["trigger"][0] == "manual" and runs["state"][0] == "ok"
    with pytest.raises(KeyError, match="no job named"):
        run_job_once("nope", settings=settings, wh=wh)
    with pytest.raises(KeyError, match="no job slot"):
        job_registry({"nope": lambda ctx: None})


def test_disabled_scheduler_does_not_start(settings: Settings) -> None:
    off = settings.model_copy(update={"scheduler": settings.scheduler.model_copy(update={"enabled": False})})
    scheduler = build_scheduler(off)
    scheduler.start()
    assert scheduler.health()["state"] == "stopped"
    scheduler.stop()


def test_only_the_lease_holder_runs_jobs_and_a_standby_takes_over(wh: Warehouse, settings: Settings) -> None:
    """Two service replicas on one warehouse: one scheduler runs the jobs; when it stops, the other
    takes the lease and carries on — no job (so no alert or report) runs in both."""
    fast = _fast(settings)
    fast = fast.model_copy(update={"scheduler": fast.scheduler.model_copy(update={"lease_ttl_s": 3.0})})
    ran: dict[str, int] = {"a": 0, "b": 0}

    def counting(name: str):
        def job(ctx):
            ran[name] += 1
            return {}
        return job

    first = build_scheduler(fast, wh=wh, extra_jobs={"collectors.run": counting("a")})
    second = build_scheduler(fast, wh=wh, extra_jobs={"collectors.run": counting("b")})
    first.start()
    second.start()
    try:
        assert first.health()["lease"]["held"] and not second.health()["lease"]["held"]
        assert _wait_for(lambda: ran["a"] >= 2)
        assert ran["b"] == 0
        first.stop()  # releases the lease
        assert _wait_for(lambda: ran["b"] >= 1, timeout_s=15)
        assert second.health()["lease"]["held"]
    finally:
        first.stop()
        second.stop()
