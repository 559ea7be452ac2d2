"""Quiet and incident traffic for the alert precision benchmark, generated on its own (numpy), not
by `llmledger.simulator`: the rules were tuned on the simulator's shapes, so judging them on it
would only show they fit their own assumptions. The harness is `bench.alerts_precision`; the
contract (`Scenario`, `Incident`) is `bench.alert_cases`.

A project has nine routes on three providers (Anthropic and Gemini with explicit caching, OpenAI
with automatic caching), chat sessions, a reasoning route, a model cascade and an agent that runs
tools (a code sandbox, a web search that calls a model). Hourly volume per route = base rate × a
diurnal curve (own peak hour and depth) × a weekend factor × heavy-tailed hour-to-hour noise
(Student-t innovations of an AR(1) on the log scale) × news-like bursts (a few hours at ×2–5) ×
day-long level shifts × a launch that doubles one route from a day on; a new route appears
mid-range (in one project on a Sunday, so its one day of history is a Sunday). Calls carry what
makes naive rules page: prompt caches that go cold in quiet minutes (5-minute TTL), OpenAI's random
automatic-cache misses, long-tailed latency with a provider-wide hourly drift, a reasoning route
whose normal p99 is minutes, Sonnet TTFT p99 ≈ 2 s, one slow call in a quiet hour each night,
daily prompt-version bumps that keep the prefix, a benign SDK upgrade, short dips without traffic,
a flaky sandbox host now and then, calls with no feature, Zipf-heavy users.

Incidents (`Incident`) are ramps and partial rollouts of the issue's ten kinds (`TEN` names nine:
the seven silent-failure signals, the latency tail and a runaway spend spike; two of them are also
injected on a second provider or model; the tenth is a budget whose month-end forecast crosses
100%) plus an extra kind (`EXTRA`: a day-long spend level shift), each with the signal and scope that should fire, the severity it must reach and
`crosses_at`: when the injected condition crosses the documented threshold (computed from the
injected shares, not from the rules) and has become observable.

Observable, for a windowed statistic, means the scope has had the calls (runs) the statistic needs
since the crossing, counted as they arrive, so a lull without calls delays it until traffic resumes
and brings them. A p99 needs 100 calls (design §5). A share, or a mean that an injected share drives
(`Evidence`), needs the calls at which a sample of them, each at the value the rollout injected at
its instant, clears the threshold's one-sided 95% bound: the score test that a Wilson bound
inverts, n ≥ z²·θ(1 − θ)/(θ − p̄)², with θ the documented threshold at the expected severity and p̄
the mean injected value of the calls so far. At the full effect that is e.g. 10 calls for a cache hit
ratio of 0.05 against 0.30 (5% of calls stay healthy) and 26 first-step calls for an escalation rate
of 0.85 against 0.70; during a ramp the early calls sit near the threshold and count for little, so
more are needed. Computed here from the injected effect and the documented thresholds, never from
the rules' code. Prompt accumulation's rollout is a share of sessions, too few an hour for the
expected share to stand in for the calls: its crossing is taken on the calls as injected (input per
call over a quarter hour doubled, and held).

The level shift (a product decision). The quiet traffic contains day-long shifts of up to ×2.5 on
purpose (launches that double traffic are quiet traffic), and the injected shift is ×3.5 over what
the hours would have cost for ten hours, on a day that may itself be at ×0.5–2.5; at its deadline it
can be no different from a quiet shift. The precision bar is kept: the level shift is not one of the
ten kinds, its recall is reported apart, and it counts only where it was observable — when the
route's six hours of spend against its seasonal baseline (the median of the same hour on the
previous 14 days, leaving out hours an injected incident touched) exceed the largest six-hour ratio
the route reached on its previous 14 quiet days. Its `crosses_at` is the first hour boundary at
which that holds, from the documented measure's crossing on; otherwise it is marked not observable and
listed as such, never dropped.

Seed sets: "tune" (what rule changes were checked against), "held-out" (heavier tails, more bursts
and misses; no threshold was chosen on it), "fresh" and "fresh-2" (each with its own distributions,
fixed before a round's rule changes and run only on that round's final rules; seen once, so no
longer held out), "fresh-3" (heavier tails and more bursts again; seen once, likewise) and "fresh-4"
(lighter hour-to-hour tails but wider day-long shifts and project sizes; fixed before this round's
rule changes, run only on its final rules).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from statistics import NormalDist

import numpy as np
import polars as pl

from bench.alert_cases import Incident, Scenario

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
TTL_MS = 300_000  # prompt caches live five minutes after their last use
TIME = pl.Datetime("ms", "UTC")


@dataclass(frozen=True)
class Route:
    """A route's traffic and the calls it makes."""

    name: str
    feature: str
    team: str
    provider: str
    model: str
    per_day: float  # calls a weekday at the route's mean level
    prefix_tokens: int  # the fixed, cacheable part of the prompt
    input_tokens: float  # median of the variable part
    output_tokens: float
    latency_ms: float  # median end to end
    latency_sigma: float
    ttft_ms: float | None = None  # streamed routes only
    cache: str = "explicit"  # explicit | automatic | none
    unmarked_share: float = 0.0  # explicit: calls sent without a breakpoint (a code path that never caches)
    miss_rate: float = 0.0  # automatic: random misses of a warm cache
    turns: float = 1.0  # mean turns per session (chat routes > 1)
    reasoning: float = 0.0  # median reasoning tokens
    depth: tuple[float, float] = (0.4, 0.9)  # range of the diurnal depth
    prefixes: int = 1  # distinct cached prefixes (system prompts)
    sdk: str = ""


ROUTES = (
    Route("support-chat", "support", "support", "anthropic", "claude-opus-4-1", 1_000, 9_000, 3_000, 700, 7_000, 0.5,
          1_100, turns=6, sdk="anthropic-python/0.49.0"),
    Route("assistant-chat", "assistant", "product", "anthropic", "claude-sonnet-4-5", 3_500, 5_000, 1_500, 500,
          4_500, 0.5, 700, unmarked_share=0.01, turns=8, prefixes=2, sdk="anthropic-python/0.49.0"),
    Route("search-answers", "search", "search", "openai", "gpt-4o", 3_500, 2_500, 800, 400, 3_000, 0.55, 600,
          cache="automatic", miss_rate=0.05, sdk="openai-python/1.82.0"),
    Route("deep-research", "research", "research", "openai", "o3", 300, 0, 8_000, 1_500, 60_000, 0.75, None,
          cache="none", reasoning=9_000, sdk="openai-python/1.82.0"),
    Route("batch-summarize", "", "data", "anthropic", "claude-haiku-4-5", 800, 3_000, 2_000, 300, 2_500, 0.4, None,
          depth=(0.0, 0.2), sdk="anthropic-python/0.49.0"),
    Route("ticket-triage", "support", "support", "openai", "gpt-4o-mini", 2_500, 1_500, 600, 150, 1_200, 0.4, None,
          cache="automatic", miss_rate=0.05, sdk="openai-python/1.82.0"),
    Route("code-agent", "agent", "platform", "anthropic", "claude-sonnet-4-5", 2_000, 6_000, 3_000, 800, 9_000, 0.6,
          1_200, sdk="anthropic-python/0.49.0"),
    Route("docs-qa", "docs", "product", "google", "gemini-2.5-pro", 500, 20_000, 1_000, 500, 8_000, 0.5, 1_500,
          sdk="google-genai/1.20.0"),
)
NEW_ROUTE = Route("launch-beta", "beta", "product", "anthropic", "claude-opus-4-1", 600, 10_000, 2_000, 800, 6_500,
                  0.5, 900, turns=4, sdk="anthropic-python/0.49.0")
ESCALATE_TO = ("anthropic", "claude-sonnet-4-5")  # the cascade's step 1
POLICY = "triage-v1"
CHEAP_NEXT = "gpt-4.1-mini"  # the cheap model a stale-routing incident switches to
WEB_MODEL = "gpt-4o-mini"  # the model the web_search tool calls once per run
PRICES_PER_MTOK = {  # genai-prices at START (base tier), for the budget forecast the generator plans
    "claude-opus-4-1": (15, 1.5, 18.75, 75), "claude-sonnet-4-5": (3, 0.3, 3.75, 15),
    "claude-haiku-4-5": (1, 0.1, 1.25, 5), "gpt-4o": (2.5, 1.25, 2.5, 10), "gpt-4o-mini": (0.15, 0.075, 0.15, 0.6),
    "gpt-4.1-mini": (0.4, 0.1, 0.4, 1.6), "o3": (2, 0.5, 2, 8), "gemini-2.5-pro": (1.25, 0.125, 1.25, 10),
}


@dataclass(frozen=True)
class Noise:
    """How one project's quiet traffic varies (each route draws its own values from these)."""

    df: float = 3.0  # Student-t degrees of freedom of the hour-to-hour log noise (heavy tails)
    scale: float = 0.25
    bursts_per_day: float = 0.3  # per route
    shift_max: float = 2.0  # day-long level shifts drawn in [0.5, shift_max]
    miss_scale: float = 1.0  # OpenAI random misses × this
    tail_share: float = 0.001  # calls 3–8× slower than their route's lognormal
    flaky_per_day: float = 0.5  # minutes-long bursts of sandbox timeouts (a flaky host)
    volume: tuple[float, float] = (0.5, 1.2)  # project size × this


TUNE = Noise()
HELD = Noise(df=2.2, scale=0.35, bursts_per_day=0.6, shift_max=2.2, miss_scale=1.6, tail_share=0.002,
             flaky_per_day=1.0, volume=(0.4, 1.4))
FRESH = Noise(df=2.6, scale=0.3, bursts_per_day=0.45, shift_max=2.5, miss_scale=1.3, tail_share=0.0015,
              flaky_per_day=0.7, volume=(0.45, 1.3))
