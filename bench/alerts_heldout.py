"""Held-out LLM traffic with injected incidents: the judge of the alert rules, which nobody tunes on.

Written from what production LLM traffic looks like and from the documented signal definitions
only (the signals table, the seed's thresholds, `llmledger signals list`), never from the rules'
code or the project's own traffic generators. It implements the `bench.alert_cases` contract:
`START` and `scenarios(days, warmup_days)`, deterministic for given arguments (seeded numpy).

**Design.** Eight projects (`ho-…`), four quiet and four with incidents. Each is a set of routes;
a route is built in three layers, so that an incident is a change of *cause* and every number a
rule sees follows from mechanics rather than being painted on:

1. *Volume* (`Rhythm`): a per-minute intensity = daily shape (one or two peaks at the route's own
   UTC hours, a night floor from ~0.3% for near-silent routes to 30%) × weekday factors × an hourly
   AR(1) log-multiplier with Student-t innovations (heavy-tailed hour-to-hour variation) ×
   news-like bursts (sudden rise, exponential decay over hours) × day-long level shifts × launches
   (a gradual ×2 that persists) × births (a route, feature or user appearing mid-range). Arrivals are
   Poisson per minute on top of it. Conversational routes draw *sessions* instead, each with a
   geometric number of turns and log-normal think times between them.
2. *Content*: per call a model (mix per route), a cacheable prefix (system prompt + tools; its size
   and hash change with prompt versions, most of which keep the prefix), the user's message, the
   assistant's reply, uncached dynamic context, reasoning tokens (log-normal, long-tailed), a user
   from the project's Zipf population (a few steady heavy users; anonymous calls without user,
   routes without feature or team), cascades (`routing_policy`, step 0/1, `escalated`,
   `router_score`; the escalation share wanders between ~30 and ~47%), tool runs (`tool_runs`, with
   a low base rate of errors and timeouts) and the LLM calls tools make (`tool_name`,
   `parent_span_id`), errors and timeouts at a base rate (no usage), single slow calls.
3. *Mechanics* (`_mechanics`), per provider, in the canonical record (input includes cached and
   cache-write tokens; output includes reasoning):
   - multi-turn history = the turns kept by the app's trimming (a window of W turns trimmed in
     blocks, as summarising apps do); input = prefix + history + message + dynamic context;
   - Anthropic explicit caching: a breakpoint after the prefix (single-shot routes) or on the last
     message (conversations). The prefix is read when the same model + prefix was used within the
     TTL (5 min, or 1 h on routes that pay for 1 h writes), else written; a conversation reads what
     its previous turn cached when that turn was within the TTL and the history was not trimmed in
     between, and writes the new part; ~1% random evictions; nothing is cached below the model's
     minimum (Haiku 2048, Sonnet/Opus 1024) — routes below it send short prompts;
   - OpenAI automatic caching: the longest previously seen prefix in 128-token steps, only when ≥
     1024 tokens, no writes; a few percent of eligible calls miss at random (another machine);
   - Gemini implicit caching: the prefix, best effort (~80% of warm calls), no writes;
   - self-hosted (vLLM nodes): no cache fields, queue time at busy hours, cost 0 (GPU cost lives
     elsewhere);
   - latency: TTFT = connection/queue overhead (log-normal per model) + prefill of uncached tokens
     (+ thinking on streamed reasoning models) + a rare queueing tail, so Sonnet's TTFT p99 is about
     2 s; end-to-end = TTFT + output / per-call throughput; reasoning routes have p99s of minutes;
   - cost from the public list prices of the models used (the same numbers as the price catalogue;
     `alerts_heldout_check` compares them with the pipeline's costs).

**Incidents** are cause changes, mostly ramps and partial rollouts: a prompt change that puts the
time at the top of the system prompt (every prefix unique → cache writes), an SDK rollout that drops
`cache_control` on a share of workers, a refactor that stops trimming history (only new sessions
grow), a tool's extractor switched to an expensive model for one kind of page, a reasoning-effort
change that lets a few calls think past 100k tokens, a cheap-model upgrade behind a cascade whose
router was calibrated on the old one, a sandbox image whose imports hang, a provider region that
stalls a few percent of responses, a provider queue that delays first tokens, an agent loop of one
user, a team's backfill that spends its month's budget. `crosses_at` is *measured* from the
generated frame (`stat_*` below) with the documented statistic in the documented window and volume
guard — the 95% Wilson bound for ratios, as design.md §5 says ratios are judged; p99 over ≥ 100 ok
calls; the point value otherwise — as the first evaluation minute from which the threshold holds for
the signal's sustain period; the severity declared is the highest one the data sustains. `also`
names the other signals the same cause legitimately moves (its money, its latency).

**Quiet projects** carry what must not page: launches that double traffic, new routes, bursts and
level shifts, near-silent nights and tiny routes, random cache misses, prompt changes that keep the
prefix, long legitimate reasoning (≤ 60k), single slow calls, healthy cascades, base tool timeouts,
whales that are heavy every day, error blips, budgets that stay comfortably within bounds.

Recommended range: `scenarios(21, 7)` (~1.8M calls; 20–60 s to generate on a shared 2-core
machine). Shorter ranges work (`days − warmup_days ≥ 2`): incidents take distinct weekdays first,
then weekend days, then share days; with under 7 warm-up days the documented 7-day baselines are
thin and the check may list a borderline episode in quiet data (it does at `scenarios(6, 3)`, not at
14/7 or 21/7). `python -m bench.alerts_heldout_check` prints the evidence.
"""

from __future__ import annotations

import hashlib
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import polars as pl

from bench.alert_cases import Incident, Scenario

START = datetime(2026, 4, 20, tzinfo=UTC)  # a Monday; a month boundary falls 11 days later
SEED = 0x5EED_12
MINUTE_MS = 60_000
DAY_MS = 1_440 * MINUTE_MS

CALL_COLUMNS = (
    "event_id", "ts", "source", "project", "api_key_id", "environment", "user_id", "team", "feature", "route",
    "session_id", "trace_id", "span_id", "parent_span_id", "tool_name", "prompt_version", "prompt_prefix_hash",
    "tags", "provider", "model", "deployment", "node", "stream", "input_tokens", "cache_read_tokens",
    "cache_write_5m_tokens", "cache_write_1h_tokens", "output_tokens", "reasoning_tokens", "ttft_ms",
    "latency_ms", "queue_ms", "status", "error_type", "http_status", "routing_policy", "cascade_step",
    "escalated", "router_score",
)
RUN_COLUMNS = ("event_id", "ts", "source", "project", "tool_name", "route", "user_id", "session_id", "trace_id",
               "span_id", "parent_span_id", "duration_ms", "status", "error_type")


# ---------------------------------------------------------------------------------------------
# Models: list prices (USD per million tokens), caching semantics, speed


@dataclass(frozen=True)
class Model:
    """A model as the traffic uses it."""

    provider: str
    price_in: float
    price_read: float
    price_out: float
    price_w5: float = 0.0
    price_w1h: float = 0.0
    cache: str = "none"  # explicit (cache_control) | auto (OpenAI) | implicit (Gemini) | none
    min_cache: int = 1024
    ttft_s: float = 0.5  # median overhead before the first token
    ttft_sigma: float = 0.45
    prefill_s_per_k: float = 0.04  # per 1k uncached input tokens
    tps: float = 60.0  # median output tokens per second
    reasoning: bool = False


MODELS: dict[str, Model] = {
    "claude-sonnet-4-5": Model("anthropic", 3.0, 0.3, 15.0, 3.75, 6.0, "explicit", 1024, 0.6, 0.45, 0.045, 62),
    "claude-haiku-4-5": Model("anthropic", 1.0, 0.1, 5.0, 1.25, 2.0, "explicit", 2048, 0.32, 0.45, 0.02, 140),
    "claude-opus-4-1": Model("anthropic", 15.0, 1.5, 75.0, 18.75, 30.0, "explicit", 1024, 0.9, 0.45, 0.08, 38),
    "gpt-4.1": Model("openai", 2.0, 0.5, 8.0, cache="auto", ttft_s=0.5, prefill_s_per_k=0.035, tps=75),
    "gpt-4.1-mini": Model("openai", 0.4, 0.1, 1.6, cache="auto", ttft_s=0.38, prefill_s_per_k=0.02, tps=110),
    "gpt-5": Model("openai", 1.25, 0.125, 10.0, cache="auto", ttft_s=0.6, tps=65, reasoning=True),
    "gpt-5-mini": Model("openai", 0.25, 0.025, 2.0, cache="auto", ttft_s=0.45, tps=110, reasoning=True),
    "o4-mini": Model("openai", 1.1, 0.275, 4.4, cache="auto", ttft_s=0.45, tps=120, reasoning=True),
    "gemini-2.5-flash": Model("google", 0.3, 0.03, 2.5, cache="implicit", min_cache=1024, ttft_s=0.35,
                              prefill_s_per_k=0.02, tps=190),
    "gemini-2.5-flash-lite": Model("google", 0.1, 0.01, 0.4, cache="implicit", min_cache=1024, ttft_s=0.25,
                                   prefill_s_per_k=0.015, tps=300),
    "gemini-2.5-pro": Model("google", 1.25, 0.125, 10.0, cache="implicit", min_cache=2048, ttft_s=0.7,
                            prefill_s_per_k=0.04, tps=90, reasoning=True),
    "llama-3.3-70b-instruct": Model("self_hosted", 0, 0, 0, ttft_s=0.22, ttft_sigma=0.3, prefill_s_per_k=0.06, tps=38),
    "qwen2.5-32b-instruct": Model("self_hosted", 0, 0, 0, ttft_s=0.15, ttft_sigma=0.3, prefill_s_per_k=0.04, tps=62),
}

ELIGIBLE_MIN = {"anthropic": 1024, "openai": 1024}  # the documented cache-eligibility lengths (Haiku: 2048)


def cache_eligible_min(model: str) -> int | None:
    """Shortest input the documented `cache_not_applied` definition counts as cacheable (None: not judged)."""
    if model.startswith("claude-haiku"):
        return 2048
    return ELIGIBLE_MIN.get(MODELS[model].provider) if model in MODELS else None


# ---------------------------------------------------------------------------------------------
# Volume


@dataclass(frozen=True)
class Rhythm:
    """A route's calls (or sessions) per minute over the range."""

    peak: float  # per minute at the daily peak of an ordinary weekday
    peaks: tuple[tuple[float, float, float], ...] = ((14.0, 3.5, 1.0),)  # (UTC hour, width h, weight)
    night: float = 0.08  # floor relative to the peak
    week: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 0.95, 0.55, 0.5)  # Monday … Sunday
    noise: float = 0.18  # σ of the hourly log-multiplier
    noise_df: float = 4.0  # Student-t degrees of freedom of its innovations
    bursts_per_day: float = 0.0
    burst_gain: float = 1.5  # median extra multiple at a burst's peak
    shifts: tuple[tuple[float, float], ...] = ()  # (day, multiplier): day-long level shifts
    launch: tuple[float, float] | None = None  # (day, multiplier): gradual over ~12 h, persists
    born: float | None = None  # the route appears on this day (ramps over ~a day)


@dataclass
class Ctx:
    """The range being generated."""

    days: int
    warmup: int

    @property
    def minutes(self) -> int:
        return self.days * 1_440

    @property
    def end_ms(self) -> int:
        return self.days * DAY_MS

    def eval_day(self, frac: float) -> int:
        """A whole day in the evaluated range, `frac` of the way through it."""
        span = self.days - self.warmup
        return self.warmup + min(span - 1, int(frac * span))

    def at(self, day: float, hour: float = 0.0) -> int:
        """Milliseconds from START."""
        return int(day * DAY_MS + hour * 3_600_000)


def _rng(*key: object) -> np.random.Generator:
    return np.random.default_rng([SEED] + [zlib.crc32(str(k).encode()) for k in key])


