"""The false-positive classes of issue 12 no longer fire, and the true incident still does: small
windows judged by a Wilson bound, p99 only over enough calls, provider-aware cache texts, and
re-notification with back-off. Real pipeline, real embedded ClickHouse; times pinned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from alerts.evaluate import evaluate_signals
from alerts.model import WARNING_CRITICAL, EventKind
from alerts.rules.stats import samples_for_quantile, wilson_lower_value
from alerts.state import Observation, Policy, acknowledge, advance
from ingest.pipeline import Pipeline
from llmledger.settings import Settings
from warehouse.client import Warehouse
from warehouse.queries import alerts as queries
from warehouse.queries.scope import Scope

T0 = datetime(2025, 11, 3, 0, 0, tzinfo=UTC)


def _calls(n: int, *, start: datetime, minutes: float, seed: int, **columns) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, minutes * 60_000, n)).astype(np.int64)
    ts = pl.Series("ts", start.timestamp() * 1000 + offsets).cast(pl.Int64).cast(pl.Datetime("ms", "UTC"))
    frame = pl.DataFrame({"ts": ts, "event_id": [f"p-{seed}-{i}" for i in range(n)]}).with_columns(
        pl.lit("default").alias("project"), pl.lit("ok").alias("status"), pl.lit(3000).alias("input_tokens"),
        pl.lit(200).alias("output_tokens"), pl.lit(2400).alias("cache_read_tokens"),
        pl.lit(0).alias("cache_write_5m_tokens"), pl.lit(2000).alias("latency_ms"))
    for name, value in columns.items():
        frame = frame.with_columns((value if isinstance(value, pl.Series) else pl.lit(value)).alias(name))
    return frame


def _ingest(wh: Warehouse, settings: Settings, *frames: pl.DataFrame) -> None:
    with Pipeline(wh, settings) as pipeline:
        for frame in frames:
            assert pipeline.ingest_frame(frame, source="test").written == frame.height


def _opened(wh: Warehouse, signal: str) -> pl.DataFrame:
    events = queries.incident_events(wh, Scope.all(), limit=100_000)
    return events.filter((pl.col("signal") == signal) & pl.col("kind").is_in(["opened", "escalated"]))


def test_wilson_bound_and_percentile_sample_size() -> None:
    assert wilson_lower_value(3, 20, 0.95) < 0.10 < 3 / 20  # 15% of 20 calls is no evidence of > 10%
    assert wilson_lower_value(30, 100, 0.95) > 0.10
    assert samples_for_quantile(0.99) == 100


def test_openai_random_cache_misses_in_small_windows_do_not_page_a_real_drop_does(wh: Warehouse,
                                                                                   settings: Settings) -> None:
    rng = np.random.default_rng(1)
    # quiet: 6 hours, ~6 eligible calls a minute... at 5% random automatic-cache misses (bursts of 2-3 misses
    # in a 5-minute window of ~20 calls push the point estimate over 10% again and again)
    n = 6 * 60 * 4
    miss = rng.random(n) < 0.05
    quiet = _calls(n, start=T0, minutes=360, seed=1, route="search", provider="openai", model="gpt-4o",
                   cache_read_tokens=pl.Series(np.where(miss, 0, 2400)))
    point = quiet.with_columns((pl.col("ts").dt.truncate("5m")).alias("b")).group_by("b").agg(
        (pl.col("cache_read_tokens") == 0).mean().alias("share"))
    assert (point["share"] > 0.10).sum() >= 3  # the old rule's point estimate would have paged
    # a real drop: a release stops caching for 70% of the calls from 06:00
    n2 = 60 * 4
    lost = rng.random(n2) < 0.7
    drop = _calls(n2, start=T0 + timedelta(hours=6), minutes=60, seed=2, route="search", provider="openai",
                  model="gpt-4o", cache_read_tokens=pl.Series(np.where(lost, 0, 2400)))
    _ingest(wh, settings, quiet, drop)
    evaluate_signals(wh, settings, since=T0 + timedelta(minutes=10), at=T0 + timedelta(hours=6) - timedelta(minutes=1))
    assert _opened(wh, "cache_not_applied").is_empty()
    evaluate_signals(wh, settings, at=T0 + timedelta(hours=6, minutes=30), since=T0 + timedelta(hours=6))
    fired = _opened(wh, "cache_not_applied")
    assert not fired.is_empty() and "critical" in fired["to_state"].to_list()
    incident = fired.row(-1, named=True)
    assert "cache_control" in incident["next_step"] and "no cache_control breakpoint" in incident["next_step"]
    assert "prompt_cache_key" in incident["next_step"]


def test_one_slow_call_in_a_quiet_hour_is_no_p99_a_slow_tail_is(wh: Warehouse, settings: Settings) -> None:
    # 60 calls an hour (over min_volume 50): the single 40 s call would be the p99
    slow_one = _calls(60, start=T0 + timedelta(hours=2), minutes=60, seed=3, route="batch", provider="anthropic",
                      model="claude-haiku-4-5")
    slow_one = slow_one.with_columns(pl.when(pl.int_range(pl.len()) == 30).then(40_000)
                                     .otherwise(pl.col("latency_ms")).alias("latency_ms"))
    # later, 400 calls an hour of which 5% take 45 s: a real tail
    tail = _calls(400, start=T0 + timedelta(hours=4), minutes=60, seed=4, route="batch", provider="anthropic",
                  model="claude-haiku-4-5")
    tail = tail.with_columns(pl.when(pl.int_range(pl.len()) % 20 == 0).then(45_000)
                             .otherwise(pl.col("latency_ms")).alias("latency_ms"))
    _ingest(wh, settings, slow_one, tail)
    evaluate_signals(wh, settings, since=T0 + timedelta(hours=2), at=T0 + timedelta(hours=3, minutes=30))
    assert _opened(wh, "latency_tail").is_empty()
    evaluate_signals(wh, settings, since=T0 + timedelta(hours=4), at=T0 + timedelta(hours=5))
    fired = _opened(wh, "latency_tail")
    assert "critical" in fired["to_state"].to_list()


def test_renotification_backs_off_and_stops_on_ack() -> None:
    policy = Policy(renotify_after=timedelta(minutes=60), resolve_unobserved_after=timedelta(hours=2),
                    renotify_backoff=tuple(timedelta(minutes=m) for m in (60, 240, 720, 1440)))
    assert [t / timedelta(hours=1) for t in policy.schedule(5)] == [1, 5, 17, 41, 65]
    kwargs = {"signal": "latency_tail", "scope": {"project": "p", "route": "r"}, "project": "p", "team": "",
              "unit": "ms", "levels": WARNING_CRITICAL, "policy": policy}
    incident, event = advance(None, Observation(T0, 2, 2, 40_000.0, 30_000.0, ""), **kwargs)
    assert event.kind is EventKind.OPENED
    incident = incident.__class__(**{**incident.__dict__, "notified_at": T0})
    pages = []
    for minute in range(5, 3 * 24 * 60, 5):
        at = T0 + timedelta(minutes=minute)
        incident, event = advance(incident, Observation(at, 2, 2, 40_000.0, 30_000.0, ""), **kwargs)
        if event is not None and event.kind is EventKind.RENOTIFIED:
            pages.append(minute / 60)
            incident = incident.__class__(**{**incident.__dict__, "notified_at": at})
    assert pages == [1, 5, 17, 41, 65]  # not 71 hourly pages
    acked, _ = acknowledge(incident, by="oncall", at=T0 + timedelta(hours=66))
    later = advance(acked, Observation(T0 + timedelta(hours=90), 2, 2, 40_000.0, 30_000.0, ""), **kwargs)[1]
    assert later is None


def test_spend_new_route_and_unset_feature_are_not_judged_an_established_spike_is(wh: Warehouse,
                                                                                  settings: Settings) -> None:
    def hourly(route: str, feature: str, start: datetime, hours: int, per_hour: int, seed: int) -> pl.DataFrame:
        return _calls(hours * per_hour, start=start, minutes=hours * 60, seed=seed, route=route, feature=feature,
                      provider="anthropic", model="claude-opus-4-1", input_tokens=20_000, cache_read_tokens=0)

    established = hourly("support", "help", T0, 4 * 24 + 6, 30, 10)  # four days of history
    launched = hourly("launch", "", T0 + timedelta(days=4), 6, 120, 11)  # new today, no feature: 4x the spend
    spike = hourly("support", "help", T0 + timedelta(days=4, hours=6), 2, 360, 12)  # 12x for two hours
    _ingest(wh, settings, established, launched, spike)
    evaluate_signals(wh, settings, since=T0 + timedelta(days=4), at=T0 + timedelta(days=4, hours=6))
    assert _opened(wh, "spend_spike").is_empty()  # neither the new route nor feature "" pages
    evaluate_signals(wh, settings, since=T0 + timedelta(days=4, hours=6), at=T0 + timedelta(days=4, hours=8))
    fired = _opened(wh, "spend_spike")
    scopes = [dict(s) for s in fired["scope"].to_list()]
    assert {"project": "default", "route": "support"} in scopes
    assert "critical" in fired["to_state"].to_list()
    assert all(s.get("feature", "x") != "" and s.get("route") != "launch" for s in scopes)
