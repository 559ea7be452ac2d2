"""The incident catalogue in order, and where each incident goes in a simulated range.

`schedule` places the enabled incidents on successive weekdays from the fourth simulated day (one
per weekday, so none masks another), each at its own hour; `apply_incidents` runs those whose
window overlaps a day. The budget incident is a marker: `budget.py` finds its crossing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from llmledger.simulator.config import INCIDENT_NAMES, SimulationConfig
from llmledger.simulator.incidents.base import Incident, Scheduled, Window
from llmledger.simulator.incidents.caching import CacheHitCollapse, CacheNotApplied
from llmledger.simulator.incidents.growth import PromptAccumulation, ReasoningRunaway, SpendSpike
from llmledger.simulator.incidents.latency import LatencyTail
from llmledger.simulator.incidents.routing import StaleRouting
from llmledger.simulator.incidents.tooling import LlmCallsInTools, SandboxRunaway
from llmledger.simulator.traffic import DayContext, DayTables

FIRST_INCIDENT_DAY = 3  # days 0-2 stay clean so baselines exist before the first incident
ORIGIN_BASE = 100  # rows an incident adds carry origin ORIGIN_BASE + its catalogue index


@dataclass(frozen=True)
class BudgetOverrun(Incident):
    """Not injected into the data: the team's ordinary spend crosses the monthly budget the truth states
    (`budget.py` computes the crossing)."""

    name: ClassVar[str] = "budget_overrun"
    signal: ClassVar[str] = "+ budget"
    hour: int = 12
    duration_min: int = 0


INCIDENTS: tuple[Incident, ...] = (
    CacheHitCollapse(), CacheNotApplied(), PromptAccumulation(), LlmCallsInTools(), ReasoningRunaway(),
    StaleRouting(), SandboxRunaway(), LatencyTail(), SpendSpike(), BudgetOverrun(),
)
assert tuple(i.name for i in INCIDENTS) == INCIDENT_NAMES


def incident(name: str) -> Incident:
    """The catalogue incident of that name."""
    return INCIDENTS[INCIDENT_NAMES.index(name)]


def schedule(config: SimulationConfig) -> tuple[list[Scheduled], list[str]]:
    """(incidents placed in the range, names enabled but not fitting). The k-th incident of the
    catalogue goes to the k-th weekday from day 3 at its hour, unless `incident_starts` names a
    start; a window never crosses midnight. The budget incident is placed by `budget.py`."""
    weekdays = [d for d in range(FIRST_INCIDENT_DAY, config.days) if config.day(d).weekday() < 5]
    placed: list[Scheduled] = []
    skipped: list[str] = []
    for k, spec in enumerate(INCIDENTS):
        if spec.name not in config.enabled_incidents() or isinstance(spec, BudgetOverrun):
            continue
        start = config.incident_starts.get(spec.name)
        if start is None and k < len(weekdays):
            day = config.day(weekdays[k])
            start = datetime(day.year, day.month, day.day, spec.hour, tzinfo=UTC)
        if start is None:
            skipped.append(spec.name)
            continue
        midnight = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=1)
        end = min(start + timedelta(minutes=spec.duration_min), midnight)
        if start < config.range_start or end > config.range_end:
            skipped.append(spec.name)
            continue
        window = Window(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
        placed.append(Scheduled(spec, window, ORIGIN_BASE + k))
    return placed, skipped


def apply_incidents(day: DayTables, ctx: DayContext, placed: list[Scheduled]) -> DayTables:
    """Every scheduled incident whose window overlaps the day, in catalogue order."""
    for at in placed:
        if at.window.overlaps(ctx):
            day = at.incident.apply(day, ctx, at)
    return day
