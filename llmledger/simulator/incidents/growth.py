"""Incidents that add traffic: sessions re-sending ever-growing history (signal 2), calls reasoning
until the output cap (signal 4), and a user scripting expensive conversations (spend spike)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from llmledger.simulator.catalog import MODEL_INDEX, ROUTE_INDEX, ROUTES, user_weights
from llmledger.simulator.config import SimulationConfig
from llmledger.simulator.ids import hex64, mix
from llmledger.simulator.incidents.base import Incident, Scheduled
from llmledger.simulator.sessions import lognormal, reasoning_tokens, sliding_history, user_code
from llmledger.simulator.table import Table
from llmledger.simulator.traffic import SALT_SESSION, DayContext, DayTables, build_turns
from llmledger.simulator.truth import IncidentTruth


@dataclass(frozen=True)
class PromptAccumulation(Incident):
    """A few sessions re-send their whole, ever-growing history every turn (no sliding window)."""

    name: ClassVar[str] = "prompt_accumulation"
    signal: ClassVar[str] = "2 prompt accumulation"
    route: str = "code-assist"
    users: tuple[str, ...] = ("u-0426", "u-0520", "u-0730")
    start_history_tokens: int = 12_000
    growth_per_turn_tokens: int = 2_200
    max_history_tokens: int = 170_000  # stays under the 200k context (and price tier)
    think_median_s: float = 45.0
    hour: int = 13
    duration_min: int = 240

    def session_ids(self, ctx: DayContext, at: Scheduled) -> list[str]:
        keys = mix(ctx.seed, ctx.ordinal, at.origin, np.arange(len(self.users)), SALT_SESSION)
        return [f"sess-{h}" for h in hex64(keys).to_list()]

    def apply(self, day: DayTables, ctx: DayContext, at: Scheduled) -> DayTables:
        if not ctx.wants(self.route):
            return day
        route = ROUTES[ROUTE_INDEX[self.route]]
        rng = ctx.rng(at.origin, 0)
        per_session = int(self.duration_min * 60 / self.think_median_s) + 2
        sessions = len(self.users)
        session = np.repeat(np.arange(sessions), per_session)
        turn = np.tile(np.arange(per_session), sessions)
        n = session.size
        grown = self.start_history_tokens + self.growth_per_turn_tokens * turn
        history = np.minimum(grown, self.max_history_tokens)
        turns = Table(
            {
                "session": session.astype(np.int64),
                "turn": turn.astype(np.int64),
                "start_s": (at.window.start_ms - ctx.start_ms) / 1000.0 + 120.0 * session,
                "user": np.array([user_code(u) for u in self.users], dtype=np.int32)[session],
                "env": np.zeros(n, dtype=np.int8),
                "model": np.full(n, MODEL_INDEX[route.models[0][0]], dtype=np.int16),
                "new": np.minimum(lognormal(rng, route.new_median, route.new_sigma, n), route.new_max)
                .astype(np.int64),
                "out_vis": np.clip(
                    lognormal(rng, route.output_median, route.output_sigma, n), 1, route.max_output
                ).astype(np.int64),
                "reasoning": reasoning_tokens(route, n, rng),
                "history": history.astype(np.int64),
                "think_s": lognormal(rng, self.think_median_s, 0.3, n),
            }
        )
        added = build_turns(ctx, ROUTE_INDEX[self.route], turns, origin=at.origin, until_ms=at.window.end_ms)
        return DayTables(Table.concat([day.calls, added.calls]), day.runs)

    def truth(self, at: Scheduled, config: SimulationConfig) -> IncidentTruth:
        ctx = DayContext(config.seed, at.window.start.date(), config.calls_per_day)
        return self._truth(
            at,
            scope={"route": self.route},
            expected_severity="critical",
            measure="input tokens per call and per hour on the route; per-session input growth across turns",
            expected_value="per call >= 2.5x and per hour >= 2.5x the route's baseline in every hour of "
            "the window",
            baseline_value="per-call mean about 7-8k tokens, within 1.6x hour over hour; history capped "
            "at 10k",
            threshold=">= 2x baseline hour over hour",
            cause_hint="sessions re-sending their whole history (no sliding window / summarisation): "
            + ", ".join(self.session_ids(ctx, at)),
            details={"sessions": self.session_ids(ctx, at), "users": list(self.users),
                     "history_tokens": f"{self.start_history_tokens} + {self.growth_per_turn_tokens} per "
                     f"turn, up to {self.max_history_tokens}",
                     "turn_every_s": f"about {self.think_median_s + 10:.0f}"},
        )


@dataclass(frozen=True)
class ReasoningRunaway(Incident):
    """A few requests think until the output cap; a few more think far past the route's p99."""

    name: ClassVar[str] = "reasoning_runaway"
    signal: ClassVar[str] = "4 reasoning runaway"
    route: str = "reasoning-qa"
    model: str = "o4-mini"
    capped_calls: int = 8
    cap_tokens: int = 100_000  # o4-mini's max output: all of it spent reasoning, no visible answer
    outlier_calls: int = 4
    outlier_range: tuple[int, int] = (40_000, 90_000)
    hour: int = 15
    duration_min: int = 120

    def event_ids(self, config: SimulationConfig, at: Scheduled) -> list[str]:
        day = at.window.start.date()
        return [f"sim-{config.seed}-{day:%Y%m%d}-c{at.origin:03d}-{k:07d}"
                for k in range(self.capped_calls + self.outlier_calls)]

    def apply(self, day: DayTables, ctx: DayContext, at: Scheduled) -> DayTables:
        if not ctx.wants(self.route):
            return day
        route = ROUTES[ROUTE_INDEX[self.route]]
        rng = ctx.rng(at.origin, 0)
        n = self.capped_calls + self.outlier_calls
        span_ms = at.window.end_ms - at.window.start_ms
        # spread over the window, each starting >= 20 min before its end (a capped call takes ~7 min)
        spread = np.arange(n) * (span_ms - 1_200_000) / n + rng.uniform(0, 60_000, n)
        ts = at.window.start_ms + 60_000 + spread
        capped = np.arange(n) < self.capped_calls
        outlier = rng.integers(*self.outlier_range, n)
        users = rng.choice(len(user_weights()), size=n, p=user_weights())
        turns = Table(
            {
                "session": np.arange(n, dtype=np.int64),
                "turn": np.zeros(n, dtype=np.int64),
                "ts": ts.astype(np.int64),
                "user": np.array([user_code(f"u-{u + 1:04d}") for u in users], dtype=np.int32),
                "env": np.zeros(n, dtype=np.int8),
                "model": np.full(n, MODEL_INDEX[self.model], dtype=np.int16),
                "new": lognormal(rng, route.new_median, route.new_sigma, n).astype(np.int64) + 1,
                "out_vis": np.where(capped, 0, lognormal(rng, route.output_median, 0.4, n)).astype(np.int64),
                "reasoning": np.where(capped, self.cap_tokens, outlier).astype(np.int64),
                "history": np.zeros(n, dtype=np.int64),
                "forced_ok": np.ones(n, dtype=bool),
            }
        )
        added = build_turns(ctx, ROUTE_INDEX[self.route], turns, origin=at.origin)
        return DayTables(Table.concat([day.calls, added.calls]), day.runs)

    def truth(self, at: Scheduled, config: SimulationConfig) -> IncidentTruth:
        ids = self.event_ids(config, at)
        return self._truth(
            at,
            scope={"route": self.route, "model": self.model},
            expected_severity="critical",
            measure="reasoning_tokens per call; outliers against the route/model p99",
            expected_value=f"{self.capped_calls} calls with reasoning_tokens = output_tokens = "
            f"{self.cap_tokens} (no visible answer) and {self.outlier_calls} with "
            f"{self.outlier_range[0]}-{self.outlier_range[1]}",
            baseline_value="median ~380, p99 ~1.5k, never above 5k reasoning tokens on this route",
            threshold="any call >= 100k reasoning tokens; outliers far above the route's p99",
            cause_hint="no reasoning budget on the route: set max_output_tokens / reasoning effort",
            details={"capped_event_ids": ids[: self.capped_calls],
                     "outlier_event_ids": ids[self.capped_calls:]},
            also_trips=[f"latency tail on route {self.route} (capped calls take ~8 min)"],
        )


