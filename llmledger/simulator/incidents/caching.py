"""Prompt-cache incidents: the hit ratio collapses (signal 1), or caching silently stops (signal 1b)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from llmledger.simulator.catalog import ROUTE_INDEX, ROUTES, prefix_hash
from llmledger.simulator.config import SimulationConfig
from llmledger.simulator.incidents.base import (
    PREFILL_MS_PER_KTOK,
    Incident,
    Scheduled,
    add_latency,
    route_rows,
)
from llmledger.simulator.table import VOCAB
from llmledger.simulator.traffic import DayContext, DayTables, tags_json
from llmledger.simulator.truth import IncidentTruth


@dataclass(frozen=True)
class CacheHitCollapse(Incident):
    """A prompt release moves a dynamic value into the cached prefix: every call rewrites the cache."""

    name: ClassVar[str] = "cache_hit_collapse"
    signal: ClassVar[str] = "1 cache hit collapse"
    route: str = "assistant-chat"
    model: str = "claude-sonnet-4-5"
    bad_prompt_version: str = "v8"
    residual_hit_rate: float = 0.05  # share of formerly cached calls still reading the cache
    hour: int = 10
    duration_min: int = 180

    def apply(self, day: DayTables, ctx: DayContext, at: Scheduled) -> DayTables:
        calls = day.calls
        rows = route_rows(day, self.route, at)
        if not rows.any():
            return day
        calls["prompt"] = np.where(rows, VOCAB.code(self.bad_prompt_version), calls["prompt"])
        calls["prefix_hash"] = np.where(rows, VOCAB.code(prefix_hash(self.route, self.bad_prompt_version)),
                                        calls["prefix_hash"])
        rng = ctx.rng(at.origin, 0)
        miss = rows & (calls["cache_read"] > 0) & (rng.random(len(calls)) >= self.residual_hit_rate)
        add_latency(calls, miss, PREFILL_MS_PER_KTOK[calls["model"]] * calls["cache_read"] / 1000.0)
        rewritten = calls["cache_write_5m"] + calls["cache_read"]
        calls["cache_write_5m"] = np.where(miss, rewritten, calls["cache_write_5m"])
        calls["cache_read"] = np.where(miss, 0, calls["cache_read"])
        return day

    def truth(self, at: Scheduled, config: SimulationConfig) -> IncidentTruth:
        base = ROUTES[ROUTE_INDEX[self.route]].prompt_version
        return self._truth(
            at,
            scope={"route": self.route, "model": self.model},
            expected_severity="critical",
            measure="cache_read / (cache_read + cache_write_5m + cache_write_1h) tokens per 5-min window",
            expected_value=f"about {self.residual_hit_rate:.2f} (every window < 0.30)",
            baseline_value="0.85-0.95 (>= 0.60 in every 5-min window with >= 20 calls)",
            threshold="WARNING < 0.50, CRITICAL < 0.30 for 5 min",
            cause_hint=f"prompt_version changed {base} -> {self.bad_prompt_version} at the start "
            "(prefix hash "
            f"{prefix_hash(self.route, base)} -> {prefix_hash(self.route, self.bad_prompt_version)}); "
            f"rolled back to {base} at the end",
            details={"prompt_version_before": base, "prompt_version_during": self.bad_prompt_version,
                     "prefix_hash_during": prefix_hash(self.route, self.bad_prompt_version),
                     "also_affected_models": ["claude-opus-4-1"]},
            also_trips=[f"spend spike on route {self.route} / feature workspace-assistant (cache writes cost "
                        "12.5x cache reads)"],
        )


@dataclass(frozen=True)
class CacheNotApplied(Incident):
    """An SDK upgrade drops the cache_control breakpoint: no cache reads or writes at all."""

    name: ClassVar[str] = "cache_not_applied"
    signal: ClassVar[str] = "1b cache not applied"
    route: str = "code-agent"
    sdk: str = "anthropic-python/0.70.0"
    hour: int = 14
    duration_min: int = 180

    def apply(self, day: DayTables, ctx: DayContext, at: Scheduled) -> DayTables:
        calls = day.calls
        rows = route_rows(day, self.route, at)
        if not rows.any():
            return day
        add_latency(calls, rows, PREFILL_MS_PER_KTOK[calls["model"]] * calls["cache_read"] / 1000.0)
        for name in ("cache_read", "cache_write_5m", "cache_write_1h"):
            calls[name] = np.where(rows, 0, calls[name])
        tags = dict(ROUTES[ROUTE_INDEX[self.route]].tags, sdk=self.sdk)
        calls["tags"] = np.where(rows, VOCAB.code(tags_json(tags)), calls["tags"])
        return day

    def truth(self, at: Scheduled, config: SimulationConfig) -> IncidentTruth:
        before = ROUTES[ROUTE_INDEX[self.route]].tags["sdk"]
        return self._truth(
            at,
            scope={"route": self.route},
            expected_severity="critical",
            measure="share of cache-eligible calls (haiku >= 2048, sonnet/opus/OpenAI >= 1024 input tokens) "
            "with cache_read = 0 and cache writes = 0, per 5-min window",
            expected_value="1.00 (every call with tokens)",
            baseline_value="0.00 on Anthropic and < 0.01 on OpenAI routes",
            threshold="> 10% over 5 min (signal 1's hit ratio is undefined: its denominator is 0)",
            cause_hint=f"tags.sdk changed {before} -> {self.sdk} at the start: the upgrade dropped the "
            "cache_control breakpoint; prompt_version unchanged",
            details={"sdk_before": before, "sdk_during": self.sdk, "model": "claude-sonnet-4-5"},
            also_trips=[f"spend spike on route {self.route} (input billed at full price, ~4x per call)"],
        )
