"""Spend statistics. The baseline is one pooled median of the same hour on days of the same kind (weekday or
weekend) and the same hour of week of older weeks — not the larger of a 7-day median and a
same-hour-of-week median, which sat above the realised cost (and, for a scope with one week of
history, was that week's value, a burst included). The sustained-shift test is a robust z-score of
the scope's own six-hour residuals. Real pipeline, real embedded ClickHouse; times pinned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from alerts.evaluate import evaluate_signals
from alerts.rules.spend import seasonal
from ingest.pipeline import Pipeline
from llmledger.settings import Settings
from warehouse.client import Warehouse
from warehouse.queries import alerts as queries
from warehouse.queries.scope import Scope

T0 = datetime(2025, 11, 3, 0, 0, tzinfo=UTC)  # a Monday
TIME = pl.Datetime("ms", "UTC")


def _hourly(values: np.ndarray, start: datetime = T0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One route's cost per hour from `start`, and its first hour with the route floor."""
    hours = pl.datetime_range(start, start + timedelta(hours=values.size - 1), interval="1h", eager=True,
                              time_unit="ms", time_zone="UTC")
    history = pl.DataFrame({"project": "p", "dimension": "route", "key": "chat", "hour": hours,
                            "cost_usd": values.astype(float)})
    first = pl.DataFrame({"project": ["p"], "dimension": ["route"], "key": ["chat"], "first_hour": [start],
                          "floor": [10.0]}, schema_overrides={"first_hour": TIME})
    return history, first


def _base(values: np.ndarray, at: datetime) -> float:
    history, first = _hourly(values)
    dense = seasonal(history, first, lo=T0, hi=T0 + timedelta(hours=values.size), days=7, weeks=3,
                     sustained_hours=6, tail=1.0, stats_hours=14 * 24)
    return dense.filter(pl.col("hour") == at)["base"].item()