FRESH2 = Noise(df=2.4, scale=0.33, bursts_per_day=0.55, shift_max=2.4, miss_scale=1.45, tail_share=0.0018,
               flaky_per_day=0.8, volume=(0.5, 1.35))
FRESH3 = Noise(df=2.1, scale=0.37, bursts_per_day=0.65, shift_max=2.3, miss_scale=1.55, tail_share=0.0021,
               flaky_per_day=0.9, volume=(0.4, 1.45))
FRESH4 = Noise(df=2.8, scale=0.29, bursts_per_day=0.5, shift_max=2.5, miss_scale=1.4, tail_share=0.0017,
               flaky_per_day=0.85, volume=(0.35, 1.5))


# ---- what an incident's statistic must see ----------------------------------------------------------

CONFIDENCE = 0.95  # one-sided: the level every windowed statistic is asked to reach
Z = NormalDist().inv_cdf(CONFIDENCE)


@dataclass(frozen=True)
class Evidence:
    """What a windowed ratio must tell from its threshold once an incident is injected: the
    documented `threshold` at the severity the incident must reach, and `expected`, the value the
    injection gives a call sent at each instant (ms → value: the rollout's share mapped onto the
    statistic, so a ramp's early calls sit near the threshold); `effect` is the full rollout's;
    `below`: the condition is the statistic falling under the threshold (a hit ratio)."""

    statistic: str
    threshold: float
    effect: float
    expected: Callable[[np.ndarray], np.ndarray]
    below: bool = False

    def _needs(self, value: np.ndarray | float) -> np.ndarray:
        """Calls a sample at `value` needs: the score test at the threshold, |θ − p| ≥ z·√(θ(1 − θ)/n)
        — exactly when a Wilson bound on the sample leaves θ outside — so n ≥ z²·θ(1 − θ)/(θ − p)²;
        infinite where `value` is not past the threshold."""
        θ = self.threshold
        gap = (-1 if self.below else 1) * (np.asarray(value, dtype=float) - θ)
        with np.errstate(divide="ignore"):
            return np.where(gap > 0, Z ** 2 * θ * (1 - θ) / np.maximum(gap, 0) ** 2, np.inf)

    def calls(self) -> int | None:
        """The fewest calls at which a sample at the full rollout's effect clears the threshold's
        one-sided bound (`CONFIDENCE`); None when the effect does not pass the threshold."""
        need = float(self._needs(self.effect))
        return math.ceil(need - 1e-9) if math.isfinite(need) else None

    def seen(self, ts: np.ndarray) -> int | None:
        """Of calls sent at `ts` (sorted, from the crossing), how many it takes until a sample of
        them, each at its expected value, clears the bound (None: never)."""
        k = np.arange(1, ts.size + 1)
        enough = k >= self._needs(np.cumsum(self.expected(ts)) / k) - 1e-9
        return int(np.argmax(enough)) + 1 if enough.any() else None


