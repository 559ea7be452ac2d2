"""The demo's incidents fire whatever day of the month it is seeded on. The demo and the dashboard
fixtures simulate "N days ending today" and the budget incident is month-relative, so each check
pins "today" to a calendar edge — the 1st (just after midnight), the 3rd, the 15th, the last day of
a month, 29 February and 1 January — and seeds the dashboard fixture's own volume on it.

The signals asserted here (budget, reasoning runaway) are evaluated alone, over the demo's own
backfill range and with its budget: families keep their own state, so the others, which the
dashboard tests see evaluated on today's date, would cost most of the time and change nothing here;
nor are the self-hosted nodes' samples seeded (no signal asserted here reads them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from alerts.evaluate import evaluate_signals
from alerts.rules.budget import BudgetFamily
from alerts.rules.reasoning import ReasoningFamily
from llmledger.demo import SIGNAL_WARM_UP, seed_demo, truth_file, with_demo_budget
from llmledger.settings import Settings
from llmledger.simulator import GroundTruth
from llmledger.simulator.config import INCIDENT_NAMES
from tests.dashboard_support import DEMO_CALLS_PER_DAY, DEMO_DAYS
from warehouse.client import Warehouse
from warehouse.queries import routing
from warehouse.queries.alerts import incidents
from warehouse.queries.scope import Scope

TODAYS = [  # in the past: ingest refuses calls from the future of the wall clock
    datetime(2026, 3, 1, 0, 40, tzinfo=UTC),  # the 1st, minutes after midnight: the month has no data yet
    datetime(2025, 12, 3, 15, 0, tzinfo=UTC),  # the 3rd (red in CI when budgets were rounded up to $10)
    datetime(2026, 10, 15, 9, 30, tzinfo=UTC),
    datetime(2025, 11, 30, 23, 50, tzinfo=UTC),  # the last day of a month
    datetime(2024, 2, 29, 12, 0, tzinfo=UTC),
    datetime(2026, 1, 1, 8, 0, tzinfo=UTC),
]
pytestmark = pytest.mark.spread  # each date seeds its own database: parallel workers may split them
STALE_MIN_REQUESTS, STALE_RATE = 20, 0.7  # the routing page's warning: an hour of >= 20 requests at >= 70%


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


@pytest.mark.parametrize("now", TODAYS, ids=lambda d: d.strftime("%Y-%m-%d"))
def test_every_demo_incident_fires_on_any_calendar_day(wh: Warehouse, settings: Settings, now: datetime) -> None:
    result = seed_demo(wh, settings, days=DEMO_DAYS, calls_per_day=DEMO_CALLS_PER_DAY, now=now, signals=False,
                       nodes=False)
    # what seed_demo's backfill does, for the two families asserted below
    evaluate_signals(wh, with_demo_budget(settings), since=result.start + SIGNAL_WARM_UP, at=now,
                     families=(BudgetFamily(), ReasoningFamily()))
    truth = GroundTruth.from_json(truth_file(settings).read_text(encoding="utf-8"))
    assert {i.name for i in truth.incidents} == set(INCIDENT_NAMES)  # every incident placed, the budget's too
    assert result.end == now

    # the budget is crossed inside the range, and the alert names the month it was crossed in
    budget = truth.incident("budget_overrun")
    crossed = _at(budget.start)
    assert result.start + timedelta(days=2) < crossed < now
    alerts = incidents(wh, Scope.all(), limit=10_000)
    fired = alerts.filter(pl.col("signal") == "budget")
    assert fired.height >= 1, f"no budget incident on {now:%Y-%m-%d}"
    assert f"period={crossed:%Y-%m}" in " ".join(fired["scope_key"].to_list())
    assert "reasoning_runaway" in alerts["signal"].to_list()

    # the routing page's stale-routing warning: the first judged hour at >= 70% is the incident's own
    stale = truth.incident("stale_routing")
    series = routing.cascade_series(wh, Scope.all(), result.start, now, grain="hour")
    judged = series.filter((pl.col("step0_calls") >= STALE_MIN_REQUESTS) & (pl.col("escalation_rate") >= STALE_RATE))
    assert not judged.is_empty(), f"no judged stale hour on {now:%Y-%m-%d}"
    first = judged.sort("bucket").row(0, named=True)
    assert first["routing_policy"] == "cascade-v2" and "gpt-4.1-mini" in first["step0_models"]
    assert _at(stale.start) <= first["bucket"] < _at(stale.end)
