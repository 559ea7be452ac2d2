"""Scheduled jobs on APScheduler: rollup repair, signal evaluation every minute, outbox delivery,
and named slots for collectors and the weekly report, each run recorded in `job_runs`.

Two calls run it inside a process: `scheduler = build_scheduler(settings)` then
`scheduler.start()`; `scheduler.stop()` on the way out. `Scheduler` also has the `name` /
`start()` / `stop()` / `health()` shape of the service's background components. Cron users run
one job with `run_job_once(name, settings=…)` (`llmledger jobs run NAME`). Jobs coalesce missed
runs, never overlap themselves, and a failure is recorded and logged, never raised into the loop.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import polars as pl
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from llmledger.settings import SchedulerSettings, Settings
from warehouse.client import Warehouse
from warehouse.lease import (
    Lease,
    LeaseFence,
    acquire_scheduler_lease,
    default_owner,
    release_scheduler_lease,
    renew_scheduler_lease,
)

log = logging.getLogger(__name__)
TIME = pl.Datetime("ms", "UTC")


@dataclass(frozen=True)
class JobContext:
    """What a job run gets: the warehouse, the settings, and when and how it was started."""

    wh: Warehouse
    settings: Settings
    now: datetime
    trigger: str  # scheduled | manual
    fence: LeaseFence | None = None  # checked before each post or mail; None: a one-off run (CLI, cron)


JobFunc = Callable[[JobContext], Mapping[str, Any] | None]


@dataclass(frozen=True)
class JobSpec:
    """A named job: its function (None for an empty slot) and its trigger built from settings."""

    name: str
    func: JobFunc | None
    trigger: Callable[[SchedulerSettings], BaseTrigger]
    description: str


@dataclass(frozen=True)
class JobRun:
    """The outcome of one run."""

    run_id: str
    job: str
    state: str  # ok | failed
    started_at: datetime
    duration_ms: int
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""


# ---- built-in jobs --------------------------------------------------------------------------------


def _refresh_rollups(ctx: JobContext) -> dict[str, Any]:
    from warehouse.latency_hours import finish_latency_hours
    from warehouse.rollups import refresh_rollups

    report = refresh_rollups(ctx.wh)
    finished = finish_latency_hours(ctx.wh, ctx.now)  # after any rebuild: a rebuilt month is finished again
    return {"checked": report.checked, "rebuilt": [f"{t}/{p}" for t, p in report.rebuilt],
            "latency_hours_finished": finished.hours}


def _evaluate_signals(ctx: JobContext) -> dict[str, Any]:
    from alerts.evaluate import evaluate_signals

    report = evaluate_signals(ctx.wh, ctx.settings)
    return {"families": {k: [a.isoformat(), b.isoformat()] for k, (a, b) in report.ranges.items()},
            "events": len(report.events), "notifications": report.notifications,
            "seconds": {k: round(v, 3) for k, v in report.seconds.items()}}


def _deliver_alerts(ctx: JobContext) -> dict[str, Any]:
    from alerts.outbox import deliver_pending

    report = deliver_pending(ctx.wh, ctx.settings, now=ctx.now, fence=ctx.fence)
    return {"sent": report.sent, "recovered": report.recovered, "logged": report.logged, "retried": report.retried,
            "failed": report.failed, "waiting": report.waiting, "stopped": report.stopped, "errors": report.errors[:5]}


def _run_collectors(ctx: JobContext) -> dict[str, Any]:
    from collectors.runner import run_collectors

    reports = run_collectors(ctx.settings, ctx.wh)
    if reports:  # one line per run of the collectors, whatever their number
        log.info("collectors: %s", "; ".join(f"{r.collector} {r.status}, {r.written:,} written" for r in reports))
    return {"collectors": {r.collector: {"ok": r.ok, "written": r.written, "error": r.error} for r in reports}}


def _send_weekly_reports(ctx: JobContext) -> dict[str, Any]:
    from alerts.report.job import send_weekly_reports

    return dict(send_weekly_reports(ctx.settings, ctx.wh, now=ctx.now, fence=ctx.fence).as_dict())


def builtin_jobs() -> dict[str, JobSpec]:
    """The jobs every scheduler knows; `extra_jobs` may replace a job's function or add jobs."""
    return {
        "rollups.refresh": JobSpec("rollups.refresh", _refresh_rollups,
                                   lambda s: IntervalTrigger(seconds=s.rollups_interval_s, timezone=UTC),
                                   "rebuild rollup months that drifted from their source; finish closed hours' latency"),
        "signals.evaluate": JobSpec("signals.evaluate", _evaluate_signals,
                                    lambda s: IntervalTrigger(seconds=s.signals_interval_s, timezone=UTC),
                                    "evaluate every signal and write alerts to the outbox"),
        "alerts.deliver": JobSpec("alerts.deliver", _deliver_alerts,
                                  lambda s: IntervalTrigger(seconds=s.delivery_interval_s, timezone=UTC),
                                  "deliver pending notifications (Slack, else the log)"),
        "collectors.run": JobSpec("collectors.run", _run_collectors,
                                  lambda s: IntervalTrigger(seconds=s.collectors_interval_s, timezone=UTC),
                                  "run the enabled pull and scrape collectors (each failure isolated)"),
        "report.weekly": JobSpec("report.weekly", _send_weekly_reports,
                                 lambda s: CronTrigger.from_crontab(s.weekly_report_cron, timezone=UTC),
                                 "send last week's cost report to each team and the company list"),
    }