def _rollout(start: datetime, ramp_min: float, final: float, base: float, slope: float,
             pause: tuple[float, float] | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The expected value of a statistic over a rollout: base + slope × the share affected (0 →
    `final` over `ramp_min` from `start`; none in the `pause`, minutes after start)."""
    def expected(ts: np.ndarray) -> np.ndarray:
        minutes = (ts - _ms(start)) / MINUTE_MS
        share = np.clip(minutes / ramp_min, 0, 1) * final
        if pause is not None:
            share = np.where((minutes >= pause[0]) & (minutes < pause[1]), 0.0, share)
        return base + slope * share
    return expected


# ---- quiet traffic ---------------------------------------------------------------------------------


@dataclass
class Project:
    """One project while it is built: its calls and tool runs (internal columns included)."""

    name: str
    rng: np.random.Generator
    days: int
    noise: Noise
    scale: float
    calls: pl.DataFrame = field(default_factory=pl.DataFrame)
    runs: pl.DataFrame = field(default_factory=pl.DataFrame)
    incidents: list[Incident] = field(default_factory=list)
    budgets: list[dict[str, str | Decimal]] = field(default_factory=list)
    launch_of: dict[str, float] = field(default_factory=dict)  # route → extra multiplier from a launch (budget)
    evidence: dict[str, Evidence] = field(default_factory=dict)  # incident kind → what its statistic must see

    @property
    def hours(self) -> int:
        return self.days * 24


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _at(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def hourly_rate(rng: np.random.Generator, noise: Noise, route: Route, days: int, scale: float) -> np.ndarray:
    """Expected calls per hour of a route over the range (before sessions group them)."""
    hours = np.arange(days * 24)
    hour_of_day, day = hours % 24, hours // 24
    dow = (START.weekday() + day) % 7
    peak, depth = rng.uniform(9, 18), rng.uniform(*route.depth)
    diurnal = 1 - depth * (0.5 + 0.5 * np.cos(2 * np.pi * (hour_of_day - peak) / 24))
    weekend = np.where(dow >= 5, rng.uniform(0.3, 1.1), 1.0)
    # heavy-tailed hour-to-hour noise, correlated over a few hours (AR(1) on the log scale)
    shocks = noise.scale * np.clip(rng.standard_t(noise.df, hours.size), -5, 5)
    log_noise = np.zeros(hours.size)
    for i in range(hours.size):
        log_noise[i] = 0.5 * (log_noise[i - 1] if i else 0.0) + shocks[i]
    level = np.exp(log_noise)
    for _ in range(rng.poisson(noise.bursts_per_day * days)):  # news-like: sharp, a few hours, decaying
        at, length, height = rng.integers(0, hours.size), rng.integers(1, 5), rng.uniform(2.0, 5.0)
        level[at: at + length] *= 1 + (height - 1) * 0.6 ** np.arange(min(length, hours.size - at))
    for _ in range(rng.integers(1, 3)):  # day-long level shifts, up or down
        d = rng.integers(1, days)
        level[d * 24: (d + 1) * 24] *= rng.uniform(0.5, noise.shift_max)
    return route.per_day * scale / 24 * diurnal / diurnal.mean() * weekend * level


def _times(rng: np.random.Generator, counts: np.ndarray, dips: np.ndarray) -> np.ndarray:
    """Millisecond timestamps: `counts[h]` uniform in hour h, none inside the short dips."""
    hour = np.repeat(np.arange(counts.size), counts)
    ms = _ms(START) + hour * HOUR_MS + rng.integers(0, HOUR_MS, hour.size)
    inside = np.zeros(ms.size, dtype=bool)
    for lo, hi in dips:
        inside |= (ms >= lo) & (ms < hi)
    return np.sort(ms[~inside])


def _users(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.minimum(rng.zipf(1.6, n), 500)


def route_calls(p: Project, route: Route, rate: np.ndarray, dips: np.ndarray, first_hour: int = 0) -> pl.DataFrame:
    """The calls of one route: sessions of turns for chat routes, single calls otherwise."""
    rng = p.rng
    rate = rate.copy()
    rate[:first_hour] = 0
    if route.turns > 1:
        starts = _times(rng, rng.poisson(rate / route.turns), dips)
        turns = rng.geometric(1 / route.turns, starts.size)
        session = np.repeat(np.arange(starts.size), turns)
        first = (np.cumsum(turns) - turns).astype(np.int64)
        turn = np.arange(session.size) - first[session]
        gaps = rng.lognormal(np.log(40_000), 0.6, session.size).astype(np.int64)
        gaps[first] = 0
        total = np.cumsum(gaps)
        ts = starts[session] + total - total[first][session]
        user = _users(rng, starts.size)[session]
        session_id = np.char.add(f"s-{route.name}-", session.astype(str))
    else:
        ts = _times(rng, rng.poisson(rate), dips)
        turn = np.zeros(ts.size, dtype=np.int64)
        user = _users(rng, ts.size)
        session_id = np.full(ts.size, "")
    n = ts.size
    variable = rng.lognormal(np.log(route.input_tokens), 0.5, n)
    history = np.minimum(turn, 4) * 400  # history summarised after a few turns
    latency = rng.lognormal(np.log(route.latency_ms), route.latency_sigma, n)
    tail = rng.random(n) < p.noise.tail_share
    latency[tail] *= rng.uniform(3, 8, tail.sum())
    frame = pl.DataFrame({
        "ts_ms": ts.astype(np.int64),
        "route": route.name, "feature": route.feature, "team": route.team,
        "user_id": np.char.add("u-", np.char.zfill(user.astype(str), 4)),
        "session_id": session_id, "turn": turn.astype(np.int64),
        "provider": route.provider, "model": route.model, "stream": route.ttft_ms is not None,
        "prefix_tokens": np.full(n, route.prefix_tokens, dtype=np.int64),
        "input_tokens": (route.prefix_tokens + variable + history).astype(np.int64),
        "output_tokens": np.maximum(5, rng.lognormal(np.log(route.output_tokens), 0.6, n)).astype(np.int64),
        "latency_ms": latency,
        "ttft_ms": (rng.lognormal(np.log(route.ttft_ms), 0.45, n) if route.ttft_ms else np.full(n, np.nan)),
        "cohort": rng.random(n), "draw": rng.random(n),
        "miss": rng.random(n) < route.miss_rate * p.noise.miss_scale,
        "prefix_key": np.char.add(f"{route.name}#", rng.integers(0, route.prefixes, n).astype(str)),
        "cache_mode": route.cache,
        "sdk": route.sdk,
        "status": "ok",
    })
    unmarked = (frame["draw"].to_numpy() < route.unmarked_share) if route.cache == "explicit" else np.zeros(n, bool)
    frame = frame.with_columns(
        pl.when(pl.Series(unmarked)).then(pl.lit("none")).otherwise(pl.col("cache_mode")).alias("cache_mode"))
    if route.reasoning:
        reasoning = np.minimum(rng.lognormal(np.log(route.reasoning), 0.7, n), 90_000).astype(np.int64)
        frame = frame.with_columns(pl.Series("reasoning_tokens", reasoning),
                                   (pl.col("output_tokens") + pl.Series(reasoning)).alias("output_tokens"))
    else:
        frame = frame.with_columns(pl.lit(0, pl.Int64).alias("reasoning_tokens"))
    return frame


def _versions(p: Project, frame: pl.DataFrame) -> pl.DataFrame:
    """A prompt version bump per route each day at a random hour, keeping the prefix (must never
    read as a cause), and a benign SDK upgrade rolled out over a day."""
    out = []
    upgrade = _ms(START) + int(p.rng.integers(2, p.days)) * 24 * HOUR_MS
    for (route,), part in frame.group_by(["route"], maintain_order=True):
        bumps = np.sort(_ms(START) + p.rng.integers(0, p.hours, p.days) * HOUR_MS + p.rng.integers(0, HOUR_MS, p.days))
        version = np.searchsorted(bumps, part["ts_ms"].to_numpy(), side="right") + 3
        digest = hashlib.sha1(f"{p.name}/{route}".encode()).hexdigest()[:12]
        part = part.with_columns(
            ("v" + pl.Series(version).cast(pl.String)).alias("prompt_version"),
            (pl.lit(digest + "-") + pl.col("prefix_key").str.split("#").list.get(1)).alias("prompt_prefix_hash"),
        )
        rolled = (pl.col("ts_ms") >= upgrade + pl.col("cohort") * 24 * HOUR_MS) & (pl.col("sdk") != "")
        out.append(part.with_columns(
            pl.when(rolled).then(pl.col("sdk").str.replace(r"\.\d+$", ".1")).otherwise(pl.col("sdk")).alias("sdk")))
    return pl.concat(out)


def cascade(p: Project, frame: pl.DataFrame) -> pl.DataFrame:
    """Step-1 calls of the cascade route: escalation 30–50% (diurnal and day-to-day drift)."""
    is0 = (frame["route"] == "ticket-triage").to_numpy()
    hour = ((frame["ts_ms"].to_numpy() - _ms(START)) // HOUR_MS).astype(np.int64)
    drift = p.rng.normal(0, 0.025, p.days + 1)[np.clip(hour // 24, 0, p.days)]
    rate = np.clip(0.39 + 0.05 * np.sin(2 * np.pi * (hour % 24) / 24) + drift, 0.30, 0.48)
    escalate = is0 & (p.rng.random(frame.height) < rate)
    frame = frame.with_columns(
        pl.when(pl.Series(is0)).then(0).otherwise(None).cast(pl.Int64).alias("cascade_step"),
        pl.lit(False).alias("escalated"), pl.Series("has_step1", escalate),
    )
    step1 = frame.filter(pl.Series(escalate)).with_columns(
        (pl.col("ts_ms") + 2_000 + (pl.col("draw") * 3_000).cast(pl.Int64)).alias("ts_ms"),
        pl.lit(ESCALATE_TO[0]).alias("provider"), pl.lit(ESCALATE_TO[1]).alias("model"),
        pl.lit(1, pl.Int64).alias("cascade_step"), pl.lit(True).alias("escalated"), pl.lit(False).alias("has_step1"),
        (pl.col("latency_ms") * 3).alias("latency_ms"), pl.lit("explicit").alias("cache_mode"),
        (pl.col("output_tokens") * 2).alias("output_tokens"), pl.lit("anthropic-python/0.49.0").alias("sdk"),
        pl.lit("ticket-triage-step1#0").alias("prefix_key"),
    )
    return pl.concat([frame, step1], how="diagonal_relaxed")


def tool_runs(p: Project, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The agent's tool runs (a code sandbox, a web search) and the model call inside each search."""
    rng = p.rng
    agent = frame.filter(pl.col("route") == "code-agent").select("ts_ms", "user_id", "session_id")
    n = agent.height
    sandbox = np.repeat(np.arange(n), rng.poisson(1.2, n))
    search = np.flatnonzero(rng.random(n) < 0.8)
    rows = []
    for tool, idx in (("code_sandbox", sandbox), ("web_search", search)):
        base = agent[idx]
        m = base.height
        duration = (rng.lognormal(np.log(4_000), 0.8, m) if tool == "code_sandbox"
                    else rng.lognormal(np.log(1_500), 0.5, m)).astype(np.int64)
        rows.append(base.with_columns(
            (pl.col("ts_ms") + 500 + pl.Series(rng.integers(0, 20_000, m))).alias("ts_ms"),
            pl.lit(tool).alias("tool_name"), pl.Series("duration_ms", np.minimum(duration, 119_000)),
            pl.Series("draw", rng.random(m)), pl.Series("cohort", rng.random(m)),
        ))
    runs = pl.concat(rows).sort("ts_ms")
    runs = runs.with_columns(
        pl.concat_str(pl.lit(f"{p.name}-run-"), pl.int_range(pl.len()).cast(pl.String)).alias("span_id"))
    # status: 1.5% of sandbox runs time out, 1% of searches fail; a flaky sandbox host now and then
    # times out 15% of runs for a few minutes (short, below the sustain period)
    flaky = np.zeros(runs.height, dtype=bool)
    ts = runs["ts_ms"].to_numpy()
    for _ in range(rng.poisson(p.noise.flaky_per_day * p.days)):
        lo = _ms(START) + int(rng.integers(0, p.hours * 60)) * MINUTE_MS
        flaky |= (ts >= lo) & (ts < lo + int(rng.integers(2, 6)) * MINUTE_MS)
    draw = runs["draw"].to_numpy()
    sandbox_rows = (runs["tool_name"] == "code_sandbox").to_numpy()
    timeout = sandbox_rows & ((draw < 0.015) | (flaky & (draw < 0.15)))
    error = ~sandbox_rows & (draw > 0.99)
    runs = runs.with_columns(
        pl.Series("status", np.where(timeout, "timeout", np.where(error, "error", "ok"))),
        pl.when(pl.Series(timeout)).then(120_000).otherwise(pl.col("duration_ms")).alias("duration_ms"),
    )
    # one model call inside each web search run
    searches = runs.filter(pl.col("tool_name") == "web_search")
    m = searches.height
    inner = searches.select(
        (pl.col("ts_ms") + 200).alias("ts_ms"), "user_id", "session_id", pl.col("span_id").alias("parent_span_id"),
        "cohort", "draw",
    ).with_columns(
        pl.lit("code-agent").alias("route"), pl.lit("agent").alias("feature"), pl.lit("platform").alias("team"),
        pl.lit("openai").alias("provider"), pl.lit(WEB_MODEL).alias("model"), pl.lit(False).alias("stream"),
        pl.lit("web_search").alias("tool_name"), pl.lit(0, pl.Int64).alias("turn"),
        pl.lit(0, pl.Int64).alias("prefix_tokens"),
        pl.Series("input_tokens", rng.lognormal(np.log(2_000), 0.4, m).astype(np.int64)),
        pl.Series("output_tokens", rng.lognormal(np.log(200), 0.4, m).astype(np.int64)),
        pl.Series("latency_ms", rng.lognormal(np.log(900), 0.4, m)), pl.lit(None, pl.Float64).alias("ttft_ms"),
        pl.lit("web_search#0").alias("prefix_key"), pl.lit("none").alias("cache_mode"),
        pl.lit("openai-python/1.82.0").alias("sdk"), pl.lit("ok").alias("status"),
        pl.lit(0, pl.Int64).alias("reasoning_tokens"), pl.lit(False).alias("miss"),
    )
    return runs, inner


def _slow_nights(p: Project, frame: pl.DataFrame) -> pl.DataFrame:
    """One slow call (40–90 s) in a quiet hour (04:00 UTC) each night on two routes."""
    picks = []
    for route in ("assistant-chat", "search-answers"):
        night = frame.filter((pl.col("route") == route)
                             & (((pl.col("ts_ms") - _ms(START)) // HOUR_MS) % 24 == 4))
        picks.append(night.group_by(((pl.col("ts_ms") - _ms(START)) // (24 * HOUR_MS)).alias("day"))
                     .agg(pl.col("ts_ms").min())
                     .select("ts_ms").with_columns(pl.lit(route).alias("slow_route")))
    slow = pl.concat(picks)
    slow = slow.with_columns(pl.Series("slow_ms", p.rng.uniform(40_000, 90_000, slow.height)))
    return frame.join(slow, left_on=["ts_ms", "route"], right_on=["ts_ms", "slow_route"], how="left").with_columns(
        pl.coalesce("slow_ms", "latency_ms").alias("latency_ms")).drop("slow_ms")


def _errors(p: Project, frame: pl.DataFrame) -> pl.DataFrame:
    """0.5% errors (short latency) and 0.1% client timeouts (the timeout as latency)."""
    u = p.rng.random(frame.height)
    return frame.with_columns(
        pl.Series("status", np.where(u < 0.005, "error", np.where(u < 0.006, "timeout", "ok"))),
    ).with_columns(
        pl.when(pl.col("status") == "error").then(pl.col("latency_ms") * 0.1)
        .when(pl.col("status") == "timeout").then(600_000.0).otherwise(pl.col("latency_ms")).alias("latency_ms"),
    ).with_columns(
        # the first token of a streamed call comes before its end (an error has none)
        pl.when((pl.col("status") == "error") | pl.col("ttft_ms").is_nan() | pl.col("ttft_ms").is_null()).then(None)
        .otherwise(pl.min_horizontal("ttft_ms", pl.col("latency_ms") * 0.9)).alias("ttft_ms"))


def _provider_drift(p: Project, frame: pl.DataFrame) -> pl.DataFrame:
    """Latency moves with each provider's hourly load (a few percent, correlated over hours)."""
    hours = p.hours
    drifts = []
    for provider in ("anthropic", "openai", "google"):
        shocks = p.rng.normal(0, 0.06, hours)
        level = np.zeros(hours)
        for i in range(hours):
            level[i] = 0.7 * (level[i - 1] if i else 0.0) + shocks[i]
        drifts.append(pl.DataFrame({"provider": provider, "h": np.arange(hours), "f": np.exp(level)}))
    factor = pl.concat(drifts)
    return frame.with_columns(((pl.col("ts_ms") - _ms(START)) // HOUR_MS).alias("h")).join(
        factor, on=["provider", "h"], how="left").with_columns(
        (pl.col("latency_ms") * pl.col("f").fill_null(1.0)).alias("latency_ms")).drop("h", "f")


def quiet_project(name: str, seed: int, noise: Noise, days: int, *, new_route_day: float | None = None) -> Project:
    """A project's quiet traffic over `days` days."""
    rng = np.random.default_rng(seed)
    p = Project(name, rng, days, noise, scale=float(rng.uniform(*noise.volume)))
    dips = []  # a 5–12 minute gap without traffic at a random hour each day (below every sustain period)
    for d in range(days):
        lo = _ms(START) + d * 24 * HOUR_MS + int(rng.integers(0, 24 * 60)) * MINUTE_MS
        dips.append((lo, lo + int(rng.integers(5, 13)) * MINUTE_MS))
    dips_a = np.array(dips)
    launched = int(rng.integers(1, len(ROUTES)))  # a launch doubles this route from a day on
    parts = []
    for index, route in enumerate(ROUTES):
        rate = hourly_rate(rng, noise, route, days, p.scale)
        if index == launched:
            rate[int(rng.integers(2, days)) * 24:] *= 2.0
        parts.append(route_calls(p, route, rate, dips_a))
    rate = hourly_rate(rng, noise, NEW_ROUTE, days, p.scale)
    first = int((new_route_day if new_route_day is not None else rng.uniform(3, min(12, days - 1))) * 24)
    parts.append(route_calls(p, NEW_ROUTE, rate, dips_a, first_hour=first))
    frame = pl.concat(parts, how="diagonal_relaxed").with_columns(pl.lit("").alias("tool_name"),
                                                                  pl.lit("").alias("parent_span_id"))
    frame = cascade(p, frame)
    runs, inner = tool_runs(p, frame)
    frame = pl.concat([frame, inner], how="diagonal_relaxed")
    frame = _errors(p, _slow_nights(p, _provider_drift(p, frame)))
    p.calls = _versions(p, frame)
    p.runs = runs
    return p


# ---- incidents ---------------------------------------------------------------------------------------


def share_at(start: datetime, ramp_min: float, final: float) -> pl.Expr:
    """A partial rollout: the share of calls affected, 0 → `final` over `ramp_min` from `start`."""
    minutes = (pl.col("ts_ms") - _ms(start)) / MINUTE_MS
    return (minutes / ramp_min).clip(0, 1) * final


def _fresh(p: Project, copies: pl.DataFrame) -> pl.DataFrame:
    """Copies of calls (added traffic) with their own random draws: a copied call does not copy its
    original's cache miss, rollout cohort or latency. Latencies (with their TTFT) are shuffled among
    the copies: the copies keep the originals' distribution, but one slow original copied thirty
    times into the same quarter hour would be a latency tail the incident never injected (shuffled
    by a generator of their own, so the project's draws after it stay as they were)."""
    n = copies.height
    order = pl.Series(np.random.default_rng(n).permutation(n))
    return copies.with_columns(pl.Series("cohort", p.rng.random(n)), pl.Series("draw", p.rng.random(n)),
                               pl.Series("miss", p.rng.random(n) < 0.05 * p.noise.miss_scale),
                               pl.col("latency_ms").gather(order), pl.col("ttft_ms").gather(order))


def _live(start: datetime, end: datetime) -> pl.Expr:
    return (pl.col("ts_ms") >= _ms(start)) & (pl.col("ts_ms") < _ms(end))


def _crossing(start: datetime, ramp_min: float, final: float, needed: float) -> datetime:
    """When a rollout ramping to `final` over `ramp_min` reaches the share `needed`."""
    return start + timedelta(minutes=ramp_min * min(1.0, max(needed, 0.0) / final))


def _normal(p: Project, where: pl.Expr, measure: Callable[[pl.DataFrame], float], start: datetime) -> float:
    """A measure of the scope's calls over the 24 hours before `start` (what 'normal' was)."""
    before = p.calls.filter(where & (pl.col("ts_ms") >= _ms(start) - 24 * HOUR_MS) & (pl.col("ts_ms") < _ms(start)))
    return measure(cached(before))


def prefix_broken(p: Project, route: str, start: datetime) -> Incident:
    """A timestamp enters the cached prefix of one route (a prompt release rolled out over 30
    minutes): every affected call has a prefix of its own, so nothing is read from the cache."""
    end, ramp, final = start + timedelta(hours=3), 30.0, 0.95
    scope = pl.col("route") == route
    automatic = p.calls.filter(scope)["cache_mode"][0] == "automatic"

    def ratio(frame: pl.DataFrame) -> float:
        if automatic:
            eligible = frame.filter(pl.col("input_tokens") >= 1024)
            return eligible["cache_read_tokens"].sum() / max(eligible["input_tokens"].sum(), 1)
        return frame["cache_read_tokens"].sum() / max(frame["cache_read_tokens"].sum() + frame["cache_write_tokens"].sum(), 1)

    r0 = _normal(p, scope, ratio, start)
    hit = scope & _live(start, end) & (pl.col("cohort") < share_at(start, ramp, final))
    version = f"v{int(p.rng.integers(40, 90))}"
    p.calls = p.calls.with_columns(
        pl.when(hit).then(pl.concat_str(pl.lit("ts#"), pl.col("ts_ms").cast(pl.String))).otherwise(pl.col("prefix_key"))
        .alias("prefix_key"),
        pl.when(hit).then(pl.lit(version)).otherwise(pl.col("prompt_version")).alias("prompt_version"),
        pl.when(hit).then(pl.col("ts_ms").cast(pl.String).str.slice(0, 12)).otherwise(pl.col("prompt_prefix_hash"))
        .alias("prompt_prefix_hash"),
    )
    # the ratio of an affected share s is (1 - s) × normal: critical (< 0.30) from s = 1 - 0.30 / normal
    p.evidence["prefix_broken"] = Evidence("hit ratio", 0.30, (1 - final) * r0,
                                           _rollout(start, ramp, final, r0, -r0), below=True)
    return Incident("prefix_broken", "cache_hit_collapse", {"route": route}, start, end, "critical",
                    _crossing(start, ramp, final, 1 - 0.30 / max(r0, 0.31)),
                    also=("spend_spike",) + (("cache_not_applied",) if automatic else ()), cause_hint=version)


def breakpoint_dropped(p: Project, route: str, start: datetime) -> Incident:
    """An SDK release that drops cache_control rolls out over 40 minutes on one route."""
    end, ramp, final = start + timedelta(hours=3), 40.0, 0.9
    scope = pl.col("route") == route
    sdk = "anthropic-python/0.52.0"
    hit = scope & _live(start, end) & (pl.col("cohort") < share_at(start, ramp, final))
    p.calls = p.calls.with_columns(
        pl.when(hit).then(pl.lit("none")).otherwise(pl.col("cache_mode")).alias("cache_mode"),
        pl.when(hit).then(pl.lit(sdk)).otherwise(pl.col("sdk")).alias("sdk"),
    )
    # share of eligible calls without cache tokens ≈ s + (1 - s) × normal: critical (> 50%) from
    # s ≈ 0.5 (the normal share is ~1%)
    eligible = (pl.col("input_tokens") >= 1024) & (pl.col("status") == "ok")
    normal = _normal(p, scope & eligible, lambda f: float(
        ((f["cache_read_tokens"] == 0) & (f["cache_write_tokens"] == 0)).mean() or 0.0), start)
    p.evidence["cache_breakpoint_dropped"] = Evidence("share without cache", 0.50, final + (1 - final) * normal,
                                                      _rollout(start, ramp, final, normal, 1 - normal))
    return Incident("cache_breakpoint_dropped", "cache_not_applied", {"route": route}, start, end, "critical",
                    _crossing(start, ramp, final, 0.5), also=("spend_spike",), cause_hint=sdk)


def prompt_growth(p: Project, route: str, start: datetime) -> Incident:
    """A release stops summarising chat history: affected sessions re-send every earlier turn
    (rolled out to all sessions over an hour)."""
    end, ramp = start + timedelta(hours=4), 60.0
    scope = pl.col("route") == route
    frame = p.calls
    sessions = frame.filter(scope & _live(start, end)).group_by("session_id").agg(
        pl.col("ts_ms").min().alias("first_ms"), pl.col("cohort").first().alias("session_cohort"))
    affected = sessions.filter(pl.col("session_cohort") < ((pl.col("first_ms") - _ms(start)) / MINUTE_MS / ramp)
                               .clip(0.05, 1))["session_id"]
    hit = scope & pl.col("session_id").is_in(affected.implode())
    per_turn = 2_500
    p.calls = frame.with_columns(
        pl.when(hit).then(pl.col("input_tokens") - pl.col("turn").clip(0, 4) * 400 + pl.col("turn") * per_turn)
        .otherwise(pl.col("input_tokens")).alias("input_tokens"))
    normal = frame.filter(scope & (pl.col("ts_ms") < _ms(start)) & (pl.col("ts_ms") >= _ms(start) - 24 * HOUR_MS))
    return Incident("prompt_accumulation", "prompt_accumulation", {"route": route}, start, end, "critical",
                    _doubled_at(p.calls.filter(scope & (pl.col("status") == "ok")), float(normal["input_tokens"].mean()),
                                start, end), also=("spend_spike",), cause_hint="turns")


def _doubled_at(calls: pl.DataFrame, normal: float, start: datetime, end: datetime, *,
                smooth_min: int = 15, hold_min: int = 15, min_calls: int = 10) -> datetime:
    """The first minute in [start, end) from which the input per call of `calls` (the route's ok
    calls as injected) over the `smooth_min` minutes before it — at least `min_calls` of them — is ≥ 2×
    `normal` and stays so at every such minute of the next `hold_min` (minutes with fewer calls
    neither break nor make it): the documented measure (input per call doubling) on the calls
    actually sent, held as a condition must be (design §5), so a few long sessions that double a
    quarter hour and fade are no crossing. The rollout's expected share is no stand-in here: it is a
    share of *sessions*, a dozen or two an hour on a chat route, whose added history reaches the
    long turns that carry it only minutes after each session starts — on the tune seeds the
    expected share crossed half an hour or more before the calls did."""
    ts = calls["ts_ms"].sort().to_numpy()
    tokens = calls.sort("ts_ms")["input_tokens"].to_numpy().astype(float)
    cum = np.concatenate([[0.0], np.cumsum(tokens)])
    grid = np.arange(_ms(start), _ms(end), MINUTE_MS)
    lo, hi = np.searchsorted(ts, grid - smooth_min * MINUTE_MS), np.searchsorted(ts, grid)
    n = hi - lo
    doubled = (n >= min_calls) & (cum[hi] - cum[lo] >= 2 * normal * np.maximum(n, 1))
    fell = np.concatenate([[0], np.cumsum((n >= min_calls) & ~doubled)])  # judged minutes under 2×
    ahead = np.minimum(np.arange(grid.size) + hold_min + 1, grid.size)
    held = doubled & (fell[ahead] - fell[np.arange(grid.size)] == 0)
    return _at(float(grid[np.argmax(held)])) if held.any() else end


def tool_release(p: Project, tool: str, start: datetime) -> Incident:
    """A tool release makes each web search call a frontier model three times on bigger chunks
    (rolled out over 20 minutes)."""
    end, ramp = start + timedelta(hours=2), 20.0
    runs = p.runs.filter((pl.col("tool_name") == tool) & _live(start, end)
                         & (pl.col("cohort") < share_at(start, ramp, 1.0)))
    hit = pl.col("parent_span_id").is_in(runs["span_id"].implode())
    old = p.calls.filter(hit)
    new = pl.concat([old.with_columns((pl.col("ts_ms") + 300 * k).alias("ts_ms"), pl.lit("gpt-4o").alias("model"),
                                      (pl.col("input_tokens") * 3).alias("input_tokens"),
                                      (pl.col("output_tokens") * 2).alias("output_tokens"))
                     for k in range(3)])
    p.calls = pl.concat([p.calls.filter(~hit), new], how="diagonal_relaxed")
    cost = {m: (PRICES_PER_MTOK[m][0] * 2_000 + PRICES_PER_MTOK[m][3] * 200) for m in (WEB_MODEL, "gpt-4o")}
    ratio = 3 * (cost["gpt-4o"] * 3 + PRICES_PER_MTOK["gpt-4o"][3] * 200) / cost[WEB_MODEL]
    # the mean cost per run is 1 + s × (ratio − 1) baselines: ≥ 25× once the share s of released runs
    # passes 24 / (ratio − 1); a run costs either about 1× or about ratio×, so the mean's test is the
    # test of that share (the spread within each kind of run is small beside the gap between them)
    p.evidence["tool_calls_frontier_model"] = Evidence("share of released runs", 24 / (ratio - 1), 1.0,
                                                       _rollout(start, ramp, 1.0, 0.0, 1.0))
    return Incident("tool_calls_frontier_model", "llm_calls_in_tools", {"tool_name": tool}, start, end, "critical",
                    _crossing(start, ramp, 1.0, 24 / (ratio - 1)), also=("spend_spike",), cause_hint="gpt-4o")


def reasoning_runaway(p: Project, route: str, start: datetime) -> Incident:
    """Three calls on one route reason without a budget within forty minutes (on a route too thin
    to have a call in them, its next three calls)."""
    window = timedelta(minutes=40)
    route_ok = p.calls.filter((pl.col("route") == route) & (pl.col("status") == "ok"))
    live = route_ok.filter(_live(start, start + window))
    if live.height == 0:
        live = route_ok.filter(pl.col("ts_ms") >= _ms(start)).sort("ts_ms").head(3)
        window = max(window, _at(live["ts_ms"].max()) - start + timedelta(minutes=5))
    picks = live.sample(min(3, live.height), seed=int(p.rng.integers(1 << 30))).sort("ts_ms")
    tokens = p.rng.integers(110_000, 180_000, picks.height)
    p.calls = pl.concat([p.calls, picks.with_columns(
        pl.Series("reasoning_tokens", tokens), pl.Series("output_tokens", tokens + 2_000),
        (pl.col("latency_ms") * 6).alias("latency_ms"), (pl.col("ts_ms") + 7).alias("ts_ms"))], how="diagonal_relaxed")
    first = _at(picks["ts_ms"].min())
    return Incident("reasoning_runaway", "reasoning_runaway", {"route": route}, start, start + window,
                    "critical", first, also=("spend_spike", "latency_tail"))


def stale_routing(p: Project, policy: str, start: datetime) -> Incident:
    """The cascade's cheap step moves to a new model the router was not recalibrated for: its
    escalation rate climbs to ~85% (rolled out over 20 minutes)."""
    end, ramp = start + timedelta(hours=3), 20.0
    step0 = (pl.col("route") == "ticket-triage") & (pl.col("cascade_step") == 0)
    hit = step0 & _live(start, end) & (pl.col("cohort") < share_at(start, ramp, 1.0))
    p.calls = p.calls.with_columns(pl.when(hit).then(pl.lit(CHEAP_NEXT)).otherwise(pl.col("model")).alias("model"))
    # the moved calls escalate 85% of the time: escalate more of those that did not
    extra = p.calls.filter(hit & ~pl.col("has_step1") & (pl.col("draw") < (0.85 - 0.39) / (1 - 0.39))).with_columns(
        (pl.col("ts_ms") + 2_500).alias("ts_ms"), pl.lit(ESCALATE_TO[0]).alias("provider"),
        pl.lit(ESCALATE_TO[1]).alias("model"), pl.lit(1, pl.Int64).alias("cascade_step"),
        pl.lit(True).alias("escalated"), pl.lit("explicit").alias("cache_mode"),
        pl.lit("ticket-triage-step1#0").alias("prefix_key"), (pl.col("latency_ms") * 3).alias("latency_ms"))
    p.calls = pl.concat([p.calls, extra], how="diagonal_relaxed")
    # escalation ≈ 0.39 + 0.46 s: critical (≥ 70%) from s ≈ 0.67
    p.evidence["stale_routing"] = Evidence("escalation rate", 0.70, 0.85, _rollout(start, ramp, 1.0, 0.39, 0.46))
    return Incident("stale_routing", "stale_routing", {"routing_policy": policy}, start, end, "critical",
                    _crossing(start, ramp, 1.0, (0.70 - 0.39) / 0.46), also=("spend_spike",), cause_hint=CHEAP_NEXT)


def sandbox_runaway(p: Project, tool: str, start: datetime) -> Incident:
    """Generated code loops: sandbox runs time out, 0 → 45% over 15 minutes for 90 minutes, with a
    12-minute lull in the middle (the incident must not resolve and re-open)."""
    end, ramp, final = start + timedelta(minutes=90), 15.0, 0.45
    lull = (pl.col("ts_ms") >= _ms(start) + 40 * MINUTE_MS) & (pl.col("ts_ms") < _ms(start) + 52 * MINUTE_MS)
    hit = ((pl.col("tool_name") == tool) & _live(start, end) & ~lull
           & (pl.col("cohort") < share_at(start, ramp, final)))
    p.runs = p.runs.with_columns(
        pl.when(hit).then(pl.lit("timeout")).otherwise(pl.col("status")).alias("status"),
        pl.when(hit).then(120_000).otherwise(pl.col("duration_ms")).alias("duration_ms"))
    p.evidence["sandbox_runaway"] = Evidence("timeout share", 0.20, final + (1 - final) * 0.015,
                                             _rollout(start, ramp, final, 0.015, 1 - 0.015, pause=(40, 52)))
    return Incident("sandbox_runaway", "sandbox_runaway", {"tool_name": tool}, start, end, "critical",
                    _crossing(start, ramp, final, 0.20 - 0.015))


def provider_slowdown(p: Project, provider: str, start: datetime) -> Incident:
    """A provider's tail grows over half an hour on every route it serves: up to 5% of calls take
    35–80 s longer (one cause, several route/model scopes)."""
    end, ramp, final = start + timedelta(hours=3), 30.0, 0.05
    hit = (pl.col("provider") == provider) & _live(start, end) & (pl.col("draw") < share_at(start, ramp, final))
    p.calls = p.calls.with_columns(pl.when(hit).then(pl.col("latency_ms") + 35_000 + pl.col("cohort") * 45_000)
                                   .otherwise(pl.col("latency_ms")).alias("latency_ms"))
    # p99 ≥ 30 s once more than 1% of calls are that slow (the normal tail adds ~0.1%)
    return Incident("provider_slowdown", "latency_tail", {"provider": provider}, start, end, "critical",
                    _crossing(start, ramp, final, 0.01))


def runaway_agent(p: Project, route: str, start: datetime) -> Incident:
    """An agent loop of one user: the route's calls ramp to ×30 over 40 minutes, for two hours."""
    end, ramp = start + timedelta(hours=2), 40.0
    live = p.calls.filter((pl.col("route") == route) & _live(start, end) & (pl.col("tool_name") == ""))
    copies = live.sample(fraction=29.0, with_replacement=True, seed=int(p.rng.integers(1 << 30)))
    keep = copies.filter(pl.col("draw") < ((pl.col("ts_ms") - _ms(start)) / MINUTE_MS / ramp).clip(0, 1))
    user = "u-loop-" + str(int(p.rng.integers(100, 999)))
    keep = keep.with_columns(pl.lit(user).alias("user_id"), (pl.col("ts_ms") + pl.int_range(pl.len()) % 997)
                             .alias("ts_ms"), pl.lit("").alias("session_id"), pl.lit(0, pl.Int64).alias("turn"))
    p.calls = pl.concat([p.calls, _fresh(p, keep)], how="diagonal_relaxed")
    # spend ≥ 10× the route's normal once the extra calls reach 9× its rate
    return Incident("runaway_agent", "spend_spike", {"route": route}, start, end, "critical",
                    _crossing(start, ramp, 1.0, 9 / 29), also=("spend_spike",), cause_hint=user)


def level_shift(p: Project, route: str, start: datetime) -> Incident:
    """A batch backfill sent through one route for ten hours: the route's priced spend steps to
    ×3.5 of what each hour (the part of it inside the incident) would have cost. The backfill's
    calls are copies of the route's live calls of that hour (same prompts, no session) behind a
    prompt cache of their own — so they read their prefix from the cache like the route's calls do
    and do not warm or cool the route's own caches — added, in a random order, until their priced
    spend (list prices, `priced(cached(...))`) reaches 2.5× the hour's. `crosses_at` is the first
    hour boundary at which the documented measure holds for the injected money: the six whole hours
    before it cost ≥ 2× what they would have cost without the backfill."""
    end, step = start + timedelta(hours=10), 3.5
    scope = (pl.col("route") == route) & (pl.col("tool_name") == "")
    lo_ms = _ms(start) - (_ms(start) % HOUR_MS) - 6 * HOUR_MS  # the six hours before, for the measure
    hi_ms = _ms(end) + 6 * HOUR_MS

    def hourly(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.group_by((pl.col("ts_ms") // HOUR_MS * HOUR_MS).alias("hour")).agg(pl.col("cost").sum())

    route_calls = priced(cached(p.calls.filter(pl.col("route") == route)))
    normal = hourly(route_calls.filter((pl.col("ts_ms") >= lo_ms) & (pl.col("ts_ms") < hi_ms)))
    live = route_calls.filter(scope & _live(start, end))
    need = hourly(live).with_columns(((step - 1) * pl.col("cost")).alias("need")).drop("cost")
    # a pool of copies, each priced as the backfill will pay (its own cache is warm: it sends a call
    # every few seconds); the first copies of each hour in a random order until the need is met
    pool = live.sample(fraction=8.0, with_replacement=True, shuffle=True, seed=int(p.rng.integers(1 << 30)))
    pool = pool.drop("cache_read_tokens", "cache_write_tokens", "cost", "p_in", "p_read", "p_write", "p_out") \
        .with_columns((pl.col("ts_ms") + pl.int_range(pl.len()) % 1_777).clip(upper_bound=_ms(end) - 1).alias("ts_ms"),
                      pl.lit("").alias("session_id"), pl.lit(f"{route}#backfill").alias("prefix_key"))
    warm = priced(pool.with_columns(
        pl.when(pl.col("cache_mode") == "explicit").then(pl.min_horizontal("prefix_tokens", "input_tokens"))
        .otherwise(0).cast(pl.Int64).alias("cache_read_tokens"), pl.lit(0, pl.Int64).alias("cache_write_tokens")))
    warm = warm.with_columns((pl.col("ts_ms") // HOUR_MS * HOUR_MS).alias("hour")).join(need, on="hour").with_columns(
        (pl.col("cost").cum_sum().over("hour") - pl.col("cost")).alias("before"))
    covered = warm.group_by("hour").agg(pl.col("cost").sum(), pl.col("need").first())
    assert (covered["cost"] >= covered["need"]).all(), "the pool of backfill copies is too small"
    extra = warm.filter(pl.col("before") < pl.col("need")).select(pool.columns)
    p.calls = pl.concat([p.calls, _fresh(p, extra)], how="diagonal_relaxed")
    # the measure on what was injected: whole hours, spend with the backfill (its cache as it
    # will be written and read) against the same hours without it
    shifted = hourly(priced(cached(p.calls.filter((pl.col("route") == route) & (pl.col("ts_ms") >= lo_ms)
                                                  & (pl.col("ts_ms") < hi_ms)))))
    hours = pl.DataFrame({"hour": np.arange(lo_ms, hi_ms, HOUR_MS, dtype=np.int64)})
    series = hours.join(normal, on="hour", how="left").join(shifted.rename({"cost": "with"}), on="hour", how="left") \
        .fill_null(0.0).sort("hour").with_columns(pl.col("cost").rolling_sum(6).alias("b6"),
                                                  pl.col("with").rolling_sum(6).alias("s6"))
    crossed = series.filter((pl.col("hour") + HOUR_MS > _ms(start)) & (pl.col("s6") >= 2 * pl.col("b6")))
    crosses = _at(crossed["hour"][0] + HOUR_MS) if crossed.height else end
    return Incident("spend_level_shift", "spend_spike", {"route": route}, start, end, "warning", crosses,
                    also=("spend_spike",))


def budget_growth(p: Project, team: str, start: datetime, end: datetime) -> Incident:
    """A launch multiplies a team's traffic by 2.3 for the rest of the range; its monthly budget
    was sized for the old rate, so the month-end forecast crosses 100% about a day later."""
    routes = [r.name for r in ROUTES if r.team == team]
    live = p.calls.filter(pl.col("route").is_in(routes) & _live(start, end) & (pl.col("tool_name") == ""))
    extra = live.sample(fraction=1.3, with_replacement=True, seed=int(p.rng.integers(1 << 30))).with_columns(
        (pl.col("ts_ms") + pl.int_range(pl.len()) % 4_999).alias("ts_ms"), pl.lit("").alias("session_id"))
    p.calls = pl.concat([p.calls, _fresh(p, extra)], how="diagonal_relaxed")
    costs = priced(cached(p.calls.filter(pl.col("team") == team)))
    daily = costs.filter(pl.col("ts_ms") < _ms(start)).group_by(pl.col("ts_ms") // (24 * HOUR_MS)).agg(
        pl.col("cost").sum())["cost"].median()
    month_days = (_month_end(start) - _month_start(start)).days
    # sized for the old rate, with room above every forecast made before the launch
    before = forecasts(costs, START + timedelta(days=7), start)
    budget = Decimal(str(round(max(float(daily) * month_days * 1.12, 1.1 * float(before.max())), 2)))
    p.budgets.append({"team": team, "monthly_usd": budget})
    crosses = forecast_crossing(costs, float(budget), after=start)
    return Incident("budget_forecast", "budget", {"team": team}, start, end, "warning", crosses or end,
                    also=("spend_spike",), cause_hint="forecast")


KINDS: dict[str, Callable[[Project, datetime], Incident]] = {
    "prefix_broken": lambda p, at: prefix_broken(p, "assistant-chat", at),
    "prefix_broken_openai": lambda p, at: prefix_broken(p, "search-answers", at),
    "cache_breakpoint_dropped": lambda p, at: breakpoint_dropped(p, "support-chat", at),
    "cache_breakpoint_dropped_sonnet": lambda p, at: breakpoint_dropped(p, "assistant-chat", at),
    "prompt_accumulation": lambda p, at: prompt_growth(p, "assistant-chat", at),
    "tool_calls_frontier_model": lambda p, at: tool_release(p, "web_search", at),
    "reasoning_runaway": lambda p, at: reasoning_runaway(p, "deep-research", at),
    "stale_routing": lambda p, at: stale_routing(p, POLICY, at),
    "sandbox_runaway": lambda p, at: sandbox_runaway(p, "code_sandbox", at),
    "provider_slowdown": lambda p, at: provider_slowdown(p, "anthropic", at),
    "runaway_agent": lambda p, at: runaway_agent(p, "search-answers", at),
    "spend_level_shift": lambda p, at: level_shift(p, "assistant-chat", at),
}


# ---- cache tokens, prices, budgets ------------------------------------------------------------------


def cached(frame: pl.DataFrame) -> pl.DataFrame:
    """Cache tokens from each call's cache mode and how long its prefix sat unused: an explicit
    breakpoint reads a warm prefix and writes a cold one; OpenAI's automatic cache reads a warm
    prefix (whole 128-token blocks past 1024) except for its random misses; no breakpoint: nothing."""
    if "cache_read_tokens" in frame.columns:
        return frame
    frame = frame.sort("ts_ms").with_columns(
        (pl.col("ts_ms") - pl.col("ts_ms").shift(1).over("prefix_key")).alias("gap"))
    warm = pl.col("gap").is_not_null() & (pl.col("gap") <= TTL_MS)
    prefix = pl.min_horizontal("prefix_tokens", "input_tokens")
    explicit = pl.col("cache_mode") == "explicit"
    automatic = (pl.col("cache_mode") == "automatic") & (pl.col("input_tokens") >= 1024)
    blocks = (prefix // 128 * 128).cast(pl.Int64)
    return frame.with_columns(
        pl.when(explicit & warm).then(prefix).when(automatic & warm & ~pl.col("miss")).then(blocks)
        .otherwise(0).cast(pl.Int64).alias("cache_read_tokens"),
        pl.when(explicit & ~warm).then(prefix).otherwise(0).cast(pl.Int64).alias("cache_write_tokens"),
    ).drop("gap")


def priced(frame: pl.DataFrame) -> pl.DataFrame:
    """A `cost` column from the base-tier list prices (the generator's own plan of what the
    pipeline will charge; used only to size budgets and find when a forecast crosses)."""
    table = pl.DataFrame([{"model": m, "p_in": a / 1e6, "p_read": b / 1e6, "p_write": c / 1e6, "p_out": d / 1e6}
                          for m, (a, b, c, d) in PRICES_PER_MTOK.items()])
    return frame.join(table, on="model", how="left").with_columns(
        ((pl.col("input_tokens") - pl.col("cache_read_tokens") - pl.col("cache_write_tokens")) * pl.col("p_in")
         + pl.col("cache_read_tokens") * pl.col("p_read") + pl.col("cache_write_tokens") * pl.col("p_write")
         + pl.col("output_tokens") * pl.col("p_out")).fill_null(0.0).alias("cost"))


def _month_start(at: datetime) -> datetime:
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def _month_end(at: datetime) -> datetime:
    return _month_start(_month_start(at) + timedelta(days=32))


def forecasts(costs: pl.DataFrame, lo: datetime, hi: datetime, *, days: int = 7) -> np.ndarray:
    """The documented month-end forecast at each 5-minute instant in [lo, hi): month-to-date spend
    plus the daily rate of the last `days` days (of whole hours) × the days left in the month."""
    step = 5 * MINUTE_MS
    per = costs.group_by((pl.col("ts_ms") // step) * step).agg(pl.col("cost").sum()).sort("ts_ms")
    grid = np.arange(_ms(lo), _ms(hi), step)
    cum_t, cum_c = per["ts_ms"].to_numpy() + step, np.cumsum(per["cost"].to_numpy())

    def spent_before(t: np.ndarray) -> np.ndarray:
        i = np.searchsorted(cum_t, t, side="right") - 1
        return np.where(i >= 0, cum_c[np.maximum(i, 0)], 0.0)

    month0, month1 = _ms(_month_start(lo)), _ms(_month_end(lo))
    mtd = spent_before(grid) - spent_before(np.full(grid.size, month0))
    hour = grid - grid % HOUR_MS  # the rate of the last `days` days of whole hours
    rate = (spent_before(hour) - spent_before(hour - days * 24 * HOUR_MS)) / days
    return mtd + rate * (month1 - grid) / (24 * HOUR_MS)


def forecast_crossing(costs: pl.DataFrame, budget: float, *, after: datetime) -> datetime | None:
    """The first 5-minute instant after `after`, within its month, at which the forecast reaches `budget`."""
    end = min(after + timedelta(days=14), _month_end(after))
    over = np.flatnonzero(forecasts(costs, after, end) >= budget)
    return after + timedelta(minutes=5 * int(over[0])) if over.size else None


def quiet_budgets(p: Project) -> None:
    """Budgets with headroom for two teams (the forecast stays well under 100%)."""
    costs = priced(cached(p.calls))
    month_days = (_month_end(START) - _month_start(START)).days
    for team in ("product", "research"):
        daily = costs.filter(pl.col("team") == team).group_by(pl.col("ts_ms") // (24 * HOUR_MS)).agg(
            pl.col("cost").sum())["cost"].max()
        p.budgets.append({"team": team, "monthly_usd": Decimal(str(round(float(daily) * month_days * 2.5, 2)))})


# ---- scenarios -------------------------------------------------------------------------------------


def finish(p: Project) -> Scenario:
    """Canonical calls and tool runs of a project (internal columns dropped)."""
    calls = cached(p.calls)
    calls = calls.sort("ts_ms").with_columns(
        pl.concat_str(pl.lit(f"at-{p.name}-"), pl.int_range(pl.len()).cast(pl.String)).alias("event_id"),
        pl.from_epoch("ts_ms", time_unit="ms").dt.replace_time_zone("UTC").alias("ts"),
        pl.col("latency_ms").cast(pl.Int64), pl.col("ttft_ms").fill_nan(None).cast(pl.Int64),
        pl.col("cache_write_tokens").alias("cache_write_5m_tokens"),
        pl.concat_str(pl.lit('{"sdk":"'), pl.col("sdk"), pl.lit('"}')).alias("tags"),
        pl.lit(p.name).alias("project"),
        pl.when(pl.col("route") == "ticket-triage").then(pl.lit(POLICY)).otherwise(pl.lit("")).alias("routing_policy"),
        pl.col("escalated").fill_null(False),
    )
    keep = ["event_id", "ts", "project", "route", "feature", "team", "user_id", "session_id", "tool_name",
            "parent_span_id", "provider", "model", "stream", "input_tokens", "output_tokens", "reasoning_tokens",
            "cache_read_tokens", "cache_write_5m_tokens", "latency_ms", "ttft_ms", "status", "prompt_version",
            "prompt_prefix_hash", "tags", "routing_policy", "cascade_step", "escalated"]
    runs = p.runs.sort("ts_ms").with_columns(
        pl.concat_str(pl.lit(f"at-{p.name}-r"), pl.int_range(pl.len()).cast(pl.String)).alias("event_id"),
        pl.from_epoch("ts_ms", time_unit="ms").dt.replace_time_zone("UTC").alias("ts"),
        pl.lit(p.name).alias("project"), pl.lit("code-agent").alias("route"), pl.lit("").alias("parent_span_id"),
        pl.lit("alerts-precision").alias("source"),
        pl.when(pl.col("status") == "ok").then(pl.lit("")).otherwise(pl.col("status")).alias("error_type"),
    ).select("event_id", "ts", "source", "project", "tool_name", "route", "user_id", "session_id", "span_id",
             "parent_span_id", "duration_ms", "status", "error_type")
    return Scenario(p.name, calls.select(keep), runs, list(p.incidents), list(p.budgets))


@dataclass(frozen=True)
class Plan:
    """One project of a seed set. Incident projects are mid-size (`volume`), so that each windowed
    statistic has calls to judge within its window; quiet projects span small to mid-size."""

    name: str
    seed_set: str
    seed: int
    noise: Noise
    incidents: tuple[str, ...] = ()
    new_route_day: float | None = None


TEN = ("prefix_broken", "cache_breakpoint_dropped", "prompt_accumulation", "tool_calls_frontier_model",
       "reasoning_runaway", "stale_routing", "sandbox_runaway", "provider_slowdown", "runaway_agent")
PLANS = (
    Plan("at-tune-q1", "tune", 11, TUNE),
    Plan("at-tune-q2", "tune", 12, replace(TUNE, df=2.5, scale=0.3, bursts_per_day=0.5), new_route_day=6.0),
    Plan("at-tune-i1", "tune", 13, replace(TUNE, volume=(1.0, 1.4)), TEN + ("budget_forecast",)),
    Plan("at-tune-i2", "tune", 14, replace(TUNE, scale=0.3, volume=(1.0, 1.4)), ("prefix_broken_openai",
                                                                               "cache_breakpoint_dropped_sonnet")
         + TEN[2:] + ("spend_level_shift",)),
    Plan("at-held-q1", "held-out", 101, HELD),
    Plan("at-held-q2", "held-out", 102, replace(HELD, df=1.8), new_route_day=6.0),
    Plan("at-held-i1", "held-out", 103, replace(HELD, volume=(1.0, 1.5)), TEN + ("budget_forecast",)),
    Plan("at-held-i2", "held-out", 104, replace(HELD, volume=(1.0, 1.5)), ("prefix_broken_openai",
                                                                         "cache_breakpoint_dropped_sonnet") + TEN[2:]
         + ("spend_level_shift",)),
    Plan("at-fresh-q1", "fresh", 201, FRESH),
    Plan("at-fresh-q2", "fresh", 202, replace(FRESH, df=2.0), new_route_day=8.0),
    Plan("at-fresh-i1", "fresh", 203, replace(FRESH, volume=(1.0, 1.5)), TEN + ("budget_forecast",)),
    Plan("at-fresh-i2", "fresh", 204, replace(FRESH, volume=(0.9, 1.4)), ("prefix_broken_openai",
                                                                        "cache_breakpoint_dropped_sonnet") + TEN[2:]
         + ("spend_level_shift",)),
    Plan("at-fresh2-q1", "fresh-2", 301, FRESH2),
    Plan("at-fresh2-q2", "fresh-2", 302, replace(FRESH2, df=2.1), new_route_day=7.0),
    Plan("at-fresh2-i1", "fresh-2", 303, replace(FRESH2, volume=(0.95, 1.45)), TEN + ("budget_forecast",)),
    Plan("at-fresh2-i2", "fresh-2", 304, replace(FRESH2, volume=(1.0, 1.4)), ("prefix_broken_openai",
                                                                            "cache_breakpoint_dropped_sonnet")
         + TEN[2:] + ("spend_level_shift",)),
    Plan("at-fresh3-q1", "fresh-3", 401, FRESH3),
    Plan("at-fresh3-q2", "fresh-3", 402, replace(FRESH3, df=1.9), new_route_day=5.0),
    Plan("at-fresh3-i1", "fresh-3", 403, replace(FRESH3, volume=(0.9, 1.5)), TEN + ("budget_forecast",)),
    Plan("at-fresh3-i2", "fresh-3", 404, replace(FRESH3, volume=(1.0, 1.45)), ("prefix_broken_openai",
                                                                             "cache_breakpoint_dropped_sonnet")
         + TEN[2:] + ("spend_level_shift",)),
    Plan("at-fresh4-q1", "fresh-4", 501, FRESH4),
    Plan("at-fresh4-q2", "fresh-4", 502, replace(FRESH4, df=2.0), new_route_day=4.0),
    Plan("at-fresh4-i1", "fresh-4", 503, replace(FRESH4, volume=(0.85, 1.5)), TEN + ("budget_forecast",)),
    Plan("at-fresh4-i2", "fresh-4", 504, replace(FRESH4, volume=(1.0, 1.5)), ("prefix_broken_openai",
                                                                            "cache_breakpoint_dropped_sonnet")
         + TEN[2:] + ("spend_level_shift",)),
)


def build(plan: Plan, days: int, warmup_days: int) -> Scenario:
    """One project: quiet traffic, then its incidents, each on its own weekday after the warm-up
    during working hours (a windowed ratio cannot be judged on the two calls of a Sunday dawn);
    the budget's launch early enough for its forecast to cross inside the range."""
    p = quiet_project(plan.name, plan.seed, plan.noise, days, new_route_day=plan.new_route_day)
    weekdays = [d for d in range(warmup_days, days) if (START + timedelta(days=d)).weekday() < 5]
    p.rng.shuffle(weekdays)
    budget_day = next((d for d in weekdays if d <= days - 5), None) if "budget_forecast" in plan.incidents else None
    days_left = [d for d in weekdays if d != budget_day]
    for kind in plan.incidents:
        if kind == "budget_forecast":
            continue
        day = days_left.pop() if days_left else int(p.rng.integers(warmup_days, days))
        start = START + timedelta(days=day, hours=int(p.rng.integers(9, 16)), minutes=int(p.rng.integers(0, 60)))
        p.incidents.append(KINDS[kind](p, start))
    if budget_day is not None:  # last: its forecast sees every other incident's money
        start = START + timedelta(days=budget_day, hours=int(p.rng.integers(9, 16)))
        p.incidents.append(budget_growth(p, "search", start, START + timedelta(days=days)))
    else:
        quiet_budgets(p)
    p.incidents = [observable(p, i) for i in p.incidents]
    return finish(p)


# the calls (runs) a windowed statistic needs after the condition crosses before anything can see
# it: a p99 needs ≳ 100 calls (design §5); a share or a mean as many as its test needs to tell the
# injected effect from the threshold (`Evidence.calls`)
SAMPLES = {"latency_tail": 100}
# (prompt_accumulation's crossing is already taken on calls sent: `_doubled_at`)
WINDOWED = ("cache_hit_collapse", "cache_not_applied", "llm_calls_in_tools", "stale_routing", "sandbox_runaway",
            "latency_tail")
EXTRA = ("spend_level_shift",)  # not among the ten incident kinds (the budget forecast is the tenth)


def observable(p: Project, incident: Incident) -> Incident:
    """The incident with `crosses_at` no earlier than the condition is observable, and marked
    `extra` when it is not one of the ten kinds. A windowed incident is observable once the scope
    has had the calls (runs) its statistic needs since the injected condition crossed the
    threshold, counted on the calls as they arrive: a rollout that crosses during a lull (a quiet
    hour on a thin route) is observable only once traffic resumes and brings them. Too few calls
    before the incident ends: not observable. The level shift: `level_shift_observable`."""
    incident = replace(incident, extra=incident.kind in EXTRA)
    if incident.kind == "spend_level_shift":
        return level_shift_observable(p, incident)
    if incident.signal not in WINDOWED:
        return incident
    (key, value), = incident.scope.items()
    if incident.signal in ("sandbox_runaway", "llm_calls_in_tools"):
        frame, where, unit = p.runs, pl.col("tool_name") == value, "runs"
    elif key == "routing_policy":
        frame, where = p.calls, (pl.col("route") == "ticket-triage") & (pl.col("cascade_step") == 0)
        unit = "first-step calls"
    else:
        frame, where, unit = p.calls, (pl.col(key) == value) & (pl.col("status") == "ok"), "calls"
    after = frame.filter(where & (pl.col("ts_ms") >= _ms(incident.crosses_at)) & (pl.col("ts_ms") < _ms(incident.end)))
    times = after["ts_ms"].sort().to_numpy()
    if incident.signal in SAMPLES:
        need = SAMPLES[incident.signal]
        how = f"{need} {unit} for a p99 (design §5)"
        need = need if times.size >= need else None
    else:
        evidence = p.evidence[incident.kind]
        need = evidence.seen(times)
        how = (f"{need or times.size} {unit} (≥ {evidence.calls()} at the full effect): {evidence.statistic} "
               f"{evidence.effect:.3g} vs {evidence.threshold:.3g}, {CONFIDENCE:.0%} one-sided")
    if need is None:
        return replace(incident, crosses_at=incident.end, observable=False,
                       observability=f"not observable: {how}, too few before it ended")
    return replace(incident, crosses_at=max(incident.crosses_at, _at(float(times[need - 1]))), observability=how)


def _incident_hours(incidents: list[Incident]) -> np.ndarray:
    """Hour indices (from START) that any injected incident touches."""
    hours = [np.arange((_ms(i.start) - _ms(START)) // HOUR_MS, -(-(_ms(i.end) - _ms(START)) // HOUR_MS))
             for i in incidents]
    return np.unique(np.concatenate(hours)) if hours else np.zeros(0, dtype=np.int64)


def seasonal_baseline(spend: np.ndarray, excluded: np.ndarray, *, days: int = 14, min_days: int = 3) -> np.ndarray:
    """Each hour's baseline: the median of the same hour on the previous `days` days, leaving out
    hours an injected incident touched; NaN where fewer than `min_days` such hours exist (the
    median of one or two is no baseline)."""
    values = np.where(excluded, np.nan, spend)
    lagged = np.full((spend.size, days), np.nan)
    for k in range(1, days + 1):
        lagged[24 * k:, k - 1] = values[: spend.size - 24 * k]
    enough = np.sum(~np.isnan(lagged), axis=1) >= min_days
    out = np.full(spend.size, np.nan)
    out[enough] = np.nanmedian(lagged[enough], axis=1)
    return out


def six_hour_ratios(spend: np.ndarray, baseline: np.ndarray, hours: int = 6) -> np.ndarray:
    """At each hour boundary t (index t: the hours t−6 … t−1), the six hours' spend over their
    baseline; NaN where a baseline is missing or zero."""
    out = np.full(spend.size + 1, np.nan)
    cum_s = np.concatenate([[0.0], np.cumsum(spend)])
    cum_b = np.concatenate([[0.0], np.cumsum(np.nan_to_num(baseline, nan=0.0))])
    cum_missing = np.concatenate([[0], np.cumsum(np.isnan(baseline))])
    t = np.arange(hours, spend.size + 1)
    base = cum_b[t] - cum_b[t - hours]
    ok = (cum_missing[t] - cum_missing[t - hours] == 0) & (base > 0)
    out[t[ok]] = (cum_s[t] - cum_s[t - hours])[ok] / base[ok]
    return out


def shift_crossing(spend: np.ndarray, excluded: np.ndarray, first: int, last: int, *, earliest: int = 0,
                   days: int = 14, hours: int = 6) -> tuple[int | None, float, float]:
    """When a level shift injected over hours [first, last) is observable: the first hour boundary
    t in (first, last], and not before `earliest`, at which the six hours before t, against the
    seasonal baseline, exceed the largest six-hour ratio of the `days` quiet days before `first`
    (windows touching an injected incident left out). Returns (t or None, the shift's largest
    ratio from `earliest` on, that quiet maximum)."""
    ratios = six_hour_ratios(spend, seasonal_baseline(spend, excluded, days=days), hours)
    touched = np.concatenate([[0], np.cumsum(excluded)])
    t = np.arange(max(hours, first - days * 24 + hours), first + 1)
    quiet = t[touched[t] - touched[t - hours] == 0]
    quiet_max = float(np.nanmax(ratios[quiet])) if np.isfinite(ratios[quiet]).any() else math.inf
    inside = np.arange(max(first + 1, earliest), min(last, spend.size) + 1)
    shifted = ratios[inside]
    best = float(np.nanmax(shifted)) if np.isfinite(shifted).any() else math.nan
    over = inside[np.nan_to_num(shifted, nan=-math.inf) > quiet_max]
    return (int(over[0]) if over.size else None), best, quiet_max


def level_shift_observable(p: Project, incident: Incident) -> Incident:
    """A level shift is observable when the route's six hours of spend against its seasonal
    baseline (`seasonal_baseline`, the benchmark's own) exceed the largest six-hour ratio the
    route reached on its previous 14 quiet days (`shift_crossing`); `crosses_at` is then that hour
    boundary, looked for from the documented measure's crossing on (six hours at ≥ 2× what they
    would have cost: from then on the excess is the shift's own, not a launch or a burst before
    it). Otherwise it is marked not observable — quiet shifts of the same size hide it — and stays
    in the report."""
    (key, route), = incident.scope.items()
    costs = priced(cached(p.calls.filter(pl.col(key) == route)))
    hourly = costs.group_by(((pl.col("ts_ms") - _ms(START)) // HOUR_MS).alias("h")).agg(pl.col("cost").sum())
    spend = np.zeros(p.hours)
    h = hourly["h"].to_numpy()
    keep = (h >= 0) & (h < p.hours)
    spend[h[keep]] = hourly["cost"].to_numpy()[keep]
    excluded = np.zeros(p.hours, dtype=bool)
    excluded[_incident_hours(p.incidents)] = True
    first = int((_ms(incident.start) - _ms(START)) // HOUR_MS)
    last = int(-(-(_ms(incident.end) - _ms(START)) // HOUR_MS))
    earliest = int(-(-(_ms(incident.crosses_at) - _ms(START)) // HOUR_MS))
    at, best, quiet_max = shift_crossing(spend, excluded, first, last, earliest=earliest)
    said = f"six-hour spend ratio up to {best:.2f}× vs the route's quiet 14-day maximum {quiet_max:.2f}×"
    if at is None:
        return replace(incident, crosses_at=incident.end, observable=False, observability=f"not observable: {said}")
    return replace(incident, crosses_at=START + timedelta(hours=at), observability=f"observable: {said}")


def scenarios(days: int = 21, warmup_days: int = 7, seed_sets: list[str] | None = None) -> list[Scenario]:
    """Every project of every seed set (`Scenario.seed_set` says which), or of `seed_sets` only (a
    tuning run need not generate the sets it never looks at)."""
    out = []
    for plan in PLANS:
        if seed_sets is not None and plan.seed_set not in seed_sets:
            continue
        scenario = build(plan, days, warmup_days)
        scenario.seed_set = plan.seed_set
        out.append(scenario)
    return out