def intensity(ctx: Ctx, rhythm: Rhythm, rng: np.random.Generator) -> np.ndarray:
    """Expected arrivals per minute for every minute of the range."""
    m = np.arange(ctx.minutes)
    hour = (m % 1_440) / 60.0
    shape = np.zeros(ctx.minutes)
    for centre, width, weight in rhythm.peaks:
        d = np.abs(hour - centre)
        d = np.minimum(d, 24 - d)
        shape += weight * np.exp(-0.5 * (d / width) ** 2)
    shape = rhythm.night + (1 - rhythm.night) * shape / max(shape.max(), 1e-9)
    dow = (m // 1_440 + START.weekday()) % 7
    week = np.asarray(rhythm.week)[dow]
    # heavy-tailed hour-to-hour variation: AR(1) in log space with Student-t innovations
    hours = ctx.minutes // 60
    t = rng.standard_t(rhythm.noise_df, hours)
    t /= np.sqrt(rhythm.noise_df / (rhythm.noise_df - 2))
    x = np.empty(hours)
    phi, acc = 0.55, 0.0
    for h in range(hours):
        acc = phi * acc + np.sqrt(1 - phi**2) * rhythm.noise * t[h]
        x[h] = acc
    noise = np.exp(np.clip(np.repeat(x, 60), -1.6, 1.6))
    rate = rhythm.peak * shape * week * noise
    if rhythm.bursts_per_day:
        extra = np.zeros(ctx.minutes)
        for _ in range(rng.poisson(rhythm.bursts_per_day * ctx.days)):
            t0 = rng.integers(0, ctx.minutes)
            gain = rng.lognormal(np.log(rhythm.burst_gain), 0.4)
            tau = rng.uniform(30, 240)
            rise = rng.uniform(5, 25)
            k = m - t0
            extra += np.where(
                k >= 0, gain * (1 - np.exp(-np.maximum(k, 0) / rise)) * np.exp(-np.maximum(k, 0) / tau), 0
            )
        rate *= 1 + extra
    for day, mult in rhythm.shifts:
        k = m / 1_440.0 - day
        edge = _sigmoid(k * 48) - _sigmoid((k - 1) * 48)
        rate *= 1 + (mult - 1) * edge
    if rhythm.launch:
        day, mult = rhythm.launch
        rate *= 1 + (mult - 1) * _sigmoid((m / 1_440.0 - day - 0.25) * 16)
    if rhythm.born is not None:
        rate *= np.clip((m / 1_440.0 - rhythm.born) / 1.0, 0, 1) ** 1.5
    return rate


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(x, -50, 50)))


