"""The budget incident: when a team's month-to-date spend crosses the monthly budget the truth states.

Nothing is injected: the team's ordinary traffic (its incidents included) is generated for the
month up to the range end, priced at list prices (`prices.py`), and accumulated call by call. The
budget defaults to the month-to-date spend at a planned instant (~70% into the range), rounded up
to two significant digits — or more, when the coarser amount would only be reached after the month
or the range ended — so the crossing lands there whatever day of the month the range ends on; 50%
and 80% crossings are reported too.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from llmledger.simulator.catalog import MODELS, ROUTES
from llmledger.simulator.config import SimulationConfig
from llmledger.simulator.days import day_tables
from llmledger.simulator.incidents import incident, schedule
from llmledger.simulator.prices import cost_expr
from llmledger.simulator.truth import IncidentTruth, iso

PLANNED_SHARE_OF_RANGE = 0.7
LEVELS = (0.5, 0.8, 1.0)
ROUNDING_DIGITS = (2, 3, 4, 6)  # significant digits of the default budget, coarsest first


def round_up(amount: float, digits: int) -> float:
    """`amount` rounded up to `digits` significant digits (never below a cent): 23.41 -> 24 at 2."""
    if amount <= 0:
        return 0.01
    step = max(10 ** (math.floor(math.log10(amount)) - digits + 1), 0.01)
    return round(math.ceil(amount / step - 1e-9) * step, 2)


def planned_crossing(config: SimulationConfig) -> datetime:
    """Where the default budget makes the 100% crossing happen: noon, ~70% into the range."""
    return config.range_start + timedelta(days=int(config.days * PLANNED_SHARE_OF_RANGE), hours=12)


def _month_start(at: datetime) -> datetime:
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def _month_end(at: datetime) -> datetime:
    return _month_start(_month_start(at) + timedelta(days=32))


def team_spend(config: SimulationConfig, team: str, start: datetime, end: datetime) -> pl.DataFrame:
    """ts and estimated cost_usd of the team's calls in [start, end), in time order."""
    routes = frozenset(r.name for r in ROUTES if r.team == team)
    first = max(0, (start - config.range_start).days)
    last = min(config.days, math.ceil((end - config.range_start).total_seconds() / 86_400))
    placed, _ = schedule(config)
    parts: list[pl.DataFrame] = []
    for index in range(first, last):
        _, day = day_tables(config, index, placed, routes)
        if not len(day.calls):
            continue
        calls = day.calls
        frame = pl.DataFrame(
            {
                "ts": calls["ts"],
                "model": pl.Series([m.key for m in MODELS]).gather(calls["model"].astype(np.int64)),
                "input_tokens": calls["input"],
                "cache_read_tokens": calls["cache_read"],
                "cache_write_5m_tokens": calls["cache_write_5m"],
                "cache_write_1h_tokens": calls["cache_write_1h"],
                "output_tokens": calls["output"],
                "web_searches": calls["web_searches"],
                "is_batch": calls["is_batch"],
            }
        )
        parts.append(frame.select("ts", cost_expr(config.range_start)))
    if not parts:
        return pl.DataFrame({"ts": [], "cost_usd": []}, schema={"ts": pl.Int64, "cost_usd": pl.Float64})
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    return pl.concat(parts).filter((pl.col("ts") >= start_ms) & (pl.col("ts") < end_ms))


def _crossing(spend: pl.DataFrame, amount: float) -> datetime | None:
    cumulative = spend["cost_usd"].cum_sum().to_numpy()
    at = int(np.searchsorted(cumulative, amount, side="left"))
    if at >= len(cumulative):
        return None
    return datetime.fromtimestamp(int(spend["ts"][at]) / 1000, UTC)


def budget_truth(config: SimulationConfig) -> IncidentTruth | None:
    """The budget incident's truth, or None when the budget is not crossed inside the range."""
    planned = min(planned_crossing(config), config.range_end - timedelta(minutes=1))
    month = _month_start(planned)
    mtd_from = max(month, config.range_start)
    until = min(_month_end(planned), config.range_end)
    spend = team_spend(config, config.budget_team, mtd_from, until)
    if spend.is_empty():
        return None
    budget = config.budget_usd
    if budget is None:
        planned_ms = int(planned.timestamp() * 1000)
        before = float(spend.filter(pl.col("ts") < planned_ms)["cost_usd"].sum())
        # the coarsest round amount whose crossing still lands in the month and the range
        budget, crossings = None, {}
        for digits in ROUNDING_DIGITS:
            candidate = round_up(before, digits)
            crossings = {level: _crossing(spend, candidate * level) for level in LEVELS}
            if crossings[1.0] is not None:
                budget = candidate
                break
        if budget is None:
            return None
    else:
        crossings = {level: _crossing(spend, budget * level) for level in LEVELS}
    crossed = crossings[1.0]
    if crossed is None:
        return None
    month_total = float(spend["cost_usd"].sum())
    spec = incident("budget_overrun")
    return IncidentTruth(
        name=spec.name,
        signal=spec.signal,
        scope={"team": config.budget_team},
        start=iso(crossed),
        end=iso(until),
        expected_severity="critical",
        measure="the team's month-to-date estimated spend against its monthly budget",
        expected_value=f"crosses 100% of ${budget:,.2f} at {iso(crossed)}",
        baseline_value="under budget before that instant",
        threshold="budget 50% / 80% / 100% (once per period)",
        cause_hint=f"team {config.budget_team}'s month-to-date spend exceeded its budget; month-to-range-end "
        f"spend ${month_total:,.2f}",
        details={
            "budget_usd": budget,
            "month": f"{month:%Y-%m}",
            "month_to_date_from": iso(mtd_from),
            "crossed_at": {f"{int(level * 100)}%": (iso(at) if at else None)
                           for level, at in crossings.items()},
            "crossing_window_for_2pct_pricing_error": [
                iso(at) if at else None
                for at in (_crossing(spend, budget * 0.98), _crossing(spend, budget * 1.02))
            ],
            "spend_in_range_usd": round(month_total, 2),
            "cost_basis": "genai-prices 0.2.3 list prices (base tier), Batch API at 50%, self-hosted at $0; "
            "the warehouse's own pricing may shift the crossing by minutes to hours",
        },
    )