def job_registry(extra_jobs: Mapping[str, JobFunc | JobSpec] | None = None) -> dict[str, JobSpec]:
    """Built-in jobs with `extra_jobs` applied: a function fills the slot (or replaces the job) of
    that name keeping its trigger; a `JobSpec` adds or replaces a job whole."""
    jobs = builtin_jobs()
    for name, extra in (extra_jobs or {}).items():
        if isinstance(extra, JobSpec):
            jobs[name] = extra
        elif name in jobs:
            spec = jobs[name]
            jobs[name] = JobSpec(name, extra, spec.trigger, spec.description)
        else:
            raise KeyError(f"no job slot named {name!r}; pass a JobSpec to add one (slots: {', '.join(jobs)})")
    return jobs


# ---- running and recording ------------------------------------------------------------------------


def _record(wh: Warehouse, run: JobRun, *, state: str, trigger: str, scheduled_for: datetime | None,
            finished: datetime | None) -> None:
    from alerts.store import next_version

    frame = pl.DataFrame(
        [{"run_id": run.run_id, "job": run.job, "trigger": trigger, "state": state, "scheduled_for": scheduled_for,
          "started_at": run.started_at, "finished_at": finished, "duration_ms": run.duration_ms,
          "error": run.error[:8000], "detail": json.dumps(run.detail, default=str), "version": next_version()}],
        schema_overrides={"scheduled_for": TIME, "started_at": TIME, "finished_at": TIME, "duration_ms": pl.UInt64,
                          "version": pl.UInt64})
    wh.insert_arrow("job_runs", frame, tag=f"job:{run.job}:record")


def execute(spec: JobSpec, wh: Warehouse, settings: Settings, *, trigger: str = "manual",
            scheduled_for: datetime | None = None, fence: LeaseFence | None = None) -> JobRun:
    """Run one job now, recording its start and its outcome in `job_runs`. Never raises for a
    failing job (the failure is in the returned `JobRun` and the table); raises KeyError for a slot
    that nothing filled."""
    if spec.func is None:
        raise KeyError(f"job slot {spec.name!r} is empty: nothing registered a function for it")
    started = datetime.now(UTC)
    run = JobRun(uuid.uuid4().hex, spec.name, "running", started, 0)
    try:
        _record(wh, run, state="running", trigger=trigger, scheduled_for=scheduled_for, finished=None)
    except Exception:  # noqa: BLE001 - recording must not stop the job itself
        log.exception("could not record the start of job %s", spec.name)
    began = time.perf_counter()
    try:
        detail = dict(spec.func(JobContext(wh, settings, started, trigger, fence)) or {})
        outcome = JobRun(run.run_id, spec.name, "ok", started, int((time.perf_counter() - began) * 1000), detail)
    except Exception as err:  # noqa: BLE001 - a job failure is recorded, not raised into the scheduler
        log.exception("job %s failed", spec.name)
        outcome = JobRun(run.run_id, spec.name, "failed", started, int((time.perf_counter() - began) * 1000),
                         error=f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=5)}")
    try:
        _record(wh, outcome, state=outcome.state, trigger=trigger, scheduled_for=scheduled_for,
                finished=datetime.now(UTC))
    except Exception:  # noqa: BLE001
        log.exception("could not record the outcome of job %s", spec.name)
    log.debug("job %s (%s): %s in %d ms %s", spec.name, trigger, outcome.state, outcome.duration_ms,
              json.dumps(outcome.detail, default=str)[:500])
    return outcome


