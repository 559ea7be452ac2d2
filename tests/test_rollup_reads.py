"""Reads planned over the hourly rollups (whole hours) plus raw calls (the partial hours at the
edges) agree with a scan of raw calls: sums exactly, latency percentiles within t-digest error;
and the migration that added TPOT and queue digests back-fills months rolled up before it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from ingest.pipeline import Pipeline
from llmledger.settings import Settings
from llmledger.simulator import SimulationConfig, iter_days
from tests.conftest import migrated_database
from warehouse.client import Warehouse
from warehouse.migrate import discover, migrate
from warehouse.queries import attribution, hybrid, series
from warehouse.queries.scope import Scope

START = datetime(2025, 11, 5, tzinfo=UTC)
# partial hours at both edges with whole hours between, and a range inside one hour (raw only)
RANGES = [(datetime(2025, 11, 5, 3, 17, 9, tzinfo=UTC), datetime(2025, 11, 6, 21, 41, 30, tzinfo=UTC)),
          (datetime(2025, 11, 5, 10, 5, tzinfo=UTC), datetime(2025, 11, 5, 10, 50, tzinfo=UTC))]
ALL = Scope.all()


def _simulated() -> pl.DataFrame:
    return pl.concat([d.calls for d in iter_days(SimulationConfig(start=START, days=2, calls_per_day=3_000, seed=5))])


@pytest.fixture(scope="module")
def loaded(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """The simulated days, ingested once for the module's reads (a test that writes uses `own`)."""
    settings = Settings(home=tmp_path_factory.mktemp("rollup-reads"), warehouse={"path": store})
    with migrated_database(settings) as wh, Pipeline(wh, settings) as pipeline:
        pipeline.ingest_frame(_simulated(), source="simulator")
        yield wh


@pytest.fixture
def own(pipeline: Pipeline, wh: Warehouse) -> Warehouse:
    """The simulated days in a database of the test's own."""
    pipeline.ingest_frame(_simulated(), source="simulator")
    return wh


@pytest.mark.parametrize("start,end", RANGES)
@pytest.mark.parametrize("dimension,filters", [("route", None), ("model", {"team": ["devtools", "data"]}),
                                               ("user_id", None), ("user_id", {"route": ["code-agent"]})])
def test_sums_from_rollups_equal_raw_calls(loaded: Warehouse, raw_only, start, end, dimension, filters) -> None:
    planned = attribution.usage_by(loaded, ALL, dimension, start, end, filters)
    assert not planned.is_empty()
    assert planned.equals(raw_only(attribution.usage_by, loaded, ALL, dimension, start, end, filters))
    assert attribution.totals(loaded, ALL, start, end, filters).equals(
        raw_only(attribution.totals, loaded, ALL, start, end, filters))


def test_chosen_measures_are_the_full_breakdowns_columns(loaded: Warehouse, raw_only) -> None:
    start, end = RANGES[0]
    full = attribution.usage_by_capped(loaded, ALL, "user_id", start, end, limit=5)
    spend = attribution.usage_by_capped(loaded, ALL, "user_id", start, end, limit=5, measures=["cost_usd"])
    assert spend.columns == ["key", "calls", "cost_usd", "keys"]
    assert spend.equals(full.select(spend.columns))
    assert spend.equals(raw_only(attribution.usage_by_capped, loaded, ALL, "user_id", start, end, limit=5,
                                 measures=["cost_usd"]))
    errors = attribution.usage_by(loaded, ALL, "team", start, end, measures=["errors", "output_tokens"])
    assert errors.columns == ["key", "calls", "cost_usd", "output_tokens", "errors"]
    with pytest.raises(ValueError, match="unknown measure"):
        attribution.usage_by(loaded, ALL, "team", start, end, measures=["spend"])


