"""Latency tail (signal 7): a self-hosted node queues a few percent of calls for tens of seconds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from llmledger.simulator.calls import CANCELLED, OK
from llmledger.simulator.catalog import ROUTE_INDEX, ROUTES, SELF_HOSTED_NODES
from llmledger.simulator.config import SimulationConfig
from llmledger.simulator.incidents.base import Incident, Scheduled, add_latency, route_rows
from llmledger.simulator.traffic import DayContext, DayTables
from llmledger.simulator.truth import IncidentTruth


@dataclass(frozen=True)
class LatencyTail(Incident):
    """One self-hosted node builds a queue: a few percent of calls wait 30-50 s, the mean barely moves."""

    name: ClassVar[str] = "latency_tail"
    signal: ClassVar[str] = "7 latency tail"
    route: str = "internal-chat"
    node: str = "vllm-h100-02"
    queued_share_on_node: float = 0.18
    queue_ms: tuple[int, int] = (30_000, 50_000)  # stays under the route's 60 s client timeout
    hour: int = 14
    duration_min: int = 120

    def apply(self, day: DayTables, ctx: DayContext, at: Scheduled) -> DayTables:
        calls = day.calls
        rows = route_rows(day, self.route, at)
        if not rows.any():
            return day
        rng = ctx.rng(at.origin, 0)
        n = len(calls)
        on_node = calls["node"] == SELF_HOSTED_NODES.index(self.node)
        answered = (calls["status"] == OK) | (calls["status"] == CANCELLED)
        queued = rows & on_node & answered & (rng.random(n) < self.queued_share_on_node)
        extra = rng.uniform(*self.queue_ms, n)
        calls["queue"] = np.where(queued, calls["queue"] + np.rint(extra).astype(np.int64), calls["queue"])
        add_latency(calls, queued, extra)
        return day

    def truth(self, at: Scheduled, config: SimulationConfig) -> IncidentTruth:
        model = ROUTES[ROUTE_INDEX[self.route]].models[0][0]
        return self._truth(
            at,
            scope={"route": self.route, "model": model, "provider": "self_hosted"},
            expected_severity="critical",
            measure="p99 and mean of latency_ms and ttft_ms per hour (status ok)",
            expected_value="latency p99 >= 30 s with mean < 10 s; ttft p99 >= 30 s (chat SLO 1 s)",
            baseline_value="latency p99 ~15 s, mean ~5.5 s; ttft p99 < 1 s",
            threshold="p99 >= 30 s while the mean looks fine; TTFT p99 over 1 s on a chat route",
            cause_hint=f"queue on node {self.node}: queue_ms {self.queue_ms[0] // 1000}-"
            f"{self.queue_ms[1] // 1000} s "
            f"on ~{self.queued_share_on_node:.0%} of its calls; route traffic away / add capacity",
            details={"node": self.node,
                     "share_of_route_calls_queued": round(self.queued_share_on_node / len(SELF_HOSTED_NODES),
                                                          3)},
        )