def arrivals(rate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival offsets (ms from START), Poisson per minute."""
    counts = rng.poisson(rate)
    minute = np.repeat(np.arange(rate.size, dtype=np.int64), counts)
    return np.sort(minute * MINUTE_MS + rng.integers(0, MINUTE_MS, minute.size))


# ---------------------------------------------------------------------------------------------
# Routes


@dataclass(frozen=True)
class Dist:
    """A log-normal token count: median, σ, and a cap the application enforces."""

    median: float
    sigma: float = 0.6
    cap: int = 200_000
    floor: int = 1

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.clip(rng.lognormal(np.log(self.median), self.sigma, n), self.floor, self.cap).astype(np.int64)


@dataclass(frozen=True)
class Cascade:
    """Cascade routing: a cheap step 0, escalated to `strong` when the router's score is low."""

    policy: str
    strong: str
    rate: float = 0.40  # mean escalation share
    swing: float = 0.05  # daily swing of that share
    threshold: float = 0.6


@dataclass(frozen=True)
class Route:
    """One route of a project."""

    name: str
    rhythm: Rhythm
    models: tuple[tuple[str, float], ...]
    feature: str | None = None
    team: str | None = None
    stream: bool = False
    chat: bool = False  # sessions of several turns
    turns: float = 1.0  # mean turns per session
    think_s: float = 50.0  # median seconds between turns
    window: int = 8  # history kept, in turns (trimmed in blocks of window/2)
    prefix: int = 0  # cacheable prefix tokens
    prompts: tuple[tuple[float, int, bool], ...] = ()  # (day, prefix tokens, new prefix?) prompt versions
    message: Dist = Dist(200)
    reply: Dist = Dist(300)
    context: Dist | None = None  # uncached dynamic context after the breakpoint
    reasoning: Dist | None = None
    cache_on: bool = True
    ttl: str = "5m"
    auto_miss: float = 0.03  # OpenAI: share of eligible calls that miss at random
    error_rate: float = 0.004
    timeout_rate: float = 0.001
    timeout_s: float = 120.0
    slow_rate: float = 1 / 12_000
    anon: float = 0.0  # share of calls without user
    users: float = 1.0  # share of the project's users this route sees (the head of the Zipf)
    cascade: Cascade | None = None
    nodes: tuple[str, ...] = ()
    sdk: str = ""


@dataclass(frozen=True)
class Tool:
    """A tool the agent of `route` runs; some runs call an LLM themselves."""

    name: str
    route: str
    per_call: float  # runs per call of the route
    duration: Dist
    error_rate: float = 0.01
    timeout_rate: float = 0.003
    timeout_ms: int = 30_000
    llm_share: float = 0.0
    llm_model: str = "gemini-2.5-flash-lite"
    llm_in: Dist = Dist(2_500)
    llm_out: Dist = Dist(300)
    llm_prefix: int = 0  # the LLM call's cacheable instructions


@dataclass
class Project:
    """A project: its routes, the tools its agents run and its Zipf user population."""

    name: str
    routes: list[Route]
    tools: list[Tool] = field(default_factory=list)
    n_users: int = 5_000
    zipf: float = 1.1


def _hash(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:12]


def _users(rng: np.random.Generator, project: Project, route: Route, n: int) -> np.ndarray:
    """User ranks (1 = heaviest) from the project's Zipf population; 0 = anonymous."""
    pool = max(20, int(project.n_users * route.users))
    ranks = np.arange(1, pool + 1)
    p = ranks ** -project.zipf
    users = rng.choice(ranks, n, p=p / p.sum())
    return np.where(rng.random(n) < route.anon, 0, users)


def _prompt_columns(route: Route, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prefix tokens, prompt_version, prefix variant) per call from the route's prompt history."""
    history = route.prompts or ((0.0, route.prefix, True),)
    prefix = np.full(ts.size, history[0][1], dtype=np.int64)
    version = np.zeros(ts.size, dtype=np.int64)
    variant = np.zeros(ts.size, dtype=np.int64)
    current = 0
    for i, (day, tokens, new_prefix) in enumerate(history):
        if new_prefix and i:
            current += 1
        after = ts >= int(day * DAY_MS)
        prefix[after], version[after], variant[after] = tokens, i, current
    return prefix, version, variant


def rows(route: Route, ts: np.ndarray, session: np.ndarray, turn: np.ndarray, user: np.ndarray,
         models: np.ndarray | str, rng: np.random.Generator, **columns: object) -> pl.DataFrame:
    """Precursor rows of a route's calls at the given times (tokens as causes: prefix, history parts,
    flags); `columns` override any column (a scalar or one value per row)."""
    n = ts.size
    prefix, version, variant = _prompt_columns(route, ts)
    status = np.where(rng.random(n) < route.error_rate, "error",
                      np.where(rng.random(n) < route.timeout_rate, "timeout", "ok"))
    data = {
        "t_ms": ts.astype(np.int64),
        "route": route.name,
        "feature": route.feature,
        "team": route.team,
        "user_rank": np.asarray(user, dtype=np.int64),
        "session": np.asarray(session, dtype=np.int64),
        "turn": np.asarray(turn, dtype=np.int64),
        "model": models,
        "stream": route.stream,
        "prefix": prefix,
        "prompt_version": version,
        "variant": variant,
        "message": route.message.draw(rng, n),
        "reply": route.reply.draw(rng, n),
        "context": route.context.draw(rng, n) if route.context else np.zeros(n, dtype=np.int64),
        "reasoning": route.reasoning.draw(rng, n) if route.reasoning else np.zeros(n, dtype=np.int64),
        "window": np.full(n, route.window if route.chat else 0, dtype=np.int64),
        "cache_on": route.cache_on,
        "ttl": route.ttl,
        "auto_miss": route.auto_miss,
        "status": status,
        "slow": rng.random(n) < route.slow_rate,
        "extra_ttft_ms": np.zeros(n),
        "extra_latency_ms": np.zeros(n),
        "timeout_s": route.timeout_s,
        "sdk": route.sdk,
        "node": rng.choice(np.array(route.nodes), n) if route.nodes else None,
        "tool_name": None,
        "parent_span_id": None,
        "routing_policy": None,
        "cascade_step": None,
        "escalated": None,
        "router_score": None,
        "trace": None,
    }
    data.update(columns)
    return pl.DataFrame(data, schema=PRECURSOR, nan_to_null=False)


PRECURSOR = {
    "t_ms": pl.Int64, "route": pl.String, "feature": pl.String, "team": pl.String, "user_rank": pl.Int64,
    "session": pl.Int64, "turn": pl.Int64, "model": pl.String, "stream": pl.Boolean, "prefix": pl.Int64,
    "prompt_version": pl.Int64, "variant": pl.Int64, "message": pl.Int64, "reply": pl.Int64, "context": pl.Int64,
    "reasoning": pl.Int64, "window": pl.Int64, "cache_on": pl.Boolean, "ttl": pl.String, "auto_miss": pl.Float64,
    "status": pl.String, "slow": pl.Boolean, "extra_ttft_ms": pl.Float64, "extra_latency_ms": pl.Float64,
    "timeout_s": pl.Float64, "sdk": pl.String, "node": pl.String, "tool_name": pl.String,
    "parent_span_id": pl.String, "routing_policy": pl.String, "cascade_step": pl.Int64, "escalated": pl.Boolean,
    "router_score": pl.Float64, "trace": pl.String,
}


def route_frame(ctx: Ctx, project: Project, route: Route, rng: np.random.Generator,
                rate: np.ndarray | None = None, with_cascade: bool = True) -> pl.DataFrame:
    """A route's calls before mechanics (tokens as causes: prefix, history parts, flags)."""
    if rate is None:
        rate = intensity(ctx, route.rhythm, rng)
    if route.chat:
        starts = arrivals(rate / route.turns, rng)
        turns = rng.geometric(1 / route.turns, starts.size)
        first = np.cumsum(turns) - turns
        session = np.repeat(np.arange(starts.size), turns)
        turn = np.arange(turns.sum()) - np.repeat(first, turns)
        gaps = rng.lognormal(np.log(route.think_s * 1_000), 0.9, turn.size)
        gaps[first] = 0
        c = np.cumsum(gaps)
        ts = np.repeat(starts, turns) + (c - np.repeat(c[first], turns)).astype(np.int64)
        keep = ts < ctx.end_ms
        ts, session, turn = ts[keep], session[keep], turn[keep]
        user = _users(rng, project, route, starts.size)[session]
        model_idx = rng.choice(len(route.models), starts.size, p=[w for _, w in route.models])[session]
    else:
        ts = arrivals(rate, rng)
        session = np.full(ts.size, -1)
        turn = np.zeros(ts.size, dtype=np.int64)
        user = _users(rng, project, route, ts.size)
        model_idx = rng.choice(len(route.models), ts.size, p=[w for _, w in route.models])
    models = np.array([m for m, _ in route.models])[model_idx]
    frame = rows(route, ts, session, turn, user, models, rng)
    if route.cascade and with_cascade:
        frame = apply_cascade(ctx, frame, route.cascade, rng)
    return frame


def escalation_share(ctx: Ctx, cascade: Cascade, rng: np.random.Generator) -> np.ndarray:
    """A healthy escalation share per minute: a daily swing plus hourly wander, kept in 30–47%."""
    m = np.arange(ctx.minutes)
    hourly = np.repeat(np.cumsum(rng.normal(0, 0.012, ctx.minutes // 60 + 1)), 60)[: ctx.minutes]
    hourly -= np.convolve(hourly, np.ones(1_440) / 1_440, mode="same")  # no long drift
    daily = cascade.swing * np.sin(2 * np.pi * (m / 1_440.0) + rng.uniform(0, 6.3))
    return np.clip(cascade.rate + daily + hourly, 0.30, 0.47)


def apply_cascade(ctx: Ctx, frame: pl.DataFrame, cascade: Cascade, rng: np.random.Generator,
                  p_call: np.ndarray | None = None) -> pl.DataFrame:
    """Step-0 calls get a router score; those under the threshold are escalated as step-1 calls to the
    strong model (same trace, a couple of seconds later). `p_call`: the escalation probability per call."""
    n = frame.height
    if p_call is None:
        minute = np.clip(frame["t_ms"].to_numpy() // MINUTE_MS, 0, ctx.minutes - 1)
        p_call = escalation_share(ctx, cascade, rng)[minute]
    u = rng.random(n)
    below = u < p_call
    thr = cascade.threshold
    score = np.where(
        below, thr * (u / p_call) ** 0.7, thr + (1 - thr) * np.clip((u - p_call) / (1 - p_call), 0, 1) ** 0.8
    )
    escalate = below & (frame["status"] == "ok").to_numpy()
    step0 = frame.with_columns(
        pl.lit(cascade.policy).alias("routing_policy"),
        pl.lit(0, dtype=pl.Int64).alias("cascade_step"),
        pl.lit(False).alias("escalated"),
        pl.Series("router_score", np.round(score, 4)),
        pl.format("c{}-{}", pl.col("t_ms"), pl.int_range(pl.len())).alias("trace"),
    )
    step1 = step0.filter(pl.Series(escalate))
    step1 = step1.with_columns(
        (pl.col("t_ms") + pl.Series(rng.lognormal(np.log(2_500), 0.5, step1.height)).cast(pl.Int64)).alias("t_ms"),
        pl.lit(cascade.strong).alias("model"),
        pl.lit(1, dtype=pl.Int64).alias("cascade_step"),
        pl.lit(True).alias("escalated"),
        pl.lit(None, dtype=pl.Float64).alias("router_score"),
        (pl.col("reply") * 1.4).cast(pl.Int64).alias("reply"),
        pl.lit(0, dtype=pl.Int64).alias("reasoning"),
    )
    return pl.concat([step0, step1]).filter(pl.col("t_ms") < ctx.end_ms)


def tool_frames(ctx: Ctx, project: Project, tool: Tool, route_calls: pl.DataFrame,
                rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(tool runs, precursor rows of the LLM calls those runs make). Runs follow their route's calls."""
    parents = route_calls.filter(pl.col("route") == tool.route).select("t_ms", "user_rank", "session")
    per = rng.poisson(tool.per_call, parents.height)
    idx = np.repeat(np.arange(parents.height), per)
    t = parents["t_ms"].to_numpy()[idx] + rng.lognormal(np.log(1_500), 0.8, idx.size).astype(np.int64)
    n = idx.size
    status = np.where(rng.random(n) < tool.timeout_rate, "timeout",
                      np.where(rng.random(n) < tool.error_rate, "error", "ok"))
    duration = np.minimum(tool.duration.draw(rng, n), tool.timeout_ms - 1)
    duration = np.where(status == "timeout", tool.timeout_ms, duration)
    runs = pl.DataFrame({
        "t_ms": t, "tool_name": tool.name, "route": tool.route, "user_rank": parents["user_rank"].to_numpy()[idx],
        "session": parents["session"].to_numpy()[idx], "duration_ms": duration, "status": status,
        "llm": rng.random(n) < tool.llm_share,
    }).filter(pl.col("t_ms") < ctx.end_ms).with_row_index("run")
    runs = runs.with_columns(
        pl.format("{}-{}-{}", pl.lit(project.name[3:]), pl.lit(tool.name), pl.col("run")).alias("span_id")
    )
    return runs, tool_llm_calls(ctx, project, tool, runs.filter(pl.col("llm") & (pl.col("status") != "timeout")), rng)


def tool_llm_calls(ctx: Ctx, project: Project, tool: Tool, runs: pl.DataFrame, rng: np.random.Generator,
                   model: str | None = None, llm_in: Dist | None = None, llm_out: Dist | None = None,
                   reasoning: Dist | None = None) -> pl.DataFrame:
    """Precursor rows of the LLM calls made inside the given runs (single-shot, `tool_name` set)."""
    n = runs.height
    parent = next(r for r in project.routes if r.name == tool.route)
    spec = Route(tool.route, parent.rhythm, ((model or tool.llm_model, 1.0),), feature=parent.feature, team=parent.team,
                 prefix=tool.llm_prefix, message=llm_in or tool.llm_in, reply=llm_out or tool.llm_out,
                 reasoning=reasoning, error_rate=0.003, timeout_rate=0.0, timeout_s=60.0, slow_rate=0.0)
    t = runs["t_ms"].to_numpy() + (runs["duration_ms"].to_numpy() * rng.uniform(0.2, 0.6, n)).astype(np.int64)
    return rows(spec, t, np.full(n, -1), np.zeros(n), runs["user_rank"].to_numpy(), model or tool.llm_model, rng,
                tool_name=tool.name, parent_span_id=runs["span_id"])


# ---------------------------------------------------------------------------------------------
# Mechanics: history, caching, latency, cost


def _history(frame: pl.DataFrame) -> pl.DataFrame:
    """History tokens kept per turn (window trimmed in blocks of window/2) and whether this turn trimmed."""
    frame = frame.sort(["route", "session", "turn", "t_ms"])  # session numbers are per route
    sess = frame["session"].to_numpy()
    turn = frame["turn"].to_numpy()
    window = frame["window"].to_numpy()
    pair = (frame["message"] + frame["reply"]).to_numpy()
    pair = np.where(sess >= 0, pair, 0)
    cz = np.concatenate([[0], np.cumsum(pair)])
    i = np.arange(frame.height)
    start = i - turn
    block = np.maximum(window // 2, 1)
    lo = np.where((window > 0) & (turn > window), ((turn - window + block - 1) // block) * block, 0)
    lo_prev = np.where((window > 0) & (turn - 1 > window), ((turn - 1 - window + block - 1) // block) * block, 0)
    history = np.where((sess >= 0) & (window > 0), cz[i] - cz[start + np.minimum(lo, turn)], 0)
    prev_reply = np.where(turn > 0, np.roll(frame["reply"].to_numpy(), 1), 0)
    return frame.with_columns(
        pl.Series("history", history), pl.Series("trimmed", (turn > 0) & (lo != lo_prev)),
        pl.Series("prev_reply", prev_reply),
    )


def _mechanics(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Canonical token counts, cache reads/writes, latency and cost from the causes."""
    frame = _history(frame)
    info = pl.DataFrame([{"model": k, "provider": m.provider, "cache": m.cache, "min_cache": m.min_cache,
                          "ttft_s": m.ttft_s, "ttft_sigma": m.ttft_sigma, "prefill": m.prefill_s_per_k, "tps": m.tps,
                          "is_reasoning": m.reasoning, "p_in": m.price_in, "p_read": m.price_read,
                          "p_out": m.price_out, "p_w5": m.price_w5, "p_w1h": m.price_w1h}
                         for k, m in MODELS.items()])
    frame = frame.join(info, on="model", how="left")
    conv = pl.col("session") >= 0
    ok = pl.col("status") == "ok"
    ttl_ms = pl.when(pl.col("ttl") == "1h").then(3_600_000).otherwise(
        pl.when(pl.col("cache") == "auto").then(420_000).otherwise(300_000))
    frame = frame.with_columns(
        pl.when(ok).then(pl.col("reasoning")).otherwise(0).alias("reasoning"),
        pl.format("{}:{}:{}", pl.col("route"), pl.col("variant"), pl.col("prefix")).alias("prefix_key"),
    ).with_columns(
        (pl.col("prefix") + pl.col("history") + pl.col("message") + pl.col("context")).alias("input_all"),
    )
    # prefix warm: the same model + prefix used (with caching) within the TTL
    frame = frame.sort("t_ms").with_columns(
        (pl.col("t_ms") - pl.col("t_ms").shift(1)).over(["model", "prefix_key", "cache_on"]).alias("gap_prefix"),
    ).sort(["route", "session", "turn", "t_ms"]).with_columns(
        (pl.col("t_ms") - pl.col("t_ms").shift(1)).over("route", "session").alias("gap_turn"),
        pl.col("prefix_key").shift(1).over("route", "session").alias("prev_key"),
        pl.col("status").shift(1).over("route", "session").alias("prev_status"),
    )
    n = frame.height
    evict = pl.Series(rng.random(n) < 0.01)
    miss = pl.Series(rng.random(n))
    warm_prefix = pl.col("cache_on") & (pl.col("gap_prefix").fill_null(10**12) <= ttl_ms) & ~evict
    warm_turn = (warm_prefix & conv & (pl.col("turn") > 0) & (pl.col("gap_turn").fill_null(10**12) <= ttl_ms)
                 & ~pl.col("trimmed") & (pl.col("prev_key") == pl.col("prefix_key")) & (pl.col("prev_status") == "ok"))
    prev_prompt = pl.col("prefix") + pl.col("history") - pl.col("prev_reply")
    # Anthropic: breakpoint after the prefix (single-shot) or on the last message (conversation)
    breakpoint_len = (
        pl.when(conv)
        .then(pl.col("prefix") + pl.col("history") + pl.col("message"))
        .otherwise(pl.col("prefix"))
    )
    explicit = (pl.col("cache") == "explicit") & pl.col("cache_on") & (breakpoint_len >= pl.col("min_cache"))
    read_e = pl.when(warm_turn).then(prev_prompt).when(warm_prefix).then(pl.col("prefix")).otherwise(0)
    write_e = breakpoint_len - read_e
    # OpenAI: longest seen prefix in 128-token steps, ≥ 1024; random misses; no writes
    match = pl.when(warm_turn).then(prev_prompt).when(warm_prefix).then(pl.col("prefix")).otherwise(0)
    auto_cached = pl.when((match >= 1024) & (miss >= pl.col("auto_miss"))).then((match // 128) * 128).otherwise(0)
    # Gemini implicit: the prefix, best effort
    implicit_cached = pl.when(warm_prefix & (pl.col("prefix") >= pl.col("min_cache")) & (miss < 0.8)).then(
        pl.col("prefix") + pl.when(warm_turn).then(pl.col("history") - pl.col("prev_reply")).otherwise(0)).otherwise(0)
    read = (pl.when(explicit).then(read_e).when(pl.col("cache") == "auto").then(auto_cached)
            .when(pl.col("cache") == "implicit").then(implicit_cached).otherwise(0))
    write = pl.when(explicit).then(write_e).otherwise(0)
    frame = frame.with_columns(
        pl.when(ok).then(pl.col("input_all")).otherwise(0).alias("input_tokens"),
        pl.when(ok).then(read).otherwise(0).alias("cache_read_tokens"),
        pl.when(ok & (pl.col("ttl") != "1h")).then(write).otherwise(0).alias("cache_write_5m_tokens"),
        pl.when(ok & (pl.col("ttl") == "1h")).then(write).otherwise(0).alias("cache_write_1h_tokens"),
        pl.when(ok).then(pl.col("reply") + pl.col("reasoning")).otherwise(0).alias("output_tokens"),
        pl.when(ok).then(pl.col("reasoning")).otherwise(0).alias("reasoning_tokens"),
    )
    uncached = pl.col("input_tokens") - pl.col("cache_read_tokens")
    # latency
    frame = frame.with_columns(
        pl.Series("z_ttft", rng.standard_normal(n)), pl.Series("z_tps", rng.standard_normal(n)),
        pl.Series("tail", rng.random(n)), pl.Series("tail_s", rng.exponential(0.5, n)),
        pl.Series("slow_s", rng.uniform(30, 70, n)), pl.Series("err_s", rng.lognormal(np.log(0.8), 0.6, n)),
    )
    busy = pl.col("t_ms").count().over((pl.col("t_ms") // MINUTE_MS), pl.col("model"))
    queue = pl.when(pl.col("provider") == "self_hosted").then((busy * 25.0).clip(0, 4_000)).otherwise(None)
    tps = pl.col("tps") * (0.2 * pl.col("z_tps")).exp()
    ttft_s = (pl.col("ttft_s") * (pl.col("ttft_sigma") * pl.col("z_ttft")).exp()
              + uncached / 1_000 * pl.col("prefill") + pl.col("cache_read_tokens") / 1_000 * pl.col("prefill") * 0.12
              + pl.when(pl.col("tail") < 0.01).then(pl.col("tail_s")).otherwise(0)
              + pl.col("reasoning") / tps + pl.col("extra_ttft_ms") / 1_000 + queue.fill_null(0) / 1_000)
    total_s = (ttft_s + pl.col("reply") / tps + pl.col("extra_latency_ms") / 1_000
               + pl.when(pl.col("slow")).then(pl.col("slow_s")).otherwise(0))
    frame = frame.with_columns(
        pl.when(ok & pl.col("stream"))
        .then((ttft_s * 1_000).round().cast(pl.Int64))
        .otherwise(None)
        .alias("ttft_ms"),
        pl.when(ok)
        .then((total_s * 1_000).round())
        .when(pl.col("status") == "timeout")
        .then(pl.col("timeout_s") * 1_000)
        .otherwise(pl.col("err_s") * 1_000)
        .round()
        .cast(pl.Int64)
        .alias("latency_ms"),
        queue.round().cast(pl.Int64).alias("queue_ms"),
    )
    frame = frame.with_columns(
        ((uncached - pl.col("cache_write_5m_tokens") - pl.col("cache_write_1h_tokens")) * pl.col("p_in")
         + pl.col("cache_read_tokens") * pl.col("p_read") + pl.col("cache_write_5m_tokens") * pl.col("p_w5")
         + pl.col("cache_write_1h_tokens") * pl.col("p_w1h") + pl.col("output_tokens") * pl.col("p_out")).truediv(1e6)
        .alias("cost_est"),
    )
    return frame


def finish(project: Project, pre: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Canonical call records (CALL_COLUMNS + `cost_est`, the list-price cost) sorted by time."""
    frame = _mechanics(pre, rng).sort("t_ms", maintain_order=True)
    short = project.name[3:]
    err_kind = pl.Series(rng.choice(["rate_limit", "overloaded", "server_error"], frame.height, p=[0.5, 0.3, 0.2]))
    http = pl.when(err_kind == "rate_limit").then(429).when(err_kind == "overloaded").then(
        pl.when(pl.col("provider") == "anthropic").then(529).otherwise(503)).otherwise(500)
    sdk = (
        pl.when(pl.col("sdk") != "")
        .then(pl.col("sdk"))
        .when(pl.col("provider") == "anthropic")
        .then(pl.lit("anthropic-python/0.49.0"))
        .when(pl.col("provider") == "openai")
        .then(pl.lit("openai-python/1.82.0"))
        .when(pl.col("provider") == "google")
        .then(pl.lit("google-genai/1.16.1"))
        .otherwise(pl.lit("vllm-openai/0.9.1"))
    )
    frame = frame.with_row_index("_i").with_columns(
        pl.format("{}-{}", pl.lit(short), pl.col("_i").cast(pl.String).str.zfill(8)).alias("event_id"),
        (pl.lit(START) + pl.duration(milliseconds=pl.col("t_ms"))).dt.cast_time_unit("ms").alias("ts"),
        pl.lit("heldout").alias("source"),
        pl.lit(project.name).alias("project"),
        pl.format("key-{}-{}", pl.lit(short), pl.col("provider")).alias("api_key_id"),
        pl.lit("prod").alias("environment"),
        pl.when(pl.col("user_rank") > 0)
        .then(pl.format("u{}", pl.col("user_rank").cast(pl.String).str.zfill(5)))
        .alias("user_id"),
        pl.when(pl.col("session") >= 0)
        .then(pl.format("{}-{}-s{}", pl.lit(short), pl.col("route"), pl.col("session")))
        .alias("session_id"),
        pl.coalesce(
            pl.format("{}-{}-{}", pl.lit(short), pl.col("route"), pl.col("trace")),
            pl.format("{}-t{}", pl.lit(short), pl.col("_i")),
        ).alias("trace_id"),
        pl.format("{}-c{}", pl.lit(short), pl.col("_i")).alias("span_id"),
        pl.format("v{}", pl.col("prompt_version") + 1).alias("prompt_version"),
        pl.format('{{"sdk":"{}"}}', sdk).alias("tags"),
        pl.when(pl.col("provider") == "self_hosted")
        .then(pl.lit("self_hosted"))
        .otherwise(pl.lit("api"))
        .alias("deployment"),
        pl.when(pl.col("status") == "error")
        .then(err_kind)
        .when(pl.col("status") == "timeout")
        .then(pl.lit("timeout"))
        .alias("error_type"),
        pl.when(pl.col("status") == "error").then(http).alias("http_status"),
    )
    keys = frame["prefix_key"].unique().to_list()
    frame = frame.with_columns(
        pl.when(pl.col("prefix") > 0).then(pl.col("prefix_key").replace_strict({k: _hash(short, k) for k in keys}))
        .alias("prompt_prefix_hash"),
    )
    return frame.select(*CALL_COLUMNS, "cost_est")


def finish_runs(project: Project, runs: list[pl.DataFrame]) -> pl.DataFrame:
    """Tool runs in the `tool_runs` table's columns."""
    if not runs:
        return pl.DataFrame()
    short = project.name[3:]
    frame = pl.concat(runs, how="diagonal_relaxed").sort("t_ms", maintain_order=True).with_row_index("_i")
    return frame.with_columns(
        pl.format("{}-r{}", pl.lit(short), pl.col("_i").cast(pl.String).str.zfill(8)).alias("event_id"),
        (pl.lit(START) + pl.duration(milliseconds=pl.col("t_ms"))).dt.cast_time_unit("ms").alias("ts"),
        pl.lit("heldout").alias("source"),
        pl.lit(project.name).alias("project"),
        pl.when(pl.col("user_rank") > 0)
        .then(pl.format("u{}", pl.col("user_rank").cast(pl.String).str.zfill(5)))
        .otherwise(pl.lit(""))
        .alias("user_id"),
        pl.when(pl.col("session") >= 0)
        .then(pl.format("{}-{}-s{}", pl.lit(short), pl.col("route"), pl.col("session")))
        .otherwise(pl.lit(""))
        .alias("session_id"),
        pl.format("{}-tr{}", pl.lit(short), pl.col("_i")).alias("trace_id"),
        pl.lit("").alias("parent_span_id"),
        pl.col("duration_ms").cast(pl.UInt32),
        pl.when(pl.col("status") == "timeout")
        .then(pl.lit("timeout"))
        .when(pl.col("status") == "error")
        .then(pl.lit("tool_error"))
        .otherwise(pl.lit(""))
        .alias("error_type"),
    ).select(RUN_COLUMNS)


# ---------------------------------------------------------------------------------------------
# The documented statistics (point estimates in the documented windows), used to measure when an
# injected incident crosses its threshold; `alerts_heldout_check` prints them around each crossing.

CACHE_HIT = {"warning": 0.50, "critical": 0.30}  # below, 5-min window
NOT_APPLIED = {"warning": 0.10, "critical": 0.50}  # above, 5-min window
ACCUMULATION = 2.0  # × baseline, 60-min window
TOOL_COST = {"warning": 10.0, "critical": 25.0}  # × the tool's baseline cost per run, 60-min window
REASONING_TOKENS = 100_000  # any single call
ESCALATION = {"warning": 0.50, "critical": 0.70}  # 60-min window
SANDBOX = {"warning": 0.05, "critical": 0.20}  # 15-min window, ≥ 3 timeouts
LATENCY_P99_MS = 30_000  # 60-min window, ≥ 100 ok calls
TTFT_SLO_MS = {"chat": 1_000, "other": 3_000}  # or 2× the route's own normal TTFT p99, whichever is higher
SPEND = {"warning": 3.0, "critical": 10.0}  # × the same clock hours of the previous 7 days, 60-min window
SPEND_FLOOR_USD = {"user_id": 5.0, "route": 10.0, "feature": 10.0}


def minute_of(ts: pl.Expr) -> pl.Expr:
    """Minute index from START."""
    return (ts - pl.lit(START)).dt.total_milliseconds() // MINUTE_MS


def at_minute(t: int) -> datetime:
    """The evaluation time that closes minute `t` (its window holds minutes ≤ t)."""
    return START + timedelta(minutes=int(t) + 1)


def minute_sums(frame: pl.DataFrame, exprs: dict[str, pl.Expr], minutes: int) -> dict[str, np.ndarray]:
    """Per-minute sums of each expression over the range."""
    grouped = (
        frame.group_by(minute_of(pl.col("ts")).alias("m"))
        .agg(**exprs)
        .filter(pl.col("m").is_between(0, minutes - 1))
    )
    out = {}
    for name in exprs:
        arr = np.zeros(minutes)
        arr[grouped["m"].to_numpy()] = grouped[name].cast(pl.Float64).fill_null(0).to_numpy()
        out[name] = arr
    return out


def window(a: np.ndarray, w: int) -> np.ndarray:
    """Sum over the `w` minutes ending at each minute."""
    c = np.concatenate([[0.0], np.cumsum(a)])
    i = np.arange(a.size) + 1
    return c[i] - c[np.maximum(i - w, 0)]


def same_window_median(win: np.ndarray, days: int = 7) -> np.ndarray:
    """Median of the same window on each of the previous `days` days (fewer at the start)."""
    stack = np.full((days, win.size), np.nan)
    for d in range(1, min(days, (win.size - 1) // 1_440) + 1):
        stack[d - 1, d * 1_440:] = win[: win.size - d * 1_440]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no history yet
        return np.nanmedian(stack, axis=0)


def hourly_baseline(total: np.ndarray, count: np.ndarray, lo: int, hi: int, min_count: int) -> float:
    """Median over clock hours in minutes [lo, hi) of total/count, hours with ≥ min_count only."""
    lo, hi = max(0, lo - lo % 60), hi - hi % 60
    t = total[lo:hi].reshape(-1, 60).sum(axis=1)
    c = count[lo:hi].reshape(-1, 60).sum(axis=1)
    keep = c >= min_count
    return float(np.median(t[keep] / c[keep]))


def first_minute(mask: np.ndarray, from_minute: int) -> int:
    """First minute ≥ from_minute where mask holds; raises when it never does (a broken injection)."""
    hits = np.flatnonzero(mask[from_minute:])
    if not hits.size:
        raise AssertionError("the injected incident never crosses its documented threshold")
    return from_minute + int(hits[0])


def wilson(p: np.ndarray, n: np.ndarray, z: float = 1.645) -> tuple[np.ndarray, np.ndarray]:
    """One-sided 95% Wilson (lower, upper) bounds of a share p over n trials."""
    with np.errstate(all="ignore"):
        denom = 1 + z**2 / n
        centre = p + z**2 / (2 * n)
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
        return (centre - half) / denom, (centre + half) / denom


@dataclass
class Stat:
    """A documented statistic per evaluation minute: its value and the sample it stands on."""

    value: np.ndarray
    n: np.ndarray


def stat_cache_hit(calls: pl.DataFrame, minutes: int, cond: pl.Expr) -> Stat:
    """Hit ratio over 5 min: explicit caches read/(read+write) tokens (n = calls with cache tokens);
    OpenAI cached/input tokens of calls ≥ 1024 input (n = those calls)."""
    ok = calls.filter(cond & (pl.col("status") == "ok"))
    auto = pl.col("provider") == "openai"
    wrote = pl.col("cache_write_5m_tokens") + pl.col("cache_write_1h_tokens")
    s = minute_sums(
        ok,
        {
            "num": pl.when(auto & (pl.col("input_tokens") >= 1024))
            .then(pl.col("cache_read_tokens"))
            .when(~auto)
            .then(pl.col("cache_read_tokens"))
            .otherwise(0)
            .sum(),
            "den": pl.when(auto & (pl.col("input_tokens") >= 1024))
            .then(pl.col("input_tokens"))
            .when(~auto)
            .then(pl.col("cache_read_tokens") + wrote)
            .otherwise(0)
            .sum(),
            "n": (
                pl.when(auto)
                .then(pl.col("input_tokens") >= 1024)
                .otherwise((pl.col("cache_read_tokens") + wrote) > 0)
            ).sum(),
        },
        minutes,
    )
    num, den = window(s["num"], 5), window(s["den"], 5)
    with np.errstate(all="ignore"):
        return Stat(np.where(den > 0, num / den, np.nan), window(s["n"], 5))


def _eligible() -> pl.Expr:
    minimum = pl.when(pl.col("model").str.starts_with("claude-haiku")).then(2048).when(
        pl.col("provider").is_in(list(ELIGIBLE_MIN))).then(1024).otherwise(None)
    return (pl.col("status") == "ok") & (pl.col("input_tokens") >= minimum).fill_null(False)


def stat_not_applied(calls: pl.DataFrame, minutes: int, cond: pl.Expr) -> Stat:
    """Share of cache-eligible calls with no cache read and no write, over 5 min."""
    none = (pl.col("cache_read_tokens") + pl.col("cache_write_5m_tokens") + pl.col("cache_write_1h_tokens")) == 0
    s = minute_sums(calls.filter(cond & _eligible()), {"none": none.sum(), "n": pl.len()}, minutes)
    n = window(s["n"], 5)
    with np.errstate(all="ignore"):
        return Stat(window(s["none"], 5) / n, n)


def stat_escalation(calls: pl.DataFrame, minutes: int, policy: str) -> Stat:
    """Escalations (step-1 calls) per step-0 call of a routing policy, over 60 min."""
    s = minute_sums(calls.filter(pl.col("routing_policy") == policy), {
        "s0": (pl.col("cascade_step") == 0).sum(), "s1": (pl.col("cascade_step") == 1).sum()}, minutes)
    n = window(s["s0"], 60)
    with np.errstate(all="ignore"):
        return Stat(window(s["s1"], 60) / n, n)


def stat_sandbox(runs: pl.DataFrame, minutes: int, tool: str) -> tuple[Stat, np.ndarray]:
    """(timeout share of a tool's runs over 15 min, timeouts in the window)."""
    s = minute_sums(runs.filter(pl.col("tool_name") == tool), {
        "t": (pl.col("status") == "timeout").sum(), "n": pl.len()}, minutes)
    n, t = window(s["n"], 15), window(s["t"], 15)
    with np.errstate(all="ignore"):
        return Stat(t / n, n), t


def stat_tool_cost(calls: pl.DataFrame, runs: pl.DataFrame, minutes: int, tool: str, before: int) -> Stat:
    """LLM cost per run of a tool over 60 min, as a multiple of its baseline: the median hourly cost
    per run over the 7 days before minute `before` (hours with ≥ 20 runs)."""
    cost = minute_sums(calls.filter(pl.col("tool_name") == tool), {"c": pl.col("cost_est").sum()}, minutes)["c"]
    n = minute_sums(runs.filter(pl.col("tool_name") == tool), {"n": pl.len()}, minutes)["n"]
    base = hourly_baseline(cost, n, before - 7 * 1_440, before, 20)
    wn = window(n, 60)
    with np.errstate(all="ignore"):
        return Stat(window(cost, 60) / wn / base, wn)


def stat_input(calls: pl.DataFrame, minutes: int, route: str, before: int) -> tuple[Stat, Stat]:
    """(input tokens per ok call over 60 min ÷ the median hourly per-call input of the previous 7 days
    (hours with ≥ 100 ok calls), input tokens over 60 min ÷ the same window's median on the previous 7 days)."""
    s = minute_sums(calls.filter((pl.col("route") == route) & (pl.col("status") == "ok")),
                    {"tok": pl.col("input_tokens").sum(), "n": pl.len()}, minutes)
    base = hourly_baseline(s["tok"], s["n"], before - 7 * 1_440, before, 100)
    wt, wn = window(s["tok"], 60), window(s["n"], 60)
    with np.errstate(all="ignore"):
        return Stat(wt / wn / base, wn), Stat(wt / same_window_median(wt), wn)


def stat_spend(calls: pl.DataFrame, minutes: int, cond: pl.Expr) -> tuple[np.ndarray, np.ndarray]:
    """(cost over 60 min, its multiple of the same window's median on the previous 7 days)."""
    c = window(minute_sums(calls.filter(cond), {"c": pl.col("cost_est").sum()}, minutes)["c"], 60)
    with np.errstate(all="ignore"):
        return c, c / same_window_median(c)


def month_to_date(calls: pl.DataFrame, minutes: int, cond: pl.Expr) -> np.ndarray:
    """Month-to-date spend (calendar months, UTC) at the end of each minute."""
    c = minute_sums(calls.filter(cond), {"c": pl.col("cost_est").sum()}, minutes)["c"]
    stamps = START + np.arange(minutes) * timedelta(minutes=1)
    month = np.array([s.year * 12 + s.month for s in stamps[:: 1_440]])  # day granularity is enough: START is midnight
    month = np.repeat(month, 1_440)[:minutes]
    out = np.cumsum(c)
    for m in np.unique(month)[1:]:
        first = int(np.argmax(month == m))
        out[first:] -= out[first - 1]
    return out


def p99_series(calls: pl.DataFrame, column: str, lo: int, hi: int, cond: pl.Expr, w: int = 60,
               min_n: int = 100) -> dict[int, tuple[float, float, int]]:
    """minute → (p99, mean, n) of `column` over ok calls in the w minutes ending there (n ≥ min_n)."""
    f = calls.filter(cond & (pl.col("status") == "ok") & pl.col(column).is_not_null()).select(
        minute_of(pl.col("ts")).alias("m"), pl.col(column).alias("v")).sort("m")
    m, v = f["m"].to_numpy(), f["v"].to_numpy().astype(float)
    out = {}
    for t in range(lo, hi):
        a, b = np.searchsorted(m, t - w + 1), np.searchsorted(m, t, side="right")
        if b - a >= min_n:
            out[t] = (float(np.percentile(v[a:b], 99)), float(v[a:b].mean()), int(b - a))
    return out


def sustained_from(mask: np.ndarray, lo: int, hi: int, sustain: int) -> int | None:
    """First minute t in [lo, hi) where mask holds at t and the `sustain` minutes after it."""
    run = 0
    for t in range(lo, min(hi + sustain, mask.size)):
        run = run + 1 if mask[t] else 0
        if run > sustain:
            return t - sustain
    return None


def _grade(masks: dict[str, np.ndarray], lo: int, hi: int, sustain: int) -> tuple[str, datetime]:
    """The severity the data reaches (sustained for the documented period) and when it crosses."""
    for severity in ("critical", "warning"):
        if severity in masks and (t := sustained_from(masks[severity], lo, hi, sustain)) is not None:
            return severity, at_minute(t)
    raise AssertionError("the injected incident never holds over its documented threshold")


# ---------------------------------------------------------------------------------------------
# Building blocks for projects


def ramp(t: np.ndarray, t0: int, full_min: float, t1: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """A rollout share: `lo` at t0 rising to `hi` after `full_min` minutes, 0 outside [t0, t1)."""
    f = lo + (hi - lo) * np.clip((t - t0) / (full_min * MINUTE_MS), 0, 1)
    return np.where((t >= t0) & (t < t1), f, 0.0)


def incident_days(ctx: Ctx, fractions: list[float]) -> list[int]:
    """A day for each incident, in priority order: the evaluated day nearest `fraction` of the way
    through the range among the weekdays not yet taken, then weekend days, then any day again
    (short ranges)."""
    span = range(ctx.warmup, ctx.days)
    weekday = [d for d in span if (START + timedelta(days=d)).weekday() < 5]
    weekend = [d for d in span if d not in weekday]
    out: list[int] = []
    for f in fractions:
        pool = [d for d in weekday if d not in out] or [d for d in weekend if d not in out] or list(span)
        target = ctx.warmup + f * (ctx.days - ctx.warmup)
        out.append(min(pool, key=lambda d: abs(d + 0.5 - target)))
    return out


def _frames(ctx: Ctx, project: Project, **skip_cascade: bool) -> dict[str, pl.DataFrame]:
    return {r.name: route_frame(ctx, project, r, _rng(project.name, r.name, ctx.days),
                                with_cascade=not skip_cascade.get(r.name.replace("-", "_"), False))
            for r in project.routes}


def _tool_runs(
    ctx: Ctx, project: Project, frames: dict[str, pl.DataFrame]
) -> tuple[dict[str, pl.DataFrame], list[pl.DataFrame]]:
    runs, calls = {}, []
    for tool in project.tools:
        r, c = tool_frames(ctx, project, tool, frames[tool.route], _rng(project.name, tool.name, ctx.days))
        runs[tool.name], calls = r, calls + [c]
    return runs, calls


def _assemble(
    project: Project, ctx: Ctx, frames: list[pl.DataFrame], runs: list[pl.DataFrame]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    pre = pl.concat([f for f in frames if f.height], how="diagonal_relaxed")
    calls = finish(project, pre, _rng(project.name, "mechanics", ctx.days, ctx.warmup))
    return calls, finish_runs(project, runs)


def _minute(t_ms: int) -> int:
    return t_ms // MINUTE_MS


def _hours(h: float) -> int:
    return int(h * 3_600_000)


def _weekdays(sat: float, sun: float) -> tuple[float, ...]:
    return (1.0, 1.0, 1.0, 1.0, 0.95, sat, sun)


# ---------------------------------------------------------------------------------------------
# Incident projects


def helpdesk(ctx: Ctx) -> tuple[pl.DataFrame, pl.DataFrame, list[Incident], list]:
    """Customer support (EU + US business hours): streamed Sonnet chat with conversation caching,
    a Haiku→Sonnet triage cascade, reply drafts with a large cached style guide, a nightly batch."""
    office = (((9.5, 2.6, 0.8), (15.5, 3.2, 1.0)))
    p = Project("ho-helpdesk", n_users=40_000, zipf=0.9, routes=[
        Route("support-chat", Rhythm(7.5, office, night=0.06, week=_weekdays(0.45, 0.4), noise=0.15),
              (("claude-sonnet-4-5", 1.0),), feature="chat", team="support", stream=True, chat=True, turns=5,
              think_s=40, window=10, prefix=3_800,
              prompts=((0, 3_800, True), (ctx.eval_day(0.3) + 0.45, 3_800, False),
                       (ctx.eval_day(0.6) + 0.4, 4_100, True)),
              message=Dist(120, 0.8, 2_000), reply=Dist(260, 0.5, 1_200), anon=0.3),
        Route("ticket-triage", Rhythm(3.5, office, night=0.1, week=_weekdays(0.5, 0.45)),
              (("claude-haiku-4-5", 1.0),), feature="triage", team="support", prefix=1_300,
              message=Dist(250, 0.6, 700), reply=Dist(40, 0.4, 120), users=0.5,
              cascade=Cascade("triage-cascade", "claude-sonnet-4-5", rate=0.38)),
        Route("reply-draft", Rhythm(3.5, office, night=0.04, week=_weekdays(0.3, 0.25), noise=0.2),
              (("claude-sonnet-4-5", 1.0),), feature="agent-assist", team="support", prefix=5_200,
              context=Dist(1_800, 0.8, 12_000), reply=Dist(300, 0.45, 1_200), users=0.01),
        Route("csat-summary", Rhythm(14.0, ((2.2, 0.35, 1.0),), night=0.0, week=(1,) * 7, noise=0.1),
              (("gpt-4.1-mini", 1.0),), feature="analytics", team="cx-ops", prefix=2_000,
              message=Dist(700, 0.5, 3_000), reply=Dist(90, 0.4), anon=1.0),
    ], tools=[Tool("kb_search", "support-chat", per_call=0.6, duration=Dist(450, 0.5, 8_000), llm_share=0.5,
                   llm_in=Dist(2_400, 0.4, 6_000), llm_out=Dist(120, 0.5))])
    frames = _frames(ctx, p)
    rng = _rng(p.name, "incidents", ctx.days, ctx.warmup)
    d_collapse, d_sdk, d_ttft = incident_days(ctx, [0.45, 0.15, 0.8])
    # 1b — an SDK rollout drops cache_control (canary 10%, then 35% of the workers), rolled back after 5 h
    na0 = ctx.at(d_sdk, 13.3)
    na1 = na0 + _hours(5)
    f = frames["reply-draft"]
    t = f["t_ms"].to_numpy()
    share = np.where(
        t < na0 + 40 * MINUTE_MS,
        ramp(t, na0, 1, na1, 0.05, 0.05),
        ramp(t, na0 + 40 * MINUTE_MS, 20, na1, 0.05, 0.35),
    )
    new_sdk = rng.random(f.height) < share
    frames["reply-draft"] = f.with_columns(
        (pl.col("cache_on") & ~pl.Series(new_sdk)).alias("cache_on"),
        pl.when(pl.Series(new_sdk)).then(pl.lit("anthropic-python/0.52.0")).otherwise(pl.col("sdk")).alias("sdk"))
    # 1 — a prompt change puts the current time at the top of the system prompt (rolling deploy, 12 min)
    cc0 = ctx.at(d_collapse, 14.6)
    cc1 = cc0 + _hours(2.5)
    f = frames["support-chat"]
    t = f["t_ms"].to_numpy()
    broken = pl.Series(rng.random(f.height) < ramp(t, cc0, 12, cc1))
    frames["support-chat"] = f.with_columns(
        pl.when(broken).then(1_000_000 + pl.col("t_ms") // 1_000).otherwise(pl.col("variant")).alias("variant"),
        pl.when(broken).then(pl.lit(9)).otherwise(pl.col("prompt_version")).alias("prompt_version"),
        pl.when(broken).then(pl.col("prefix") + 25).otherwise(pl.col("prefix")).alias("prefix"))
    # 7 — the provider's queue delays first tokens for a growing share of streamed chat calls
    tt0 = ctx.at(d_ttft, 16.2)
    tt1 = tt0 + _hours(2)
    f = frames["support-chat"]
    t = f["t_ms"].to_numpy()
    slow = rng.random(f.height) < ramp(t, tt0, 30, tt1, 0.0, 0.09)
    frames["support-chat"] = f.with_columns(
        pl.when(pl.Series(slow))
        .then(pl.Series(rng.lognormal(np.log(5_500), 0.35, f.height)))
        .otherwise(0.0)
        .alias("extra_ttft_ms")
    )
    runs, tool_calls = _tool_runs(ctx, p, frames)
    calls, tool_runs = _assemble(p, ctx, list(frames.values()) + tool_calls, list(runs.values()))
    M = ctx.minutes
    chat = pl.col("route") == "support-chat"
    na = stat_not_applied(calls, M, pl.col("route") == "reply-draft")
    sev, na_at = _grade({s: (wilson(na.value, na.n)[0] > v) & (na.n >= 10) for s, v in NOT_APPLIED.items()},
                        _minute(na0), _minute(na1), 5)
    hit = stat_cache_hit(calls, M, chat & (pl.col("model") == "claude-sonnet-4-5"))
    sev_c, cc_at = _grade({s: (wilson(hit.value, hit.n)[1] < v) & (hit.n >= 20) for s, v in CACHE_HIT.items()},
                          _minute(cc0), _minute(cc1), 5)
    normal = ttft_normal(calls, "support-chat", _minute(tt0))
    ttft = p99_series(calls, "ttft_ms", _minute(tt0), _minute(tt1), chat & pl.col("stream"))
    mask = np.zeros(M, dtype=bool)
    mask[[m for m, (v, _, _) in ttft.items() if v >= normal["threshold"]]] = True
    sev_t, tt_at = _grade({"warning": mask}, _minute(tt0), _minute(tt1), 10)
    incidents = [
        Incident("cache_not_applied (SDK rollout drops cache_control)", "cache_not_applied", {"route": "reply-draft"},
                 _dt(na0), _dt(na1), sev, na_at, also=("spend_spike",)),
        Incident("cache_hit_collapse (prefix broken by a prompt change)", "cache_hit_collapse",
                 {"route": "support-chat"}, _dt(cc0), _dt(cc1), sev_c, cc_at, also=("spend_spike",)),
        Incident("latency_tail (TTFT p99 over SLO on a streamed chat route)", "latency_tail", {"route": "support-chat"},
                 _dt(tt0), _dt(tt1), sev_t, tt_at),
    ]
    return calls, tool_runs, incidents, []


def ttft_normal(calls: pl.DataFrame, route: str, before: int) -> dict[str, float]:
    """A streamed route's normal TTFT p99 (ok calls, the 7 days before `before`) and the threshold an
    incident must reach: 2× that normal, never under the documented chat / other SLO."""
    lo = START + timedelta(minutes=before - 7 * 1_440)
    hi = START + timedelta(minutes=before)
    v = calls.filter(
        (pl.col("route") == route) & (pl.col("status") == "ok") & pl.col("ts").is_between(lo, hi, "left")
    )["ttft_ms"]
    normal = float(np.percentile(v.drop_nulls().to_numpy(), 99))
    slo = TTFT_SLO_MS["chat"] if "chat" in route else TTFT_SLO_MS["other"]
    return {"normal_p99": normal, "threshold": max(slo, 2 * normal)}


def _dt(t_ms: int) -> datetime:
    return START + timedelta(milliseconds=int(t_ms))


def research(ctx: Ctx) -> tuple[pl.DataFrame, pl.DataFrame, list[Incident], list]:
    """A research assistant (US-heavy): a GPT-5 agent whose steps call web search / fetch tools, a
    Sonnet notebook assistant that runs code in a sandbox, streamed Gemini answers, a self-hosted checker."""
    us = ((15.0, 4.0, 1.0), (8.5, 2.5, 0.45))
    p = Project("ho-research", n_users=6_000, zipf=1.05, routes=[
        Route("deep-research", Rhythm(2.0, us, night=0.12, week=_weekdays(0.6, 0.55), noise=0.22),
              (("gpt-5", 1.0),), feature="research", team="research", chat=True, turns=6, think_s=25, window=100,
              prefix=2_400, message=Dist(2_200, 0.8, 20_000), reply=Dist(350, 0.6, 3_000),
              reasoning=Dist(3_500, 1.0, 60_000), timeout_s=900, slow_rate=0, users=0.05),
        Route("notebook-assist", Rhythm(4.5, us, night=0.05, week=_weekdays(0.35, 0.3), noise=0.2),
              (("claude-sonnet-4-5", 1.0),), feature="notebooks", team="research", stream=True, chat=True, turns=5,
              think_s=60, window=10, prefix=2_900, ttl="1h", message=Dist(600, 0.8, 8_000),
              reply=Dist(350, 0.45, 1_800), users=0.3),
        Route("web-answer", Rhythm(5.5, us, night=0.15, week=_weekdays(0.8, 0.8), noise=0.25, bursts_per_day=0.3),
              (("gemini-2.5-flash", 1.0),), feature="answers", team="search", stream=True, prefix=1_500,
              context=Dist(3_500, 0.5, 20_000), reply=Dist(420, 0.5, 2_000), anon=0.5),
        Route("citation-check", Rhythm(3.5, us, night=0.1, week=_weekdays(0.6, 0.55)),
              (("qwen2.5-32b-instruct", 1.0),), feature="research", team="research", message=Dist(1_800, 0.5, 8_000),
              reply=Dist(80, 0.4), cache_on=False, nodes=("gpu-r1", "gpu-r2", "gpu-r3"), users=0.05),
    ], tools=[
        Tool("web_search", "deep-research", per_call=1.2, duration=Dist(900, 0.5, 10_000)),
        Tool("web_fetch", "deep-research", per_call=2.5, duration=Dist(1_800, 0.8, 25_000), timeout_ms=30_000,
             timeout_rate=0.0015, llm_share=0.35, llm_in=Dist(2_600, 0.5, 9_000), llm_out=Dist(260, 0.5)),
        Tool("code_exec", "notebook-assist", per_call=0.9, duration=Dist(2_500, 1.0, 110_000), error_rate=0.04,
             timeout_rate=0.003, timeout_ms=120_000),
    ])
    frames = _frames(ctx, p)
    runs, tool_calls = _tool_runs(ctx, p, frames)
    rng = _rng(p.name, "incidents", ctx.days, ctx.warmup)
    d_sandbox, d_tool, d_latency, d_reasoning = incident_days(ctx, [0.4, 0.2, 0.6, 0.85])
    # 3 — the PDF extractor of web_fetch is switched to gemini-2.5-pro (config rollout over 20 min)
    lt0 = ctx.at(d_tool, 15.0)
    lt1 = lt0 + _hours(6)
    fetch = runs["web_fetch"]
    t = fetch["t_ms"].to_numpy()
    pdf = fetch.filter(pl.Series(rng.random(fetch.height) < 0.06 * ramp(t, lt0, 20, lt1)) & (pl.col("status") == "ok"))
    tool = next(x for x in p.tools if x.name == "web_fetch")
    tool_calls.append(tool_llm_calls(ctx, p, tool, pdf, rng, model="gemini-2.5-pro", llm_in=Dist(9_000, 0.5, 60_000),
                                     llm_out=Dist(700, 0.5, 4_000), reasoning=Dist(1_500, 0.6, 8_000)))
    # 6 — a sandbox image whose imports hang for one library (16% of runs) rolls out over 20 min
    sb0 = ctx.at(d_sandbox, 14.0)
    sb1 = sb0 + _hours(3)
    code = runs["code_exec"]
    t = code["t_ms"].to_numpy()
    hang = pl.Series(rng.random(code.height) < 0.16 * ramp(t, sb0, 20, sb1))
    runs["code_exec"] = code.with_columns(
        pl.when(hang).then(pl.lit("timeout")).otherwise(pl.col("status")).alias("status"),
        pl.when(hang).then(pl.lit(120_000)).otherwise(pl.col("duration_ms")).alias("duration_ms"))
    # 7 — a provider region stalls 4% of streamed answers for 35–95 s mid-stream
    la0 = ctx.at(d_latency, 17.0)
    la1 = la0 + _hours(2.5)
    f = frames["web-answer"]
    t = f["t_ms"].to_numpy()
    stall = pl.Series(rng.random(f.height) < ramp(t, la0, 15, la1, 0.0, 0.04))
    frames["web-answer"] = f.with_columns(
        pl.when(stall).then(pl.Series(rng.uniform(35_000, 95_000, f.height))).otherwise(0.0).alias("extra_latency_ms"))
    # 4 — reasoning effort raised without a budget: most calls think longer, four run past 100k tokens
    rr0 = ctx.at(d_reasoning, 13.0)
    rr1 = rr0 + _hours(3)
    f = frames["deep-research"]
    t = f["t_ms"].to_numpy()
    high = (t >= rr0) & (t < rr1)
    pick = np.flatnonzero((t >= rr0 + 8 * MINUTE_MS) & (t < rr0 + 110 * MINUTE_MS) & (f["status"] == "ok").to_numpy())
    runaway = np.zeros(f.height, dtype=bool)
    runaway[pick[np.linspace(0, pick.size - 1, 4).astype(int)]] = True
    reasoning = f["reasoning"].to_numpy()
    reasoning = np.where(high, np.minimum(reasoning * 1.8, 60_000), reasoning).astype(np.int64)
    reasoning = np.where(runaway, rng.integers(104_000, 126_000, f.height), reasoning)
    frames["deep-research"] = f.with_columns(
        pl.Series("reasoning", reasoning),
        pl.when(pl.Series(runaway))
        .then(pl.col("reply").clip(0, 1_500))
        .otherwise(pl.col("reply"))
        .alias("reply"),
    )
    calls, tool_runs = _assemble(p, ctx, list(frames.values()) + tool_calls, list(runs.values()))
    M = ctx.minutes
    tc = stat_tool_cost(calls, tool_runs, M, "web_fetch", _minute(lt0))
    sev_l, lt_at = _grade(
        {s: (tc.value >= v) & (tc.n >= 20) for s, v in TOOL_COST.items()}, _minute(lt0), _minute(lt1), 15
    )
    sb, timeouts = stat_sandbox(tool_runs, M, "code_exec")
    sev_s, sb_at = _grade(
        {s: (wilson(sb.value, sb.n)[0] >= v) & (sb.n >= 10) & (timeouts >= 3) for s, v in SANDBOX.items()},
        _minute(sb0),
        _minute(sb1),
        5,
    )
    p99 = p99_series(calls, "latency_ms", _minute(la0), _minute(la1), pl.col("route") == "web-answer")
    mask = np.zeros(M, dtype=bool)
    mask[[m for m, (v, _, _) in p99.items() if v >= LATENCY_P99_MS]] = True
    sev_a, la_at = _grade({"critical": mask}, _minute(la0), _minute(la1), 10)
    big = calls.filter((pl.col("route") == "deep-research") & (pl.col("reasoning_tokens") >= REASONING_TOKENS))
    incidents = [
        Incident("llm_calls_in_tools (a tool's extractor switched to an expensive model)", "llm_calls_in_tools",
                 {"tool_name": "web_fetch"}, _dt(lt0), _dt(lt1), sev_l, lt_at, also=("spend_spike",)),
        Incident("sandbox_runaway (sandbox image whose imports hang)", "sandbox_runaway", {"tool_name": "code_exec"},
                 _dt(sb0), _dt(sb1), sev_s, sb_at),
        Incident("latency_tail (provider stalls: p99 ≥ 30 s, mean fine)", "latency_tail", {"route": "web-answer"},
                 _dt(la0), _dt(la1), sev_a, la_at),
        Incident("reasoning_runaway (effort raised without a reasoning budget)", "reasoning_runaway",
                 {"route": "deep-research"}, _dt(rr0), _dt(rr1), "critical", big["ts"].min().astimezone(UTC),
                 also=("spend_spike", "latency_tail")),
    ]
    return calls, tool_runs, incidents, []


def devtools(ctx: Ctx) -> tuple[pl.DataFrame, pl.DataFrame, list[Incident], list]:
    """A coding assistant (EU + US developers, quiet weekends): multi-turn GPT-4.1 chat with trimmed
    history, an agent mode, a lint-fix cascade, commit messages, a nightly Haiku review batch."""
    dev = ((10.0, 3.0, 0.8), (16.5, 3.5, 1.0))
    p = Project("ho-devtools", n_users=8_000, zipf=1.15, routes=[
        Route("copilot-chat", Rhythm(7.0, dev, night=0.05, week=_weekdays(0.3, 0.28), noise=0.15),
              (("gpt-4.1", 1.0),), feature="chat", team="ide", stream=True, chat=True, turns=12, think_s=70, window=4,
              prefix=3_200, message=Dist(900, 0.9, 12_000), reply=Dist(450, 0.7, 4_000), users=0.2),
        Route("agent-run", Rhythm(3.5, dev, night=0.08, week=_weekdays(0.35, 0.3), noise=0.2),
              (("gpt-4.1", 1.0),), feature="agent", team="agents", chat=True, turns=14, think_s=8, window=24,
              prefix=4_500, message=Dist(1_500, 0.8, 12_000), reply=Dist(180, 0.6, 2_000), users=0.1, timeout_s=300),
        Route("lint-fix", Rhythm(6.0, dev, night=0.06, week=_weekdays(0.3, 0.3), noise=0.15),
              (("gpt-4.1-mini", 1.0),), feature="lint", team="quality", prefix=1_800, message=Dist(150, 0.5, 800),
              context=Dist(600, 0.6, 2_500), reply=Dist(220, 0.5, 1_500), users=0.3,
              cascade=Cascade("fix-cascade", "gpt-4.1", rate=0.40, swing=0.04)),
        Route("commit-msg", Rhythm(4.0, dev, night=0.04, week=_weekdays(0.25, 0.25), noise=0.2),
              (("gpt-4.1-mini", 1.0),), feature="commit", team="ide", prefix=350, message=Dist(450, 0.6, 600),
              reply=Dist(40, 0.4, 200), users=0.3),
        Route("review-batch", Rhythm(16.0, ((2.0, 0.7, 1.0),), night=0.0, week=(1,) * 7, noise=0.1),
              (("claude-haiku-4-5", 1.0),), feature="review", team="quality", prefix=2_600, ttl="1h",
              context=Dist(3_000, 0.8, 30_000), reply=Dist(300, 0.6, 2_000), anon=1.0),
    ])
    rng = _rng(p.name, "incidents", ctx.days, ctx.warmup)
    frames = _frames(ctx, p, lint_fix=True)
    d_stale, d_accumulation, d_spend = incident_days(ctx, [0.25, 0.55, 0.85])
    # 5 — the cascade's cheap model is upgraded (gpt-4.1-mini → gpt-5-mini, 20% → 100% over 30 min);
    # the router, calibrated on the old model, escalates most answers until it is retrained
    sr0 = ctx.at(d_stale, 14.2)
    sr1 = sr0 + _hours(6)
    f = frames["lint-fix"]
    t = f["t_ms"].to_numpy()
    route = next(r for r in p.routes if r.name == "lint-fix")
    share = escalation_share(ctx, route.cascade, _rng(p.name, "lint-fix", "share", ctx.days))
    upgraded = (t >= sr0) & (
        rng.random(f.height) < np.where(t >= sr0, 0.2 + 0.8 * np.clip((t - sr0) / (30 * MINUTE_MS), 0, 1), 0)
    )
    stale = upgraded & (t < sr1)
    p_call = np.where(
        stale,
        np.clip(rng.normal(0.80, 0.03, f.height), 0, 0.95),
        share[np.clip(t // MINUTE_MS, 0, ctx.minutes - 1)],
    )
    f = f.with_columns(
        pl.when(pl.Series(upgraded)).then(pl.lit("gpt-5-mini")).otherwise(pl.col("model")).alias("model"),
        pl.when(pl.Series(upgraded))
        .then(pl.Series(Dist(800, 0.8, 8_000).draw(rng, f.height)))
        .otherwise(pl.col("reasoning"))
        .alias("reasoning"),
    )
    frames["lint-fix"] = apply_cascade(ctx, f, route.cascade, rng, p_call)
    # 2 — a refactor of the conversation store stops trimming history for sessions that start on the new build
    pa0 = ctx.at(d_accumulation, 13.5)
    pa1 = pa0 + _hours(8)
    f = frames["copilot-chat"]
    first = f.group_by("session").agg(pl.col("t_ms").min().alias("s0"))
    s0 = f.join(first, on="session", how="left")["s0"].to_numpy()
    t = f["t_ms"].to_numpy()
    on_new = rng.random(first.height)[np.searchsorted(np.sort(first["session"].to_numpy()), f["session"].to_numpy())]
    untrimmed = (on_new < ramp(s0, pa0, 20, pa1)) & (t < pa1)
    frames["copilot-chat"] = f.with_columns(
        pl.when(pl.Series(untrimmed)).then(10**6).otherwise(pl.col("window")).alias("window")
    )
    # spend spike — one developer's agent loops: 45-step sessions back to back for 100 minutes
    sp0 = ctx.at(d_spend, 15.3)
    sp1 = sp0 + 100 * MINUTE_MS
    steps = int(100 * 60 / 4)
    gaps = rng.lognormal(np.log(4_000), 0.3, steps)
    ts = sp0 + np.cumsum(gaps).astype(np.int64)
    k = np.arange(steps)
    agent = next(r for r in p.routes if r.name == "agent-run")
    loop_spec = replace(agent, message=Dist(2_600, 0.4), reply=Dist(150, 0.4), error_rate=0.0, timeout_rate=0.0)
    loop = rows(loop_spec, ts, 10**7 + k // 45, k % 45, np.full(ts.size, 3), "gpt-4.1", rng, window=10**6)
    calls, tool_runs = _assemble(p, ctx, list(frames.values()) + [loop], [])
    M = ctx.minutes
    esc = stat_escalation(calls, M, "fix-cascade")
    sev_r, sr_at = _grade({s: (wilson(esc.value, esc.n)[0] > v) & (esc.n >= 200) for s, v in ESCALATION.items()},
                          _minute(sr0), _minute(sr1), 10)
    per_call, per_hour = stat_input(calls, M, "copilot-chat", _minute(pa0))
    sev_p, pa_at = _grade(
        {
            "critical": (per_call.value >= ACCUMULATION)
            & (per_hour.value >= ACCUMULATION)
            & (per_call.n >= 100),
            "warning": (per_call.value >= ACCUMULATION) & (per_call.n >= 100),
        },
        _minute(pa0),
        _minute(pa1),
        15,
    )
    cost, multiple = stat_spend(calls, M, pl.col("user_id") == "u00003")
    sev_s, sp_at = _grade({s: (multiple >= v) & (cost >= SPEND_FLOOR_USD["user_id"]) for s, v in SPEND.items()},
                          _minute(sp0), _minute(sp1), 15)
    incidents = [
        Incident("stale_routing (cheap-model upgrade behind an uncalibrated router)", "stale_routing",
                 {"routing_policy": "fix-cascade"}, _dt(sr0), _dt(sr1), sev_r, sr_at, also=("spend_spike",)),
        Incident("prompt_accumulation (history no longer trimmed)", "prompt_accumulation", {"route": "copilot-chat"},
                 _dt(pa0), _dt(pa1), sev_p, pa_at, also=("spend_spike", "latency_tail")),
        Incident("spend_spike (one user's agent loop)", "spend_spike", {"user_id": "u00003"}, _dt(sp0), _dt(sp1),
                 sev_s, sp_at, also=("spend_spike", "prompt_accumulation", "latency_tail")),
    ]
    return calls, tool_runs, incidents, []


def insights(ctx: Ctx) -> tuple[pl.DataFrame, pl.DataFrame, list[Incident], list]:
    """BI assistant (EU office hours): Gemini text-to-SQL chat over a large cached schema, Sonnet
    reports with 1 h caching, a nightly Gemini Pro insight batch, a self-hosted explainer running
    around the clock, ad-hoc scripts without user, feature or team. The analytics team has a monthly
    budget; a backfill of the insight batch spends the rest of it in an afternoon."""
    eu = ((9.5, 2.5, 1.0), (14.0, 2.5, 0.9))
    p = Project("ho-insights", n_users=1_500, zipf=1.0, routes=[
        Route("ask-data", Rhythm(4.0, eu, night=0.03, week=_weekdays(0.15, 0.12), noise=0.2),
              (("gemini-2.5-flash", 1.0),),
              feature="ask", team="analytics", stream=True, chat=True, turns=4, think_s=60, window=8, prefix=6_000,
              message=Dist(120, 0.6, 1_500), reply=Dist(350, 0.5, 2_500)),
        Route("report-writer", Rhythm(1.2, eu, night=0.02, week=_weekdays(0.05, 0.05), noise=0.25),
              (("claude-sonnet-4-5", 1.0),),
              feature="reports", team="finance", prefix=2_200, ttl="1h", context=Dist(4_000, 0.6, 30_000),
              reply=Dist(1_000, 0.5, 4_000), users=0.1),
        Route("insight-batch", Rhythm(6.0, ((1.0, 0.6, 1.0),), night=0.0, week=(1,) * 7, noise=0.1),
              (("gemini-2.5-pro", 1.0),), feature="insights", team="analytics", prefix=3_000,
              context=Dist(12_000, 0.5, 80_000), reasoning=Dist(1_800, 0.7, 20_000), reply=Dist(800, 0.5, 4_000),
              anon=1.0, timeout_s=600),
        Route("anomaly-explain", Rhythm(0.5, ((12.0, 12.0, 0.0),), night=1.0, week=(1,) * 7, noise=0.1),
              (("llama-3.3-70b-instruct", 1.0),), feature="monitoring", team="analytics", message=Dist(1_500, 0.5),
              reply=Dist(250, 0.5), cache_on=False, nodes=("gpu-i1",), anon=1.0),
        Route("adhoc", Rhythm(0.03, eu, night=0.0, week=_weekdays(0.0, 0.0), noise=0.5), (("gpt-4.1-mini", 1.0),),
              message=Dist(400, 0.7, 900), reply=Dist(200, 0.6), anon=1.0),
    ])
    frames = _frames(ctx, p)
    # budget — a backfill re-runs the insight batch over a quarter at ~35 calls/min from 09:00
    day = incident_days(ctx, [0.75])[0]
    b0 = ctx.at(day, 9.0)
    month_end = datetime(_dt(b0).year + (_dt(b0).month == 12), _dt(b0).month % 12 + 1, 1, tzinfo=UTC)
    if (month_end - _dt(b0)) < timedelta(hours=40) and (month_end - START).days + 1 < ctx.days:
        b0 = int((month_end - START).total_seconds() * 1_000) + _hours(33)  # the 2nd of next month, 09:00
    batch = next(r for r in p.routes if r.name == "insight-batch")
    rng = _rng(p.name, "incidents", ctx.days, ctx.warmup)
    ts = np.sort(b0 + rng.integers(0, _hours(30), 35 * 60 * 30))
    backfill = rows(replace(batch, error_rate=0.002, timeout_rate=0.0), ts, np.full(ts.size, -1), np.zeros(ts.size),
                    np.zeros(ts.size), "gemini-2.5-pro", rng)
    analytics = pl.col("team") == "analytics"
    calls, _ = _assemble(p, ctx, list(frames.values()) + [backfill], [])
    M = ctx.minutes
    mtd = month_to_date(calls, M, analytics)
    daily = window(minute_sums(calls.filter(analytics), {"c": pl.col("cost_est").sum()}, M)["c"], 7 * 1_440) / 7
    m0 = _minute(b0) - 1
    days_left = (month_end - at_minute(m0)).total_seconds() / 86_400
    forecast = mtd[m0] + daily[m0] * days_left
    budget = float(np.ceil(max(mtd[m0] / 0.4, forecast / 0.75) / 50) * 50)  # before: < 40% spent, forecast < 75%
    crossed = first_minute(mtd >= budget, _minute(b0))
    b1 = min(at_minute(crossed) + timedelta(hours=3), _dt(b0) + timedelta(hours=30))
    # the same traffic with the backfill stopped three hours after the budget is spent
    backfill = backfill.filter(pl.col("t_ms") < int((b1 - START).total_seconds() * 1_000))
    calls, _ = _assemble(p, ctx, list(frames.values()) + [backfill], [])
    mtd = month_to_date(calls, M, analytics)
    crossed = first_minute(mtd >= budget, _minute(b0))
    incidents = [Incident("budget (a backfill spends the team's month)", "budget", {"team": "analytics"}, _dt(b0), b1,
                          "critical", at_minute(crossed), also=("spend_spike",))]
    budgets = [{"team": "analytics", "project": p.name, "monthly_usd": Decimal(str(int(budget)))}]
    return calls, pl.DataFrame(), incidents, budgets


# ---------------------------------------------------------------------------------------------
# Quiet projects: everything here is normal operation that must not page


def _roomy_budget(calls: pl.DataFrame, ctx: Ctx, cond: pl.Expr, **scope: str) -> dict[str, str | Decimal]:
    """A monthly budget three times the scope's pace: never 50% spent, never forecast over 100%."""
    per_day = float(calls.filter(cond)["cost_est"].sum()) / ctx.days
    return {**scope, "monthly_usd": Decimal(str(int(np.ceil(per_day * 30 * 3 / 10) * 10)))}


def shopfront(ctx: Ctx) -> tuple[pl.DataFrame, pl.DataFrame, list[Incident], list]:
    """E-commerce (US evenings, busier weekends): product Q&A chat on GPT-4.1-mini, Gemini reranking,
    a gift finder that launches mid-range and then doubles, self-hosted review summaries, promo
    bursts, a sale day, a market launch that doubles Q&A traffic, a rare ad-hoc script."""
    us_evening = ((1.0, 3.0, 1.0), (18.0, 3.0, 0.7))
    consumer = (0.9, 0.9, 0.9, 0.95, 1.05, 1.2, 1.15)
    launch = ctx.eval_day(0.35) + 0.6
    sale = ctx.eval_day(0.6)
    born = ctx.eval_day(0.2) + 0.5
    p = Project("ho-shopfront", n_users=60_000, zipf=0.95, routes=[
        Route("product-qa", Rhythm(4.0, us_evening, night=0.12, week=consumer, noise=0.2, bursts_per_day=0.5,
                                   burst_gain=1.3, shifts=((sale, 1.8),), launch=(launch, 2.0)),
              (("gpt-4.1-mini", 1.0),), feature="qa", team="storefront", stream=True, chat=True, turns=3, think_s=35,
              window=6, prefix=2_800, prompts=((0, 2_800, True), (ctx.eval_day(0.5) + 0.3, 2_800, False)),
              message=Dist(60, 0.7, 400), reply=Dist(220, 0.5, 1_200), anon=0.4, auto_miss=0.05),
        Route("search-rerank", Rhythm(4.0, us_evening, night=0.15, week=consumer, noise=0.25, bursts_per_day=0.5,
                                      burst_gain=1.3, shifts=((sale, 2.0),)),
              (("gemini-2.5-flash-lite", 1.0),), feature="search", team="search", prefix=1_200,
              context=Dist(1_500, 0.5, 6_000), reply=Dist(60, 0.4), anon=0.6),
        Route("gift-finder", Rhythm(3.0, us_evening, night=0.1, week=consumer, noise=0.25, born=born,
                                    launch=(ctx.eval_day(0.55) + 0.5, 2.0)),
              (("claude-haiku-4-5", 1.0),), feature="gifts", team="storefront", stream=True, chat=True, turns=4,
              think_s=30, window=8, prefix=2_300, message=Dist(50, 0.6, 300), reply=Dist(280, 0.5, 1_200), anon=0.3),
        Route("review-summary", Rhythm(2.5, ((6.0, 1.5, 1.0),), night=0.05, week=(1,) * 7, noise=0.15),
              (("llama-3.3-70b-instruct", 1.0),), feature="reviews", team="catalog", message=Dist(2_500, 0.6, 12_000),
              reply=Dist(150, 0.4), cache_on=False, nodes=("gpu-s1", "gpu-s2"), anon=1.0),
        Route("adhoc", Rhythm(0.02, ((15.0, 4.0, 1.0),), night=0.0, week=_weekdays(0.0, 0.0), noise=0.5),
              (("gpt-4.1-mini", 1.0),), message=Dist(500, 0.5, 900), reply=Dist(300, 0.5), anon=1.0),
    ])
    frames = _frames(ctx, p)
    calls, runs = _assemble(p, ctx, list(frames.values()), [])
    return calls, runs, [], [_roomy_budget(calls, ctx, pl.lit(True), project=p.name)]


def legal(ctx: Ctx) -> tuple[pl.DataFrame, pl.DataFrame, list[Incident], list]:
    """Contract work (EU weekdays, near-silent weekends): Sonnet contract review with 1 h caching and
    prompt versions (one keeps the prefix, one replaces it), short Haiku clause classification below
    the cacheable length, self-hosted redaction, a tiny Opus route, a 20-minute provider error blip."""
    eu = ((9.0, 2.2, 1.0), (14.0, 2.2, 0.9))
    p = Project("ho-legal", n_users=900, zipf=0.8, routes=[
        Route("contract-review", Rhythm(2.5, eu, night=0.01, week=_weekdays(0.06, 0.04), noise=0.2),
              (("claude-sonnet-4-5", 1.0),), feature="review", team="legal-ops", stream=True, chat=True, turns=6,
              think_s=120, window=12, prefix=9_000, ttl="1h",
              prompts=((0, 9_000, True), (ctx.eval_day(0.3) + 0.4, 9_000, False),
                       (ctx.eval_day(0.7) + 0.45, 9_400, True)),
              message=Dist(600, 0.7, 6_000), reply=Dist(380, 0.4, 1_800)),
        Route("clause-classify", Rhythm(8.0, eu, night=0.01, week=_weekdays(0.05, 0.04), noise=0.2),
              (("claude-haiku-4-5", 1.0),), feature="classify", team="legal-ops", prefix=800,
              message=Dist(400, 0.6, 1_100), reply=Dist(20, 0.3, 60)),
        Route("redact", Rhythm(5.0, eu, night=0.02, week=_weekdays(0.05, 0.04), noise=0.2),
              (("llama-3.3-70b-instruct", 1.0),), feature="redaction", team="privacy", message=Dist(3_000, 0.6, 16_000),
              reply=Dist(1_200, 0.5, 8_000), cache_on=False, nodes=("gpu-l1", "gpu-l2"), timeout_s=300),
        Route("exec-summary", Rhythm(0.04, eu, night=0.0, week=_weekdays(0.0, 0.0), noise=0.4),
              (("claude-opus-4-1", 1.0),), feature="review", team="legal-ops", prefix=1_500,
              context=Dist(6_000, 0.5, 40_000), reply=Dist(700, 0.4, 2_500)),
    ])
    frames = _frames(ctx, p)
    rng = _rng(p.name, "quiet", ctx.days)
    blip0 = ctx.at(incident_days(ctx, [0.4])[0], 10.6)
    f = frames["contract-review"]
    t = f["t_ms"].to_numpy()
    err = (t >= blip0) & (t < blip0 + 20 * MINUTE_MS) & (rng.random(f.height) < 0.15)
    frames["contract-review"] = f.with_columns(
        pl.when(pl.Series(err)).then(pl.lit("error")).otherwise(pl.col("status")).alias("status")
    )
    calls, runs = _assemble(p, ctx, list(frames.values()), [])
    return calls, runs, [], [_roomy_budget(calls, ctx, pl.col("team") == "legal-ops", team="legal-ops", project=p.name)]


def tutor(ctx: Ctx) -> tuple[pl.DataFrame, pl.DataFrame, list[Incident], list]:
    """A tutoring app (Korea/Japan: UTC+9 daytime and evening): o4-mini maths with long-tailed
    reasoning (legitimate 30–60k), a Gemini Flash→Pro hint cascade with guest users, Sonnet essay
    feedback with an exam-day surge, a plotting sandbox with its base timeouts, a weekly parent
    report batch on Sunday nights, a power user who is heavy every day and one heavy afternoon."""
    kst = ((3.0, 2.5, 0.7), (12.0, 2.5, 1.0))
    p = Project("ho-tutor", n_users=30_000, zipf=1.2, routes=[
        Route("math-solver", Rhythm(5.0, kst, night=0.04, week=(0.95, 0.95, 0.95, 1.0, 0.9, 1.1, 1.15), noise=0.2),
              (("o4-mini", 1.0),), feature="solve", team="learning", prefix=1_400, message=Dist(150, 0.6, 1_000),
              reply=Dist(350, 0.5, 2_000), reasoning=Dist(2_500, 1.0, 60_000), timeout_s=600, slow_rate=0),
        Route("hint-chat", Rhythm(5.0, kst, night=0.04, week=(0.95, 0.95, 0.95, 1.0, 0.9, 1.1, 1.15), noise=0.2),
              (("gemini-2.5-flash", 1.0),), feature="hints", team="learning", stream=True, prefix=1_800,
              message=Dist(120, 0.6, 800), reply=Dist(200, 0.5, 1_000), anon=0.2,
              cascade=Cascade("hint-cascade", "gemini-2.5-pro", rate=0.36, swing=0.05)),
        Route("essay-feedback", Rhythm(3.0, ((12.5, 2.0, 1.0),), night=0.03, week=(1, 1, 1, 1, 0.9, 0.8, 1.2),
                                       noise=0.25, shifts=((ctx.eval_day(0.5), 2.2),)),
              (("claude-sonnet-4-5", 1.0),), feature="essays", team="writing", stream=True, prefix=2_600,
              context=Dist(900, 0.5, 4_000), reply=Dist(380, 0.4, 1_500)),
        Route("parent-report", Rhythm(30.0, ((23.0, 0.4, 1.0),), night=0.0, week=(0, 0, 0, 0, 0, 0, 1.0), noise=0.05),
              (("gpt-4.1-mini", 1.0),), feature="reports", team="growth", prefix=1_600, message=Dist(500, 0.4, 900),
              reply=Dist(250, 0.4), anon=1.0),
    ], tools=[Tool("graph_plot", "math-solver", per_call=0.3, duration=Dist(1_800, 0.7, 50_000), error_rate=0.02,
                   timeout_rate=0.005, timeout_ms=60_000)])
    frames = _frames(ctx, p)
    rng = _rng(p.name, "quiet", ctx.days)
    # a heavy afternoon of one student: ~300 hint requests over 4 hours (cheap model: well under $5/h)
    w0 = ctx.at(ctx.eval_day(0.7), 10.0)
    hint = next(r for r in p.routes if r.name == "hint-chat")
    rate = np.zeros(ctx.minutes)
    rate[_minute(w0): _minute(w0) + 240] = 300 / 240
    heavy = route_frame(ctx, p, replace(hint, anon=0.0), rng, rate=rate).with_columns(
        pl.lit(42, dtype=pl.Int64).alias("user_rank")
    )
    runs, tool_calls = _tool_runs(ctx, p, frames)
    calls, tool_runs = _assemble(p, ctx, list(frames.values()) + tool_calls + [heavy], list(runs.values()))
    return calls, tool_runs, [], []


def newsroom(ctx: Ctx) -> tuple[pl.DataFrame, pl.DataFrame, list[Incident], list]:
    """A newsroom (EU/US, news-driven): bursty Haiku headlines and self-hosted summaries with heavy
    hour-to-hour variation and an election-day level shift, GPT-4.1 fact checks with a lookup tool that
    calls GPT-4.1-mini, a German translation feature born mid-range, a handful of corrections a day."""
    news = ((8.0, 3.0, 0.8), (16.0, 4.0, 1.0))
    week = (1.0, 1.0, 1.0, 1.0, 1.0, 0.7, 0.65)
    election = ctx.eval_day(0.45)
    p = Project("ho-newsroom", n_users=400, zipf=0.9, routes=[
        Route("headline-gen", Rhythm(3.0, news, night=0.15, week=week, noise=0.35, noise_df=2.5, bursts_per_day=1.2,
                                     burst_gain=2.0, shifts=((election, 2.3),)),
              (("claude-haiku-4-5", 1.0),), feature="headlines", team="editorial", prefix=2_400,
              message=Dist(800, 0.5, 4_000), reply=Dist(60, 0.4, 200), anon=0.7),
        Route("summarise", Rhythm(2.5, news, night=0.15, week=week, noise=0.35, noise_df=2.5, bursts_per_day=1.2,
                                  burst_gain=2.0, shifts=((election, 2.3),)),
              (("llama-3.3-70b-instruct", 0.8), ("qwen2.5-32b-instruct", 0.2)), feature="summaries", team="editorial",
              message=Dist(2_200, 0.6, 12_000), reply=Dist(220, 0.4, 800), cache_on=False,
              nodes=("gpu-n1", "gpu-n2", "gpu-n3", "gpu-n4"), anon=0.7),
        Route("fact-check", Rhythm(2.0, news, night=0.08, week=week, noise=0.3, bursts_per_day=0.6, burst_gain=1.5),
              (("gpt-4.1", 1.0),), feature="verification", team="standards", prefix=2_000,
              message=Dist(300, 0.5, 1_500), context=Dist(500, 0.6, 2_000), reply=Dist(400, 0.5, 1_500)),
        Route("translate-de", Rhythm(2.5, news, night=0.1, week=week, noise=0.3, born=ctx.eval_day(0.3) + 0.4),
              (("gemini-2.5-flash", 1.0),), feature="translation", team="international", prefix=1_100,
              message=Dist(900, 0.5, 5_000), reply=Dist(1_000, 0.5, 5_000), anon=0.8),
        Route("corrections", Rhythm(0.012, news, night=0.0, week=week, noise=0.4), (("claude-sonnet-4-5", 1.0),),
              feature="corrections", team="standards", prefix=1_200, message=Dist(400, 0.5), reply=Dist(300, 0.5)),
    ], tools=[Tool("fact_lookup", "fact-check", per_call=1.5, duration=Dist(1_200, 0.6, 20_000), llm_share=0.6,
                   llm_model="gpt-4.1-mini", llm_prefix=1_500, llm_in=Dist(300, 0.5, 1_500), llm_out=Dist(120, 0.5))])
    frames = _frames(ctx, p)
    runs, tool_calls = _tool_runs(ctx, p, frames)
    calls, tool_runs = _assemble(p, ctx, list(frames.values()) + tool_calls, list(runs.values()))
    return calls, tool_runs, [], []


PROJECTS: tuple[Callable[[Ctx], tuple[pl.DataFrame, pl.DataFrame, list[Incident], list]], ...] = (
    helpdesk, research, devtools, insights, shopfront, legal, tutor, newsroom)


def scenarios(days: int = 21, warmup_days: int = 7) -> list[Scenario]:
    """Every held-out project over `days` days from START; incidents only after `warmup_days`."""
    if warmup_days < 1 or days - warmup_days < 2:
        raise ValueError("need at least 1 warm-up day and 2 evaluated days")
    ctx = Ctx(days, warmup_days)
    out = []
    for build in PROJECTS:
        calls, runs, incidents, budgets = build(ctx)
        out.append(Scenario(calls["project"][0], calls.drop("cost_est"), runs, incidents, budgets))
    return out


def scenarios_with_costs(
    days: int = 21, warmup_days: int = 7, only: list[str] | None = None
) -> list[tuple[Scenario, pl.DataFrame]]:
    """Scenarios with each call's list-price cost (`cost_est`) beside them, for the check."""
    ctx = Ctx(days, warmup_days)
    out = []
    for build in PROJECTS:
        if only and f"ho-{build.__name__}" not in only:
            continue
        calls, runs, incidents, budgets = build(ctx)
        out.append((Scenario(calls["project"][0], calls.drop("cost_est"), runs, incidents, budgets), calls))
    return out
