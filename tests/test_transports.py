"""Same code, same SQL, same answers over both transports: a simulated day goes through the real
pipeline into an embedded database and, over clickhouse-connect's HTTP client, into another; every
query-library function, the stored rows, tool runs and a reprice must agree exactly."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

import warehouse.queries
from ingest.catalog import Catalog
from ingest.pipeline import Pipeline
from ingest.pricing import load_prices, override_names
from ingest.reprice import reprice
from ingest.tool_runs import ToolRunWriter
from llmledger.settings import Settings
from llmledger.simulator import SimulationConfig, iter_days
from tests.chhttp import ClickHouseHTTP
from tests.conftest import migrated_database
from warehouse.client import Warehouse
from llmledger.exports.focus import catalogue_cells
from warehouse.queries import (
    advice,
    alerts,
    attribution,
    caching,
    calls,
    calls_export,
    collectors,
    distributions,
    focus,
    jobs,
    metrics,
    nodes,
    ops,
    reconciliation,
    report_sends,
    routing,
    savings,
    selfhost,
    series,
    signals,
    spend,
    weekly,
)
from warehouse.queries.scope import Scope

START, END = datetime(2025, 11, 5, tzinfo=UTC), datetime(2025, 11, 6, tzinfo=UTC)
# not on the hour: whole hours come from the rollups, the edges from raw calls
ROUTED = "support-chat"  # the simulator's cascade-v2 route
MID_START, MID_END = datetime(2025, 11, 5, 3, 17, 29, tzinfo=UTC), datetime(2025, 11, 5, 20, 41, 3, tzinfo=UTC)



def _busiest_session(wh: Warehouse) -> str:
    return str(wh.scalar("SELECT session_id FROM calls WHERE session_id != '' GROUP BY session_id "
                         "ORDER BY count() DESC, session_id LIMIT 1"))


# Every query-library function, called as a dashboard or job would (a new one must be added here).
QUERY_CALLS: dict[str, Callable[[Warehouse], object]] = {
    "attribution.totals": lambda wh: attribution.totals(wh, Scope.all(), START, END),
    "attribution.usage_by": lambda wh: pl.concat(
        [
            attribution.usage_by(wh, Scope.all(), "route", START, END).with_columns(pl.lit("route").alias("dim")),
            attribution.usage_by(wh, Scope.of("default"), "model", START, END, {"deployment": ["api"]}, limit=5)
            .with_columns(pl.lit("model").alias("dim")),
            attribution.usage_by(wh, Scope.all(), "user_id", START, END, limit=10).with_columns(pl.lit("user").alias("dim")),
        ]
    ),
    "attribution.usage_by_capped": lambda wh: attribution.usage_by_capped(wh, Scope.all(), "user_id", START, END,
                                                                          limit=7),
    "attribution.cache_hit_ratio": lambda wh: attribution.cache_hit_ratio(wh, Scope.all(), START, END),
    "attribution.latency_percentiles": lambda wh: (
        attribution.latency_percentiles(wh, Scope.all(), START, END),
        attribution.latency_percentiles(wh, Scope.all(), START, END, dimension="route"),
    ),
    "series.time_series": lambda wh: series.time_series(wh, Scope.all(), START, END, dimension="model"),
    "series.cache_hit_series": lambda wh: series.cache_hit_series(wh, Scope.all(), START, END, dimension="route"),
    "series.top_n": lambda wh: series.top_n(wh, Scope.all(), START, END, dimension="team"),
    "series.latency_series": lambda wh: (
        series.latency_series(wh, Scope.all(), MID_START, MID_END, dimension="provider"),
        series.latency_series(wh, Scope.all(), START, END, grain="day", filters={"status": ["ok"]}),
    ),
    # the dashboards' reads
    "spend.spend_periods": lambda wh: spend.spend_periods(wh, Scope.all(), MID_END),
    "spend.movers": lambda wh: spend.movers(wh, Scope.all(), "route", MID_START, MID_END),
    "spend.spend_heatmap": lambda wh: spend.spend_heatmap(wh, Scope.all(), START, END),
    "spend.budget_status": lambda wh: spend.budget_status(
        wh, Scope.all(), [spend.BudgetSpec(Decimal(5), team="platform"), spend.BudgetSpec(Decimal(50))], MID_END),
    "caching.cache_windows": lambda wh: caching.cache_windows(wh, Scope.all(), MID_START, MID_END, by=["route"]),
    "caching.cache_savings": lambda wh: caching.cache_savings(wh, Scope.all(), MID_START, MID_END, by=["model"]),
    "caching.prompt_versions": lambda wh: caching.prompt_versions(wh, Scope.all(), START, END),
    "distributions.token_quantiles": lambda wh: distributions.token_quantiles(wh, Scope.all(), START, END),
    "distributions.token_histogram": lambda wh: distributions.token_histogram(
        wh, Scope.all(), START, END, measure="reasoning_tokens", nonzero=True),
    "distributions.reasoning_outliers": lambda wh: distributions.reasoning_outliers(wh, Scope.all(), START, END),
    "routing.cascade_series": lambda wh: routing.cascade_series(wh, Scope.all(), MID_START, MID_END),
    "routing.cascade_steps": lambda wh: routing.cascade_steps(wh, Scope.all(), START, END),
    "routing.frontier_cost": lambda wh: routing.frontier_cost(wh, Scope.all(), START, END),
    "ops.unpriced_models": lambda wh: ops.unpriced_models(wh, Scope.all(), START, END),
    "ops.price_list": lambda wh: ops.price_list(wh, at=START, like="gpt-4o"),
    "ops.dead_letters": lambda wh: ops.dead_letters(wh, START, END),
    "ops.dead_letter_counts": lambda wh: ops.dead_letter_counts(wh, START, END),
    "ops.prices": lambda wh: ops.prices(wh, model="gpt-4o", provider="openai", at=START),
    "reconciliation.reconcile": lambda wh: reconciliation.reconcile(wh, Scope.all(), START, END),
    "reconciliation.capture": lambda wh: reconciliation.capture(wh, Scope.all(), START, END),
    "collectors.collector_status": lambda wh: collectors.collector_status(wh, Scope.all(), now=END),
    # node metrics come from collectors; over simulated calls alone these return their empty shapes
    "nodes.gpu_utilisation": lambda wh: nodes.gpu_utilisation(wh, Scope.all(), START, END, step_s=3600),  # + rollup
    "nodes.inference_load": lambda wh: nodes.inference_load(wh, Scope.all(), START, END),
    "nodes.token_throughput": lambda wh: nodes.token_throughput(wh, Scope.all(), START, END),
    "nodes.latency_quantiles": lambda wh: nodes.latency_quantiles(wh, Scope.all(), START, END),
    "nodes.gpu_cost": lambda wh: nodes.gpu_cost(wh, Scope.all(), START, END),
    "nodes.self_host_cost": lambda wh: nodes.self_host_cost(wh, Scope.all(), START, END),
    "nodes.breakeven_inputs": lambda wh: nodes.breakeven_inputs(wh, Scope.all(), START, END),
    "nodes.infra_by": lambda wh: (nodes.infra_by(wh, Scope.all(), "user_id", START, END),
                                  nodes.infra_by(wh, Scope.all(), "team", START, END, {"team": ["data"]}, grain="hour")),
    "selfhost.self_hosted_vs_api": lambda wh: selfhost.self_hosted_vs_api(wh, Scope.all(), START, END),
    # signal windows over the simulated day (the evaluation itself is compared in test_signals_transports)
    "signals.cache_buckets": lambda wh: signals.cache_buckets(
        wh, Scope.all(), START, END, min_tokens={"anthropic": 1024, "openai": 1024}),
    "signals.prompt_buckets": lambda wh: signals.prompt_buckets(wh, Scope.all(), START, END),
    "signals.prompt_baseline": lambda wh: signals.prompt_baseline(wh, Scope.all(), START, END),
    "signals.tool_buckets": lambda wh: signals.tool_buckets(wh, Scope.all(), START, END),
    "signals.tool_baseline": lambda wh: signals.tool_baseline(wh, Scope.all(), START, END),
    "signals.reasoning_calls": lambda wh: signals.reasoning_calls(wh, Scope.all(), START, END, floor=10_000),
    "signals.reasoning_baseline": lambda wh: signals.reasoning_baseline(
        wh, Scope.all(), [START], baseline_days=1, routes=["reasoning-qa"]),
    "signals.routing_buckets": lambda wh: signals.routing_buckets(wh, Scope.all(), START, END),
    "signals.latency_windows": lambda wh: signals.latency_windows(wh, Scope.all(), START, END, step_s=900, window_s=3600),
    "signals.latency_baseline": lambda wh: signals.latency_baseline(wh, Scope.all(), [START], baseline_days=7),
    "signals.spend_first_seen": lambda wh: signals.spend_first_seen(
        wh, Scope.all(), users=["u-0001"], routes=["support-chat"], features=["support"]),
    "calls_export.hour_counts": lambda wh: calls_export.hour_counts(wh, Scope.all(), MID_START, MID_END),
    "calls_export.calls_between": lambda wh: pl.from_arrow(
        calls_export.calls_between(wh, Scope.of("default"), MID_START, MID_END)).drop("ingested_at", strict=False),
    "focus.catalogue_models": lambda wh: sorted(focus.catalogue_models(wh, Scope.all(), START, END)),
    "focus.call_costs": lambda wh: focus.call_costs(
        wh, Scope.all(), MID_START, MID_END, catalogue_cells(Settings(), focus.catalogue_models(wh, Scope.all(), START, END))),
    "focus.gpu_costs": lambda wh: focus.gpu_costs(wh, Scope.all(), START, END),
    "metrics.traffic": lambda wh: metrics.traffic(wh, Scope.all(), ["provider", "model", "route"], max_series=5,
                                                  buckets_s=[0.5, 1, 5, 30]),
    "metrics.incident_counts": lambda wh: metrics.incident_counts(wh, Scope.all()),
    "advice.route_traffic": lambda wh: advice.route_traffic(wh, Scope.all(), ROUTED, MID_START, MID_END),
    "advice.live_scores": lambda wh: advice.live_scores(wh, Scope.all(), ROUTED, "cascade-v2", START, END,
                                                        cheap=("openai", "gpt-4o-mini"), frontier=("openai", "gpt-4o")),
    "advice.price_queries": lambda wh: advice.price_queries(
        wh, pl.DataFrame({"qid": [1, 2], "provider": ["openai", "anthropic"], "model": ["gpt-4o", "claude-sonnet-4-5"],
                          "input_tokens": [3000, 5000], "cache_read_tokens": [1024, 0], "output_tokens": [400, 900]}),
        at=START),
    "advice.priced_providers": lambda wh: list(advice.priced_providers(wh, "gpt-4o")),
    "signals.cache_baseline": lambda wh: signals.cache_baseline(wh, Scope.all(), [END], baseline_days=1)
    .sort(["route", "model", "provider"]),
    "signals.spend_buckets": lambda wh: signals.spend_buckets(wh, Scope.all(), START, END),
    "signals.spend_hourly": lambda wh: pl.concat([
        signals.spend_hourly(wh, Scope.all(), START, END, users=["u-0012"], routes=["assistant-chat"]),
        signals.spend_hourly(wh, Scope.all(), START, END, every_key=True)]).sort(["dimension", "key", "hour"]),
    "signals.spend_user_routes": lambda wh: signals.spend_user_routes(
        wh, Scope.all(), START, END, users=["u-0012"]).sort(["key", "route", "bucket"]),
    "signals.budget_hourly": lambda wh: signals.budget_hourly(wh, Scope.all(), START, END),
    "signals.budget_recent": lambda wh: signals.budget_recent(wh, Scope.all(), START, END),
    "signals.history_start": lambda wh: signals.history_start(wh, Scope.all()),
    # alert and job state is empty here: these check the queries run and agree on their empty shapes
    "alerts.incidents": lambda wh: alerts.incidents(wh, Scope.all()),
    "alerts.open_incidents": lambda wh: alerts.open_incidents(wh, Scope.all()),
    "alerts.incident": lambda wh: alerts.incident(wh, Scope.all(), "none"),
    "alerts.incident_events": lambda wh: alerts.incident_events(wh, Scope.all()),
    "alerts.outbox": lambda wh: alerts.outbox(wh),
    "alerts.silences": lambda wh: alerts.silences(wh, active_at=END),
    "alerts.watermarks": lambda wh: alerts.watermarks(wh),
    "alerts.noted_scopes": lambda wh: sorted(alerts.noted_scopes(wh, "spend_spike")),
    "jobs.job_runs": lambda wh: jobs.job_runs(wh, Scope.all()),
    "jobs.job_failures": lambda wh: jobs.job_failures(wh, Scope.all()),
    "jobs.last_runs": lambda wh: jobs.last_runs(wh, Scope.all()),
    # the weekly report's measurements and its send ledger
    "weekly.movers": lambda wh: weekly.movers(wh, Scope.all(), "route", (START + (END - START) / 2, END),
                                              (START, START + (END - START) / 2), {"deployment": ["api"]}),
    "weekly.hours_without_calls": lambda wh: weekly.hours_without_calls(wh, Scope.all(), START, END,
                                                                        {"route": ["crm-enrichment"]}),
    "weekly.unpriced_models": lambda wh: weekly.unpriced_models(wh, Scope.all(), START, END),
    "weekly.has_table": lambda wh: (weekly.has_table(wh, "calls"), weekly.has_table(wh, "nope")),
    "savings.cache_savings": lambda wh: savings.cache_savings(wh, Scope.all(), START, END),
    "savings.uncached_prefixes": lambda wh: savings.uncached_prefixes(wh, Scope.all(), START, END),
    "savings.batch_candidates": lambda wh: savings.batch_candidates(wh, Scope.all(), START, END),
    "savings.cascade_escalations": lambda wh: savings.cascade_escalations(wh, Scope.all(), START, END),
    "savings.reasoning_tails": lambda wh: savings.reasoning_tails(wh, Scope.all(), START, END),
    "report_sends.record_send": lambda wh: report_sends.record_send(
        wh, report="weekly", period="2025-W45", audience="*", recipients=["a@example.com"], status="failed",
        attempt=1, message_id="<m@x>", attempted_at=START, error_kind="auth", error="refused"),
    "report_sends.send_states": lambda wh: report_sends.send_states(wh, Scope.all(), report="weekly",
                                                                    period="2025-W45"),
    "report_sends.sends": lambda wh: report_sends.sends(wh, Scope.all()),
    "alerts.incidents_between": lambda wh: alerts.incidents_between(wh, Scope.all(), START, END, team="data"),
    "calls.calls_page": lambda wh: calls.calls_page(wh, Scope.all(), MID_START, MID_END, {"team": ["data"]},
                                                    ranges=calls.Ranges(min_latency_ms=100), order="costliest",
                                                    limit=20),
    "calls.session_calls": lambda wh: calls.session_calls(wh, Scope.all(), _busiest_session(wh), START, END),
}


def _query_functions() -> set[str]:
    found = set()
    for info in pkgutil.iter_modules(warehouse.queries.__path__):
        module = importlib.import_module(f"warehouse.queries.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__ and not name.startswith("_"):
                params = list(inspect.signature(fn).parameters)
                if params and params[0] == "wh":
                    found.add(f"{info.name}.{name}")
    return found


def test_every_query_function_is_exercised_over_both_transports() -> None:
    assert _query_functions() == set(QUERY_CALLS)


@pytest.fixture(scope="module")
def day() -> tuple[pl.DataFrame, pl.DataFrame]:
    (simulated,) = list(iter_days(SimulationConfig(start=START, days=1, calls_per_day=2_000)))
    return simulated.calls, simulated.tool_runs


@pytest.fixture
def pair(store: Path, chhttp: ClickHouseHTTP, tmp_path: Path) -> Iterator[dict[str, tuple[Warehouse, Settings]]]:
    """The same fresh, migrated database twice: embedded and over HTTP."""
    made: dict[str, tuple[Warehouse, Settings]] = {}
    with ExitStack() as databases:
        for transport, url in (("embedded", None), ("http", chhttp.url())):
            settings = Settings(home=tmp_path / transport, warehouse={"path": store, "url": url})
            made[transport] = (databases.enter_context(migrated_database(settings)), settings)
        yield made


def _stored(wh: Warehouse, table: str, key: str) -> pl.DataFrame:
    return wh.query_df(f"SELECT * EXCEPT (ingested_at) FROM {table} ORDER BY {key}").drop("batch_id", strict=False)


def test_a_simulated_day_gives_identical_answers(pair: dict[str, tuple[Warehouse, Settings]], day: tuple) -> None:
    calls, runs = day
    results: dict[str, dict[str, object]] = {}
    for transport, (wh, settings) in pair.items():
        with Pipeline(wh, settings) as pipeline:
            first = pipeline.ingest_frame(calls, source="simulator")
            again = pipeline.ingest_frame(calls, source="simulator")  # idempotent over both transports
        assert first.rejections == [] and first.written == calls.height
        assert again.written == 0 and again.duplicates == calls.height
        assert ToolRunWriter(wh).write(runs) == runs.height
        assert ToolRunWriter(wh).write(runs) == 0
        results[transport] = {name: call(wh) for name, call in QUERY_CALLS.items()}
        results[transport]["calls"] = _stored(wh, "calls", "event_id")
        results[transport]["tool_runs"] = _stored(wh, "tool_runs", "event_id")
    embedded, http = results["embedded"], results["http"]
    assert set(embedded) == set(http)
    for name in embedded:
        assert _same(embedded[name], http[name]), name
    totals = embedded["attribution.totals"]
    assert isinstance(totals, pl.DataFrame) and totals["calls"][0] == calls.height


def test_reprice_gives_identical_totals(pair: dict[str, tuple[Warehouse, Settings]], day: tuple) -> None:
    calls, _ = day
    reports = {}
    for transport, (wh, settings) in pair.items():
        with Pipeline(wh, settings) as pipeline:
            pipeline.ingest_frame(calls, source="simulator")
        discounted = settings.pricing.model_copy(update={"provider_discounts": {"openai": Decimal("0.25")}})
        load_prices(wh, discounted)
        reports[transport] = reprice(wh, Catalog(override_names(discounted)), since=START, until=END)
    embedded, http = reports["embedded"], reports["http"]
    assert embedded.cost_after_usd < embedded.cost_before_usd
    assert (embedded.calls, embedded.cost_before_usd, embedded.cost_after_usd, embedded.partitions) == (
        http.calls, http.cost_before_usd, http.cost_after_usd, http.partitions
    )


def _same(a: object, b: object) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, pl.DataFrame) and isinstance(b, pl.DataFrame):
        # row order is part of the answer only where a query orders it; compare as multisets
        sortable = [c for c, t in a.schema.items() if not isinstance(t, (pl.List, pl.Struct, pl.Array))]
        return a.schema == b.schema and a.sort(sortable).equals(b.sort(sortable))
    return a == b
