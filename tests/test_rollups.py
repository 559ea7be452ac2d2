"""Incremental rollups equal raw totals to the last Decimal digit: after many small batches with
duplicates, after a reprice (REPLACE PARTITION, which views never see) and after drift repair."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from ingest.catalog import Catalog
from ingest.pipeline import Pipeline
from ingest.pricing import load_prices, override_names
from ingest.reprice import reprice
from ingest.tool_runs import ToolRunWriter
from llmledger.settings import PricingSettings, Settings
from llmledger.simulator import SimulationConfig, iter_days
from tests.conftest import migrated_database
from warehouse.client import Warehouse
from warehouse.queries import attribution, hybrid, series
from warehouse.queries.scope import Scope
from warehouse.rollups import ROLLUPS, rebuild_rollups, refresh_rollups, stale_partitions

START = datetime(2025, 10, 31, tzinfo=UTC)  # two month partitions
END = START + timedelta(days=2)
ALL = Scope.all()
SUMMED = ["calls", "cost_usd", "input_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd", "output_cost_usd",
          "tool_cost_usd", "batch_discount_usd", "input_tokens", "cache_read_tokens", "cache_write_tokens",
          "output_tokens", "reasoning_tokens", "errors", "unpriced_calls"]


@pytest.fixture
def loaded(wh: Warehouse, settings: Settings) -> Warehouse:
    """The loaded days in a database of the test's own (for the tests that reprice)."""
    return _load(wh, settings)