def run_job_once(name: str, *, settings: Settings, wh: Warehouse | None = None,
                 extra_jobs: Mapping[str, JobFunc | JobSpec] | None = None) -> JobRun:
    """Run the job `name` once (for cron users and the CLI), opening the warehouse if not given."""
    jobs = job_registry(extra_jobs)
    if name not in jobs:
        raise KeyError(f"no job named {name!r}; known: {', '.join(jobs)}")
    if wh is not None:
        return execute(jobs[name], wh, settings)
    from llmledger.runtime import open_warehouse

    with open_warehouse(settings) as own:
        return execute(jobs[name], own, settings)


class HomeIdentity:
    """This process's claim on its home as a scheduler: an exclusive `flock` on
    `<home>/scheduler.lock` and a stable id stored in it. The kernel drops the lock when the process
    dies (`kill -9` included), so whoever holds it knows every earlier process on this home is gone,
    and may take back their unexpired lease term at once instead of waiting out its TTL."""

    def __init__(self, handle: IO[str], prefix: str) -> None:
        self.handle = handle
        self.prefix = prefix  # owners from this home start with it

    @classmethod
    def take(cls, home: Path) -> HomeIdentity | None:
        """The home's identity, or None while another live process on this home holds it."""
        try:
            home.mkdir(parents=True, exist_ok=True)
            handle = open(home / "scheduler.lock", "a+", encoding="utf-8")  # noqa: SIM115 - held for life
        except OSError:
            log.warning("no scheduler lock in %s: a restart waits for its old lease to expire", home)
            return None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return None
        handle.seek(0)
        home_id = handle.read().strip()
        if not home_id:
            home_id = uuid.uuid4().hex[:12]
            handle.write(home_id + "\n")
            handle.flush()
        return cls(handle, f"{socket.gethostname()}:{home_id}:")

    def owner(self) -> str:
        """A new owner id for this process start, recognisably from this home."""
        return f"{self.prefix}{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def predecessor(self, holder: str) -> bool:
        """True for an owner id of an earlier (so, dead) process on this home."""
        return holder.startswith(self.prefix)

    def release(self) -> None:
        self.handle.close()  # closing drops the flock


