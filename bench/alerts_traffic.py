"""Quiet and incident traffic for the alert precision benchmark, generated on its own (numpy), not
by `llmledger.simulator`: the rules were tuned on the simulator's shapes, so judging them on it
would only show they fit their own assumptions.

A project has five routes on three providers. Hourly volume per route = base rate × a diurnal
curve (own peak hour, own depth) × weekend factor × heavy-tailed hour-to-hour noise (Student-t on
the log scale) × news-like bursts (a few hours at ×2–5) × day-long level shifts × a launch that
doubles one route; a new route appears mid-range. Calls carry the realities that make naive rules
page: OpenAI's random automatic-cache misses, long-tailed latency (a reasoning route whose p99 is
minutes), normal Sonnet TTFT p99 ≈ 2 s, one slow call in a quiet hour each night, prompt version
changes that keep the prefix, short dips, calls with no feature, Zipf-heavy users.

Incidents are injected as ramps and partial rollouts (`Incident`), each with the signal and scope
that should fire, the expected severity and when the ramp crosses the rule's threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from bench.alert_cases import Incident

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


@dataclass(frozen=True)
class RouteShape:
    """A route's traffic and the calls it makes."""

    route: str
    feature: str
    provider: str
    model: str
    per_day: float
    input_tokens: float  # median
    output_tokens: float
    latency_ms: float  # median end to end
    latency_sigma: float
    ttft_ms: float | None  # streamed routes only
    cache: str  # "explicit" | "automatic" | "none"
    miss_rate: float = 0.0  # share of eligible calls that do not touch the cache at all
    reasoning: float = 0.0  # median reasoning tokens


ROUTES = (
    RouteShape("support-chat", "support", "anthropic", "claude-opus-4-1", 700, 18_000, 700, 6_000, 0.5, 900,
               "explicit", 0.01),
    RouteShape("assistant-chat", "assistant", "anthropic", "claude-sonnet-4-5", 5_000, 6_000, 500, 4_000, 0.5,
               700, "explicit", 0.01),
    RouteShape("search-answers", "search", "openai", "gpt-4o", 1_500, 3_000, 400, 3_000, 0.55, 600,
               "automatic", 0.05),
    RouteShape("deep-research", "research", "openai", "o3", 260, 8_000, 6_000, 60_000, 0.75, None, "none",
               reasoning=9_000),
    RouteShape("batch-summarize", "", "anthropic", "claude-haiku-4-5", 700, 4_000, 300, 2_500, 0.4, None,
               "explicit", 0.01),
)
NEW_ROUTE = RouteShape("launch-beta", "beta", "anthropic", "claude-opus-4-1", 500, 16_000, 800, 6_500, 0.5, 900,
                       "explicit", 0.01)


@dataclass
class Shape:
    """How one project's quiet traffic varies (drawn from its seed)."""

    seed: int
    days: int
    noise_df: float = 3.0  # Student-t degrees of freedom of the hour-to-hour log noise (heavy tails)
    noise_scale: float = 0.30
    bursts_per_day: float = 0.6
    level_shift: float = 1.8
    miss_scale: float = 1.0
    incidents: list[Incident] = field(default_factory=list)


