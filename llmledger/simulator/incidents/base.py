"""What every incident shares: its window in time, its placement, and the base class.

An incident is a frozen dataclass whose fields are its parameters; `apply` changes (or adds) only
rows inside its window, drawing from the incident's own random streams (keyed by its origin), and
`truth` states what a signal should report. Helpers here edit call tables in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

import numpy as np

from llmledger.simulator.catalog import MODELS, ROUTE_INDEX
from llmledger.simulator.config import SimulationConfig
from llmledger.simulator.table import Table
from llmledger.simulator.traffic import DayContext, DayTables
from llmledger.simulator.truth import IncidentTruth, iso

PREFILL_MS_PER_KTOK = np.array([m.prefill_ms_per_ktok for m in MODELS])


@dataclass(frozen=True)
class Window:
    """[start, end) in epoch milliseconds."""

    start_ms: int
    end_ms: int

    def contains(self, ts: np.ndarray) -> np.ndarray:
        return (ts >= self.start_ms) & (ts < self.end_ms)

    def overlaps(self, ctx: DayContext) -> bool:
        return self.start_ms < ctx.end_ms and self.end_ms > ctx.start_ms

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.start_ms / 1000, UTC)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(self.end_ms / 1000, UTC)


@dataclass(frozen=True)
class Scheduled:
    """An incident placed in time; `origin` numbers the rows it adds."""

    incident: Incident
    window: Window
    origin: int


@dataclass(frozen=True)
class Incident:
    """Base: a name, a §5 signal, a default start hour (UTC) and a duration."""

    name: ClassVar[str] = ""
    signal: ClassVar[str] = ""
    hour: int = 12
    duration_min: int = 60

    def apply(self, day: DayTables, ctx: DayContext, at: Scheduled) -> DayTables:
        """Change or add the rows of this incident inside `at.window`; the default changes nothing."""
        return day

    def truth(self, at: Scheduled, config: SimulationConfig) -> IncidentTruth:
        raise NotImplementedError

    def _truth(self, at: Scheduled, **fields: object) -> IncidentTruth:
        return IncidentTruth(name=self.name, signal=self.signal, start=iso(at.window.start),
                             end=iso(at.window.end), **fields)  # type: ignore[arg-type]


def route_rows(day: DayTables, route: str, at: Scheduled) -> np.ndarray:
    calls = day.calls
    if not len(calls):
        return np.zeros(0, dtype=bool)
    return (calls["route"] == ROUTE_INDEX[route]) & at.window.contains(calls["ts"])


def add_latency(calls: Table, rows: np.ndarray, extra_ms: np.ndarray) -> None:
    """Add time before the first token (queue or prefill) to some rows."""
    extra = np.rint(extra_ms).astype(np.int64)
    calls["ttft"] = np.where(rows & (calls["ttft"] >= 0), calls["ttft"] + extra, calls["ttft"])
    calls["latency"] = np.where(rows & (calls["latency"] >= 0), calls["latency"] + extra, calls["latency"])
