"""Reads served by the daily tiers, the five-minute edge tiers and the prompt-version, token, routing
and node rollups equal the same reads over raw calls (rollups off) — sums to the last Decimal digit,
token bins exactly — over a range whose whole days, other whole hours, whole five-minute buckets and
partial buckets come from different sources; and each read really comes from its rollup."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from ingest.pipeline import Pipeline
from ingest.pricing import load_prices
from llmledger.settings import Settings
from llmledger.simulator import SimulationConfig, iter_days
from tests.conftest import migrated_database
from warehouse.client import Warehouse
from warehouse.migrate import discover, migrate
from warehouse.queries import advice, attribution, caching, distributions, hybrid, nodes, ops, routing, series, spend
from warehouse.queries.scope import Scope
from warehouse.rollups import stale_partitions

START = datetime(2025, 11, 4, tzinfo=UTC)
# partial hours at both edges, whole hours on the first and last day, one whole day between
SPAN = (datetime(2025, 11, 4, 3, 17, 9, tzinfo=UTC), datetime(2025, 11, 6, 21, 41, 30, tzinfo=UTC))
ALL = Scope.all()
Read = Callable[[Warehouse, datetime, datetime], object]


@pytest.fixture(scope="module")
def loaded(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """Three simulated days, ingested once for the module."""
    settings = Settings(home=tmp_path_factory.mktemp("tiers-home"), warehouse={"path": store})
    with migrated_database(settings) as wh:
        with Pipeline(wh, settings) as pipeline:
            for day in iter_days(SimulationConfig(start=START, days=3, calls_per_day=2_000, seed=11)):
                pipeline.ingest_frame(day.calls, source="simulator")
        yield wh


# each read, and the rollup tables it must read (besides raw calls for the partial hours)
READS: dict[str, tuple[Read, set[str]]] = {
    "usage by user, days": (lambda wh, s, e: attribution.usage_by(wh, ALL, "user_id", s, e),
                            {"calls_user_totals_daily", "calls_user_totals_hourly"}),
    "top users": (lambda wh, s, e: series.top_n(wh, ALL, s, e, dimension="user_id", n=20),
                  {"calls_user_totals_daily", "calls_user_totals_hourly"}),
    "spend per team": (lambda wh, s, e: attribution.usage_by_capped(wh, ALL, "team", s, e, limit=100,
                                                                    measures=["cost_usd"]),
                       {"calls_daily", "calls_hourly"}),
    "usage by user of a route, days": (
        lambda wh, s, e: attribution.usage_by(wh, ALL, "user_id", s, e, {"route": ["code-agent", "support-chat"]}),
        {"calls_user_daily", "calls_user_hourly"}),
    "totals filtered, days": (lambda wh, s, e: attribution.totals(wh, ALL, s, e, {"team": ["data", "devtools"]}),
                              {"calls_daily", "calls_hourly"}),
    "daily series by team": (lambda wh, s, e: series.time_series(wh, ALL, s, e, grain="day", dimension="team"),
                             {"calls_daily"}),
    "cache hit series by route, days": (
        lambda wh, s, e: series.cache_hit_series(wh, ALL, s, e, grain="day", dimension="route"),
        {"calls_cache_hourly"}),
    "cache hit series, hours": (lambda wh, s, e: series.cache_hit_series(wh, ALL, s, e, grain="hour"),
                                {"calls_cache_hourly"}),
    "cache hit series by service tier": (
        lambda wh, s, e: series.cache_hit_series(wh, ALL, s, e, grain="week", dimension="service_tier"),
        {"calls_cache_hourly"}),
    "cache hit ratio": (lambda wh, s, e: attribution.cache_hit_ratio(wh, ALL, s, e),  # one ratio: its own sums
                        {"calls_cache_hourly"}),
    "prompt versions by route": (lambda wh, s, e: caching.prompt_versions(wh, ALL, s, e, by="route"),
                                 {"calls_prompt_hourly"}),
    "prompt versions by team, filtered": (
        lambda wh, s, e: caching.prompt_versions(wh, ALL, s, e, by="team", filters={"model": ["gpt-4o"]}),
        {"calls_prompt_hourly"}),
    "input token quantiles": (lambda wh, s, e: distributions.token_quantiles(wh, ALL, s, e),
                              {"calls_tokens_daily", "calls_tokens_hourly"}),
    "reasoning quantiles, nonzero": (
        lambda wh, s, e: distributions.token_quantiles(wh, ALL, s, e, measure="reasoning_tokens",
                                                       dimension="model", nonzero=True), {"calls_tokens_daily"}),
    "output token histogram by team": (
        lambda wh, s, e: distributions.token_histogram(wh, ALL, s, e, measure="output_tokens", dimension="team"),
        {"calls_tokens_daily"}),
    "reasoning histogram, nonzero": (
        lambda wh, s, e: distributions.token_histogram(wh, ALL, s, e, measure="reasoning_tokens", nonzero=True),
        {"calls_tokens_daily"}),
    "reasoning outliers": (lambda wh, s, e: distributions.reasoning_outliers(wh, ALL, s, e, n=7),
                           {"calls_tokens_daily", "calls_reasoning_top_hourly"}),
    # more than the hourly tops keep: read from raw calls above the bins' floor
    "reasoning outliers, n above the hourly tops": (
        lambda wh, s, e: distributions.reasoning_outliers(wh, ALL, s, e, n=distributions.TOP_PER_HOUR + 10),
        {"calls_tokens_daily"}),
    "cascade steps": (lambda wh, s, e: routing.cascade_steps(wh, ALL, s, e), {"calls_routing_hourly"}),
    "all on the frontier": (lambda wh, s, e: routing.frontier_cost(wh, ALL, s, e),
                            {"calls_daily", "calls_routing_hourly"}),
    "cascade series, days": (lambda wh, s, e: routing.cascade_series(wh, ALL, s, e, grain="day"), {"calls_daily"}),
    "infra by team": (lambda wh, s, e: nodes.infra_by(wh, ALL, "team", s, e), {"calls_node_hourly"}),
    "infra by deployment": (lambda wh, s, e: nodes.infra_by(wh, ALL, "deployment", s, e), {"calls_node_hourly"}),
    "totals (infra by deployment)": (lambda wh, s, e: attribution.totals(wh, ALL, s, e),
                                     {"calls_daily", "calls_node_hourly"}),
    "infra by route, filtered": (
        lambda wh, s, e: nodes.infra_by(wh, ALL, "api_key_id", s, e, {"team": ["platform"]}),
        {"calls_node_hourly"}),
    "advisor traffic of a route": (lambda wh, s, e: advice.route_traffic(wh, ALL, "support-chat", s, e),
                                   {"calls_route_scores_daily"}),
    "advisor scores repriced": (
        lambda wh, s, e: advice.live_scores(wh, ALL, "support-chat", "cascade-v2", s, e, cheap=("openai", "gpt-4o-mini"),
                                            frontier=("anthropic", "claude-sonnet-4-5")), {"calls_route_scores_daily"}),
    # a frontier price with time-of-day windows: no one cell per group, every call priced on its own
    "advisor scores repriced, off-peak prices": (
        lambda wh, s, e: advice.live_scores(wh, ALL, "support-chat", "cascade-v2", s, e, cheap=("openai", "gpt-4o-mini"),
                                            frontier=("azure", "deepseek-chat")), {"calls_route_scores_daily"}),
    # the nodes page's self-hosted models: no rollup but the deployment one keeps `deployment`
    "usage of self-hosted models": (
        lambda wh, s, e: attribution.usage_by_capped(wh, ALL, "model", s, e, {"deployment": ["self_hosted"]}, limit=100),
        {"calls_deployment_hourly"}),
    "usage per deployment and node": (lambda wh, s, e: attribution.usage_by(wh, ALL, "node", s, e, {"deployment": ["api"]}),
                                      {"calls_deployment_hourly"}),
    "unpriced models": (lambda wh, s, e: ops.unpriced_models(wh, ALL, s, e), {"calls_unpriced_hourly"}),
    # boundaries inside the range: split days are read by the hour, split hours from raw calls
    "spend periods": (lambda wh, s, e: spend.spend_periods(wh, ALL, e), {"calls_daily", "calls_hourly"}),
    "movers across a split day": (
        lambda wh, s, e: spend.movers(wh, ALL, "route", s + timedelta(hours=20, minutes=31), e),
        {"calls_daily", "calls_hourly"}),
}


def _rows(frame: object) -> object:
    return frame.rows() if isinstance(frame, pl.DataFrame) else frame


@pytest.fixture
def tiered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every range read through the daily and hourly tiers and raw edge hours, as ranges longer than
    `FIVE_MINUTE_SPAN` are (SPAN is shorter)."""
    monkeypatch.setattr(hybrid, "FIVE_MINUTE_SPAN", timedelta(0))