def _hourly_counts(rng: np.random.Generator, shape: Shape, route: RouteShape, index: int) -> np.ndarray:
    hours = np.arange(shape.days * 24)
    hour_of_day = hours % 24
    weekday = (START + timedelta(days=0)).weekday()
    dow = (weekday + hours // 24) % 7
    peak = rng.uniform(10, 17)
    depth = rng.uniform(0.5, 0.9)
    diurnal = 1 - depth * (0.5 + 0.5 * np.cos(2 * np.pi * (hour_of_day - peak) / 24))
    weekend = np.where(dow >= 5, rng.uniform(0.3, 0.7), 1.0)
    noise = np.exp(shape.noise_scale * np.clip(rng.standard_t(shape.noise_df, hours.size), -4, 4))
    bursts = np.ones(hours.size)
    for _ in range(rng.poisson(shape.bursts_per_day * shape.days)):
        at = rng.integers(0, hours.size)
        bursts[at: at + rng.integers(1, 4)] *= rng.uniform(2.0, 5.0)  # news-like: a few hours, sharp
    level = np.ones(hours.size)
    day = rng.integers(1, shape.days)
    level[day * 24: (day + 1) * 24] *= shape.level_shift  # one day-long level shift
    if index == 1:  # a launch doubles this route from a day on
        level[rng.integers(2, shape.days) * 24:] *= 2.0
    dips = np.ones(hours.size)
    rate = route.per_day / 24 * diurnal * weekend * noise * bursts * level / diurnal.mean()
    counts = rng.poisson(rate * dips)
    return counts


def _calls(rng: np.random.Generator, shape: Shape, route: RouteShape, counts: np.ndarray, project: str,
           first_hour: int = 0) -> pl.DataFrame:
    counts = counts.copy()
    counts[:first_hour] = 0
    n = int(counts.sum())
    hour = np.repeat(np.arange(counts.size), counts)
    offset_ms = (hour * 3_600_000 + rng.integers(0, 3_600_000, n)).astype(np.int64)
    # a short dip: five minutes of no traffic at a random hour each day (below every sustain period)
    dip_hours = rng.integers(0, 24, shape.days) + np.arange(shape.days) * 24
    in_dip = np.isin(hour, dip_hours) & (offset_ms % 3_600_000 < 300_000)
    offset_ms = offset_ms[~in_dip]
    n = offset_ms.size
    ts = pl.Series("ts", START.timestamp() * 1000 + offset_ms).cast(pl.Int64).cast(pl.Datetime("ms", "UTC"))
    users = np.minimum(rng.zipf(1.6, n), 400)
    inp = np.maximum(200, rng.lognormal(np.log(route.input_tokens), 0.35, n)).astype(np.int64)
    out = np.maximum(20, rng.lognormal(np.log(route.output_tokens), 0.5, n)).astype(np.int64)
    latency = rng.lognormal(np.log(route.latency_ms), route.latency_sigma, n)
    frame = pl.DataFrame({
        "ts": ts,
        "project": project,
        "route": route.route,
        "feature": route.feature,
        "team": "team-" + route.route.split("-")[0],
        "user_id": "u-" + pl.Series(users).cast(pl.String).str.zfill(4),
        "provider": route.provider,
        "model": route.model,
        "stream": route.ttft_ms is not None,
        "input_tokens": inp,
        "output_tokens": out,
        "latency_ms": latency.astype(np.int64),
        "status": "ok",
        "sdk_cohort": rng.random(n),
        "miss_draw": rng.random(n),
        "hour": hour[~in_dip] if in_dip.any() else hour,
    })
    if route.ttft_ms is not None:
        frame = frame.with_columns(pl.Series("ttft_ms", rng.lognormal(np.log(route.ttft_ms), 0.45, n).astype(np.int64)))
    else:
        frame = frame.with_columns(pl.lit(None, pl.Int64).alias("ttft_ms"))
    if route.reasoning:
        reasoning = np.minimum(rng.lognormal(np.log(route.reasoning), 0.6, n), 60_000).astype(np.int64)
        frame = frame.with_columns(pl.Series("reasoning_tokens", reasoning),
                                   (pl.col("output_tokens") + pl.Series(reasoning)).alias("output_tokens"))
    else:
        frame = frame.with_columns(pl.lit(0, pl.Int64).alias("reasoning_tokens"))
    # a prompt version bump each day at a random hour, keeping the prefix (must not read as a cause)
    bump = rng.integers(0, 24 * shape.days, shape.days)
    version = np.searchsorted(np.sort(bump), frame["hour"].to_numpy(), side="right") + 3
    frame = frame.with_columns(
        ("v" + pl.Series(version).cast(pl.String)).alias("prompt_version"),
        pl.lit(f"{abs(hash((project, route.route))) % 10**12:012x}").alias("prompt_prefix_hash"),
        pl.lit(f"{route.provider}-python/1.4.0").alias("sdk"),
    )
    # one slow call in a quiet hour each night (04:00 UTC)
    slow = (frame["hour"] % 24 == 4).to_numpy()
    if slow.any():
        idx = np.flatnonzero(slow)
        pick = idx[np.searchsorted(frame["hour"].to_numpy()[idx], np.arange(shape.days) * 24 + 4).clip(0, idx.size - 1)]
        lat = frame["latency_ms"].to_numpy().copy()
        lat[pick] = 40_000
        frame = frame.with_columns(pl.Series("latency_ms", lat))
    return frame


def _cache(frame: pl.DataFrame, route: RouteShape, shape: Shape) -> pl.DataFrame:
    """Cache tokens: explicit breakpoints read the prefix (a write now and then); OpenAI's
    automatic cache misses a random few percent of eligible calls."""
    if route.cache == "none":
        return frame.with_columns(pl.lit(0, pl.Int64).alias("cache_read_tokens"),
                                  pl.lit(0, pl.Int64).alias("cache_write_5m_tokens"))
    prefix = (pl.col("input_tokens") * 0.8).cast(pl.Int64)
    miss = pl.col("miss_draw") < route.miss_rate * shape.miss_scale
    write = (pl.col("miss_draw") > 0.96) & (route.cache == "explicit")
    return frame.with_columns(
        pl.when(miss | write).then(0).otherwise(prefix).alias("cache_read_tokens"),
        pl.when(write & ~miss).then(prefix).otherwise(0).alias("cache_write_5m_tokens"),
    )


def _ramp(frame: pl.DataFrame, start: datetime, minutes: float) -> pl.Expr:
    """0 → 1 over `minutes` from `start` (per call, from its ts)."""
    seconds = (pl.col("ts") - pl.lit(start)).dt.total_seconds()
    return (seconds / (minutes * 60)).clip(0, 1)


def _inject(frame: pl.DataFrame, incident: Incident, rng: np.random.Generator) -> pl.DataFrame:
    in_scope = pl.lit(True)
    for key, value in incident.scope.items():
        if key != "project":
            in_scope = in_scope & (pl.col(key) == value)
    live = in_scope & (pl.col("ts") >= incident.start) & (pl.col("ts") < incident.end)
    ramp = _ramp(frame, incident.start, (incident.crosses_at - incident.start).total_seconds() / 60 * 1.6)
    if incident.kind == "cache_breakpoint_dropped":  # a partial SDK rollout that loses cache_control
        hit = live & (pl.col("sdk_cohort") < 0.8 * ramp)
        return frame.with_columns(
            pl.when(hit).then(0).otherwise(pl.col("cache_read_tokens")).alias("cache_read_tokens"),
            pl.when(hit).then(0).otherwise(pl.col("cache_write_5m_tokens")).alias("cache_write_5m_tokens"),
            pl.when(hit).then(pl.lit("anthropic-python/2.0.0")).otherwise(pl.col("sdk")).alias("sdk"),
        )
    if incident.kind == "prefix_broken":  # a timestamp enters the prefix: every call writes
        hit = live & (pl.col("sdk_cohort") < 0.95 * ramp)
        return frame.with_columns(
            pl.when(hit).then(pl.col("cache_read_tokens") + pl.col("cache_write_5m_tokens"))
            .otherwise(pl.col("cache_write_5m_tokens")).alias("cache_write_5m_tokens"),
            pl.when(hit).then(0).otherwise(pl.col("cache_read_tokens")).alias("cache_read_tokens"),
            pl.when(hit).then(pl.lit("v99")).otherwise(pl.col("prompt_version")).alias("prompt_version"),
            pl.when(hit).then(pl.lit("broken")).otherwise(pl.col("prompt_prefix_hash")).alias("prompt_prefix_hash"),
        )
    if incident.kind == "provider_slowdown":  # a provider's tail grows over half an hour
        slow = live & (pl.col("miss_draw") < 0.06 * ramp)
        return frame.with_columns(pl.when(slow).then(pl.col("latency_ms") * 12 + 20_000)
                                  .otherwise(pl.col("latency_ms")).alias("latency_ms"))
    if incident.kind == "runaway_agent":  # one route's spend ramps to ×30 (an agent loop)
        extra = frame.filter(live).sample(fraction=30.0, with_replacement=True, seed=int(rng.integers(1 << 30)))
        keep = extra.filter(pl.col("miss_draw") < _ramp(extra, incident.start, 40).alias("r"))
        return pl.concat([frame, keep.with_columns(pl.col("ts") + pl.duration(milliseconds=pl.int_range(
            pl.len()) % 997))])
    if incident.kind == "reasoning_runaway":  # several calls on one route reason without a budget
        picks = frame.filter(live).head(3).with_columns(pl.lit(150_000, pl.Int64).alias("reasoning_tokens"),
                                                        pl.lit(160_000, pl.Int64).alias("output_tokens"))
        return pl.concat([frame, picks.with_columns(pl.col("ts") + pl.duration(milliseconds=7))])
    raise ValueError(incident.kind)


def project_calls(project: str, shape: Shape) -> pl.DataFrame:
    """Every call of one project over the range, incidents injected; event ids stable per project."""
    rng = np.random.default_rng(shape.seed)
    parts = []
    for index, route in enumerate(ROUTES):
        counts = _hourly_counts(rng, shape, route, index)
        parts.append(_cache(_calls(rng, shape, route, counts, project), route, shape))
    counts = _hourly_counts(rng, shape, NEW_ROUTE, 9)
    parts.append(_cache(_calls(rng, shape, NEW_ROUTE, counts, project, first_hour=int(rng.integers(60, 90))),
                        NEW_ROUTE, shape))
    frame = pl.concat(parts, how="diagonal_relaxed")
    for incident in shape.incidents:
        frame = _inject(frame, incident, rng)
    frame = frame.sort("ts").with_columns(
        pl.concat_str(pl.lit(f"ap-{project}-"), pl.int_range(pl.len()).cast(pl.String)).alias("event_id"),
        pl.col("sdk").alias("sdk_name"),
    )
    tags = pl.concat_str(pl.lit('{"sdk":"'), pl.col("sdk"), pl.lit('"}')).alias("tags")
    return frame.with_columns(tags).drop("sdk_cohort", "miss_draw", "hour", "sdk_name", "sdk")
