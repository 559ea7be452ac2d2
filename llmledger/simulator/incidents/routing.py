"""Stale routing (signal 5): the cascade's cheap model changes and the router escalates most calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from llmledger.simulator.catalog import MODEL_INDEX, ROUTE_INDEX, ROUTES
from llmledger.simulator.config import SimulationConfig
from llmledger.simulator.incidents.base import Incident, Scheduled, route_rows
from llmledger.simulator.sessions import lognormal
from llmledger.simulator.table import Table
from llmledger.simulator.traffic import DayContext, DayTables, new_call_rows
from llmledger.simulator.truth import IncidentTruth


@dataclass(frozen=True)
class StaleRouting(Incident):
    """The cheap step's model is upgraded without retraining the router: most calls escalate."""

    name: ClassVar[str] = "stale_routing"
    signal: ClassVar[str] = "5 stale routing"
    policy: str = "cascade-v2"
    route: str = "support-chat"
    new_cheap_model: str = "gpt-4.1-mini"
    target_escalation: float = 0.85
    hour: int = 9
    duration_min: int = 300

    def apply(self, day: DayTables, ctx: DayContext, at: Scheduled) -> DayTables:
        calls = day.calls
        cascade = ROUTES[ROUTE_INDEX[self.route]].cascade
        assert cascade is not None
        first = route_rows(day, self.route, at) & (calls["step"] == 0)
        if not first.any():
            return day
        calls["model"] = np.where(first, MODEL_INDEX[self.new_cheap_model], calls["model"]).astype(np.int16)
        rng = ctx.rng(at.origin, 0)
        extra = (self.target_escalation - cascade.escalation_rate) / (1 - cascade.escalation_rate)
        newly = first & (calls["score"] >= cascade.score_threshold) & (rng.random(len(calls)) < extra)
        rescored = rng.uniform(0.05, cascade.score_threshold, len(calls))
        calls["score"] = np.where(newly, rescored, calls["score"])
        like = calls.take(newly)
        n = len(like)
        route = ROUTES[ROUTE_INDEX[self.route]]
        added = new_call_rows(
            ctx, at.origin, ROUTE_INDEX[self.route], like=like,
            ts=like["ts"] + np.maximum(like["latency"], 0) + 30,
            model=np.full(n, MODEL_INDEX[cascade.frontier_model]), prefix=like["prefix"],
            history=like["history"],
            new=like["new"], out_vis=np.clip(lognormal(rng, route.output_median, route.output_sigma, n), 1,
                                             route.max_output),
            reasoning=np.zeros(n), parent_span=np.zeros(n, dtype=np.uint64), seq_start=0, rng=rng, step=1,
            score=like["score"],
        )
        return DayTables(Table.concat([calls, added]), day.runs)

    def truth(self, at: Scheduled, config: SimulationConfig) -> IncidentTruth:
        cascade = ROUTES[ROUTE_INDEX[self.route]].cascade
        assert cascade is not None
        return self._truth(
            at,
            scope={"routing_policy": self.policy},
            expected_severity="critical",
            measure="step-1 calls / step-0 calls of the policy per hour (escalation rate)",
            expected_value=f"about {self.target_escalation:.2f}",
            baseline_value=f"about {cascade.escalation_rate:.2f} (0.25-0.50 in every hour with >= 200 "
            "step-0 calls)",
            threshold="WARNING > 50%, CRITICAL >= 70% over 1 h",
            cause_hint=f"cheap step model changed {cascade.cheap_model} -> {self.new_cheap_model} at the "
            "start "
            "(model of cascade_step=0 calls) without retraining the router; rolled back at the end",
            details={"route": self.route, "cheap_model_before": cascade.cheap_model,
                     "cheap_model_during": self.new_cheap_model, "frontier_model": cascade.frontier_model},
            also_trips=[],
        )
