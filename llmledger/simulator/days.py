"""One simulated day as column tables: baseline traffic, then incidents, cut at the range end, sorted.

A day depends only on (config, day index): each day and each incident draws from its own random
streams, so days can be generated alone, in any order, with the same result.
"""

from __future__ import annotations

import numpy as np

from llmledger.simulator.config import SimulationConfig
from llmledger.simulator.incidents import Scheduled, apply_incidents
from llmledger.simulator.table import Table
from llmledger.simulator.traffic import DayContext, DayTables, baseline_day


def _sorted(table: Table, end_ms: int) -> Table:
    if not len(table):
        return table
    table = table.take(table["ts"] < end_ms)
    return table.take(np.lexsort((table["seq"], table["origin"], table["ts"])))


def day_tables(config: SimulationConfig, index: int, placed: list[Scheduled],
               routes: frozenset[str] | None = None) -> tuple[DayContext, DayTables]:
    """Day `index` (0-based) of the range: calls and tool runs sorted by ts (then origin, seq);
    `routes` limits generation to some routes (incidents elsewhere add nothing)."""
    ctx = DayContext(config.seed, config.day(index), config.calls_per_day, routes)
    day = apply_incidents(baseline_day(ctx), ctx, placed)
    end_ms = int(config.range_end.timestamp() * 1000)
    return ctx, DayTables(_sorted(day.calls, end_ms), _sorted(day.runs, end_ms))


def days_in_range(config: SimulationConfig) -> range:
    """Indices of the days with traffic (fewer than `days` when `end_at` cuts the range)."""
    seconds = (config.range_end - config.range_start).total_seconds()
    return range(min(config.days, max(0, -(-int(seconds) // 86_400))))