@pytest.fixture(scope="module")
def shared(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """The loaded days, once for the module's read-only tests."""
    settings = Settings(home=tmp_path_factory.mktemp("rollups"), warehouse={"path": store})
    with migrated_database(settings) as wh:
        yield _load(wh, settings)


def _load(wh: Warehouse, settings: Settings) -> Warehouse:
    """Two simulated days ingested in many small batches, every batch sent twice (duplicates)."""
    config = SimulationConfig(start=START, days=2, calls_per_day=3_000, seed=3)
    runs = ToolRunWriter(wh)
    with Pipeline(wh, settings) as pipeline:
        for day in iter_days(config):
            for chunk in day.calls.iter_slices(700):
                pipeline.ingest_frame(chunk, source="simulator")
                pipeline.ingest_frame(chunk.sample(fraction=0.5, seed=1), source="simulator")
            for chunk in day.tool_runs.iter_slices(300):
                runs.write(chunk)
                runs.write(chunk)
    return wh


def _assert_rollups_equal_raw(wh: Warehouse, raw_only) -> None:
    """Every whole-hour read the rollups serve equals the same read over raw calls."""
    for dimension in sorted(hybrid.HOURLY_DIMENSIONS | hybrid.USER_DIMENSIONS):
        # START and END are on the hour: the planned read takes every row from a rollup
        assert hybrid.rows(ALL, START, END, None, keys={"key": dimension}, measures=attribution.MEASURE_NAMES,
                           params={}) is not None, dimension
        got = attribution.usage_by(wh, ALL, dimension, START, END).sort("key")
        want = raw_only(attribution.usage_by, wh, ALL, dimension, START, END).sort("key")
        assert got.select(["key", *SUMMED]).rows() == want.select(["key", *SUMMED]).rows(), dimension
    rolled = attribution.totals(wh, ALL, START, END)
    assert rolled.select(SUMMED).rows() == raw_only(attribution.totals, wh, ALL, START, END).select(SUMMED).rows()
    assert isinstance(rolled["cost_usd"][0], Decimal)
    filtered = attribution.usage_by(wh, ALL, "route", START, END, {"team": ["data"]}).sort("key")
    raw_filtered = raw_only(attribution.usage_by, wh, ALL, "route", START, END, {"team": ["data"]}).sort("key")
    assert filtered.select(["key", *SUMMED]).rows() == raw_filtered.select(["key", *SUMMED]).rows()
    runs = wh.query_rows("SELECT tool_name, count(), countIf(status = 'timeout') FROM tool_runs GROUP BY 1 ORDER BY 1")
    rolled_runs = wh.query_rows(
        "SELECT tool_name, sum(runs), sum(timeouts) FROM tool_runs_hourly GROUP BY 1 ORDER BY 1")
    assert rolled_runs == runs


def test_rollups_equal_raw_after_small_batches_with_duplicates(shared: Warehouse, raw_only) -> None:
    loaded = shared
    assert loaded.scalar("SELECT count() FROM calls") == loaded.scalar("SELECT uniqExact(event_id) FROM calls")
    _assert_rollups_equal_raw(loaded, raw_only)
    assert stale_partitions(loaded)[1] == []


def test_hourly_series_and_latency_digests_match_raw(shared: Warehouse, raw_only) -> None:
    loaded = shared
    hourly = series.time_series(loaded, ALL, START, END, grain="hour", dimension="team", top=100)
    raw = loaded.query_rows(
        "SELECT toStartOfHour(ts) AS h, team, sum(cost_usd) FROM calls GROUP BY h, team ORDER BY h, team")
    assert [(h.replace(tzinfo=None), k, c) for h, k, c in hourly.sort("bucket", "key").rows()] == [
        (h.replace(tzinfo=None), k, c) for h, k, c in raw]
    latency = attribution.latency_percentiles(loaded, ALL, START, END, dimension="route").sort("key")
    exact = raw_only(attribution.latency_percentiles, loaded, ALL, START, END, dimension="route").sort("key")
    both = latency.join(exact, on="key")
    assert both.height > 5 and both.select("calls").rows() == both.select("calls_right").rows()
    both = both.filter(pl.col("latency_mean_ms").is_not_null())
    assert ((both["latency_mean_ms"] - both["latency_mean_ms_right"]).abs() < 1e-6).all()
    assert ((both["latency_p99_ms"] / both["latency_p99_ms_right"] - 1).abs() < 0.1).all()


def test_rollups_follow_a_reprice(loaded: Warehouse, settings: Settings, raw_only) -> None:
    cost_before = attribution.totals(loaded, ALL, START, END)["cost_usd"][0]
    pricing = PricingSettings(provider_discounts={"anthropic": Decimal("0.13"), "openai": Decimal("0.07")})
    load_prices(loaded, pricing)
    catalog = Catalog(override_names(pricing))
    report = reprice(loaded, catalog, since=START, until=END, on_partition=rebuild_rollups)
    assert report.partitions == ["202510", "202511"] and report.cost_after_usd < report.cost_before_usd
    assert attribution.totals(loaded, ALL, START, END)["cost_usd"][0] == report.cost_after_usd != cost_before
    _assert_rollups_equal_raw(loaded, raw_only)


def test_refresh_repairs_a_reprice_run_without_the_hook(loaded: Warehouse, raw_only) -> None:
    pricing = PricingSettings(provider_discounts={"google": Decimal("0.5")})
    load_prices(loaded, pricing)
    reprice(loaded, Catalog(override_names(pricing)), since=START, until=END)
    compared, stale = stale_partitions(loaded)
    # every rollup of calls and tool runs × two months compared (this store has no GPU samples); the
    # discount moves google's costs, cache reads included, in the hourly rollups and their daily tiers
    # (which are checked against raw calls too)
    assert compared == 2 * len([r for r in ROLLUPS if r.raw != "gpu_samples"])
    assert {t for t, _ in stale} == {"calls_hourly", "calls_user_hourly", "calls_cache_hourly", "calls_daily",
                                     "calls_user_daily", "calls_user_totals_hourly", "calls_user_totals_daily",
                                     "calls_deployment_hourly", "calls_5m"}
    report = refresh_rollups(loaded)
    assert report.rebuilt == stale
    _assert_rollups_equal_raw(loaded, raw_only)
    assert refresh_rollups(loaded).rebuilt == []
