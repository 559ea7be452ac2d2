"""The query functions behind the dashboards, on real embedded ClickHouse: spend periods and the
forecast, heatmap, movers, cache eligibility and savings (exact Decimals from the price table),
prompt versions, token distributions, reasoning outliers, cascades, latency over time, unpriced
models, the price list; and the simulated node samples agreeing with the calls they served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from ingest.pipeline import Pipeline
from llmledger.simulator.nodes import CALL_COLUMNS, node_samples
from tests.factories import frame, make_call
from warehouse.client import Warehouse
from warehouse.queries import caching, distributions, ops, routing, series, spend
from warehouse.queries.scope import Scope

ALL = Scope.all()
NOW = datetime(2025, 11, 5, 12, 0, tzinfo=UTC)  # a Wednesday
DAY = timedelta(days=1)


def _ingest(pipeline: Pipeline, calls: list[dict]) -> None:
    result = pipeline.ingest_frame(frame(calls), source="test")
    assert result.written == len(calls), result


def _sum(wh: Warehouse, where: str) -> Decimal:
    return wh.query_rows(f"SELECT sum(cost_usd) FROM calls WHERE {where}")[0][0]


def test_spend_periods_and_the_month_end_forecast(wh: Warehouse, pipeline: Pipeline) -> None:
    _ingest(pipeline, [
        make_call(ts="2025-10-31T23:00:00Z", input_tokens=9000),  # last month: not in any period
        make_call(ts="2025-11-01T08:00:00Z"), make_call(ts="2025-11-03T09:00:00Z"),  # month; Monday = week
        make_call(ts="2025-11-05T10:00:00Z", output_tokens=900), make_call(ts="2025-11-05T13:00:00Z"),  # after now
    ])
    row = spend.spend_periods(wh, ALL, NOW).row(0, named=True)
    assert row["today_calls"] == 1 and row["week_calls"] == 2 and row["month_calls"] == 3
    assert row["today_usd"] == _sum(wh, "ts >= '2025-11-05' AND ts < '2025-11-05 12:00:00'")
    assert row["week_usd"] == _sum(wh, "ts >= '2025-11-03' AND ts < '2025-11-05 12:00:00'")
    assert row["month_usd"] == _sum(wh, "ts >= '2025-11-01' AND ts < '2025-11-05 12:00:00'")
    trailing = _sum(wh, "ts >= '2025-10-29 12:00:00' AND ts < '2025-11-05 12:00:00'")
    assert row["trailing_usd"] == trailing
    left_days = Decimal(25.5)  # Nov 5 12:00 → Dec 1
    assert row["forecast_usd"] == pytest.approx(row["month_usd"] + trailing / 7 * left_days, abs=Decimal("1e-15"))
    assert row["month_start"] == datetime(2025, 11, 1, tzinfo=UTC) and row["month_end"] == datetime(2025, 12, 1, tzinfo=UTC)


def test_heatmap_has_every_cell_and_movers_compare_equal_periods(wh: Warehouse, pipeline: Pipeline) -> None:
    _ingest(pipeline, [
        make_call(ts="2025-11-03T14:10:00Z", team="a"), make_call(ts="2025-11-03T14:50:00Z", team="a"),  # Mon 14h
        make_call(ts="2025-10-27T09:00:00Z", team="b", output_tokens=5000),  # previous week only
        make_call(ts="2025-11-04T09:00:00Z", team="c"),
    ])
    cells = spend.spend_heatmap(wh, ALL, datetime(2025, 10, 1, tzinfo=UTC), NOW)
    assert cells.height == 168
    monday = cells.filter((pl.col("weekday") == 1) & (pl.col("hour") == 14)).row(0, named=True)
    assert monday["calls"] == 2 and monday["cost_usd"] == _sum(wh, "toHour(ts) = 14")
    assert cells["calls"].sum() == 4

    moved = spend.movers(wh, ALL, "team", NOW - 7 * DAY, NOW).rows_by_key("key", named=True)
    b, a = moved["b"][0], moved["a"][0]
    assert b["cost_usd"] == 0 and b["delta_usd"] == -b["previous_cost_usd"] and b["change"] == -1.0
    assert a["previous_cost_usd"] == 0 and a["change"] is None and a["calls"] == 2
    assert list(moved)[0] == "b"  # the largest change in $ first


def test_cache_eligibility_windows_and_savings_are_exact(wh: Warehouse, pipeline: Pipeline) -> None:
    sonnet = {"provider": "anthropic", "model": "claude-sonnet-4-5", "route": "/chat"}
    haiku = {"provider": "anthropic", "model": "claude-haiku-4-5", "route": "/triage"}
    _ingest(pipeline, [
        make_call(ts="2025-11-03T10:01:00Z", input_tokens=12_000, cache_read_tokens=10_000,
                  cache_write_5m_tokens=1_000, **sonnet),
        make_call(ts="2025-11-03T10:02:00Z", input_tokens=2_000, **sonnet),  # ≥ 1024, uncached: missed
        make_call(ts="2025-11-03T10:03:00Z", input_tokens=2_000, **haiku),  # < 2048: not eligible
        make_call(ts="2025-11-03T10:04:00Z", input_tokens=2_100, **haiku),  # ≥ 2048, uncached: missed
        make_call(ts="2025-11-03T10:05:00Z", input_tokens=5_000, status="error", **sonnet),  # errors never count
    ])
    start, end = datetime(2025, 11, 3, 10, tzinfo=UTC), datetime(2025, 11, 3, 11, tzinfo=UTC)
    windows = caching.cache_windows(wh, ALL, start, end, grain="hour", by=["route"]).rows_by_key("route", named=True)
    chat, triage = windows["/chat"][0], windows["/triage"][0]
    assert chat["eligible_calls"] == 2 and chat["uncached_eligible_calls"] == 1 and chat["not_applied_share"] == 0.5
    assert chat["hit_ratio"] == pytest.approx(10_000 / 11_000)
    assert triage["eligible_calls"] == 1 and triage["uncached_eligible_calls"] == 1 and triage["hit_ratio"] is None

    saved = caching.cache_savings(wh, ALL, start, end).row(0, named=True)
    # claude-sonnet-4-5: input $3 / M, cache read $0.30 / M, 5-minute cache write $3.75 / M; haiku-4-5: $1 / $0.10
    assert saved["saved_usd"] == Decimal(10_000) * (Decimal("3e-6") - Decimal("0.3e-6"))
    assert saved["write_premium_usd"] == Decimal(1_000) * (Decimal("3.75e-6") - Decimal("3e-6"))
    assert saved["net_saved_usd"] == saved["saved_usd"] - saved["write_premium_usd"]
    assert saved["cache_read_cost_usd"] == wh.query_rows("SELECT sum(cache_read_cost_usd) FROM calls")[0][0]
    assert saved["uncached_eligible_calls"] == 2 and saved["uncached_eligible_input_tokens"] == 4_100
    assert saved["missed_usd"] == Decimal(2_000) * Decimal("2.7e-6") + Decimal(2_100) * Decimal("0.9e-6")
    stricter = caching.cache_savings(wh, ALL, start, end, min_tokens={"anthropic/": 4096}).row(0, named=True)
    assert stricter["eligible_calls"] == 1 and stricter["uncached_eligible_calls"] == 0
    # a minimum the cache rollup does not count, and 5-minute buckets, are answered from raw calls alike
    odd = caching.cache_savings(wh, ALL, start, end, min_tokens={"anthropic/": 2050}).row(0, named=True)
    assert odd["eligible_calls"] == 2 and odd["uncached_eligible_calls"] == 1 and odd["saved_usd"] == saved["saved_usd"]
    fine = caching.cache_windows(wh, ALL, start, end, grain="5min", by=["route"])
    assert fine.group_by("route").agg(pl.col("eligible_calls").sum()).sort("route").rows() == [("/chat", 2), ("/triage", 1)]


def test_prompt_versions_token_distributions_and_reasoning_outliers(wh: Warehouse, pipeline: Pipeline) -> None:
    calls = [make_call(ts=f"2025-11-03T10:{i:02d}:00Z", prompt_version="v1", input_tokens=1000 * (i + 1),
                       output_tokens=100, reasoning_tokens=0) for i in range(10)]
    calls += [make_call(ts="2025-11-03T11:00:00Z", prompt_version="v2", model="o4-mini", route="/qa",
                        output_tokens=120_000, reasoning_tokens=100_000)]
    calls += [make_call(ts=f"2025-11-03T11:{i:02d}:00Z", prompt_version="v2", model="o4-mini", route="/qa",
                        output_tokens=600, reasoning_tokens=500) for i in range(1, 20)]
    _ingest(pipeline, calls)
    start, end = datetime(2025, 11, 3, tzinfo=UTC), datetime(2025, 11, 4, tzinfo=UTC)
    versions = caching.prompt_versions(wh, ALL, start, end, by="route")
    assert versions.select("key", "prompt_version", "calls").rows() == [("/chat", "v1", 10), ("/qa", "v2", 20)]
    assert versions["first_seen"][1] == datetime(2025, 11, 3, 11, tzinfo=UTC)

    q = distributions.token_quantiles(wh, ALL, start, end, measure="input_tokens", dimension="route")
    chat = q.filter(pl.col("key") == "/chat").row(0, named=True)
    # nearest-rank percentiles of 1,000 … 10,000, within the bins' 0.3% above 128 tokens
    assert chat["calls"] == 10 and chat["max"] == 10_000 and chat["p50"] == pytest.approx(5_000, rel=3e-3)
    assert chat["p5"] == pytest.approx(1_000, rel=3e-3) and chat["p99"] == pytest.approx(10_000, rel=3e-3)
    assert chat["p75"] == pytest.approx(8_000, rel=3e-3) and chat["mean"] == 5_500
    bins = distributions.token_histogram(wh, ALL, start, end, measure="input_tokens", dimension="route")
    assert bins.filter(pl.col("key") == "/chat")["calls"].sum() == 10
    assert (bins["bin_lo"] < bins["bin_hi"]).all()
    reasoning = distributions.token_quantiles(wh, ALL, start, end, measure="reasoning_tokens", dimension="model",
                                              nonzero=True)
    assert reasoning["key"].to_list() == ["o4-mini"] and reasoning["calls"][0] == 20

    worst = distributions.reasoning_outliers(wh, ALL, start, end, n=2)
    assert worst["reasoning_tokens"].to_list() == [100_000, 500]
    # the p99 of 19 calls at 500 and one at 100,000 (nearest rank: the 20th) is that one call
    assert worst["route_p99"][0] == pytest.approx(100_000, rel=3e-3)
    assert worst["times_p99"][0] == pytest.approx(100_000 / worst["route_p99"][0])
    assert worst["times_p99"][1] == pytest.approx(500 / worst["route_p99"][0])


def test_cascade_escalation_steps_and_all_on_the_frontier(wh: Warehouse, pipeline: Pipeline) -> None:
    base = {"routing_policy": "cascade-v2", "route": "/support"}
    calls = [make_call(ts=f"2025-11-03T10:{i:02d}:00Z", model="gpt-4o-mini", cascade_step=0, input_tokens=2_000,
                       cache_read_tokens=1_024, output_tokens=100, **base) for i in range(10)]
    calls += [make_call(ts=f"2025-11-03T10:{i:02d}:30Z", model="gpt-4o", cascade_step=1, escalated=True, **base)
              for i in range(4)]
    calls += [make_call(ts="2025-11-03T11:00:00Z", model="gpt-4.1-mini", cascade_step=0, **base)]
    _ingest(pipeline, calls)
    start, end = datetime(2025, 11, 3, tzinfo=UTC), datetime(2025, 11, 4, tzinfo=UTC)
    hourly = routing.cascade_series(wh, ALL, start, end, grain="hour")
    assert hourly.select("step0_calls", "escalated_calls", "escalation_rate").rows() == [(10, 4, 0.4), (1, 0, 0.0)]
    assert hourly["step0_models"].to_list() == [["gpt-4o-mini"], ["gpt-4.1-mini"]]

    steps = routing.cascade_steps(wh, ALL, start, end)
    assert steps["calls"].sum() == 15 and steps["cost_share"].sum() == pytest.approx(1.0)
    assert Decimal(str(steps["cost_usd"].sum())) == _sum(wh, "1")

    out = routing.frontier_cost(wh, ALL, start, end).row(0, named=True)
    assert out["frontier_model"] == "gpt-4o" and out["requests"] == 11 and out["calls"] == 15
    assert out["actual_cost_usd"] == _sum(wh, "1")
    # the 11 step-0 calls repriced at gpt-4o: $2.50 / M input, $1.25 / M cached input, $10 / M output
    expected = 10 * (Decimal(976) * Decimal("2.5e-6") + Decimal(1024) * Decimal("1.25e-6") + Decimal(100) * Decimal("1e-5"))
    expected += Decimal(1_000) * Decimal("2.5e-6") + Decimal(200) * Decimal("1e-5")
    assert out["all_frontier_cost_usd"] == expected
    assert out["saved_usd"] == expected - out["actual_cost_usd"]


def test_latency_over_time_unpriced_models_and_the_price_list(wh: Warehouse, pipeline: Pipeline) -> None:
    calls = [make_call(ts=f"2025-11-03T10:{i // 2:02d}:{30 * (i % 2):02d}Z", latency_ms=1000, ttft_ms=200, queue_ms=5)
             for i in range(97)]
    calls += [make_call(ts=f"2025-11-03T10:59:0{i}Z", latency_ms=40_000, ttft_ms=35_000, queue_ms=34_000)
              for i in range(3)]  # a 3% tail: the p99 sees it, the mean hardly

    calls += [make_call(ts="2025-11-03T10:30:40Z", model="my-private-llm", provider="acme")]
    _ingest(pipeline, calls)
    start, end = datetime(2025, 11, 3, 10, tzinfo=UTC), datetime(2025, 11, 3, 11, tzinfo=UTC)
    row = series.latency_series(wh, ALL, start, end, grain="hour", filters={"model": ["gpt-4o"]}).row(0, named=True)
    assert row["calls"] == 100 and row["latency_mean_ms"] == pytest.approx((97_000 + 120_000) / 100)
    assert row["latency_p50_ms"] == pytest.approx(1000) and row["latency_p99_ms"] > 30_000
    assert row["ttft_p99_ms"] > 30_000 and row["queue_p99_ms"] > 30_000

    unpriced = ops.unpriced_models(wh, ALL, start, end)
    assert unpriced.select("provider", "model", "calls").rows() == [("acme", "my-private-llm", 1)]
    prices = ops.price_list(wh, at=start, models=["gpt-4o"]).filter(pl.col("provider") == "openai").row(0, named=True)
    assert prices["input_mtok"] == Decimal("2.5") and prices["output_mtok"] == Decimal(10)
    assert not ops.price_list(wh, at=start, like="llama-3.1-70b").is_empty()


def test_budget_status_against_configured_budgets(wh: Warehouse, pipeline: Pipeline) -> None:
    _ingest(pipeline, [make_call(ts="2025-11-02T10:00:00Z", team="data"), make_call(ts="2025-11-02T10:00:00Z", team="x")])
    budgets = [spend.BudgetSpec(Decimal("0.01"), team="data"), spend.BudgetSpec(Decimal(5), project="other")]
    status = spend.budget_status(wh, ALL, budgets, NOW)
    data = status.row(0, named=True)
    assert data["budget"] == "team=data" and data["month_usd"] == _sum(wh, "team = 'data'")
    assert data["used"] == pytest.approx(float(data["month_usd"] / Decimal("0.01")))
    assert status["budget"].to_list() == ["team=data", "project=other"]
    assert spend.budget_status(wh, Scope.of("default"), budgets, NOW)["budget"].to_list() == ["team=data"]


def test_simulated_node_samples_agree_with_the_calls_they_served() -> None:
    from llmledger.simulator import SimulationConfig, iter_days

    start = datetime(2025, 11, 3, tzinfo=UTC)
    config = SimulationConfig(start=start, days=2, calls_per_day=3000, seed=3, incidents=False)
    calls = pl.concat([d.calls.filter(pl.col("deployment") == "self_hosted").select(CALL_COLUMNS)
                       for d in iter_days(config)])
    end = start + 2 * DAY
    days = list(node_samples(calls, start, end + timedelta(minutes=10)))
    inference = pl.concat([d.inference for d in days])
    last = inference.sort("ts").group_by("node").last()
    # every call has finished by the last scrape: the counters hold all of them
    by_node = calls.group_by("node").agg(pl.len().alias("n"), pl.col("output_tokens").sum().alias("out"))
    joined = last.join(by_node, on="node")
    assert (joined["requests_finished_total"] == joined["n"]).all()
    assert (joined["generation_tokens_total"] == joined["out"]).all()
    assert inference["requests_running"].min() >= 0 and inference["kv_cache_usage"].max() <= 1
    gpu = pl.concat([d.gpu for d in days])
    assert gpu.select("node", "gpu").unique().height == 2 * calls["node"].n_unique()
    assert gpu["util_pct"].is_between(0, 100).all()
    hist = pl.concat([d.histograms for d in days])
    finals = hist.filter(pl.col("le") == float("inf")).sort("ts").group_by("node", "metric").last()
    assert (finals.join(by_node, on="node").select(pl.col("count") == pl.col("n"))).to_series().all()


def test_whole_hours_from_the_rollups_and_partial_hours_from_raw_calls_equal_raw(wh: Warehouse,
                                                                                 pipeline: Pipeline) -> None:
    from warehouse.queries import attribution, hybrid

    teams, models = ("a", "b", "c"), ("gpt-4o", "gpt-4o-mini")
    calls = [make_call(ts=f"2025-11-03T{10 + i // 12:02d}:{(i * 7) % 60:02d}:{i % 60:02d}Z", team=teams[i % 3],
                       model=models[i % 2], input_tokens=100 + 13 * i, output_tokens=7 * i + 1,
                       routing_policy="p", cascade_step=i % 3 and 1) for i in range(72)]
    _ingest(pipeline, calls)
    start, end = datetime(2025, 11, 3, 10, 17, 30, tzinfo=UTC), datetime(2025, 11, 3, 15, 42, 10, tzinfo=UTC)
    assert hybrid.rows(ALL, start, end, None, keys={"key": "team"}, measures=["cost_usd"], params={}) is not None
    raw = "ts >= '2025-11-03 10:17:30' AND ts < '2025-11-03 15:42:10'"

    got = attribution.totals(wh, ALL, start, end).row(0, named=True)
    want = wh.query_df(f"SELECT count() AS calls, sum(cost_usd) AS cost_usd, sum(input_tokens) AS input_tokens "
                       f"FROM calls WHERE {raw}").row(0, named=True)
    assert {k: got[k] for k in want} == want
    by_team = attribution.usage_by(wh, ALL, "team", start, end).select("key", "calls", "cost_usd").sort("key").rows()
    assert by_team == wh.query_rows(f"SELECT team, count(), sum(cost_usd) FROM calls WHERE {raw} GROUP BY team ORDER BY team")
    hourly = series.time_series(wh, ALL, start, end, grain="hour", dimension="team", top=2).sort("bucket", "key")
    raw_hourly = wh.query_df(
        f"SELECT toDateTime64(toStartOfHour(ts), 3, 'UTC') AS bucket, if(team IN ('a', 'b'), team, 'other') AS key, "
        f"sum(cost_usd) AS value FROM calls WHERE {raw} GROUP BY bucket, key ORDER BY bucket, key")
    top_two = attribution.usage_by(wh, ALL, "team", start, end)["key"].head(2).sort().to_list()
    assert top_two == ["a", "b"] and hourly.rows() == raw_hourly.rows()

    previous = start - (end - start)
    moved = spend.movers(wh, ALL, "model", start, end).sort("key")
    want_moved = wh.query_rows(
        f"SELECT model, sumIf(cost_usd, ts >= '2025-11-03 10:17:30'), sumIf(cost_usd, ts < '2025-11-03 10:17:30') "
        f"FROM calls WHERE ts >= '{previous:%Y-%m-%d %H:%M:%S}' AND {raw.split(' AND ')[1]} GROUP BY model ORDER BY model")
    assert moved.select("key", "cost_usd", "previous_cost_usd").rows() == want_moved
    periods = spend.spend_periods(wh, ALL, end).row(0, named=True)
    assert periods["today_calls"] == wh.query_rows(
        "SELECT count() FROM calls WHERE ts >= '2025-11-03' AND ts < '2025-11-03 15:42:10'")[0][0]
    cascade = routing.cascade_series(wh, ALL, start, end, grain="hour")
    assert cascade["step0_calls"].sum() == wh.query_rows(f"SELECT countIf(cascade_step = 0) FROM calls WHERE {raw}")[0][0]
    assert cascade["escalated_calls"].sum() == wh.query_rows(f"SELECT countIf(cascade_step = 1) FROM calls WHERE {raw}")[0][0]
    latency = series.latency_series(wh, ALL, start, end, grain="hour")
    assert latency["calls"].sum() == want["calls"]
