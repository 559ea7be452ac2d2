"""The service's log says what is worth knowing: the scheduler's per-run lines (every 15 s for alert
delivery) stay out of it unless `--debug`, and the demo's month of simulated incidents is recorded as
handled instead of being replayed into the log as warnings."""

from __future__ import annotations

import logging
import time

import pytest

from llmledger.scheduler import build_scheduler
from llmledger.settings import Settings
from tests.service_support import Running
from warehouse.client import Warehouse
from warehouse.queries.jobs import job_runs
from warehouse.queries.scope import Scope


def test_job_heartbeats_are_debug_only(settings: Settings, wh: Warehouse, caplog: pytest.LogCaptureFixture) -> None:
    from llmledger.logs import configure

    configure()
    fast = settings.model_copy(update={"scheduler": settings.scheduler.model_copy(
        update={"delivery_interval_s": 1, "signals_interval_s": 3600, "rollups_interval_s": 3600})})
    scheduler = build_scheduler(fast, wh=wh)
    with caplog.at_level(logging.INFO):
        scheduler.start()
        deadline = time.monotonic() + 30
        while job_runs(wh, Scope.all(), job="alerts.deliver").height < 3 and time.monotonic() < deadline:
            time.sleep(0.3)
        scheduler.stop()
    assert job_runs(wh, Scope.all(), job="alerts.deliver").height >= 3  # the job did run, recorded
    # APScheduler's own overload warnings (a run skipped while the previous one still ran, a run
    # missed by seconds) are real news on a starved machine, not heartbeats: they may appear
    overload = ("skipped: maximum number of running instances", "was missed by")
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO
            and not (r.name.startswith("apscheduler") and any(o in r.getMessage() for o in overload))]
    # the start, once; nothing per run ("Running job …", "… executed successfully")
    assert [m.split(":")[0] for m in said] == ["scheduler lease taken", "scheduler started"], said


def test_the_demo_records_its_past_alerts_as_handled(demo_service: Running) -> None:
    states = dict(demo_service.rows("SELECT state, count() FROM alert_outbox FINAL GROUP BY state"))
    assert states.get("logged", 0) > 0 and states.get("pending", 0) == 0, states
    incidents = demo_service.rows("SELECT count() FROM alert_incidents FINAL")[0][0]
    assert incidents > 0  # the demo's incidents are still alerts, with their history