def test_the_baseline_is_the_median_of_days_of_the_same_kind_not_the_larger_of_two_medians() -> None:
    days = 15
    hour = np.arange(days * 24)
    weekend = ((hour // 24) % 7) >= 5  # T0 is a Monday
    values = np.where(weekend, 6.0, 20.0)  # $20 an hour on weekdays, $6 at weekends
    values[3 * 24 + 10] = 100.0  # one burst at Thursday 10:00 of the first week
    # a weekend hour is judged against weekend days (the old larger-of-two medians: the weekdays' $20)
    assert _base(values, T0 + timedelta(days=13, hours=10)) == 6.0  # Sunday of the second week
    # a weekday hour with one week of history is not that week's burst (the old median of one week: $100)
    assert _base(values, T0 + timedelta(days=10, hours=10)) == 20.0  # Thursday of the second week
    # with no earlier day of its kind (the first Saturday) the median of every earlier day stands in
    assert _base(values, T0 + timedelta(days=5, hours=10)) == 20.0


def _route_calls(counts: np.ndarray, *, seed: int, route: str = "chat") -> pl.DataFrame:
    """Calls of `route` whose count per hour follows `counts` (Opus, 20k input tokens: ~$0.32 a call)."""
    rng = np.random.default_rng(seed)
    hour = np.repeat(np.arange(counts.size), counts)
    offsets = hour * 3_600_000 + rng.integers(0, 3_600_000, hour.size)
    ts = pl.Series("ts", T0.timestamp() * 1000 + np.sort(offsets)).cast(pl.Int64).cast(TIME)
    return pl.DataFrame({"ts": ts, "event_id": [f"b-{route}-{seed}-{i}" for i in range(hour.size)]}).with_columns(
        pl.lit("default").alias("project"), pl.lit(route).alias("route"), pl.lit(route).alias("feature"),
        pl.lit("anthropic").alias("provider"), pl.lit("claude-opus-4-1").alias("model"),
        pl.lit(20_000).alias("input_tokens"), pl.lit(200).alias("output_tokens"), pl.lit("ok").alias("status"),
        pl.lit(2000).alias("latency_ms"), (f"u-{route}-" + (pl.int_range(pl.len()) % 7).cast(pl.String)).alias("user_id"))


def test_a_burst_a_week_ago_no_longer_hides_a_runaway_and_an_ordinary_day_stays_quiet(
        wh: Warehouse, settings: Settings) -> None:
    """A route with 10 days of history had a ×4 burst last Thursday 10:00-13:00. This Thursday it is
    quiet until 10:00, then runs at ×12 for three hours: critical (≥ 10× its usual hour). Against
    the larger of the 7-day median and the median of its one same-hour-of-week value (the burst)
    the runaway measured 3×, and the rule's own range (×4 normal) asked for 6× to warn."""
    days = 11
    counts = np.full(days * 24, 40, dtype=np.int64)
    counts[3 * 24 + 10: 3 * 24 + 13] = 160  # last Thursday's burst
    counts[10 * 24 + 10: 10 * 24 + 13] = 480  # today, a runaway
    with Pipeline(wh, settings) as pipeline:
        pipeline.ingest_frame(_route_calls(counts, seed=3), source="test")
    evaluate_signals(wh, settings, since=T0 + timedelta(days=10, hours=4), at=T0 + timedelta(days=10, hours=10))
    events = queries.incident_events(wh, Scope.all(), limit=10_000).filter(pl.col("signal") == "spend_spike")
    assert events.filter(pl.col("kind").is_in(["opened", "escalated"])).is_empty()  # an ordinary morning
    evaluate_signals(wh, settings, since=T0 + timedelta(days=10, hours=10), at=T0 + timedelta(days=10, hours=13))
    events = queries.incident_events(wh, Scope.all(), limit=10_000).filter(pl.col("signal") == "spend_spike")
    pages = events.filter(pl.col("kind").is_in(["opened", "escalated"]))
    routes = [(dict(s).get("route"), state) for s, state in zip(pages["scope"].to_list(), pages["to_state"].to_list(),
                                                                 strict=True)]
    assert ("chat", "critical") in routes, pages.select("at", "to_state", "summary").rows()


def test_the_sustained_test_is_scaled_by_the_scopes_usual_six_hours_not_its_largest_excursion(
        wh: Warehouse, settings: Settings) -> None:
    """Route "chat" varies little from day to day; it had a two-hour ×25 runaway five days ago, and
    today it runs at ×3 for the working day: the sustained test warns (a robust z-score of its
    six-hour residuals does not remember the runaway; 1.5× its largest six-hour excursion asked for
    ×13.5). Route "shifty" moves by a day-long factor every day (×e^(0.45 N(0,1)), like the day-long
    shifts of bursty public traffic); today it is ×2.6 for the working day — past the 2× minimum
    effect, but within its own usual six-hour spread — and does not page."""
    rng = np.random.default_rng(11)
    days = 16
    hour_noise = np.exp(0.15 * rng.standard_normal(days * 24))
    chat = 40 * hour_noise
    chat[10 * 24 + 14: 10 * 24 + 16] = 1_000  # a runaway five days ago
    chat[15 * 24 + 8: 15 * 24 + 20] *= 3  # today
    day_level = np.repeat(np.exp(0.45 * rng.standard_normal(days)), 24)
    shifty = 40 * day_level * np.exp(0.15 * rng.standard_normal(days * 24))
    shifty[15 * 24:] = 40 * np.exp(0.15 * rng.standard_normal(24))
    shifty[15 * 24 + 8: 15 * 24 + 20] *= 2.6  # today
    with Pipeline(wh, settings) as pipeline:
        pipeline.ingest_frame(_route_calls(chat.astype(np.int64), seed=5), source="test")
        pipeline.ingest_frame(_route_calls(shifty.astype(np.int64), seed=6, route="shifty"), source="test")
    evaluate_signals(wh, settings, since=T0 + timedelta(days=15, hours=6), at=T0 + timedelta(days=15, hours=20))
    events = queries.incident_events(wh, Scope.all(), limit=10_000).filter(pl.col("signal") == "spend_spike")
    pages = events.filter(pl.col("kind").is_in(["opened", "escalated"]))
    routes = {dict(s).get("route") for s in pages["scope"].to_list()}
    assert routes == {"chat"}, pages.select("at", "scope", "summary").rows()
    assert any("sustained shift" in text and "robust SDs" in text for text in pages["summary"].to_list())
