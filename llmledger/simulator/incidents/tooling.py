"""Tool incidents: a tool calling a frontier model many times per run (signal 3), and sandbox runs
hitting their timeout (signal 6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from llmledger.simulator.catalog import MODEL_INDEX, ROUTE_INDEX, TOOL_INDEX, TOOLS
from llmledger.simulator.config import SimulationConfig
from llmledger.simulator.incidents.base import Incident, Scheduled
from llmledger.simulator.sessions import lognormal
from llmledger.simulator.table import Table
from llmledger.simulator.tools import RUN_OK, RUN_TIMEOUT
from llmledger.simulator.traffic import DayContext, DayTables, new_call_rows
from llmledger.simulator.truth import IncidentTruth


@dataclass(frozen=True)
class LlmCallsInTools(Incident):
    """A tool release summarises whole pages with a frontier model in several chunked calls."""

    name: ClassVar[str] = "llm_calls_in_tools"
    signal: ClassVar[str] = "3 LLM calls inside tools"
    tool: str = "page_summarizer"
    route: str = "research-agent"
    model: str = "gpt-4o"
    calls_per_run: int = 3
    hour: int = 10
    duration_min: int = 180

    def apply(self, day: DayTables, ctx: DayContext, at: Scheduled) -> DayTables:
        runs, calls = day.runs, day.calls
        if not len(runs):
            return day
        hit = (runs["tool"] == TOOL_INDEX[self.tool]) & at.window.contains(runs["ts"])
        hit &= runs["status"] == RUN_OK
        if not hit.any():
            return day
        inner_calls = calls["tool"] == TOOL_INDEX[self.tool]
        # a run whose own calls end after the window keeps them: rows outside the window never change
        late = inner_calls & (calls["ts"] >= at.window.end_ms)
        hit &= ~np.isin(runs["span"], calls["parent_span"][late])
        old = inner_calls & np.isin(calls["parent_span"], runs["span"][hit])
        calls = calls.take(~old)
        rng = ctx.rng(at.origin, 0)
        at_runs = np.repeat(np.flatnonzero(hit), self.calls_per_run)
        like = runs.take(at_runs)
        n = len(at_runs)
        inner = next(t.inner for t in TOOLS if t.name == self.tool)
        assert inner is not None
        work_ms = lognormal(rng, 700.0, 0.4, n).astype(np.int64)
        added = new_call_rows(
            ctx, at.origin, ROUTE_INDEX[self.route], like=like,
            ts=like["ts"] + work_ms + 15 * (np.arange(n) % self.calls_per_run),
            model=np.full(n, MODEL_INDEX[self.model]), prefix=np.full(n, inner.prefix_tokens),
            history=np.zeros(n), new=lognormal(rng, inner.new_median, inner.new_sigma, n),
            out_vis=np.clip(lognormal(rng, inner.output_median, inner.output_sigma, n), 1, 1500),
            reasoning=np.zeros(n), parent_span=like["span"], seq_start=0, rng=rng, tool=TOOL_INDEX[self.tool],
        )
        end = added["ts"] + np.maximum(added["latency"], 0) + 30 - like["ts"]
        duration = runs["duration"].copy()
        np.maximum.at(duration, at_runs, end)
        runs["duration"] = duration
        return DayTables(Table.concat([calls, added]), runs)

    def truth(self, at: Scheduled, config: SimulationConfig) -> IncidentTruth:
        inner = next(t.inner for t in TOOLS if t.name == self.tool)
        assert inner is not None
        return self._truth(
            at,
            scope={"tool_name": self.tool},
            expected_severity="critical",
            measure="LLM cost of calls with this tool_name / tool runs of the tool, per hour",
            expected_value="about 50x the baseline (~$0.03 vs ~$0.0006 per run)",
            baseline_value=f"one {inner.model} call per successful run, ~$0.0006 per run",
            threshold=">= 10x the tool's baseline",
            cause_hint=f"{self.tool} switched from {inner.calls_per_run} {inner.model} call per page to "
            f"{self.calls_per_run} parallel {self.model} calls (chunked) at the start; reverted at the end",
            details={"route": self.route, "model_before": inner.model, "model_during": self.model,
                     "calls_per_run_before": inner.calls_per_run, "calls_per_run_during": self.calls_per_run},
            also_trips=[f"spend spike on route {self.route} / team data"],
        )


@dataclass(frozen=True)
class SandboxRunaway(Incident):
    """Generated code loops forever: a large share of sandbox runs hit the sandbox timeout."""

    name: ClassVar[str] = "sandbox_runaway"
    signal: ClassVar[str] = "6 sandbox runaway"
    tool: str = "code_sandbox"
    timeout_share: float = 0.60
    hour: int = 14
    duration_min: int = 90

    def apply(self, day: DayTables, ctx: DayContext, at: Scheduled) -> DayTables:
        runs = day.runs
        if not len(runs):
            return day
        tool = TOOL_INDEX[self.tool]
        rows = (runs["tool"] == tool) & at.window.contains(runs["ts"])
        rng = ctx.rng(at.origin, 0)
        base = TOOLS[tool].timeout_rate
        more = (self.timeout_share - base) / (1 - base)  # on top of the baseline's own timeouts
        flip = rows & (runs["status"] != RUN_TIMEOUT) & (rng.random(len(runs)) < more)
        runs["status"] = np.where(flip, RUN_TIMEOUT, runs["status"]).astype(np.int8)
        runs["duration"] = np.where(flip, TOOLS[tool].timeout_ms, runs["duration"])
        return day

    def truth(self, at: Scheduled, config: SimulationConfig) -> IncidentTruth:
        spec = TOOLS[TOOL_INDEX[self.tool]]
        return self._truth(
            at,
            scope={"tool_name": self.tool},
            expected_severity="critical",
            measure="tool runs with status = timeout / all runs of the tool, per 15 min",
            expected_value=f"about {self.timeout_share:.2f} (>= 3 timeouts in every 15 min)",
            baseline_value=f"about {spec.timeout_rate:.3f}",
            threshold=">= 5% of runs and at least 3 in 15 min",
            cause_hint=f"{self.tool} runs end at the {spec.timeout_ms // 1000} s timeout (duration_ms = "
            f"{spec.timeout_ms}): generated code loops; enforce timeouts / max compute",
            details={"route": "code-agent", "timeout_ms": spec.timeout_ms},
        )