@pytest.mark.parametrize("name", sorted(READS))
@pytest.mark.usefixtures("tiered")
def test_rollup_served_read_equals_the_raw_read(loaded: Warehouse, raw_only, name: str) -> None:
    read, _ = READS[name]
    got = read(loaded, *SPAN)
    if isinstance(got, pl.DataFrame):
        assert not got.is_empty()
    assert _rows(got) == _rows(raw_only(read, loaded, *SPAN))


@pytest.mark.parametrize("name", sorted(READS))
@pytest.mark.usefixtures("tiered")
def test_the_read_comes_from_its_rollups(loaded: Warehouse, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    read, tables = READS[name]
    issued: list[str] = []
    for method in ("query_df", "query_rows"):
        plain = getattr(loaded, method)
        monkeypatch.setattr(loaded, method, lambda sql, *a, _plain=plain, **k: (issued.append(sql), _plain(sql, *a, **k))[1])
    read(loaded, *SPAN)
    text = " ".join(issued)
    for table in tables:
        assert f"FROM {table} " in text, table


def test_token_bins_nest_in_the_histogram_bins(loaded: Warehouse) -> None:
    """The histogram from merged token bins equals one computed from each call's own count."""
    start, end = SPAN
    got = distributions.token_histogram(loaded, ALL, start, end, measure="input_tokens", dimension="route")
    direct = loaded.query_df(
        "SELECT toString(route) AS key, if(input_tokens = 0, -1, toInt32(floor(log2(input_tokens) * 4))) AS bin, "
        "count() AS calls FROM calls WHERE ts >= {s:DateTime64(3, 'UTC')} AND ts < {e:DateTime64(3, 'UTC')} "
        "GROUP BY key, bin ORDER BY key, bin", {"s": start, "e": end})
    assert got.select("key", "calls").rows() == direct.select("key", "calls").rows()
    assert got["bin_lo"].to_list() == [0 if b < 0 else 2 ** (b / 4) for b in direct["bin"].to_list()]


def test_token_quantiles_are_nearest_rank_within_the_bins(loaded: Warehouse) -> None:
    """Exact nearest-rank percentiles below 128 tokens, within 0.3% above."""
    start, end = SPAN
    got = distributions.token_quantiles(loaded, ALL, start, end, measure="output_tokens", dimension="route")
    calls = loaded.query_df("SELECT toString(route) AS key, output_tokens AS v FROM calls WHERE "
                            "ts >= {s:DateTime64(3, 'UTC')} AND ts < {e:DateTime64(3, 'UTC')}", {"s": start, "e": end})
    for row in got.iter_rows(named=True):
        values = sorted(calls.filter(pl.col("key") == row["key"])["v"].to_list())
        assert row["calls"] == len(values) and row["max"] == values[-1]
        for p in (5, 50, 95, 99):
            want = values[-(-p * len(values) // 100) - 1]
            assert row[f"p{p}"] == (want if want < 128 else pytest.approx(want, rel=3e-3))


def test_the_migrations_back_fill_months_stored_before_them(fresh_wh: Warehouse, settings: Settings) -> None:
    """A store filled before migrations 70-89 and 96-97 gets every new rollup back-filled to equal its raw
    calls (and the daily tiers their hourly rollups); running the back-fills again adds nothing."""
    # with 80 (GPU util source), which 87 reads
    mine = [m for m in discover() if 70 <= m.version < 90 or m.version in (96, 97)]
    migrate(fresh_wh, [m for m in discover() if m.version < 70])
    load_prices(fresh_wh, settings.pricing)
    with Pipeline(fresh_wh, settings) as pipeline:
        for day in iter_days(SimulationConfig(start=START, days=1, calls_per_day=1_500, seed=2)):
            pipeline.ingest_frame(day.calls, source="simulator")
    assert migrate(fresh_wh, [m for m in discover() if m.version < 70] + mine) == [m.name for m in mine]
    for table in ("calls_daily", "calls_user_daily", "calls_prompt_hourly", "calls_tokens_hourly",
                  "calls_tokens_daily", "calls_routing_hourly", "calls_node_hourly", "calls_user_totals_hourly",
                  "calls_user_totals_daily", "calls_route_scores_daily", "calls_deployment_hourly",
                  "calls_unpriced_hourly", "calls_latency_hourly", "calls_5m", "calls_reasoning_top_hourly"):
        assert fresh_wh.scalar(f"SELECT count() FROM {table}") > 0, table
    assert stale_partitions(fresh_wh)[1] == []
    # 0096's back-fill writes the state type 0097 replaced: only the current one is run again
    for statement in (s for m in mine if m.version != 96 for s in m.statements() if "INSERT INTO" in s):
        fresh_wh.command(statement)
    assert stale_partitions(fresh_wh)[1] == []


# ranges with partial edges, all shorter than FIVE_MINUTE_SPAN: inside one hour, across an hour without
# a whole one, a few hours, on a five-minute edge, and a day and a half
EDGE_SPANS = (
    (datetime(2025, 11, 5, 10, 17, 9, tzinfo=UTC), datetime(2025, 11, 5, 10, 52, 1, tzinfo=UTC)),
    (datetime(2025, 11, 5, 10, 17, 9, tzinfo=UTC), datetime(2025, 11, 5, 11, 41, 30, tzinfo=UTC)),
    (datetime(2025, 11, 5, 6, 59, 59, 999000, tzinfo=UTC), datetime(2025, 11, 5, 9, 0, 0, 1000, tzinfo=UTC)),
    (datetime(2025, 11, 5, 6, 35, tzinfo=UTC), datetime(2025, 11, 5, 9, 5, tzinfo=UTC)),
    (datetime(2025, 11, 4, 13, 3, 33, tzinfo=UTC), datetime(2025, 11, 6, 0, 58, 2, tzinfo=UTC)),
)
FIVE_MINUTE_READS = ("spend per team", "usage per route of a team")  # what `calls_5m` keeps
EDGE_READS: dict[str, Callable[[Warehouse, Scope, datetime, datetime], pl.DataFrame]] = {
    "spend per team": lambda wh, scope, s, e: attribution.usage_by(wh, scope, "team", s, e, measures=["cost_usd"]),
    "usage per route of a team": lambda wh, scope, s, e: attribution.usage_by(wh, scope, "route", s, e,
                                                                              {"team": ["data"]}),
    "top users": lambda wh, scope, s, e: series.top_n(wh, scope, s, e, dimension="user_id", n=20),
    "usage per user": lambda wh, scope, s, e: attribution.usage_by(wh, scope, "user_id", s, e),
}


@pytest.mark.parametrize("name", sorted(EDGE_READS))
def test_five_minute_edges_equal_raw_calls_for_every_tenant(loaded: Warehouse, raw_only, name: str) -> None:
    """Every edge span, each project alone and all together: the same rows (Decimal-equal money) as
    raw calls give, and a project's answer holds its own calls only; what the five-minute tier keeps
    comes from it alone (no hourly tier for these short ranges), per-user reads from the hourly tier
    and raw edges."""
    read = EDGE_READS[name]
    projects = [p for (p,) in loaded.query_rows("SELECT DISTINCT project FROM calls ORDER BY project")]
    assert len(projects) > 1
    issued: list[str] = []
    plain = loaded.query_df
    for start, end in EDGE_SPANS:
        for scope in (ALL, *(Scope.of(p) for p in projects)):
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(loaded, "query_df", lambda sql, *a, **k: (issued.append(sql), plain(sql, *a, **k))[1])
                got = read(loaded, scope, start, end)
            want = raw_only(read, loaded, scope, start, end)
            assert not want.is_empty()
            assert got.rows() == want.rows(), (name, start, end, scope)
        alone = pl.concat([read(loaded, Scope.of(p), start, end).select("calls") for p in projects])
        assert alone["calls"].sum() == read(loaded, ALL, start, end)["calls"].sum() or name == "top users"
    text = " ".join(issued)
    if name in FIVE_MINUTE_READS:
        assert "FROM calls_5m " in text and "FROM calls_hourly " not in text and "FROM calls_daily " not in text
    else:
        assert "FROM calls_user_totals_hourly " in text and "FROM calls_5m " not in text