@pytest.mark.parametrize("dimension,limit", [("model", 2), ("team", 1), ("route", 100)])
def test_few_valued_breakdowns_cut_in_python_as_the_engine_cuts(loaded: Warehouse, monkeypatch, dimension,
                                                                limit) -> None:
    """Teams, routes and models are read whole and cut in Python; the `(others)` row, its `keys` count,
    the order and the column types are what the engine's cut gives."""
    start, end = RANGES[0]
    assert dimension in attribution.FEW_VALUES
    in_python = attribution.usage_by_capped(loaded, ALL, dimension, start, end, limit=limit)
    monkeypatch.setattr(attribution, "FEW_VALUES", frozenset())
    in_engine = attribution.usage_by_capped(loaded, ALL, dimension, start, end, limit=limit)
    assert in_python.schema == in_engine.schema
    assert in_python.equals(in_engine)
    assert (in_python["key"][-1] == attribution.OTHERS) == (limit < 100)


@pytest.mark.parametrize("start,end", RANGES)
def test_top_n_from_rollups_equals_raw_calls(loaded: Warehouse, raw_only, start, end) -> None:
    planned = series.top_n(loaded, ALL, start, end, dimension="user_id", n=7)
    assert planned.columns == ["key", "value", "calls", "cost_usd"] and planned.height == 7
    assert planned.equals(raw_only(series.top_n, loaded, ALL, start, end, dimension="user_id", n=7))


def _close(planned: pl.DataFrame, raw: pl.DataFrame, columns: list[str], rel: float) -> None:
    assert planned.height == raw.height
    for column in columns:
        for got, want in zip(planned[column].to_list(), raw[column].to_list(), strict=True):
            assert (got is None) == (want is None), column
            if want is not None:
                assert got == pytest.approx(want, rel=rel, abs=1.0), column


@pytest.mark.parametrize("dimension", [None, "model"])
def test_latency_percentiles_from_rollup_digests_agree_with_raw_calls(loaded: Warehouse, raw_only, dimension) -> None:
    start, end = RANGES[0]
    planned = attribution.latency_percentiles(loaded, ALL, start, end, dimension=dimension)
    raw = raw_only(attribution.latency_percentiles, loaded, ALL, start, end, dimension=dimension)
    assert planned["calls"].to_list() == raw["calls"].to_list()
    assert planned["queue_calls"].to_list() == raw["queue_calls"].to_list()
    assert planned["tpot_p50_ms"].drop_nulls().len() > 0 and planned["queue_p99_ms"].drop_nulls().len() > 0
    _close(planned, raw, ["latency_mean_ms", "ttft_mean_ms", "queue_mean_ms"], 1e-9)
    # t-digests merged from hourly states against one digest over the same calls
    _close(planned, raw, [f"{m}_p{p}_ms" for m in ("latency", "ttft", "tpot", "queue") for p in (50, 95, 99)], 0.15)


def test_latency_series_queue_p99_from_the_rollup(loaded: Warehouse, raw_only) -> None:
    start, end = RANGES[0]
    planned = series.latency_series(loaded, ALL, start, end, grain="day", dimension="provider")
    raw = raw_only(series.latency_series, loaded, ALL, start, end, grain="day", dimension="provider")
    assert planned.select("bucket", "key", "calls").equals(raw.select("bucket", "key", "calls"))
    _close(planned, raw, ["queue_p99_ms", "latency_p95_ms", "ttft_p95_ms"], 0.15)


