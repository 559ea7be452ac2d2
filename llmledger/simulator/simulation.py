"""The simulator's public entry points: day batches, whole simulations and their ground truth.

`iter_days` yields one UTC day at a time (memory bounded by a day), each day computed from
(config, date) alone; `simulate` concatenates them for small runs; `ground_truth` describes the
incidents and opportunities without materialising the data (except the budget team's spend).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import polars as pl

from llmledger.simulator.baseline import baseline_summary
from llmledger.simulator.budget import budget_truth
from llmledger.simulator.config import SimulationConfig
from llmledger.simulator.days import day_tables, days_in_range
from llmledger.simulator.frames import CALL_SCHEMA, RUN_SCHEMA, calls_frame, runs_frame
from llmledger.simulator.incidents import schedule
from llmledger.simulator.opportunities import OPPORTUNITIES
from llmledger.simulator.truth import GroundTruth, iso


@dataclass(frozen=True)
class DayBatch:
    """One simulated UTC day: canonical calls and tool runs, each sorted by ts."""

    day: date
    calls: pl.DataFrame
    tool_runs: pl.DataFrame


@dataclass(frozen=True)
class Simulation:
    """A whole (small) simulation in memory."""

    calls: pl.DataFrame
    tool_runs: pl.DataFrame
    truth: GroundTruth


def iter_days(config: SimulationConfig) -> Iterator[DayBatch]:
    """Each simulated day in order, as canonical frames (see `frames.py` for the shapes)."""
    placed, _ = schedule(config)
    for index in days_in_range(config):
        ctx, day = day_tables(config, index, placed)
        options = {"seed": config.seed, "day": ctx.day, "source": config.source, "project": config.project}
        yield DayBatch(ctx.day, calls_frame(day.calls, **options), runs_frame(day.runs, **options))


def simulate(config: SimulationConfig) -> Simulation:
    """All days concatenated, with the ground truth (for runs that fit in memory)."""
    days = list(iter_days(config))
    calls = pl.concat([d.calls for d in days]) if days else pl.DataFrame(schema=CALL_SCHEMA)
    runs = pl.concat([d.tool_runs for d in days]) if days else pl.DataFrame(schema=RUN_SCHEMA)
    return Simulation(calls, runs, ground_truth(config))


def ground_truth(config: SimulationConfig) -> GroundTruth:
    """What the simulation of `config` contains: incidents (with exact windows), opportunities, baseline."""
    placed, skipped = schedule(config)
    incidents = [at.incident.truth(at, config) for at in placed]
    if "budget_overrun" in config.enabled_incidents():
        budget = budget_truth(config)
        if budget is None:
            skipped.append("budget_overrun")
        else:
            incidents.append(budget)
    return GroundTruth(
        seed=config.seed,
        start=iso(config.range_start),
        end=iso(config.range_end),
        calls_per_day=config.calls_per_day,
        incidents=incidents,
        opportunities=list(OPPORTUNITIES),
        baseline=baseline_summary(),
        skipped=skipped,
    )