class Scheduler:
    """The process's job scheduler (an APScheduler `BackgroundScheduler` and its jobs).

    Jobs run only while this process holds the scheduler lease (`warehouse.lease`), kept by a thread
    of its own (so no job, however long, can starve the renewal): with several service replicas on
    one warehouse exactly one runs the jobs, so no alert or report is sent twice; a single process
    simply always holds it. Jobs get a `LeaseFence` to check before each post or mail. A process
    restarting on the same home takes its dead predecessor's lease back at once (`HomeIdentity`).
    """

    name = "scheduler"

    def __init__(self, settings: Settings, *, wh: Warehouse | None = None,
                 extra_jobs: Mapping[str, JobFunc | JobSpec] | None = None) -> None:
        self.settings = settings
        self.jobs = job_registry(extra_jobs)
        self._wh = wh
        self._own_wh: Warehouse | None = None
        self._lock = threading.Lock()
        self.owner = default_owner()
        self.home: HomeIdentity | None = None
        self.lease: Lease | None = None
        self._stop_keeping = threading.Event()
        self._keeper: threading.Thread | None = None
        config = settings.scheduler
        self.apscheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=config.max_workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": config.misfire_grace_s},
        )
        for spec in self.jobs.values():
            if spec.func is None:
                continue
            self.apscheduler.add_job(self._run, trigger=spec.trigger(config), args=[spec.name], id=spec.name,
                                     name=spec.description, replace_existing=True)

    @property
    def wh(self) -> Warehouse:
        """The warehouse jobs run against: the one given, else the scheduler's own connection."""
        if self._wh is not None:
            return self._wh
        with self._lock:
            if self._own_wh is None:
                self._own_wh = Warehouse.from_settings(self.settings)
            return self._own_wh

    @property
    def fence(self) -> LeaseFence:
        """The fencing check jobs make before each post (reads the lease the keeper thread keeps)."""
        return LeaseFence(self.wh, lambda: self.lease, owner=self.owner)

    def _run(self, name: str) -> None:
        # No scheduler calls from inside a job (e.g. get_job): they take the scheduler's locks, which
        # `shutdown(wait=True)` holds while it waits for this very job — a deadlock.
        lease = self.lease
        if lease is None or not lease.held():
            log.debug("job %s skipped: another replica holds the scheduler lease", name)
            return
        execute(self.jobs[name], self.wh, self.settings, trigger="scheduled", fence=self.fence)

    def keep_lease(self) -> bool:
        """Acquire the scheduler lease, or renew it in its second half; True while held."""
        ttl = self.settings.scheduler.lease_ttl_s
        try:
            if self.lease is not None and self.lease.held():
                if self.lease.remaining_s() < ttl / 2:
                    self.lease = renew_scheduler_lease(self.wh, self.lease)
                    if self.lease is None:
                        log.warning("scheduler lease lost to another replica: jobs stop")
            else:
                home = self.home
                self.lease = acquire_scheduler_lease(self.wh, self.owner, ttl_s=ttl,
                                                     reclaim=home.predecessor if home else None)
                if self.lease is not None:
                    log.info("scheduler lease taken: term %d", self.lease.term)
        except Exception:  # noqa: BLE001 - a warehouse hiccup costs a lease term, never the loop
            log.exception("could not keep the scheduler lease")
        return self.lease is not None and self.lease.held()

    def _keep_loop(self) -> None:
        ttl = self.settings.scheduler.lease_ttl_s
        while not self._stop_keeping.is_set():
            held = self.keep_lease()
            # the holder renews in its second half; a standby looks often, to take over soon after expiry
            self._stop_keeping.wait(ttl / 6 if held else max(0.2, min(ttl / 10, 2.0)))

    def start(self) -> None:
        """Start running the jobs in background threads (no-op when disabled in settings)."""
        if not self.settings.scheduler.enabled or self.apscheduler.running:
            return
        if self.home is None:
            self.home = HomeIdentity.take(Path(self.settings.home))
            if self.home is not None:
                self.owner = self.home.owner()
        self.keep_lease()
        self._stop_keeping.clear()
        self._keeper = threading.Thread(target=self._keep_loop, name="scheduler-lease", daemon=True)
        self._keeper.start()
        self.apscheduler.start()
        log.info("scheduler started: %s", ", ".join(j.id for j in self.apscheduler.get_jobs()))

    def stop(self, wait: bool = True) -> None:
        """Stop scheduling; with `wait`, let running jobs finish. Closes the scheduler's own connection."""
        if self.apscheduler.running:
            self.apscheduler.shutdown(wait=wait)
        self._stop_keeping.set()
        if self._keeper is not None:
            self._keeper.join(30)
            self._keeper = None
        if self.lease is not None and self.lease.held():
            try:
                release_scheduler_lease(self.wh, self.lease)
            except Exception:  # noqa: BLE001 - the lease expires by itself
                log.exception("could not release the scheduler lease")
            self.lease = None
        if self.home is not None:
            self.home.release()
            self.home = None
        with self._lock:
            if self._own_wh is not None:
                self._own_wh.close()
                self._own_wh = None

    def run_now(self, name: str) -> JobRun:
        """Run a job immediately in the calling thread (recorded as manual)."""
        return execute(self.jobs[name], self.wh, self.settings, trigger="manual")

    def health(self) -> dict[str, Any]:
        """State and next run of every job (for the service's health endpoint)."""
        jobs = {}
        for job in self.apscheduler.get_jobs():
            upcoming = getattr(job, "next_run_time", None)  # absent until the scheduler starts
            jobs[job.id] = {"next_run_at": upcoming.isoformat() if upcoming else None}
        empty = sorted(n for n, s in self.jobs.items() if s.func is None)
        holding = self.lease is not None and self.lease.held()
        return {"state": "running" if self.apscheduler.running else "stopped", "jobs": jobs, "empty_slots": empty,
                "lease": {"owner": self.owner, "held": holding, "term": self.lease.term if self.lease else None}}


def build_scheduler(settings: Settings, *, wh: Warehouse | None = None,
                    extra_jobs: Mapping[str, JobFunc | JobSpec] | None = None) -> Scheduler:
    """The scheduler for this process; call `.start()` to run it and `.stop()` on shutdown.
    Without `wh` it opens its own connection on first use (in embedded mode, a second handle on
    the same store in the same process, so jobs do not queue behind the service's requests)."""
    return Scheduler(settings, wh=wh, extra_jobs=extra_jobs)