def test_latency_series_by_the_hour_from_the_latency_rollup(loaded: Warehouse, raw_only,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """By the hour, latency per route merges the narrow latency rollup's digests (not `calls_hourly`'s)
    and agrees with raw calls: counts exactly, percentiles within t-digest error."""
    start, end = RANGES[0]
    issued: list[str] = []
    plain = loaded.query_df
    monkeypatch.setattr(loaded, "query_df", lambda sql, *a, **k: (issued.append(sql), plain(sql, *a, **k))[1])
    planned = series.latency_series(loaded, ALL, start, end, grain="hour", dimension="route")
    assert "FROM calls_latency_hourly " in issued[0] and "calls_hourly" not in issued[0]
    raw = raw_only(series.latency_series, loaded, ALL, start, end, grain="hour", dimension="route")
    assert planned.select("bucket", "key", "calls").equals(raw.select("bucket", "key", "calls"))
    _close(planned, raw, ["latency_mean_ms", "ttft_mean_ms"], 1e-9)
    _close(planned, raw, ["latency_p50_ms", "latency_p95_ms", "ttft_p95_ms", "queue_p99_ms"], 0.15)


def test_per_user_attribution_reads_the_user_rollups(own: Warehouse) -> None:
    """The planner really serves users from the per-user totals, and users of a route from
    `calls_user_hourly` (not just agreeing by accident)."""
    loaded = own  # it truncates rollups
    start, end = RANGES[0]
    before = attribution.usage_by(loaded, ALL, "user_id", start, end)
    of_route = attribution.usage_by(loaded, ALL, "user_id", start, end, {"route": ["code-agent"]})
    loaded.command("TRUNCATE TABLE calls_user_totals_hourly")
    assert attribution.usage_by(loaded, ALL, "user_id", start, end)["calls"].sum() < before["calls"].sum()
    loaded.command("TRUNCATE TABLE calls_user_hourly")
    after = attribution.usage_by(loaded, ALL, "user_id", start, end, {"route": ["code-agent"]})
    assert after["calls"].sum() < of_route["calls"].sum()


def test_the_rollup_migrations_back_fill_earlier_months(fresh_wh: Warehouse, settings: Settings) -> None:
    """A store rolled up before migrations 42-43 answers TPOT, queue time and per-user cost parts
    from its old months too, exactly as a store that had the new columns from the start."""
    before = [m for m in discover() if m.version < 42]
    migrate(fresh_wh, before)
    from ingest.pricing import load_prices

    load_prices(fresh_wh, settings.pricing)
    with Pipeline(fresh_wh, settings) as pipeline:
        pipeline.ingest_frame(_simulated(), source="simulator")
    assert migrate(fresh_wh) and fresh_wh.query_rows("SELECT sum(tpot_calls) FROM calls_hourly")[0][0] > 0
    hourly = fresh_wh.query_rows(
        "SELECT sum(tpot_calls), sum(queue_calls), sum(queue_ms_sum), sum(calls), sum(cost_usd) FROM calls_hourly")[0]
    raw = fresh_wh.query_rows(
        "SELECT countIf(status = 'ok' AND latency_ms IS NOT NULL AND ttft_ms IS NOT NULL AND output_tokens > 1), "
        "countIf(status = 'ok' AND queue_ms IS NOT NULL), sumIf(ifNull(queue_ms, 0), status = 'ok'), count(), "
        "sum(cost_usd) FROM calls")[0]
    assert hourly == raw  # the back-fill rows add the new measures and nothing else
    parts = ("calls", "cost_usd", "input_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd", "output_cost_usd",
             "tool_cost_usd", "batch_discount_usd", "cache_read_tokens", "reasoning_tokens", "unpriced_calls")
    users = fresh_wh.query_rows(f"SELECT {', '.join(f'sum({p})' for p in parts)} FROM calls_user_hourly")[0]
    raw_users = fresh_wh.query_rows(
        "SELECT count(), sum(cost_usd), sum(input_cost_usd), sum(cache_read_cost_usd), sum(cache_write_cost_usd), "
        "sum(output_cost_usd), sum(tool_cost_usd), sum(batch_discount_usd), sum(cache_read_tokens), "
        "sum(reasoning_tokens), countIf(unpriced) FROM calls")[0]
    assert users == raw_users
    start, end = datetime(2025, 11, 5, tzinfo=UTC), datetime(2025, 11, 7, tzinfo=UTC)
    whole = attribution.latency_percentiles(fresh_wh, ALL, start, end, dimension="model")
    assert whole.filter(pl.col("tpot_p50_ms").is_not_null()).height > 0