@dataclass(frozen=True)
class SpendSpike(Incident):
    """A user runs a script of long conversations on the most expensive model of a route."""

    name: ClassVar[str] = "spend_spike"
    signal: ClassVar[str] = "+ spend spike"
    user: str = "u-0297"
    route: str = "assistant-chat"
    model: str = "claude-opus-4-1"
    sessions_per_hour: int = 12
    turns_per_session: int = 8
    new_median: float = 3000
    output_median: float = 500
    think_median_s: float = 12
    hour: int = 15
    duration_min: int = 120

    def apply(self, day: DayTables, ctx: DayContext, at: Scheduled) -> DayTables:
        if not ctx.wants(self.route):
            return day
        route = ROUTES[ROUTE_INDEX[self.route]]
        rng = ctx.rng(at.origin, 0)
        sessions = int(self.sessions_per_hour * self.duration_min / 60)
        session = np.repeat(np.arange(sessions), self.turns_per_session)
        turn = np.tile(np.arange(self.turns_per_session), sessions)
        n = session.size
        new = lognormal(rng, self.new_median, 0.4, n).astype(np.int64)
        out = np.clip(lognormal(rng, self.output_median, 0.3, n), 1, route.max_output).astype(np.int64)
        offset_s = (at.window.start_ms - ctx.start_ms) / 1000.0
        starts = offset_s + np.arange(sessions) * 3600.0 / self.sessions_per_hour
        turns = Table(
            {
                "session": session.astype(np.int64),
                "turn": turn.astype(np.int64),
                "start_s": starts[session],
                "user": np.full(n, user_code(self.user), dtype=np.int32),
                "env": np.zeros(n, dtype=np.int8),
                "model": np.full(n, MODEL_INDEX[self.model], dtype=np.int16),
                "new": new,
                "out_vis": out,
                "reasoning": np.zeros(n, dtype=np.int64),
                "history": sliding_history(new + out, turn, route.history_window),
                "think_s": lognormal(rng, self.think_median_s, 0.3, n),
            }
        )
        added = build_turns(ctx, ROUTE_INDEX[self.route], turns, origin=at.origin, until_ms=at.window.end_ms)
        return DayTables(Table.concat([day.calls, added.calls]), day.runs)

    def truth(self, at: Scheduled, config: SimulationConfig) -> IncidentTruth:
        route = ROUTES[ROUTE_INDEX[self.route]]
        return self._truth(
            at,
            scope={"user_id": self.user},
            expected_severity="critical",
            measure="estimated cost per user per hour (and per day) against the user's own baseline",
            expected_value="~$10 per hour, >= 5x the user's baseline daily spend in each hour of the window",
            baseline_value="a median-activity user: well under $1 a day",
            threshold="spike >= 3x baseline and >= a floor in $",
            cause_hint=f"user {self.user} scripting long {self.model} conversations on route {self.route} "
            f"({self.sessions_per_hour} sessions/h x {self.turns_per_session} turns)",
            details={"route": self.route, "feature": route.feature, "team": route.team, "model": self.model},
            also_trips=[f"spend spike on feature {route.feature} / route {self.route}"],
        )
